"""Where netinspect's time goes on a benchmark capture.

    python benchmarks/hotspots.py summary              # cProfile, top functions by own time
    python benchmarks/hotspots.py summary-h2 --py-spy  # sampling profile (pip install py-spy)

Runs the netinspect side of one run.py benchmark under a profiler and prints
the functions that cost the most time of their own (not counting callees),
and by time including callees. cProfile adds overhead per Python call, so it
inflates small, often-called functions; py-spy samples a normal-speed run and
also writes a flame graph (``benchmarks/out/NAME.svg``).

Both profile the Python sources (``NETINSPECT_PURE=1``): neither profiler sees inside the compiled
modules of an install (setup.py). For the compiled build, count instructions per C function instead:
``valgrind --tool=callgrind python -m inspector.cli summary ...`` and ``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_captures  # noqa: E402
import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", choices=[b.name for b in run.BENCHES])
    ap.add_argument("--py-spy", action="store_true", help="sample with py-spy instead of cProfile")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    os.environ["NETINSPECT_PURE"] = "1"  # (see the docstring) inherited by the profiled runs
    bench = next(b for b in run.BENCHES if b.name == args.bench)
    spec = make_captures.SPECS[bench.capture]
    make_captures.ensure(spec, log=lambda m: print(m, file=sys.stderr))
    ni_args = bench.netinspect(spec.pcap, spec.keylog)
    # In-process entry point, so both profilers see Python frames of netinspect itself.
    entry = [sys.executable, "-c", "import sys; from inspector.cli import main; sys.exit(main())", *ni_args]
    if args.py_spy:
        return _py_spy(entry, args.bench, args.top)
    prof = make_captures.OUT / f"{args.bench}.prof"
    driver = (f"import cProfile, sys; sys.argv = ['netinspect'] + {ni_args!r}; "
              f"from inspector.cli import main; cProfile.run('main()', {str(prof)!r})")
    cmd = [sys.executable, "-c", driver]
    subprocess.run(cmd, cwd=run.REPO, stdout=subprocess.DEVNULL, check=False)
    st = pstats.Stats(str(prof))
    st.sort_stats("tottime").print_stats(args.top)
    st.sort_stats("cumulative").print_stats(args.top)
    return 0


def _py_spy(entry: list[str], name: str, top: int) -> int:
    spy = shutil.which("py-spy")
    if not spy:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    raw = make_captures.OUT / f"{name}.folded"
    svg = make_captures.OUT / f"{name}.svg"
    base = [spy, "record", "--rate", "250", "--nonblocking", "--function"]
    subprocess.run([*base, "--format", "raw", "-o", str(raw), "--", *entry],
                   cwd=run.REPO, stdout=subprocess.DEVNULL, check=False)
    subprocess.run([*base, "-o", str(svg), "--", *entry], cwd=run.REPO, stdout=subprocess.DEVNULL, check=False)
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        count = int(n)
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"{total} samples; flame graph: {svg}")
    print(f"\n{'own %':>6}  function (file:line)")
    for f, n in own.most_common(top):
        print(f"{100 * n / total:6.1f}  {f}")
    print(f"\n{'incl %':>6}  function (file:line)")
    for f, n in incl.most_common(top):
        print(f"{100 * n / total:6.1f}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
