"""The ``netinspect walkthrough`` verb (registered through the "netinspect.verbs" entry point group).

    netinspect walkthrough                 # list them: name and a one-line description
    netinspect walkthrough NAME --text     # the narrative with its measured numbers
    netinspect walkthrough NAME --json     # steps (conn, frames, predicates), text and facts
    netinspect walkthrough NAME            # step through it in the terminal UI

The walkthroughs themselves live in :mod:`inspector.walkthroughs` (no UI
code); this module only parses arguments and hands a built walkthrough to
the UI's ``tui.app.run_walkthrough(walkthrough) -> int`` when that exists
(see ``inspector/walkthroughs/README.md``), else prints it as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2

#: where the interactive pane is looked for: module, function taking a Walkthrough and returning an exit code
UI_HOOK = ("tui.app", "run_walkthrough")


def _ui_runner() -> Callable[[Any], int] | None:
    import importlib

    module, name = UI_HOOK
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    runner = getattr(mod, name, None)
    return runner if callable(runner) else None


def cmd_walkthrough(args: argparse.Namespace) -> int:
    from inspector import walkthroughs

    if not args.name:
        entries = walkthroughs.catalog()
        width = max(len(name) for name, _ in entries)
        for name, description in entries:
            print(f"{name:<{width}}  {description}")
        return EXIT_OK
    if args.name not in walkthroughs.NAMES:
        print(f"netinspect: no walkthrough {args.name!r}; `netinspect walkthrough` lists them", file=sys.stderr)
        return EXIT_USAGE
    try:
        wt = walkthroughs.load(args.name, samples=args.samples)
    except FileNotFoundError as e:
        print(f"netinspect: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        json.dump(wt.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    if not args.text:
        runner = _ui_runner()
        if runner is not None and sys.stdout.isatty() and sys.stdin.isatty():
            return runner(wt)
        if runner is None:
            print(f"netinspect: the interactive walkthrough pane needs the terminal UI ({'.'.join(UI_HOOK)}), "
                  "which this installation does not have yet; printing the narrative instead (--text)",
                  file=sys.stderr)
    sys.stdout.write(wt.text())
    return EXIT_OK


def register_walkthrough(sub: Any, verb: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``walkthrough`` verb to the ``netinspect`` parser (entry point hook)."""
    p = verb("walkthrough", "Annotated walkthroughs of the lab captures, with numbers measured on them.",
             "netinspect walkthrough tls12-vs-tls13 --text")
    p.add_argument("name", nargs="?", metavar="NAME", help="the walkthrough to run; without it, list them all")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--text", action="store_true", help="print the narrative with its measured numbers")
    out.add_argument("--json", action="store_true", help="print the built walkthrough (steps, frames, facts) as JSON")
    p.add_argument("--samples", metavar="DIR",
                   help="directory holding the lab captures (default: $NETINSPECT_SAMPLES, else captures/samples)")
    p.set_defaults(func=cmd_walkthrough)
