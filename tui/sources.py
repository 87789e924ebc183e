"""Where frames come from: a capture file, a live interface, or packets in memory.

A source runs in a worker thread, feeds the :class:`~inspector.timeline.CaptureModel`
in batches and reports through a host (the app, or a plain printer for
``live --no-ui``): ``source_progress()`` about ten times a second,
``source_replaced()`` when a live capture was re-decoded with new secrets,
``source_failed()`` on errors.
Nothing here imports Textual.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator
from itertools import islice
from typing import Protocol

from inspector.capture.live import CaptureThread, KeyLogFollower, LiveCapture, PcapngWriter
from inspector.capture.reader import CaptureReader
from inspector.errors import CaptureError
from inspector.keylog import KeyLog

from inspector.timeline import CaptureModel, Packet

#: frames decoded between two looks at the clock
BATCH = 2048
#: a live capture keeps this many frames for re-decoding when secrets arrive later
MAX_KEPT = 2_000_000


class Host(Protocol):
    model: CaptureModel

    def source_progress(self, text: str, fraction: float | None, done: bool) -> None: ...

    def source_replaced(self, model: CaptureModel) -> None: ...

    def source_failed(self, error: str) -> None: ...


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class Source:
    """Base: a stop flag and a done event (set when :meth:`run` returns)."""

    live = False
    label = ""

    def __init__(self, keylog: KeyLog | None = None) -> None:
        self.keylog = keylog if keylog is not None else KeyLog()
        self.stopped = threading.Event()
        self.finished = threading.Event()
        #: the UI just got input: the worker waits until then, so the answer to a key is not
        #: slowed down by decoding competing for the interpreter (time.monotonic() seconds)
        self.yield_until = 0.0
        #: set by a UI once it has painted the first rows: until then (at most a second) the worker
        #: waits after its first rows, so the first screen is not slowed down by decoding (None: no UI)
        self.first_paint: threading.Event | None = None

    def interactive(self, seconds: float = 0.25) -> None:
        """Called by the UI on user input (any thread)."""
        self.yield_until = time.monotonic() + seconds

    def _yield(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.yield_until:
            time.sleep(0.01)

    def new_model(self) -> CaptureModel:
        return CaptureModel(self.keylog)

    def stop(self) -> None:
        self.stopped.set()

    def run(self, host: Host) -> None:
        try:
            self._run(host)
        except CaptureError as e:
            host.source_failed(str(e))
        except Exception as e:  # noqa: BLE001 - the UI stays up and says what happened
            host.source_failed(f"internal error: {type(e).__name__}: {e}")
        finally:
            self.finished.set()

    def _run(self, host: Host) -> None:
        raise NotImplementedError

    def _feed_all(self, host: Host, packets: Iterator[Packet], size: int, overhead: int, name: str) -> None:
        model = host.model
        consumed = 0
        last = 0.0
        interval = 0.1
        batch = 256  # a small first batch: the first rows on screen sooner
        while not self.stopped.is_set():
            chunk = list(islice(packets, batch))
            batch = BATCH
            if not chunk:
                break
            model.feed(chunk)
            for p in chunk:
                consumed += len(p[2]) + overhead
            now = time.monotonic()
            if now - last >= interval:
                model.publish()
                # keep publishing under a fifth of the time (a connection with 30k requests is costly to summarise)
                interval = max(0.1, min(model.publish_cost * 5, 1.0))
                last = now
                host.source_progress(self._text(name, model, "loading"), consumed / size if size else None, False)
                if self.first_paint is not None and model.rows and not self.first_paint.is_set():
                    self.first_paint.wait(1.0)
            self._yield()
        model.finish()
        host.source_progress(self._text(name, model, ""), 1.0, True)

    @staticmethod
    def _text(name: str, model: CaptureModel, state: str) -> str:
        text = f"{name} · {_plural(model.frames, 'frame')} · {_plural(len(model.rows), 'connection')}"
        return text + (f" · {state}…" if state else "")


class FileSource(Source):
    """A pcap/pcapng file (plain or gzip); secrets in Decryption Secrets Blocks join the key log."""

    def __init__(self, path: str, keylog: KeyLog | None = None) -> None:
        super().__init__(keylog)
        self.path = path
        self.label = os.path.basename(path)

    def new_model(self) -> CaptureModel:
        return CaptureModel(self.keylog, capture_path=self.path)  # frame bytes read back from the file

    def _run(self, host: Host) -> None:
        reader = CaptureReader(self.path, on_secrets=self.keylog.add_text)
        size = _uncompressed_size(self.path) if reader.compressed else os.path.getsize(self.path)
        overhead = 16 if reader.format == "pcap" else 34
        try:
            self._feed_all(host, iter(reader), size, overhead, self.label)
        finally:
            reader.close()
        if reader.warning:
            host.source_failed(f"{self.label}: {reader.warning}")


def _uncompressed_size(path: str) -> int:
    """gzip's ISIZE trailer: the uncompressed size modulo 2**32 (good for a progress bar)."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return struct.unpack("<I", f.read(4))[0]
    except OSError:
        return 0


class MemorySource(Source):
    """Packets already captured (``netinspect run`` opens its capture this way)."""

    def __init__(self, packets: list[Packet], keylog: KeyLog | None = None, label: str = "capture") -> None:
        super().__init__(keylog)
        self.packets = packets
        self.label = label

    def _run(self, host: Host) -> None:
        size = sum(len(p[2]) for p in self.packets)
        self._feed_all(host, iter(self.packets), size, 0, self.label)


class LiveSource(Source):
    """Frames from a :class:`LiveCapture` as they arrive; key log lines picked up as they are written.

    A :class:`CaptureThread` empties the kernel's ring into a queue (and
    ``writer``, for ``-w``) while this source decodes from that queue at its
    own pace: decoding may lag behind a burst, capturing never waits for it.
    When new secrets arrive and some TLS/QUIC connection is not fully
    decrypted, every frame kept so far is decoded again into a new model (at
    most once a second): records that went by before their keys are then
    decrypted too.  The end-of-capture analyses (RTT ledger, HOL) run on the
    connections as they are about once a second, and for good at the end.
    ``drain``: on :meth:`stop`, decode every frame captured before the stop
    (``live --no-view``) instead of dropping the rest (the UI is closing).
    """

    live = True

    def __init__(self, capture: LiveCapture, keylog: KeyLog | None = None, keylog_path: str | None = None,
                 writer: PcapngWriter | None = None, duration: float | None = None, drain: bool = False) -> None:
        super().__init__(keylog)
        self.capture = capture
        self.writer = writer
        self.duration = duration
        self.drain = drain
        self.thread = CaptureThread(capture, writer)
        self.follower = KeyLogFollower(keylog_path, self.keylog) if keylog_path else None
        if self.follower is not None:
            self.follower.poll()
        self.label = f"live {capture.interface}" + (f" ({capture.bpf})" if capture.bpf else "")
        self.kept: list[Packet] = []
        self.replays = 0
        #: seconds between the end of the capture and the end of decoding (how far decoding lagged)
        self.lag: float | None = None

    def stop(self) -> None:
        """End the capture; decoding ends too unless ``drain`` (then a second call ends it)."""
        if self.thread.stopping or not self.drain:
            self.stopped.set()
        self.thread.stop()

    def _status(self, model: CaptureModel) -> str:
        received, dropped = self.capture.stats()
        text = f"{self.label} · {_plural(received, 'packet')} · {dropped:,} dropped by the kernel · {_plural(len(model.rows), 'connection')}"
        if self.follower is not None:
            text += f" · {_plural(len(self.keylog), 'secret')}"
        if self.replays:
            text += f" · re-decoded {self.replays}×"
        behind = self.thread.pending
        if behind > BATCH:
            text += f" · decoding {behind:,} frames behind"
        return text

    def _run(self, host: Host) -> None:
        model = host.model
        thread = self.thread
        thread.start()
        start = last_pub = time.monotonic()
        last_keys = last_replay = last_analysis = 0.0
        analysis_every = 1.0
        pending = False
        try:
            while not self.stopped.is_set():
                if self.duration is not None and time.monotonic() - start >= self.duration:
                    thread.stop()
                batch = thread.take(0.05, BATCH)
                if thread.error is not None:
                    raise CaptureError(f"capture on {self.capture.interface} failed: {thread.error}")
                if not batch and not thread.is_alive() and not thread.pending:
                    break  # the capture has ended and every frame is decoded
                self._yield()
                if batch:
                    if self.follower is not None and len(self.kept) < MAX_KEPT:
                        self.kept.extend(batch)
                    model.feed(batch)
                now = time.monotonic()
                if self.follower is not None and now - last_keys >= 0.2:
                    last_keys = now
                    if self.follower.poll():
                        pending = True
                if pending and now - last_replay >= 1.0:
                    pending = False
                    last_replay = now
                    model.publish()
                    if model.needs_keys() and len(self.kept) < MAX_KEPT:
                        model = self.new_model()
                        model.feed(self.kept)
                        model.publish()
                        self.replays += 1
                        host.source_replaced(model)
                if now - last_analysis >= analysis_every:
                    # the ledger and HOL so far; at most ~5% of the time on a busy capture
                    cost = model.analyze()
                    last_analysis = time.monotonic()
                    analysis_every = max(1.0, cost * 20)
                if now - last_pub >= 0.1:
                    last_pub = now
                    model.publish()
                    host.source_progress(self._status(model), None, False)
        finally:
            thread.stop()
            thread.join(10)
        if thread.ended is not None:
            self.lag = max(0.0, time.monotonic() - thread.ended)
        if not self.stopped.is_set():  # the capture ended (duration, or stop with drain): the final analyses
            model.finish()
        else:
            model.publish(force=True)
        host.source_progress(self._status(model) + " · stopped", None, True)

    def secrets_text(self) -> str:
        return self.follower.secrets_text() if self.follower is not None else ""
