"""The fuzz loop: seeds, mutation, execution under a watchdog, findings.

Per target: every seed runs once, then mutants of corpus entries run until
the target's share of the budget (or ``max_execs``) is spent.  A mutant that
produces an event/malformed signature no earlier input produced joins the
corpus (a cheap stand-in for coverage feedback, bounded in size).

A finding is any exception the target's interface does not document (see
:mod:`.targets`), an input that takes more than :data:`SLOW` seconds of CPU
(confirmed by a second run) or :data:`HANG` seconds of wall time, or one
whose traced peak memory exceeds the target's documented bound (every
:data:`TRACE_EVERY`-th execution runs under ``tracemalloc``).  Each finding
is saved under the findings directory with a one-line repro command.
"""

from __future__ import annotations

import hashlib
import random
import resource
import signal
import sys
import time
import tracemalloc
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import records as R
from .seeds import extract
from .targets import TARGETS, Outcome, Swallowed, Target, _norm

SLOW = 1.0  #: CPU seconds one input may take
HANG = 10.0  #: wall seconds before the watchdog interrupts an input
TRACE_EVERY = 32  #: executions between two traced (memory-measured) ones
MAX_CORPUS = 1500
MAX_INPUT = 1 << 20


class Hang(Exception):
    pass


@dataclass
class Finding:
    target: str
    kind: str  #: crash, slow, hang, memory
    summary: str
    detail: str
    path: Path | None = None
    key: str = ""  #: findings with the same key are one bug (exception type and where it was raised)

    @property
    def repro(self) -> str:
        return f"python -m tests.fuzz --target {self.target} --repro {self.path}"


@dataclass
class Stats:
    target: str
    execs: int = 0
    seconds: float = 0.0
    seeds: int = 0
    corpus: int = 0
    events: int = 0
    layer_events: int = 0
    malformed: int = 0
    signatures: int = 0
    traced: int = 0
    peak_traced: int = 0  #: highest traced peak of one input, bytes
    slowest: float = 0.0  #: CPU seconds of the slowest input
    mutator_errors: int = 0  #: bugs of the harness itself (must stay 0)
    findings: list[Finding] = field(default_factory=list)

    def line(self) -> str:
        rate = self.execs / self.seconds if self.seconds else 0.0
        return (f"{self.target:9} {self.execs:8} execs {self.seconds:7.1f} s {rate:7.0f}/s  corpus {self.corpus:4} "
                f"(seeds {self.seeds:3})  signatures {self.signatures:4}  events {self.events:9}  "
                f"decoder events {self.layer_events:9}  malformed {self.malformed:7}  "
                f"peak {self.peak_traced / 2**20:6.1f} MiB  slowest {self.slowest * 1000:6.0f} ms  "
                f"findings {len(self.findings)}")


def _alarm(_sig: int, _frame: object) -> None:
    raise Hang(f"input still running after {HANG} s")


def _where(exc: BaseException) -> str:
    """The innermost frame of our own code in a traceback (to tell findings apart)."""
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if "/inspector/" in f.filename] or tb[-1:]
    if not ours:
        return "?"
    f = ours[-1]
    return f"{f.filename.split('/inspector/')[-1]}:{f.lineno}"


def execute(target: Target, recs: list[R.Record], trace: bool = False) -> tuple[Outcome | None, Finding | None, float, int]:
    """Run one input: (outcome, finding, CPU seconds, traced peak bytes)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG)
    if trace:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    t0 = time.process_time()
    outcome = finding = None
    peak = 0
    try:
        outcome = target.run(recs)
    except Hang as e:
        finding = Finding(target.name, "hang", f"hang: {e}", traceback.format_exc())
    except RecursionError as e:
        finding = Finding(target.name, "crash", f"RecursionError at {_where(e)}", traceback.format_exc(),
                          key=f"RecursionError@{_where(e)}")
    except Exception as e:  # noqa: BLE001 - anything undocumented is what we look for
        text = str(e).splitlines()[0] if str(e) else ""
        where = _where(e.__cause__ or e)
        finding = Finding(target.name, "crash", f"{type(e).__name__} at {where}: {text[:160]}", traceback.format_exc(),
                          key=f"{type(e).__name__}@{where}" if e.__cause__ is not None or not isinstance(e, Swallowed)
                          else f"Swallowed:{_norm(text)[:70]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        cpu = time.process_time() - t0
        if trace:
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
    return outcome, finding, cpu, peak


def _save(finding: Finding, recs: list[R.Record], findings_dir: Path) -> None:
    blob = R.dump(recs)
    digest = hashlib.sha1(blob).hexdigest()[:12]
    findings_dir.mkdir(parents=True, exist_ok=True)
    finding.path = findings_dir / f"{finding.target}-{finding.kind}-{digest}.nifz"
    finding.path.write_bytes(blob)
    finding.path.with_suffix(".txt").write_text(f"{finding.summary}\n\n{finding.detail}")


def fuzz(name: str, seed: int = 0, budget: float | None = None, max_execs: int | None = None,
         findings_dir: Path = Path("fuzz-findings"), log=print) -> Stats:
    """Fuzz one target for ``budget`` seconds or ``max_execs`` executions (whichever ends first)."""
    target = TARGETS[name]
    seeds = extract().get(name, [])
    stats = Stats(name, seeds=len(seeds))
    rng = random.Random(f"{name}:{seed}")
    target.prepare(seeds)
    corpus: list[list[R.Record]] = [list(s) for s in seeds]
    seen_sigs: set[str] = set()
    seen_findings: set[str] = set()
    start = time.monotonic()
    deadline = start + budget if budget is not None else None

    def one(recs: list[R.Record]) -> bool:
        trace = stats.execs % TRACE_EVERY == TRACE_EVERY - 1
        outcome, finding, cpu, peak = execute(target, recs, trace)
        stats.execs += 1
        if trace:
            stats.traced += 1
            stats.peak_traced = max(stats.peak_traced, peak)
            if finding is None and peak > target.memory_bound:
                finding = Finding(name, "memory", f"traced peak {peak / 2**20:.1f} MiB above the bound "
                                  f"{target.memory_bound / 2**20:.0f} MiB ({target.bound_note})", "")
        if finding is None and cpu > SLOW:
            again = execute(target, recs)[2]  # a loaded machine can stall one run: confirm
            if again > SLOW:
                finding = Finding(name, "slow", f"{min(cpu, again):.2f} s of CPU for one input (limit {SLOW} s)", "")
        stats.slowest = max(stats.slowest, cpu)
        if finding is not None:
            key = finding.key or finding.kind
            if key not in seen_findings:
                seen_findings.add(key)
                _save(finding, recs, findings_dir)
                stats.findings.append(finding)
                log(f"FINDING {name} {finding.kind}: {finding.summary}\n  repro: {finding.repro}")
            return False
        assert outcome is not None
        stats.events += outcome.events
        stats.layer_events += outcome.layer_events
        stats.malformed += outcome.malformed
        new = outcome.signatures - seen_sigs
        seen_sigs.update(new)
        return bool(new)

    for s in seeds:
        one(s)
    while True:
        if max_execs is not None and stats.execs >= max_execs:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        parent = rng.choice(corpus)
        donor = rng.choice(corpus)
        child = parent
        try:
            for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
                child = target.mutate(rng, child, donor)
        except Exception as e:  # noqa: BLE001 - a harness bug must not end a long run; it is reported
            stats.mutator_errors += 1
            if stats.mutator_errors == 1:
                log(f"mutator error ({name}): {type(e).__name__}: {e}")
            continue
        if sum(len(d) for _, d in child) > MAX_INPUT:
            continue
        if one(child):
            if len(corpus) < MAX_CORPUS:
                corpus.append(child)
            else:
                corpus[rng.randrange(len(seeds), MAX_CORPUS)] = child
    stats.seconds = time.monotonic() - start
    stats.corpus = len(corpus)
    stats.signatures = len(seen_sigs)
    return stats


def repro(name: str, path: Path) -> int:
    """Run one saved input; print the outcome or the full traceback."""
    recs = R.load(path.read_bytes())
    target = TARGETS[name]
    target.prepare(extract().get(name, []) if name == "quic" else [])
    outcome, finding, cpu, peak = execute(target, recs, trace=True)
    if finding is not None:
        print(finding.detail or finding.summary, file=sys.stderr)
        print(f"{finding.kind}: {finding.summary}", file=sys.stderr)
        return 1
    if cpu > SLOW:
        print(f"slow: {cpu:.2f} s of CPU", file=sys.stderr)
        return 1
    if peak > target.memory_bound:
        print(f"memory: traced peak {peak / 2**20:.1f} MiB above {target.memory_bound / 2**20:.0f} MiB", file=sys.stderr)
        return 1
    assert outcome is not None
    print(f"ok: {outcome.events} events ({outcome.layer_events} of {name}), {outcome.malformed} malformed, "
          f"{cpu * 1000:.0f} ms CPU, traced peak {peak / 2**20:.1f} MiB")
    return 0


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def minimize(name: str, path: Path, out: Path) -> int:
    """Shrink a saved finding while it still fails the same way (drop records, then byte ranges)."""
    target = TARGETS[name]
    target.prepare(extract().get(name, []) if name == "quic" else [])
    recs = R.load(path.read_bytes())
    first = execute(target, recs)[1]
    if first is None:
        print("the input does not fail", file=sys.stderr)
        return 1

    def fails(candidate: list[R.Record]) -> bool:
        f = execute(target, candidate)[1]
        return f is not None and f.key == first.key

    i = 0
    while i < len(recs):  # whole records
        cand = recs[:i] + recs[i + 1 :]
        if fails(cand):
            recs = cand
        else:
            i += 1
    for i in range(len(recs)):  # halving byte ranges inside each record
        kind, data = recs[i]
        step = len(data) // 2
        while step >= 1:
            pos = 0
            while pos < len(data):
                cand_data = data[:pos] + data[pos + step :]
                if fails(recs[:i] + [(kind, cand_data)] + recs[i + 1 :]):
                    data = cand_data
                else:
                    pos += step
            step //= 2
        recs[i] = (kind, data)
    out.write_bytes(R.dump(recs))
    print(f"{len(path.read_bytes())} -> {len(R.dump(recs))} bytes: {out}")
    return 0
