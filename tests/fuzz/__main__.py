"""``python -m tests.fuzz --budget SECONDS [--target NAME] [--seed N]``: fuzz the readers and decoders.

Exit status 0 when nothing was found, 1 when there are findings (each saved
under ``--findings`` with its repro command), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .runner import fuzz, max_rss_mib, minimize, repro
from .targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds in all, shared by the targets (default 60)")
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="only this target (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--max-execs", type=int, help="stop each target after this many executions")
    ap.add_argument("--findings", type=Path, default=Path("fuzz-findings"), help="where findings are saved")
    ap.add_argument("--repro", type=Path, help="run one saved input of --target and show what happens")
    ap.add_argument("--minimize", type=Path, help="with --repro: write a smaller input that fails the same way here")
    ap.add_argument("--stats", type=Path, help="write per-target statistics as JSON here")
    args = ap.parse_args(argv)
    names = args.target or list(TARGETS)
    if args.repro is not None:
        if len(names) != 1:
            ap.error("--repro needs exactly one --target")
        if args.minimize is not None:
            return minimize(names[0], args.repro, args.minimize)
        return repro(names[0], args.repro)
    share = args.budget / len(names)
    started = time.time()
    results = []
    for name in names:
        stats = fuzz(name, seed=args.seed, budget=share, max_execs=args.max_execs, findings_dir=args.findings)
        print(stats.line(), flush=True)
        results.append(stats)
    findings = [f for s in results for f in s.findings]
    print(f"{sum(s.execs for s in results)} executions in {time.time() - started:.0f} s, seed {args.seed}, "
          f"max RSS {max_rss_mib():.0f} MiB, {len(findings)} finding(s)")
    for f in findings:
        print(f"  {f.target} {f.kind}: {f.summary}\n    {f.repro}")
    if args.stats is not None:
        args.stats.write_text(json.dumps([
            {k: v for k, v in vars(s).items() if k != "findings"} | {"findings": [
                {"kind": f.kind, "summary": f.summary, "path": str(f.path)} for f in s.findings]}
            for s in results], indent=1))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
