"""SVG snapshots of the main screens at 120x36 (pytest-textual-snapshot's SVG format, kept in
tests/snapshots/).  Update after a deliberate change with ``--snapshot-update`` and look at
the new SVGs before committing them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from tests.support.tui_app import async_test, sample_app, wait_loaded, wait_until

SIZE = (120, 36)


class TuiSnapshots(SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(Path(test_location.filepath).parent / "snapshots" / test_location.basename)


@pytest.fixture
def snap(snapshot):
    return snapshot.use_extension(TuiSnapshots)


async def _shot(name: str, keys: list[str] = (), ansi: bool = False, then=None) -> str:
    app = sample_app(name, ansi=ansi)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.1)
        if then is not None:
            await then(app, pilot)
        await pilot.pause(0.3)
        return app.export_screenshot()


@async_test
async def _connections():
    return await _shot("http1-keepalive", ["down", "down", "down"])


def test_connection_list(snap):
    assert snap == _connections()


def test_connection_view_with_hol_and_loss(snap):
    async def select_loss(app, pilot):
        screen = app.screen
        i = next(i for i, a in enumerate(screen.annotations.items) if a.text.startswith("lost_segment"))
        screen.annotations.move_cursor(i)
        screen.annotations.focus()
        await pilot.press("enter")

    svg = async_test(_shot)("http2-lossy", ["enter"], then=select_loss)
    assert snap == svg


def test_sequence_diagram(snap):
    assert snap == async_test(_shot)("tls12-vs-tls13", ["enter", "d"])


def test_filtered_http3_events(snap):
    async def filtered(app, pilot):
        for ch in "/http3.type == HEADERS":
            await pilot.press({"/": "slash", " ": "space", "=": "equals_sign"}.get(ch, ch))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.filter is not None)

    assert snap == async_test(_shot)("http3-lossy", ["enter"], then=filtered)


def test_help(snap):
    assert snap == async_test(_shot)("websocket", ["question_mark"])


def test_sixteen_colours(snap):
    assert snap == async_test(_shot)("http2-lossy", ansi=True)
