"""`netinspect view` on a big capture, measured: first screen, answers to keys while loading,
full load, peak memory.

    python benchmarks/view.py benchmarks/out/tls-1m.pcap [--keylog K] [--probe-keys] [--first-screen-only]

Runs the terminal UI headless (Textual's headless driver: everything is composed and
rendered, nothing is written to a terminal) at 120x36 and prints one JSON object:

- ``first_screen_s``: from the start of this process (the kernel's start time, so the
  interpreter's own start-up counts) to the first refresh that painted a non-empty
  connection list, and ``first_screen_cpu_s``, the process's CPU time at that moment;
- ``keys``: with ``--probe-keys``, while the capture loads, a key every 0.3 s: ``down``/``up``
  on the connection list (answered when the cursor moved and the screen refreshed),
  ``enter`` (the connection view mounted and refreshed) and ``escape`` (back); each
  answer's latency in seconds;
- ``after``: with ``--probe-after N``, once the capture is loaded, N rounds of Enter (the
  connection view painted) and Esc (the list painted again) on the biggest connection, and
  ``first_timeline_complete_s`` (the first Enter until the timeline took every event),
  ``timeline_marks`` (marks the timeline keeps) and ``rss_added_by_first_enter_mb``;
- ``load_s``: process start to the capture fully decoded and shown; ``peak_rss_mb``
  (the process's ``VmHWM``: ``ru_maxrss`` would carry over the peak of the process that started this
  one, since Linux keeps it across ``execve``), ``frames``, ``connections``, ``events``.

``benchmarks/run.py`` runs it as the ``view-1m`` benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path


def _since_start() -> float:
    """Seconds since this process was started (from /proc: the interpreter's start-up counts)."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


T0 = time.monotonic() - _since_start()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clock() -> float:
    return time.monotonic() - T0


async def measure(path: str, keylog: str | None, probe: bool, first_only: bool, after: int = 0) -> dict:
    from textual import events

    from inspector.keylog import KeyLog
    from tui.app import NetinspectApp
    from tui.sources import FileSource

    app = NetinspectApp(FileSource(path, KeyLog.from_file(keylog) if keylog else KeyLog()))
    out: dict = {"capture": os.path.basename(path), "keylog": bool(keylog)}
    painted = asyncio.Event()

    async def until(predicate, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError
            await asyncio.sleep(0.002)

    async def refreshed(screen) -> None:
        done = asyncio.Event()
        screen.call_after_refresh(done.set)
        await done.wait()

    async with app.run_test(size=(120, 36)):
        await until(lambda: getattr(app.screen, "ready", False))
        screen = app.screen
        await until(lambda: screen.list.count > 0, 60)
        screen.call_after_refresh(painted.set)
        await painted.wait()
        out["first_screen_s"] = round(clock(), 3)
        out["first_screen_cpu_s"] = round(time.process_time(), 3)
        out["first_screen_frames"] = app.model.frames
        if first_only:
            app.exit(0)
            return out
        keys: dict[str, list[float]] = {"down": [], "up": [], "enter": [], "escape": []}
        step = 0
        while probe and not app.done:
            await asyncio.sleep(0.3)
            if app.done:
                break
            lst = app.screen.list if hasattr(app.screen, "list") else None
            name = ("down", "up", "enter", "escape")[step % 4]
            step += 1
            t = time.monotonic()
            if name in ("down", "up"):
                before = lst.cursor
                app.post_message(events.Key(name, None))
                await until(lambda: lst.cursor != before or lst.count < 2)
                await refreshed(app.screen)
            elif name == "enter":
                app.post_message(events.Key("enter", "\r"))
                await until(lambda: type(app.screen).__name__ == "ConnectionScreen" and getattr(app.screen, "ready", False))
                await refreshed(app.screen)
            else:
                app.post_message(events.Key("escape", None))
                await until(lambda: type(app.screen).__name__ == "ConnectionsScreen")
                await refreshed(app.screen)
            keys[name].append(time.monotonic() - t)
        await until(lambda: app.done, 3600)
        out["load_s"] = round(clock(), 2)
        if after:
            out["after"] = await _probe_after(app, after, until, refreshed)
        if probe:
            every = [x for v in keys.values() for x in v]
            out["keys"] = {k: {"n": len(v), "max_ms": round(max(v) * 1000, 1) if v else None,
                               "median_ms": round(sorted(v)[len(v) // 2] * 1000, 1) if v else None}
                           for k, v in keys.items()}
            out["keys_max_ms"] = round(max(every) * 1000, 1) if every else None
        out["frames"] = app.model.frames
        out["connections"] = len(app.model.rows)
        out["events"] = sum(len(e) for e in app.model.events)
        app.exit(0)
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM is per address space; ru_maxrss survives execve from a big parent)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


async def _probe_after(app, rounds: int, until, refreshed) -> dict:
    """Enter and Esc on the biggest connection of a loaded capture, ``rounds`` times."""
    from textual import events

    while type(app.screen).__name__ != "ConnectionsScreen":
        app.pop_screen()
    await refreshed(app.screen)
    lst = app.screen.list
    biggest = max(range(len(app.model.events)), key=lambda c: len(app.model.events[c]))
    for r in range(lst.count):
        lst.move_cursor(r)
        if lst.selected_id() == biggest:
            break
    await refreshed(app.screen)
    enter: list[float] = []
    esc: list[float] = []
    rss0 = _rss_mb()
    rss1 = rss0
    for k in range(rounds):
        t = time.monotonic()
        app.post_message(events.Key("enter", "\r"))
        await until(lambda: type(app.screen).__name__ == "ConnectionScreen" and getattr(app.screen, "ready", False))
        await refreshed(app.screen)
        enter.append(time.monotonic() - t)
        if k == 0:
            screen = app.screen
            log = app.model.events_of(screen.cid)
            await until(lambda: not screen.timeline_model.behind(log), 600)
            await refreshed(screen)
            timeline_s = time.monotonic() - t
            rss1 = _rss_mb()
            marks = sum(len(lane.marks) for lane in screen.timeline_model.lanes.values())
        await asyncio.sleep(0.3)
        t = time.monotonic()
        app.post_message(events.Key("escape", None))
        await until(lambda: type(app.screen).__name__ == "ConnectionsScreen")
        await refreshed(app.screen)
        esc.append(time.monotonic() - t)
        await asyncio.sleep(0.3)

    def stat(v: list[float]) -> dict:
        return {"n": len(v), "median_ms": round(sorted(v)[len(v) // 2] * 1000, 1), "max_ms": round(max(v) * 1000, 1)}

    return {"events": len(app.model.events[biggest]), "enter": stat(enter), "escape": stat(esc),
            "first_timeline_complete_s": round(timeline_s, 2), "timeline_marks": marks,
            "rss_added_by_first_enter_mb": round(rss1 - rss0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--keylog")
    ap.add_argument("--probe-keys", action="store_true", help="press keys while loading and time the answers")
    ap.add_argument("--first-screen-only", action="store_true", help="stop once the first screen is painted")
    ap.add_argument("--probe-after", type=int, default=0, metavar="N",
                    help="once loaded, time N rounds of Enter/Esc on the biggest connection")
    args = ap.parse_args()
    out = asyncio.run(measure(args.capture, args.keylog, args.probe_keys, args.first_screen_only, args.probe_after))
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
