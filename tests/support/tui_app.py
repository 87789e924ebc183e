"""Run the terminal UI headless on a sample capture and read what it shows."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from inspector.keylog import KeyLog

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"


def sample(name: str) -> tuple[str, str | None]:
    keys = SAMPLES / f"{name}.keys"
    return str(SAMPLES / f"{name}.pcap"), (str(keys) if keys.exists() else None)


def sample_app(name: str, ansi: bool = False):
    """A NetinspectApp on captures/samples/NAME.pcap (with its key log when there is one)."""
    from tui.app import NetinspectApp
    from tui.sources import FileSource

    pcap, keys = sample(name)
    return NetinspectApp(FileSource(pcap, KeyLog.from_file(keys) if keys else KeyLog()), ansi=ansi)


async def wait_loaded(app, pilot, timeout: float = 30.0) -> None:
    """Until the source has read everything and the UI has taken the last update."""
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, app.source.finished.wait, timeout), "loading did not finish"
    for _ in range(200):
        await pilot.pause()
        if app.done:
            break
    await pilot.pause()


async def wait_until(pilot, predicate, timeout: float = 20.0, step: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await pilot.pause(step)
    raise AssertionError("condition not met in time")


def screen_text(app) -> str:
    """The characters on screen, as a user reads them (no colours)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def async_test(fn):
    """Run an ``async def`` test in its own event loop (no pytest asyncio plugin needed)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
