"""A capture too big to decode at once: rows stream in and the UI answers keys while it loads.

h2load sends 20,000 requests to nginx over h2c on loopback, recorded by tcpdump
(25,000 to 60,000 frames, as the segments happen to fall): decoding it with every event kept takes seconds, which is
what the worker must hide.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.capture.reader import CaptureReader
from inspector.keylog import KeyLog
from tests.support.capture import free_port, loopback_capture
from tests.support.http_servers import start_nginx
from tests.support.tui_app import async_test

H2LOAD = shutil.which("h2load") or "h2load"
REQUESTS = 20000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp("large")
    h1, h2c = free_port(), free_port()
    nginx = start_nginx(str(work / "nginx"), h1, h2c, {"/s.txt": b"small\n"})
    pcap = str(work / "h2load.pcap")
    try:
        with loopback_capture(pcap, f"tcp port {h2c}"):
            out = subprocess.run([H2LOAD, "-n", str(REQUESTS), "-c", "1", "-m", "32", f"http://127.0.0.1:{h2c}/s.txt"],
                                 capture_output=True, text=True, timeout=120)
    finally:
        nginx.stop()
    assert f"{REQUESTS} succeeded" in out.stdout, out.stdout
    return pcap


class _Recorder:
    """A host that notes when each progress report came."""

    def __init__(self, source) -> None:
        self.model = source.new_model()
        self.reports: list[tuple[float, int, int, float | None, bool]] = []
        self.t0 = time.monotonic()

    def source_progress(self, text, fraction, done):
        self.reports.append((time.monotonic() - self.t0, self.model.frames, len(self.model.rows), fraction, done))

    def source_replaced(self, model):
        raise AssertionError("a file is never re-decoded")

    def source_failed(self, error):
        raise AssertionError(error)


def test_rows_arrive_long_before_the_capture_is_decoded(big_capture):
    from tui.sources import FileSource

    total = sum(1 for _ in CaptureReader(big_capture))
    assert total > 10_000
    source = FileSource(big_capture, KeyLog())
    host = _Recorder(source)
    source.run(host)
    first = next(r for r in host.reports if r[2] > 0)
    last = host.reports[-1]
    assert last[4] and last[1] == total
    # the first rows come after a fraction of the frames, well before the end, within a second
    assert first[1] < total / 10 and first[0] < 1.0, (first, last)
    assert first[0] < last[0] / 3
    # the progress bar moves forward: fractions grow and end at 1
    fractions = [r[3] for r in host.reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 3
    # and the row ends up with every request h2load made
    assert host.model.rows[0].requests == REQUESTS


async def _until(predicate, timeout: float = 10.0) -> float:
    """Seconds until ``predicate()`` holds, polling the event loop (not waiting for the app to idle:
    a loading app is never idle, which is the point)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@async_test
async def test_keys_are_answered_while_loading(big_capture):
    from textual import events

    from tui.app import NetinspectApp
    from tui.screens.connection import ConnectionScreen
    from tui.screens.help import HelpScreen
    from tui.sources import FileSource

    app = NetinspectApp(FileSource(big_capture, KeyLog()))
    async with app.run_test(size=(120, 36)):
        await _until(lambda: app.model.rows)
        assert not app.done
        # keys as a terminal sends them, answered while the worker decodes
        app.post_message(events.Key("question_mark", "?"))
        help_after = await _until(lambda: isinstance(app.screen, HelpScreen))
        app.post_message(events.Key("escape", None))
        await _until(lambda: not isinstance(app.screen, HelpScreen))
        app.post_message(events.Key("enter", "\r"))
        open_after = await _until(lambda: isinstance(app.screen, ConnectionScreen) and getattr(app.screen, "ready", False))
        assert not app.done, "the keys were only answered once loading ended"
        # generous bounds: the machine running the tests is shared (measured: 0.04 s and 0.17 s)
        assert help_after < 1.0 and open_after < 2.0, (help_after, open_after)
        screen = app.screen
        seen = len(screen.events.events)
        await _until(lambda: app.done, timeout=120)
        await asyncio.sleep(0.3)
        # the open connection's event list kept growing underneath
        assert screen.events.count > seen


def test_events_are_kept_compactly(big_capture):
    """Every frame's events are kept in a few dozen bytes each (as columns, rebuilt when read), and
    the frames' bytes stay in the file: memory grows by bytes per frame, not by objects per event."""
    from tui.sources import FileSource

    source = FileSource(big_capture, KeyLog())
    host = _Recorder(source)
    source.run(host)
    model = host.model
    events = sum(len(log) for log in model.events)
    objects = sum(len(log._obj) for log in model.events)
    columns = sum(log.nbytes() for log in model.events)
    # a segment event per frame, and per request at least three HTTP/2 frames (the request's HEADERS, the
    # response's HEADERS and DATA); how many frames the segments took varies from run to run
    assert events >= model.frames + 3 * REQUESTS, (events, model.frames)
    assert objects < events / 100, (objects, events)
    assert columns / events < 64, columns / events
    assert model.frame_store.path == big_capture and not model.frame_store._kept
    # what is read back is what the pipeline made: the last request's response HEADERS
    log = model.events[0]
    last = max(i for i in range(len(log) - 1, max(len(log) - 200, 0), -1) if log[i].layer == "http2"
               and log[i].type == "HEADERS")
    assert dict(log[last].headers).get(":status") == "200"


def test_first_screen_keys_and_peak_memory_of_the_view(big_capture, tmp_path):
    """The UI itself (benchmarks/view.py: Textual headless, 120x36) on the h2load capture: the first
    rows are painted after a sliver of the frames, keys pressed while it loads are answered, and the
    whole load peaks at a bounded size. Bounds leave room for a shared machine: the measured figures on
    an idle one are in benchmarks/README.md."""
    # bytecode cached, as an installed copy has it (a run that compiles every module pays ~0.3 s more)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    view = [sys.executable, str(REPO / "benchmarks" / "view.py"), big_capture]
    subprocess.run([*view, "--first-screen-only"], capture_output=True, timeout=120, cwd=REPO, env=env, check=True)
    out = subprocess.run([*view, "--probe-keys"], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    total = sum(1 for _ in CaptureReader(big_capture))
    assert r["frames"] == total and r["connections"] >= 1
    # the first screen: CPU time is what the start-up costs (wall time is whatever the neighbours leave)
    assert r["first_screen_cpu_s"] < 1.0 and r["first_screen_s"] < 3.0, r
    assert r["first_screen_frames"] < total / 10, r
    keys = r["keys"]
    assert keys["down"]["n"] and keys["enter"]["n"], r  # keys were pressed while it loaded
    # moving the selection: answered (cursor moved, screen refreshed) in about 0.1 s (measured 0.001-0.13 s
    # at load 6 on 2 cores); opening a connection composes a whole screen and the timeline of its 20,000
    # streams: seconds on a busy machine (measured 1.5-3.7 s at load 6), a known limit
    assert keys["down"]["median_ms"] < 250 and keys["up"]["median_ms"] < 250, keys
    assert keys["enter"]["median_ms"] < 6000 and keys["escape"]["median_ms"] < 3000, keys
    # a ceiling (Textual ~60 MB, the HTTP/2 decoder's ~1 KB per request, the event columns); what
    # separates compact from per-object storage is test_events_are_kept_compactly
    assert r["peak_rss_mb"] < 250, r


async def _painted(screen) -> None:
    done = asyncio.Event()
    screen.call_after_refresh(done.set)
    await done.wait()


@async_test
async def test_a_big_connection_opens_and_closes_quickly_with_bounded_marks(big_capture):
    """Enter on the h2load connection (~90,000 events, 20,000 streams) paints the connection view in a
    fraction of a second, Esc returns as fast, and its timeline keeps a bounded number of marks: one per
    bin of a time grid per lane (short streams' lanes keep none: their marks are read from the events
    in view), not one per event. What the view draws of a stream's lane is what every event of the
    connection, each drawn on a grid as fine as the columns, gives."""
    from textual import events

    from tui.app import NetinspectApp
    from tui.screens.connection import ConnectionScreen
    from tui.screens.connections import ConnectionsScreen
    from tui.sources import FileSource
    from tui.timeline import BINS, TimelineModel

    app = NetinspectApp(FileSource(big_capture, KeyLog()))
    async with app.run_test(size=(120, 36)):
        await _until(lambda: app.done, timeout=120)
        model = app.model
        cid = max(range(len(model.events)), key=lambda c: len(model.events[c]))
        log = model.events_of(cid)
        streams = model.row(cid).requests
        assert len(log) > 50_000 and streams == REQUESTS
        app.screen.list.select_id(cid)
        await _painted(app.screen)
        enter: list[float] = []
        esc: list[float] = []
        for round_ in range(3):
            start = time.monotonic()
            app.post_message(events.Key("enter", "\r"))
            await _until(lambda: isinstance(app.screen, ConnectionScreen) and getattr(app.screen, "ready", False))
            await _painted(app.screen)
            enter.append(time.monotonic() - start)
            screen = app.screen
            assert screen.cid == cid and screen.events.count == len(log)
            await _until(lambda: not screen.timeline_model.behind(log), timeout=30)
            await _painted(screen)
            tl = screen.timeline_model
            if round_ == 0:
                # every stream has its lane; marks: at most a grid's worth per lane that keeps any
                rows = tl.ordered()
                first = tl.position(("stream", 1))
                assert [ln.name for ln in rows[first : first + 3]] == ["h2 s1", "h2 s3", "h2 s5"]
                assert rows[first + REQUESTS - 1].name == f"h2 s{2 * REQUESTS - 1}" and len(rows) >= first + REQUESTS
                # lane objects and marks: only for the lanes before and after the streams (and streams
                # with spans of their own: none here)
                assert len(tl.lanes) <= 8, [ln.name for ln in tl.lanes.values()]
                assert tl.mark_count() <= BINS * len(tl.lanes)
                assert tl.mark_count() < len(log) / 8, (tl.mark_count(), len(log))
                # the stream lanes in view are drawn from the connection's events
                view = screen.timeline
                top = rows[first + 100 : first + 110]
                view.scroll_to(y=tl.position(top[0].key), animate=False, immediate=True)
                await _painted(screen)
                t0, t1, w = view.t0, view.t0 + view.span, view._width
                every = tl._scan([(0, len(log))], t0, (t1 - t0) / (4 * w), 4 * w + 1)
                for lane in top:
                    drawn = view._columns(lane)
                    assert drawn == lane.columns(t0, t1, w, every.lanes[lane.key]), lane.name
                    assert any(c is not None and c[0] == "H" for c in drawn), lane.name  # its HEADERS
            start = time.monotonic()
            app.post_message(events.Key("escape", None))
            await _until(lambda: isinstance(app.screen, ConnectionsScreen))
            await _painted(app.screen)
            esc.append(time.monotonic() - start)
        # measured on 2 cores at load ~2: Enter 0.1-0.2 s (the first, which composes the screen, 0.3 s),
        # Esc 0.03-0.1 s; the bounds leave room for a loaded CI machine
        assert max(enter) < 2.0 and sorted(enter)[1] < 0.9, enter
        assert max(esc) < 0.6 and sorted(esc)[1] < 0.4, esc

    # marks do not grow with the events: a quarter, half and all of the connection on a 256-bin grid.
    # How many bins a lane fills depends on how h2load's traffic fell in time (a half has had more
    # than the whole), so the check is on growth: three quarters of the events add fewer marks than
    # one per hundred of them (a mark per event would add one per event)
    counts = []
    for part in (4, 2, 1):
        tl = TimelineModel(model.row(cid).summary, bins=256)
        tl.update(_Prefix(log, len(log) // part))
        counts.append(tl.mark_count())
        assert all(len(ln.bins) <= 256 for ln in tl.lanes.values())
    added = len(log) - len(log) // 4
    assert max(counts) <= 256 * 6 and counts[2] - counts[0] < added / 100, (counts, added)


class _Prefix:
    """The first ``n`` events of an event log (the timeline reads nothing past them)."""

    def __init__(self, log, n: int) -> None:
        self.log, self.n = log, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return self.log[i]

    def __getattr__(self, name: str):
        return getattr(self.log, name)
