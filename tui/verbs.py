"""The ``view``, ``live`` and ``run`` verbs, registered through the "netinspect.verbs" entry points.

Errors are raised as :class:`~inspector.cli.UsageError` or
:class:`~inspector.errors.CaptureError`: the command line prints them as one
``netinspect: ...`` line and exits with 2, before any screen is drawn.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from inspector.capture.live import CaptureThread, LiveCapture, PcapngWriter
from inspector.capture.reader import CaptureReader
from inspector.cli import UsageError
from inspector.errors import CaptureError
from inspector.keylog import KeyLog, load_keylog

Verb = Callable[[str, str, str], argparse.ArgumentParser]


def _few_colours() -> bool:
    """Does the terminal have only the 16 basic colours?"""
    term = os.environ.get("TERM", "")
    return not os.environ.get("COLORTERM") and "256" not in term and term not in ("", "xterm-kitty", "alacritty")


def _need_terminal(verb: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"{verb} shows a terminal UI and needs a terminal "
                         "(for files and pipes use `netinspect summary` or `netinspect export`)")


def _add_ansi(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ansi", action="store_true",
                   help="use the 16-colour theme (automatic when $TERM has no 256 colours)")


# --------------------------------------------------------------------------- view


def register_view(sub: Any, verb: Verb) -> None:
    p = verb("view", "Browse a capture in the terminal: connections, timelines, events, field trees, bytes.",
             "netinspect view captures/samples/http2-lossy.pcap --keylog captures/samples/http2-lossy.keys")
    p.add_argument("capture", help="pcap or pcapng file (optionally .gz)")
    p.add_argument("--keylog", metavar="FILE", help="TLS key log (NSS format); default: $SSLKEYLOGFILE")
    _add_ansi(p)
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from .app import NetinspectApp
    from .sources import FileSource

    keylog = load_keylog(args.keylog)
    CaptureReader(args.capture).close()  # not a capture: one line and exit 2, before any screen
    _need_terminal("view")
    app = NetinspectApp(FileSource(args.capture, keylog), ansi=args.ansi or _few_colours())
    app.run()
    return 0


# --------------------------------------------------------------------------- live


def register_live(sub: Any, verb: Verb) -> None:
    p = verb("live", "Capture from an interface and watch connections decode as they happen.",
             "netinspect live -i lo -f 'tcp port 8443' --keylog /tmp/keys.log -w session.pcapng")
    p.add_argument("-i", "--interface", required=True, metavar="IFACE", help="network interface (e.g. lo, eth0)")
    p.add_argument("-f", "--filter", metavar="BPF", help="capture filter in tcpdump syntax (e.g. 'tcp port 443')")
    p.add_argument("--keylog", metavar="FILE",
                   help="TLS key log, read again as lines are appended; default: $SSLKEYLOGFILE")
    p.add_argument("-w", "--write", metavar="OUT.pcapng",
                   help="also write the capture here; with --keylog, its secrets are embedded (Decryption Secrets "
                        "Block); secrets read from $SSLKEYLOGFILE alone are not")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--no-ui", "--no-view", dest="no_ui", action="store_true",
                   help="no terminal UI: print each connection as it appears and a summary at the end")
    _add_ansi(p)
    p.set_defaults(func=cmd_live)


class _Printer:
    """The host of a source without a UI: a line per connection as it appears or changes."""

    def __init__(self, source: Any, out: TextIO) -> None:
        self.model = source.new_model()
        self.out = out
        self.shown: dict[int, str] = {}
        self.last = ""

    def source_progress(self, text: str, fraction: float | None, done: bool) -> None:
        self.last = text
        for row in list(self.model.rows):
            line = f"{row.stack}  {row.client} → {row.server}" + (f"  {row.name}" if row.name else "")
            if self.shown.get(row.id) != line:
                self.shown[row.id] = line
                self.out.write(f"conn {row.id}: {line}\n")
                self.out.flush()

    def source_replaced(self, model: Any) -> None:
        self.model = model
        self.out.write("new secrets: decoded again\n")

    def source_failed(self, error: str) -> None:
        print(f"netinspect: {error}", file=sys.stderr)


def cmd_live(args: argparse.Namespace) -> int:
    from .sources import LiveSource

    keylog_path = args.keylog or os.environ.get("SSLKEYLOGFILE") or None
    if args.keylog and not os.path.exists(args.keylog):
        print(f"netinspect: note: {args.keylog} does not exist yet; it will be read once it does", file=sys.stderr)
    if not args.no_ui:
        _need_terminal("live (without --no-view)")
    capture = LiveCapture(args.interface, args.filter)
    writer = None
    source = None
    try:
        writer = PcapngWriter(args.write, capture.linktype, args.interface) if args.write else None
        source = LiveSource(capture, KeyLog(), keylog_path, writer, args.duration, drain=args.no_ui)
        if args.no_ui:
            _run_headless(source)
        else:
            from .app import NetinspectApp

            app = NetinspectApp(source, ansi=args.ansi or _few_colours())
            with _on_signals(lambda *_: _exit_app(app, source)):
                app.run()
            source.stop()
            source.finished.wait(10)
    finally:
        if source is None or not source.thread.is_alive():
            capture.close()  # else the capture thread closes it as it ends
        if writer is not None:
            # embedded only when asked: a key log named on the command line, not one found in the environment
            writer.close(source.secrets_text() if source is not None and args.keylog else "")
    received, dropped = capture.received, capture.dropped
    note = f"netinspect: {received} packets captured on {args.interface}, {dropped} dropped by the kernel"
    if writer is not None:
        note += f"; wrote {args.write} ({writer.packets} packets, {writer.secrets} secrets embedded)"
        if not args.keylog and source is not None and source.secrets_text():
            note += " (the secrets of $SSLKEYLOGFILE are embedded only with --keylog)"
    if args.no_ui and source.lag is not None:
        note += f"; decoding finished {source.lag:.1f} s after the capture stopped"
    print(note, file=sys.stderr)
    return 0


@contextlib.contextmanager
def _on_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``handler`` while inside the block."""
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _exit_app(app: Any, source: Any) -> None:
    """From a signal handler: stop the capture and close the UI (through the app's event loop)."""
    source.stop()

    def close() -> None:
        try:
            app.call_from_thread(app.exit)
        except RuntimeError:
            pass  # not running (yet, or any more)

    # a handler runs between two bytecodes of the event loop's thread: hand the exit over from another thread
    threading.Thread(target=close, daemon=True).start()


def _run_headless(source: Any) -> None:
    from inspector.output.summary import write_text

    printer = _Printer(source, sys.stdout)
    with _on_signals(lambda *_: source.stop()):
        print(f"netinspect: capturing on {source.capture.interface}"
              + (f" ({source.capture.bpf})" if source.capture.bpf else "")
              + "; Ctrl+C stops (a second Ctrl+C skips decoding what is left)", file=sys.stderr, flush=True)
        source.run(printer)
    write_text([row.summary for row in printer.model.rows], sys.stdout, source=printer.last)


# --------------------------------------------------------------------------- run


def register_run(sub: Any, verb: Verb) -> None:
    p = verb("run", "Run a command with SSLKEYLOGFILE set, capture its loopback traffic, then browse it.",
             "netinspect run -- curl -s --http2 https://localhost:8443/")
    p.add_argument("-i", "--interface", default="lo", metavar="IFACE", help="interface to capture on (default: lo)")
    p.add_argument("-f", "--filter", metavar="BPF", help="capture filter in tcpdump syntax (default: everything)")
    p.add_argument("-w", "--write", metavar="OUT.pcapng", help="write the capture here, secrets embedded")
    p.add_argument("--no-view", action="store_true",
                   help="do not open the UI: with -w just write the file; without, print the summary; "
                        "exit with the command's status")
    _add_ansi(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command to run")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("run needs a command: netinspect run -- CMD [ARGS...]")
    if shutil.which(command[0]) is None:
        raise UsageError(f"command not found: {command[0]}")
    if not args.no_view:
        _need_terminal("run (without --no-view)")
    tmp = tempfile.mkdtemp(prefix="netinspect-run-")
    keyfile = os.path.join(tmp, "sslkeys.log")
    open(keyfile, "w").close()  # noqa: SIM115 - a fresh, empty key log for the command
    capture = LiveCapture(args.interface, args.filter)
    writer = thread = None
    secrets = ""
    signalled = 0
    try:
        writer = PcapngWriter(args.write, capture.linktype, args.interface) if args.write else None
        thread = CaptureThread(capture, writer)
        thread.start()
        env = dict(os.environ, SSLKEYLOGFILE=keyfile)
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as e:
            raise UsageError(f"cannot run {command[0]}: {e.strerror or e}") from None

        def forward(signum: int, _frame: object) -> None:
            # SIGINT/SIGTERM end the command; the capture is then written as usual
            nonlocal signalled
            signalled = signum
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        with _on_signals(forward):
            status = child.wait()
            time.sleep(0.3)  # the last ACKs and FINs
            thread.stop()
            thread.join(10)
        with open(keyfile, encoding="utf-8", errors="replace") as f:
            secrets = f.read()
        keylog = KeyLog()
        keylog.add_text(secrets)
    finally:
        if thread is not None:
            thread.stop()
            thread.join(10)
        if thread is None or not thread.is_alive():
            capture.close()
        if writer is not None:
            writer.close(secrets)
        shutil.rmtree(tmp, ignore_errors=True)
    if thread.error is not None:
        raise CaptureError(f"capture on {args.interface} failed: {thread.error}")
    packets = thread.take(0)
    if status < 0:
        status = 128 - status  # killed by a signal, as a shell reports it
    note = (f"netinspect: {command[0]} exited with status {status}; {len(packets)} packets captured on "
            f"{args.interface} ({capture.dropped} dropped by the kernel), {len(keylog)} TLS secrets logged")
    if writer is not None:
        note += f"; wrote {args.write} ({writer.packets} packets, {writer.secrets} secrets embedded)"
    print(note, file=sys.stderr)
    if args.no_view or signalled == signal.SIGTERM:
        if writer is None:
            from inspector.output.summary import summaries, write_text
            from inspector.pipeline import Pipeline

            pipe = Pipeline(keylog=keylog)
            pipe.run(packets)
            pipe.finish()
            write_text(summaries(pipe.connections, pipe.registry), sys.stdout,
                       source=f"{' '.join(command)} ({len(packets)} frames)")
        # interrupted: 130 (SIGINT) or 143 (SIGTERM), once the capture is written
        return 128 + signalled if signalled else status
    from .app import NetinspectApp
    from .sources import MemorySource

    app = NetinspectApp(MemorySource(packets, keylog, label=f"run: {' '.join(command)}"),
                        ansi=args.ansi or _few_colours())
    app.run()
    return 0
