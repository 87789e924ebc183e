"""netinspect next to tshark: wall time and peak memory doing the same work on the same capture.

    python benchmarks/run.py            # all benchmarks, best of 2 runs each
    python benchmarks/run.py --quick    # the two target benchmarks, one run each (under a minute)
    python benchmarks/run.py --json     # machine-readable results
    python benchmarks/run.py --only summary-h2

Missing captures are built first (``make_captures.py``: nginx, h2load and curl
on loopback, recorded by tcpdump). Every measured command runs as the only child
of a fresh Python process that reports ``getrusage(RUSAGE_CHILDREN)``: the peak
resident set size of that one command (``ru_maxrss``) and its CPU time, next to
the wall time around it. Both tools write to the same sink (a temporary file
for small outputs, ``/dev/null`` for export-sized ones) and their runs are
interleaved, so a neighbour's load hits both alike. Of the repeated runs, the
lowest wall time and the lowest peak RSS are reported.

netinspect is run as the ``netinspect`` console command installed for the Python
that runs this script (``pip install -e .``), else as ``python -m inspector`` from
this checkout; ``--netinspect "CMD"`` overrides.  The interpreter matters: run this
script with another Python's venv to measure netinspect on that Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import make_captures  # noqa: E402  (sibling script)

TSHARK = shutil.which("tshark") or "tshark"

# Runs one command, then prints what the kernel says it used. A fresh
# interpreter per measurement, because RUSAGE_CHILDREN's ru_maxrss is the
# maximum over every child ever waited for.
_MEASURE = r"""
import json, os, resource, subprocess, sys, time
argv, out, errpath = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "wb") as sink, open(errpath, "wb") as err:
    t0 = time.perf_counter()
    rc = subprocess.call(argv, stdout=sink, stderr=err, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}))
"""


@dataclass
class Run:
    rc: int
    wall: float
    cpu: float
    maxrss_kb: int
    output: Path  # stdout of the command (or /dev/null)
    stderr: str
    check: str = ""  # for netinspect: did this run do the same work as tshark


def measure(argv: list[str], output: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` once with stdout to ``output``; its wall time, CPU time and peak RSS."""
    fd, errname = tempfile.mkstemp(suffix=".err")
    os.close(fd)
    err = Path(errname)
    p = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(argv), str(output), str(err)],
        capture_output=True, text=True, env=env, check=True, cwd=REPO,
    )
    r = json.loads(p.stdout)
    stderr = err.read_text(errors="replace") if err.exists() else ""
    err.unlink(missing_ok=True)
    return Run(r["rc"], r["wall"], r["cpu"], r["maxrss_kb"], output, stderr)


# ---------------------------------------------------------------------- the tools


PYCACHE = make_captures.OUT / "pycache"


def python_env() -> dict[str, str]:
    """Environment for the Python commands measured: compiled bytecode cached and reused.

    A pip install compiles .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE
    (as some shells and CI set) would recompile every module on every run, which
    costs netinspect ~0.2 s of CPU per run that no installed copy pays. The cache
    lives under benchmarks/out, outside the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_up(ni: list[str] | None) -> None:
    """Fill the bytecode cache before anything is timed."""
    env = python_env()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "inspector")], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    subprocess.run([sys.executable, "-c", "import inspector.cli, inspector.pipeline, inspector.decoders.registry"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    if ni:
        subprocess.run([*ni, "--version"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)


def netinspect_cmd(override: str | None) -> list[str] | None:
    """How to start netinspect here, or None if this checkout cannot run it yet.

    The console script installed for the Python running this script comes first: the
    ``netinspect`` on PATH may be another interpreter's, or a wrapper such as pyenv's shim
    (a shell script that runs ``pyenv exec``: 45-75 ms per start here, none of it netinspect's).
    """
    if override:
        return shlex.split(override)
    own = Path(sysconfig.get_path("scripts")) / "netinspect"
    if own.is_file() and os.access(own, os.X_OK):
        return [str(own)]
    exe = shutil.which("netinspect")
    if exe:
        return [exe]
    if (REPO / "inspector" / "__main__.py").exists():
        return [sys.executable, "-m", "inspector"]
    if (REPO / "inspector" / "cli.py").exists():
        return [sys.executable, "-c", "import sys; from inspector.cli import main; sys.exit(main())"]
    return None


def tshark_version() -> str:
    return make_captures._version([TSHARK, "--version"])


# -------------------------------------------------------- checks: same work done


def _tshark_conversations(text: str) -> tuple[int, int]:
    """(conversations, total frames) from ``-z conv,tcp`` output."""
    rows = re.findall(r"^\S+:\d+\s+<->\s+\S+:\d+\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(\d+)", text, re.M)
    return len(rows), sum(int(r[2]) for r in rows)


def check_summary(ni: Path, ts: Path, meta: dict) -> str:
    """Both tools saw the same TCP connections and every packet."""
    conns, frames = _tshark_conversations(ts.read_text(errors="replace"))
    try:
        doc = json.loads(ni.read_text())
        tcp = [c for c in doc["connections"] if c.get("transport") == "tcp"]
        ni_conns, ni_pkts = len(tcp), sum(c["packets"] for c in tcp)
    except (ValueError, KeyError, TypeError) as e:
        return f"netinspect output unreadable: {e!r}"
    verdict = "same" if (ni_conns, ni_pkts) == (conns, frames) == (meta["connections"], meta["packets"]) else "DIFFER"
    return f"{verdict}: tshark {conns} conns/{frames:,} pkts, netinspect {ni_conns} conns/{ni_pkts:,} pkts"


def check_udp_summary(ni: Path, ts: Path, meta: dict) -> str:
    """Both tools saw the same UDP flows and every packet."""
    flows, frames = _tshark_conversations(ts.read_text(errors="replace"))
    try:
        udp = [c for c in json.loads(ni.read_text())["connections"] if c.get("transport") == "udp"]
    except (ValueError, KeyError, TypeError) as e:
        return f"netinspect output unreadable: {e!r}"
    ni_flows, ni_pkts = len(udp), sum(c["packets"] for c in udp)
    verdict = "same" if (ni_flows, ni_pkts) == (flows, frames) == (meta["flows"], meta["packets"]) else "DIFFER"
    return f"{verdict}: tshark {flows} flows/{frames:,} pkts, netinspect {ni_flows} flows/{ni_pkts:,} pkts"


def check_view(ni: Path, ts: Path, meta: dict) -> str:
    """The UI loaded every frame; its first screen and load times (from view.py's JSON)."""
    try:
        r = json.loads(ni.read_text())
    except ValueError as e:
        return f"view.py output unreadable: {e!r}"
    verdict = "same" if r.get("frames") == meta["packets"] else "DIFFER"
    return (f"{verdict}: {r.get('frames', 0):,} frames loaded; first screen {r['first_screen_s']} s "
            f"(CPU {r['first_screen_cpu_s']} s), fully loaded {r['load_s']} s, {r['events']:,} events")


def check_h2(ni: Path, ts: Path, meta: dict) -> str:
    """Both tools decrypted and decoded every request's headers."""
    ts_requests = sum(line.split("\t")[1].split(",").count(":method")
                      for line in ts.read_text(errors="replace").splitlines() if "\t" in line)
    try:
        doc = json.loads(ni.read_text())
        ni_requests = sum(len(c.get("requests") or []) for c in doc["connections"])
    except (ValueError, KeyError, TypeError) as e:
        return f"netinspect output unreadable: {e!r}"
    want = meta.get("requests_succeeded")
    verdict = "same" if ni_requests == ts_requests == want else "DIFFER"
    return f"{verdict}: tshark {ts_requests:,} requests, netinspect {ni_requests:,} requests"


# ------------------------------------------------------------------ benchmarks


@dataclass
class Bench:
    name: str
    capture: str
    what: str
    netinspect: Callable[[Path, Path], list[str]]  # (pcap, keylog) -> args after the command
    tshark: Callable[[Path, Path], list[str]]
    target: float | None  # netinspect/tshark ratio to meet, for time and memory
    check: Callable[[Path, Path, dict], str] | None = None
    quick: bool = True
    to_devnull: bool = False  # output too big to keep
    floor: bool = False  # also time floor.py: the least per-packet work in pure Python
    max_repeat: int = 99  # for benchmarks whose tshark side takes a minute and GBs
    command: Callable[[Path, Path], list[str]] | None = None  # the whole netinspect command, if not a verb


TCP_FIELDS = ["frame.number", "frame.time_epoch", "tcp.stream", "tcp.flags.str", "tcp.seq", "tcp.ack",
              "tcp.len", "tcp.window_size", "tcp.analysis.flags"]
H2_FIELDS = ["http2.type", "http2.header.name", "http2.header.value"]


def _fields(names: list[str]) -> list[str]:
    return [a for n in names for a in ("-e", n)]


BENCHES: list[Bench] = [
    Bench("summary", "tls-bulk",
          "connection summary (issue 2): netinspect summary --json vs tshark -z conv,tcp",
          lambda p, k: ["summary", str(p), "--json"],
          lambda p, k: [TSHARK, "-n", "-q", "-r", str(p), "-z", "conv,tcp"],
          target=0.5, check=check_summary, floor=True),
    Bench("summary-h2", "h2-30k",
          "decrypt + HTTP/2 headers (issue 4): summary --keylog --json vs tshark -T fields http2.*",
          lambda p, k: ["summary", str(p), "--keylog", str(k), "--json"],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-o", f"tls.keylog_file:{k}", "-T", "fields",
                        *_fields(H2_FIELDS)],
          target=1 / 3, check=check_h2),
    Bench("summary-1m", "tls-1m",
          "scale (issue 10): summary --json on 1M packets vs tshark -z conv,tcp",
          lambda p, k: ["summary", str(p), "--json"],
          lambda p, k: [TSHARK, "-n", "-q", "-r", str(p), "-z", "conv,tcp"],
          target=0.5, check=check_summary, quick=False, floor=True),
    Bench("summary-scan-1m", "scan-1m",
          "scale (issue 10): summary --json on 1M tiny connections (refused SYNs) vs tshark -z conv,tcp",
          lambda p, k: ["summary", str(p), "--json"],
          lambda p, k: [TSHARK, "-n", "-q", "-r", str(p), "-z", "conv,tcp"],
          target=None, check=check_summary, quick=False, max_repeat=1),
    Bench("summary-dns-1m", "dns-1m",
          "scale (issue 10): summary --json on 1M DNS flows vs tshark -z conv,udp",
          lambda p, k: ["summary", str(p), "--json"],
          lambda p, k: [TSHARK, "-n", "-q", "-r", str(p), "-z", "conv,udp"],
          target=None, check=check_udp_summary, quick=False, max_repeat=1),
    Bench("export", "tls-bulk",
          "export (JSON Lines, every TCP segment) vs tshark -T fields of the same TCP fields",
          lambda p, k: ["export", str(p)],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-T", "fields", *_fields(TCP_FIELDS)],
          target=None, quick=False, to_devnull=True),
    Bench("export-1m", "tls-1m",
          "scale (issue 10): export (JSON Lines, every TCP segment) vs tshark -T fields of the same TCP fields",
          lambda p, k: ["export", str(p)],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-T", "fields", *_fields(TCP_FIELDS)],
          target=None, quick=False, to_devnull=True),
    Bench("export-keylog", "tls-bulk",
          "export --keylog (TCP + TLS + HTTP/2 events) vs tshark -T fields of TCP and http2 fields",
          lambda p, k: ["export", str(p), "--keylog", str(k)],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-o", f"tls.keylog_file:{k}", "-T", "fields",
                        *_fields(TCP_FIELDS + H2_FIELDS)],
          target=None, quick=False, to_devnull=True, max_repeat=1),
    Bench("export-1m-keylog", "tls-1m",
          "scale (issue 10): export --keylog (TCP + TLS + HTTP/2 events) vs tshark -T fields of TCP and http2 fields",
          lambda p, k: ["export", str(p), "--keylog", str(k)],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-o", f"tls.keylog_file:{k}", "-T", "fields",
                        *_fields(TCP_FIELDS + H2_FIELDS)],
          target=None, quick=False, to_devnull=True, max_repeat=1),
    Bench("view-1m", "tls-1m",
          "scale (issues 8, 10): the UI (view.py, headless) until the first screen and fully loaded, vs tshark "
          "reading the same TCP fields of every frame",
          lambda p, k: [],
          lambda p, k: [TSHARK, "-n", "-r", str(p), "-T", "fields", *_fields(TCP_FIELDS)],
          target=None, quick=False, check=check_view, max_repeat=1,
          command=lambda p, k: [sys.executable, str(HERE / "view.py"), str(p)]),
]


@dataclass
class Result:
    bench: Bench
    meta: dict
    runs: dict[str, list[Run]] = field(default_factory=dict)
    check: str = ""
    error: str = ""

    def best(self, tool: str) -> dict | None:
        # A run counts only if it succeeded and, where there is a check, passed it:
        # a fast run that skipped work must not become the "best".
        ok = [r for r in self.runs.get(tool, []) if r.rc == 0 and (not r.check or r.check.startswith("same"))]
        if not ok:
            return None
        return {"wall_s": round(min(r.wall for r in ok), 3), "cpu_s": round(min(r.cpu for r in ok), 3),
                "peak_rss_mb": round(min(r.maxrss_kb for r in ok) / 1024, 1), "runs": len(ok)}

    def ratio(self) -> dict | None:
        a, b = self.best("netinspect"), self.best("tshark")
        if not a or not b:
            return None
        return {"wall": round(a["wall_s"] / b["wall_s"], 3), "cpu": round(a["cpu_s"] / b["cpu_s"], 3),
                "peak_rss": round(a["peak_rss_mb"] / b["peak_rss_mb"], 3)}

    def paired(self) -> dict | None:
        """netinspect's wall time over tshark's, run by run: each pair ran back to back, so a pair sees
        one machine state, where the best of each may come from different ones (this machine switches
        between a fast and a slow mode minutes apart, both tools alike)."""
        ts, ni = self.runs.get("tshark", []), self.runs.get("netinspect", [])
        ratios = sorted(n.wall / t.wall for t, n in zip(ts, ni) if t.rc == 0 and n.rc == 0 and t.wall > 0
                        and (not n.check or n.check.startswith("same")))
        if len(ratios) < 2:
            return None
        return {"median": round(statistics.median(ratios), 3), "min": round(ratios[0], 3),
                "max": round(ratios[-1], 3), "pairs": len(ratios)}

    def verdict(self) -> str:
        r = self.ratio()
        if r is None or self.bench.target is None:
            return ""
        t = self.bench.target
        ok = r["wall"] <= t and r["peak_rss"] <= t
        return "met" if ok else "NOT met"


def run_bench(b: Bench, ni: list[str] | None, repeat: int, tmp: Path, log) -> Result:
    spec = make_captures.SPECS[b.capture]
    meta = make_captures.ensure(spec, log=log)
    res = Result(b, meta)
    tools = {"tshark": b.tshark(spec.pcap, spec.keylog)}
    if ni:
        tools["netinspect"] = b.command(spec.pcap, spec.keylog) if b.command else ni + b.netinspect(spec.pcap, spec.keylog)
    if b.floor:
        tools["py-floor"] = [sys.executable, str(HERE / "floor.py"), str(spec.pcap)]
    outs = {t: Path(os.devnull) if b.to_devnull else tmp / f"{b.name}.{t}.out" for t in tools}
    py_env = python_env()
    for i in range(min(repeat, b.max_repeat)):
        for tool, argv in tools.items():
            r = measure(argv, outs[tool], env=None if tool == "tshark" else py_env)
            res.runs.setdefault(tool, []).append(r)
            if tool == "netinspect" and b.check and not b.to_devnull and r.rc == 0 and "tshark" in res.runs:
                r.check = b.check(outs["netinspect"], outs["tshark"], meta)
                res.check = r.check if not res.check or res.check.startswith("same") else res.check
            log(f"  {b.name:16} {tool:10} run {i + 1}: {r.wall:6.2f} s wall, {r.cpu:6.2f} s cpu, "
                f"{r.maxrss_kb / 1024:7.1f} MB peak" + (f", exit {r.rc}" if r.rc else "")
                + (f", check: {r.check}" if r.check and not r.check.startswith("same") else ""))
            if r.rc != 0:
                res.error += f"{tool} exited {r.rc}: {r.stderr.strip()[-600:]}\n"
                break  # no point repeating a failing command
        if res.error:
            break
    if not ni:
        res.check = "netinspect not runnable in this checkout yet"
    return res


# ---------------------------------------------------------------------- output


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=REPO, timeout=10).stdout.strip()
    except OSError:
        rev = ""
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": rev or "unknown", "cpu": cpu, "cores": os.cpu_count(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": f"{platform.python_version()} ({sys.executable})",
            "tshark": tshark_version(), "compiled": compiled_modules()}


def compiled_modules() -> str:
    """How many of the hot-path modules (setup.py) the measured netinspect runs compiled."""
    probe = ("import importlib, inspector.native as n\n"
             "for m in list(n.status): importlib.import_module(m)\n"
             "print(f'{len(n.compiled_modules())} of {len(n.status)}')")
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", timeout=60)
    except OSError:
        return "unknown"
    return (out.stdout.strip() or "0 of ?") + " hot modules compiled"


def table(results: list[Result], info: dict, repeat: int) -> str:
    lines = [f"netinspect vs tshark — {info['date']}, commit {info['commit']}, {info['cpu']}, {info['cores']} cores, "
             f"load {info['load_avg_at_start'][0]} at start, Python {info['python']}, {info['compiled']}; "
             f"best of {repeat} run(s) each "
             f"(lowest wall time, lowest peak RSS)", ""]
    head = f"{'benchmark':17} {'capture':10} {'packets':>10}  {'tool':10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}"
    lines += [head, "-" * len(head)]
    for res in results:
        b = res.bench
        first = f"{b.name:17} {b.capture:10} {res.meta.get('packets', 0):>10,}  "
        blank = " " * len(first)
        for n, tool in enumerate(("tshark", "netinspect", "py-floor")):
            best = res.best(tool)
            if tool == "py-floor" and not best:
                continue
            pre = first if n == 0 else blank
            if best:
                lines.append(f"{pre}{tool:10} {best['wall_s']:8.2f} {best['cpu_s']:8.2f} {best['peak_rss_mb']:8.1f}")
            else:
                lines.append(f"{pre}{tool:10} {'—':>8} {'—':>8} {'—':>8}")
        r = res.ratio()
        if r:
            tgt = f"  target <= {b.target:.2f}: {res.verdict()}" if b.target else "  (no target)"
            lines.append(f"{blank}{'ratio':10} {r['wall']:8.2f} {r['cpu']:8.2f} {r['peak_rss']:8.2f}{tgt}")
        p = res.paired()
        if p:
            lines.append(f"{blank}{'paired':10} {p['median']:8.2f}  wall, median of {p['pairs']} back-to-back runs "
                         f"({p['min']:.2f}–{p['max']:.2f})")
        if res.check:
            lines.append(f"{blank}check: {res.check}")
        if res.error:
            for e in res.error.strip().splitlines()[:6]:
                lines.append(f"{blank}error: {e}")
        lines.append("")
    lines += scale_notes(results)
    return "\n".join(lines)


def scale_notes(results: list[Result]) -> list[str]:
    """netinspect's peak memory on the 430k- and the 1M-packet capture: bounded or growing."""
    by = {r.bench.name: r for r in results}
    notes = []
    for small, big in (("summary", "summary-1m"), ("export", "export-1m"), ("export-keylog", "export-1m-keylog")):
        if small in by and big in by:
            a, b = by[small], by[big]
            for tool in ("netinspect", "tshark"):
                x, y = a.best(tool), b.best(tool)
                if x and y:
                    notes.append(f"scale: {tool} {small}: {x['peak_rss_mb']:.0f} MB peak at {a.meta['packets']:,} packets, "
                                 f"{y['peak_rss_mb']:.0f} MB at {b.meta['packets']:,} "
                                 f"(x{y['peak_rss_mb'] / x['peak_rss_mb']:.2f} memory for "
                                 f"x{b.meta['packets'] / a.meta['packets']:.2f} packets)")
    return notes


def as_json(results: list[Result], info: dict, repeat: int) -> dict:
    return {
        "machine": info,
        "repeat": repeat,
        "best_of": "lowest wall time and lowest peak RSS over the runs",
        "benchmarks": [
            {"name": r.bench.name, "what": r.bench.what, "capture": r.bench.capture,
             "packets": r.meta.get("packets"), "capture_bytes": r.meta.get("file_bytes"),
             "commands": {"tshark": shlex.join(r.bench.tshark(Path("CAPTURE"), Path("KEYLOG"))),
                          "netinspect": shlex.join(["netinspect", *r.bench.netinspect(Path("CAPTURE"), Path("KEYLOG"))])},
             "tshark": r.best("tshark"), "netinspect": r.best("netinspect"), "py_floor": r.best("py-floor"),
             "ratio": r.ratio(), "paired_wall_ratio": r.paired(),
             "target": r.bench.target, "verdict": r.verdict() or None, "check": r.check or None,
             "error": r.error or None}
            for r in results
        ],
        "scale": scale_notes(results),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="netinspect vs tshark: wall time and peak memory")
    ap.add_argument("--quick", action="store_true", help="only the target benchmarks, one run each")
    ap.add_argument("--repeat", type=int, help="runs per command (default 2, or 1 with --quick)")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help=f"run only these benchmarks: {', '.join(b.name for b in BENCHES)}")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--netinspect", metavar="CMD", help="command that starts netinspect (default: autodetect)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 2)
    benches = [b for b in BENCHES if (b.quick or not args.quick) and (not args.only or b.name in args.only)]
    if args.only and len(benches) != len(args.only):
        ap.error(f"unknown benchmark in {args.only}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    ni = netinspect_cmd(args.netinspect)
    if ni is None:
        log("netinspect is not runnable in this checkout yet: measuring tshark only")
    info = machine()
    warm_up(ni)
    results = []
    with tempfile.TemporaryDirectory(prefix="nibench-run-") as d:
        for b in benches:
            results.append(run_bench(b, ni, repeat, Path(d), log))
    if args.json:
        print(json.dumps(as_json(results, info, repeat), indent=2))
    else:
        print(table(results, info, repeat))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
