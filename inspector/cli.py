"""The ``netinspect`` command line.

Exit codes: 0 success (a truncated capture still exits 0, after a warning),
2 usage errors and captures that cannot be read at all, 130 interrupted,
70 an internal error (reported in one line; never a traceback).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import CaptureError
from .keylog import KeyLogError, load_keylog

EXIT_OK, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 2, 70, 130


class UsageError(Exception):
    """A problem with what the user asked for (exit code 2)."""


def _warn(message: str) -> None:
    print(f"netinspect: warning: {message}", file=sys.stderr)


def cmd_summary(args: argparse.Namespace) -> int:
    from .output.summary import connection_summary, write_text
    from .pipeline import decode_file
    from .retirement import Retirement

    retirement = Retirement(summaries=True)
    try:
        pipe, reader = decode_file(args.capture, keylog=load_keylog(args.keylog), retirement=retirement)
        if reader.warning:
            _warn(f"{args.capture}: {reader.warning}")
        _retirement_warnings(args.capture, pipe, retirement)

        def records(as_text: bool):
            """Each connection's record, in id order: retired ones from the retirement's file (as JSON
            text, or a dict), live ones as a dict."""
            for cid, conn in enumerate(pipe.connections):
                if conn is None:
                    text = retirement.record(cid)
                    yield text.rstrip("\n") if as_text else json.loads(text)
                else:
                    yield connection_summary(conn, pipe.registry)

        if args.json:
            # one compact line: json's C encoder only runs without indent (3x faster on 30k requests);
            # written a connection at a time, the same bytes as one json.dumps of the whole object
            # without holding every record (and its text) at once
            out = sys.stdout
            out.write(f'{{"capture": {json.dumps(args.capture)}, "frames": {pipe.frame}, "connections": [')
            for i, record in enumerate(records(as_text=True)):
                out.write(", " if i else "")
                if isinstance(record, str):
                    out.write(record)
                else:
                    write_json_record(record, out)
            out.write("]}\n")
        else:
            write_text(records(as_text=False), sys.stdout,
                       source=f"{args.capture} ({pipe.frame} frames)", count=len(pipe.connections))
    finally:
        retirement.close()
    return EXIT_OK


#: requests encoded at once when a record's list is written in parts
_REQUEST_BATCH = 1024


def write_json_record(record: dict[str, Any], out: Any) -> None:
    """``out.write(json.dumps(record))``, with a long ``requests`` list encoded a batch at a time.

    One json.dumps of a connection with 30,000 requests holds its 8 MB text twice over (the
    encoder's chunks and their join) on top of the records: the peak of ``summary --json``.
    The text is json.dumps's, written by :func:`inspector.output.jsontext.dumps` (faster).
    """
    from .output.jsontext import dumps

    requests = record.get("requests")
    if not isinstance(requests, list) or len(requests) <= _REQUEST_BATCH:
        out.write(dumps(record))
        return
    marker = f"requests-{os.urandom(16).hex()}"  # no string in a record can be equal to it by chance
    text = dumps({**record, "requests": marker})
    head, tail = text.split(dumps(marker), 1)
    out.write(head)
    out.write("[")
    for i in range(0, len(requests), _REQUEST_BATCH):
        out.write(", " if i else "")
        out.write(dumps(requests[i:i + _REQUEST_BATCH])[1:-1])
    out.write("]")
    out.write(tail)


def _retirement_warnings(capture: str, pipe: Any, retirement: Any) -> None:
    """Say when a limit of the retirement or of the analyses' history was hit (see inspector.retirement)."""
    from .analysis import MAX_SERVERS
    from .pipeline import MAX_SERVER_ADDRESSES

    stats = retirement.stats
    if stats["late_packets"]:
        late = stats["late_packets"]
        _warn(f"{capture}: {late} packet{'s' if late != 1 else ''} came after their connection had closed and been "
              "retired; not counted")
    if stats["flows_evicted"]:
        _warn(f"{capture}: more than {retirement.max_flows} UDP flows at once: {stats['flows_evicted']} retired before "
              f"{retirement.flow_quiet:g} s without a datagram, least recently active first")
    if stats["resumed_flows"]:
        _warn(f"{capture}: {stats['resumed_flows']} UDP flows had datagrams again after they retired; each later "
              "part is a flow of its own")
    if stats["out_of_order"]:
        _warn(f"{capture}: {stats['out_of_order']} closed connections were analysed while an earlier connection "
              "to their server was still open; their what-ifs and connection waits do not consider it")
    if retirement.analyzer.servers_forgotten:
        _warn(f"{capture}: more than {MAX_SERVERS} server endpoints: the what-ifs of later connections do not "
              f"consider {retirement.analyzer.servers_forgotten} of them")
    if pipe.addresses_forgotten:
        _warn(f"{capture}: more than {MAX_SERVER_ADDRESSES} server addresses: the DNS steps of later connections "
              f"do not consider {pipe.addresses_forgotten} of them")


def cmd_export(args: argparse.Namespace) -> int:
    from .output.export import JsonLinesWriter
    from .pipeline import decode_file
    from .retirement import Retirement

    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        writer = JsonLinesWriter(out)
        retirement = Retirement(summaries=False)
        pipe, reader = decode_file(args.capture, keylog=load_keylog(args.keylog), on_event=writer, segments=True,
                                   retirement=retirement)
    finally:
        if out is not sys.stdout:
            out.close()
    if reader.warning:
        _warn(f"{args.capture}: {reader.warning}")
    _retirement_warnings(args.capture, pipe, retirement)
    return EXIT_OK


#: verbs defined here: a command line that starts with one needs no entry-point scan (~25 ms of start-up)
BUILTIN_VERBS = ("summary", "export")


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The command line parser; ``plugins=False`` leaves out the verbs registered by entry points."""
    parser = argparse.ArgumentParser(
        prog="netinspect",
        description="A packet-level protocol inspector: connections, timelines, round trips and head-of-line blocking.",
        epilog="Example: netinspect summary captures/samples/tcp-handshake.pcap",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"netinspect {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=f"Example:\n  {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = verb("summary", "One line (or JSON object) per connection: endpoints, timing, iRTT, closing, anomalies.",
             "netinspect summary capture.pcapng --keylog keys.log --json")
    p.add_argument("capture", help="pcap or pcapng file (optionally .gz)")
    p.add_argument("--keylog", metavar="FILE", help="TLS key log (NSS format); default: $SSLKEYLOGFILE")
    p.add_argument("--json", action="store_true", help='print {"connections": [...]} as JSON')
    p.set_defaults(func=cmd_summary)

    p = verb("export", "Every decoded event as JSON Lines (one object per line).",
             "netinspect export capture.pcap -o events.jsonl")
    p.add_argument("capture", help="pcap or pcapng file (optionally .gz)")
    p.add_argument("--keylog", metavar="FILE", help="TLS key log (NSS format); default: $SSLKEYLOGFILE")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_export)

    # Verbs that live outside the library (the terminal UI's view/live/run/
    # walkthrough) register themselves through the "netinspect.verbs" entry
    # point group, so inspector/ never imports tui/.
    if not plugins:
        return parser
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="netinspect.verbs"), key=lambda e: e.name):
        try:
            register = ep.load()
        except Exception as e:  # a broken UI install must not take summary/export down
            print(f"netinspect: warning: verb {ep.name!r} unavailable: {e}", file=sys.stderr)
            continue
        register(sub, verb)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netinspect`` console script."""
    code = _main(argv)
    if argv is None:
        # The process exits next (console script, python -m inspector): a decode leaves its objects in
        # reference cycles (decoders and their bound methods, the pipeline's partials), and the collection
        # the interpreter runs at exit would walk and free them all (~0.1 s after 30k HTTP/2 requests).
        # Frozen objects are never collected: the OS takes the memory back instead.  Not for in-process
        # callers (tests pass argv), whose garbage must still be collected.
        gc.freeze()
    return code


def _main(argv: Sequence[str] | None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(plugins=not (args_in and args_in[0] in BUILTIN_VERBS))
    args = parser.parse_args(args_in)
    # A capture's decode keeps many long-lived objects (connections, requests):
    # fewer, later collections save ~20% of the time on large captures.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except (CaptureError, UsageError, KeyLogError) as e:
        print(f"netinspect: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("netinspect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # e.g. `netinspect export x | head`: not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        except OSError:
            pass
        return EXIT_OK
    except Exception as e:  # the last line of defence: one line, no traceback
        print(f"netinspect: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
