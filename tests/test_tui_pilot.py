"""The terminal UI driven by Textual's pilot at 120x36: keys pressed, widgets read.

Expected values come from tshark on the same sample captures and from the
lab's provenance notes (captures/samples/*.json), not from our own output.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.support.capture import tshark_fields
from tests.support.tui_app import SAMPLES, async_test, sample, sample_app, screen_text, wait_loaded, wait_until

SIZE = (120, 36)


def _tshark(name: str, fields: list[str], display: str | None = None) -> list[list[str]]:
    pcap, keys = sample(name)
    opts = ["tcp.reassemble_out_of_order:TRUE"] + ([f"tls.keylog_file:{keys}"] if keys else [])
    return tshark_fields(pcap, fields, display_filter=display, options=opts)


def _shown_ids(lst) -> list[int]:
    return [lst.row_at(i).id for i in range(lst.count)]


async def _open_connection(app, pilot, cid: int = 0):
    from tui.screens.connection import ConnectionScreen

    lst = app.screen.list
    lst.select_id(cid)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
    await pilot.pause()
    return app.screen


async def _filter(pilot, text: str) -> None:
    await pilot.press("slash")
    for ch in text:
        await pilot.press(ch if ch != " " else "space")
    await pilot.press("enter")
    await pilot.pause(0.2)


# --------------------------------------------------------------------------- connection list


@async_test
async def test_connection_list_shows_stack_names_and_setup_cost():
    app = sample_app("tls12-vs-tls13")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        lst = app.screen.list
        assert lst.count == 2
        rows = [lst.row_at(i) for i in range(2)]
        syn_ports = [int(r[0]) for r in _tshark("tls12-vs-tls13", ["tcp.srcport"], "tcp.flags.syn == 1 && tcp.flags.ack == 0")]
        assert [int(r.client.rsplit(":", 1)[1]) for r in rows] == syn_ports
        # provenance: a TLS 1.2 full handshake (2 RTT) then TLS 1.3 (1 RTT), each after TCP's 1 RTT
        assert [r.stack for r in rows] == ["TCP › TLS 1.2 › HTTP/1.1", "TCP › TLS 1.3 › HTTP/1.1"]
        assert [r.setup for r in rows] == ["1+2", "1+1"]
        assert {r.name for r in rows} == {"lab.test"}
        text = screen_text(app)
        assert "TCP › TLS 1.2 › HTTP/1.1" in text and "Connections (2)" in text
        assert "1+2" in text


@async_test
async def test_sorting_by_keys_and_by_clicking_a_header():
    app = sample_app("http1-keepalive")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        lst = app.screen.list
        assert _shown_ids(lst) == list(range(8))
        # durations per tcp.stream according to tshark
        times: dict[int, list[float]] = defaultdict(list)
        for stream, t in _tshark("http1-keepalive", ["tcp.stream", "frame.time_epoch"]):
            times[int(stream)].append(float(t))
        duration = {s: max(v) - min(v) for s, v in times.items()}
        # click the "dur ms" header: ascending, click again: descending
        x = sum(c.width + 1 for c in lst.columns[:7]) + 1 + 2
        await pilot.click("#connections", offset=(x, 1))
        await pilot.pause()
        assert lst.sort_key == "duration_ms"
        assert _shown_ids(lst) == sorted(duration, key=duration.get)
        await pilot.click("#connections", offset=(x, 1))
        await pilot.pause()
        assert _shown_ids(lst) == sorted(duration, key=duration.get, reverse=True)
        # s cycles the sort column from the current one (duration -> bytes), r reverses
        await pilot.press("s")
        assert lst.sort_key == "bytes"
        sizes = defaultdict(int)
        for stream, n in _tshark("http1-keepalive", ["tcp.stream", "frame.len"]):
            sizes[int(stream)] += int(n)
        assert [sizes[i] for i in _shown_ids(lst)] == sorted(sizes.values())
        await pilot.press("r")
        assert [sizes[i] for i in _shown_ids(lst)] == sorted(sizes.values(), reverse=True)


@async_test
async def test_filter_connections_then_events():
    app = sample_app("http1-keepalive")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        lst = app.screen.list
        big = sorted({int(r[0]) for r in _tshark("http1-keepalive", ["tcp.stream"], 'http.request.uri == "/big.bin"')})
        await _filter(pilot, 'requests.path == "/big.bin"')
        await wait_until(pilot, lambda: lst.passing is not None)
        assert _shown_ids(lst) == big
        assert "of 8 · filter:" in str(lst.border_title)
        # a filter that does not parse: an error line, the list stays as it was
        await _filter(pilot, "tls.sni ==")
        error = app.screen.query_one("#filter-error")
        assert "expected a value" in str(error.render())
        await pilot.press("escape")
        assert _shown_ids(lst) == big
        # Esc clears the filter
        await pilot.press("escape")
        assert _shown_ids(lst) == list(range(8))
        # into the connection with the pipelined requests: filter its events
        screen = await _open_connection(app, pilot, big[-1])
        frames = [int(r[0]) for r in _tshark("http1-keepalive", ["frame.number"],
                                              f"tcp.stream == {big[-1]} && http.request")]
        await _filter(pilot, "http.type == request")
        events = screen.events
        shown = [events.event_at(i).frame for i in range(events.count)]
        # pipelined requests in one frame are one event each
        assert sorted(set(shown)) == frames
        uris = [u for r in _tshark("http1-keepalive", ["http.request.uri"], f"tcp.stream == {big[-1]} && http.request")
                for u in r[0].split(",")]
        assert len(shown) == len(uris) == 3


@async_test
async def test_detail_tree_and_hex_view_of_an_http2_headers_frame():
    app = sample_app("http2-multiplex")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        screen = await _open_connection(app, pilot, 0)
        await _filter(pilot, "http2.stream == 5 and http2.type == HEADERS")
        events = screen.events
        (length, ftype, flags, stream, names, values), = _tshark(
            "http2-multiplex", ["http2.length", "http2.type", "http2.flags", "http2.streamid", "http2.header.name",
                                "http2.header.value"], "frame.number == 12")
        assert events.count == 2 and events.current.frame == 12
        tree = "\n".join(screen.query_one("#detail").lines())
        for name, value in zip(names.split(","), values.split(",")):
            assert f"{name}: {value}" in tree
        # the hex view shows the frame as on the wire: 9-byte header, then the HPACK block
        hexv = screen.query_one("#hex")
        dumped = bytes.fromhex("".join(line[8:].split("  ")[0] + " " + line[8:].split("  ")[1]
                                       for line in hexv.lines if line[:6].isalnum()).replace(" ", ""))
        header = int(length).to_bytes(3, "big") + bytes([int(ftype), int(flags, 16)]) + int(stream).to_bytes(4, "big")
        assert dumped[:9] == header and len(dumped) == 9 + int(length)
        # Enter drills into the detail tree; Tab moves on to the hex view; Esc goes back
        await pilot.press("enter")
        assert app.focused is screen.query_one("#detail")
        await pilot.press("tab")
        assert app.focused is hexv
        await pilot.press("escape")
        from tui.screens.connections import ConnectionsScreen

        assert isinstance(app.screen, ConnectionsScreen)


@async_test
async def test_event_keys_follow_vim_and_arrows():
    app = sample_app("tcp-handshake")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        screen = await _open_connection(app, pilot, 0)
        events = screen.events
        assert app.focused is events and events.cursor == 0
        await pilot.press("j", "j", "down")
        assert events.cursor == 3
        await pilot.press("k")
        assert events.cursor == 2
        await pilot.press("G")
        assert events.cursor == events.count - 1
        await pilot.press("g")
        assert events.cursor == 0
        # the first three events are the handshake segments, as tshark numbers and flags them; the RTT
        # ledger's TCP step comes next, where the handshake completed (not after every other event)
        rows = _tshark("tcp-handshake", ["frame.number", "tcp.flags.str"])
        first = [events.event_at(i) for i in range(4)]
        assert [e.frame for e in first[:3]] == [1, 2, 3]
        assert [e.flags for e in first[:3]] == ["S", "SA", "A"]
        assert (first[3].layer, first[3].type, first[3].step) == ("analysis", "ledger", "tcp")
        assert [r[1].strip("·") for r in rows[:3]] == ["S", "A··S", "A"]
        # the timeline cursor follows the selected event
        await pilot.press("j")
        assert screen.timeline.cursor_ts == events.event_at(1).ts
        # q goes back, q again quits
        await pilot.press("q")
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


@async_test
async def test_timeline_lanes_zoom_and_click():
    app = sample_app("http3-lossy")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        screen = await _open_connection(app, pilot, 0)
        model = screen.timeline_model
        names = [lane.name for lane in model.ordered()]
        # request streams per tshark (client-initiated bidirectional stream ids carrying HTTP/3 HEADERS)
        streams = sorted({int(s) for r in _tshark("http3-lossy", ["quic.stream.stream_id"], "http3.frame_type == 1")
                          for s in r[0].split(",") if int(s) % 4 == 0})
        assert [n for n in names if n.startswith("h3 s")] == [f"h3 s{s}" for s in streams]
        assert names[0] == "setup" and "quic ←" in names
        lost_lane = model.lanes[("quic", "s2c")]
        assert any(m[1] == "L" for m in lost_lane.marks)
        # provenance: one server->client datagram dropped; the data it carried waits on its stream lane
        note = json.loads((SAMPLES / "http3-lossy.json").read_text())
        assert "s2c" in json.dumps(note)
        held = [lane for lane in model.lanes.values() if any("lost packet" in sp.label for sp in lane.spans)]
        assert len(held) == 1 and held[0].name.startswith("h3 s")
        tl = screen.timeline
        span = tl.span
        tl.focus()
        await pilot.press("plus")
        assert tl.span == pytest.approx(span / 2)
        await pilot.press("right")
        await pilot.press("0")
        assert tl.span == pytest.approx(span) and tl.fitted
        # clicking the loss mark selects the loss event in the event list
        from tui.widgets.timeline_view import GUTTER

        lanes = model.ordered()
        li = lanes.index(lost_lane)
        ts = lost_lane.ts[[m[1] for m in lost_lane.marks].index("L")]
        col = int((ts - tl.t0) / tl.span * tl._width)
        await pilot.click("#timeline", offset=(1 + GUTTER + col, 1 + 1 + li))
        await pilot.pause()
        assert screen.events.current.type == "loss"


@async_test
async def test_annotations_list_hol_and_loss_and_jump_to_the_event():
    app = sample_app("http2-lossy")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        assert [t for t, _ in app.screen.list.row_at(0).badges][:1] == ["HOL"]
        screen = await _open_connection(app, pilot, 0)
        ann = screen.annotations
        texts = [a.text for a in ann.items]
        assert any(t.startswith("HOL") for t in texts)
        lost = [int(r[0]) for r in _tshark("http2-lossy", ["frame.number"], "tcp.analysis.lost_segment")]
        i = next(i for i, a in enumerate(ann.items) if a.text.startswith("lost_segment"))
        ann.focus()
        ann.move_cursor(i)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.events.current.frame == lost[0]
        assert app.focused is screen.events


@async_test
async def test_sequence_diagram_arrows():
    app = sample_app("tcp-handshake")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await _open_connection(app, pilot, 0)
        await pilot.press("d")
        from tui.screens.sequence import SequenceScreen

        await wait_until(pilot, lambda: isinstance(app.screen, SequenceScreen))
        diagram = app.screen.diagram
        first = [diagram.cells(i) for i in range(diagram.count)]
        arrows = [c[3][0][0] for c in first]
        assert "SYN" in arrows[0] and arrows[0].rstrip().endswith("▶│")
        assert "SYN,ACK" in arrows[1] and arrows[1].startswith("│◀")
        assert any("GET /hello.txt" in a for a in arrows)  # provenance: curl GET /hello.txt
        # the RTT gutter: the SYN/ACK arrives one round trip after the SYN
        assert first[1][2] == "1.0"
        shown = diagram.count
        await pilot.press("a")
        # every event now, every TCP segment among them: one per frame of the capture (tshark: 10)
        assert diagram.count == len(diagram.events) > shown
        segments = sum(1 for i in range(diagram.count) if diagram.events[diagram.rows[i]].type == "segment")
        assert segments == len(_tshark("tcp-handshake", ["frame.number"])) == 10
        await pilot.press("escape")
        from tui.screens.connection import ConnectionScreen

        assert isinstance(app.screen, ConnectionScreen)


@async_test
async def test_help_lists_every_key():
    from tui.screens.help import HelpScreen, bindings_of, key_text, sections

    app = sample_app("tcp-handshake")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.text()
        from tui.app import NetinspectApp
        from tui.screens.connection import ConnectionScreen
        from tui.screens.connections import ConnectionsScreen
        from tui.screens.sequence import SequenceScreen
        from tui.widgets.connection_list import ConnectionList
        from tui.widgets.filter_bar import FilterBar
        from tui.widgets.timeline_view import TimelineView
        from tui.widgets.virtual_list import VirtualList

        for cls in (NetinspectApp, ConnectionsScreen, ConnectionScreen, SequenceScreen, ConnectionList,
                    TimelineView, VirtualList, FilterBar):
            for b in bindings_of(cls):
                assert b.description in text and key_text(b.key) in text, (cls.__name__, b.key)
        assert "Filter language" in text and "tcp.analysis.retransmission" in text
        assert len(sections()) >= 7
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@async_test
async def test_command_palette_sorts_and_opens():
    app = sample_app("http1-keepalive")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        for ch in "duration, descending":
            await pilot.press(ch if ch != " " else "space")
        await pilot.pause(0.6)
        await pilot.press("enter")
        await pilot.pause(0.3)
        lst = app.screen.list
        assert lst.sort_key == "duration_ms" and lst.sort_reverse
        durations = [lst.row_at(i).duration_ms for i in range(lst.count)]
        assert durations == sorted(durations, reverse=True)


@async_test
async def test_mouse_selects_and_double_click_opens():
    app = sample_app("http1-keepalive")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        lst = app.screen.list
        await pilot.click("#connections", offset=(4, 2 + 3))  # border, header, then row 3
        assert lst.cursor == 3
        preview = "\n".join(app.screen.query_one("#preview").lines())
        assert "id: 3" in preview
        await pilot.double_click("#connections", offset=(4, 2 + 5))
        await pilot.pause(0.2)
        from tui.screens.connection import ConnectionScreen

        assert isinstance(app.screen, ConnectionScreen) and app.screen.cid == 5
        # ] and [ step through connections
        await pilot.press("right_square_bracket")
        assert app.screen.cid == 6
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.screen.cid == 4


@async_test
async def test_sixteen_colour_theme_keeps_severities_apart():
    """With --ansi the theme uses the terminal's own 16 colours; badges stay distinguishable."""
    app = sample_app("http2-lossy", ansi=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        assert app.theme == "ansi-dark"
        strip = app.screen.list.render_line(1)
        colours = {seg.style.color.name for seg in strip if seg.style and seg.style.color and seg.text.strip()
                   in ("HOL", "L1", "R1")}
        assert {"red", "yellow"} <= colours


@async_test
async def test_walkthrough_pane_steps_select_and_highlight():
    from inspector import walkthroughs
    from inspector.keylog import KeyLog
    from tui.app import NetinspectApp
    from tui.screens.walkthrough import WalkthroughScreen
    from tui.sources import FileSource

    wt = walkthroughs.load("http2-lossy", samples=str(SAMPLES))
    ref = wt.capture
    app = NetinspectApp(FileSource(str(ref.path), KeyLog.from_file(str(ref.keylog))), walkthrough=wt)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, WalkthroughScreen))
        await pilot.pause(0.2)
        screen = app.screen
        for step in wt.steps:
            assert screen.step is step
            text = str(screen.query_one("#narrative-text").render())
            assert step.title in text and wt.title in text
            events = screen.events
            # the highlighted events are those of the step's frames, the cursor on the first
            marked = sorted({events.events[i].frame for i in events.marked})
            assert marked == sorted(set(step.frames))
            assert events.current.frame == step.frames[0]
            await pilot.press("n")
        await pilot.press("p")
        assert screen.step is wt.steps[-2]
        await pilot.press("q")
    assert app.return_value == 0


@async_test
async def test_a_cut_capture_loads_what_is_there_and_says_so(tmp_path):
    from inspector.keylog import KeyLog
    from tui.app import NetinspectApp
    from tui.sources import FileSource

    pcap, keys = sample("http2-lossy")
    data = open(pcap, "rb").read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])  # ends inside a record
    app = NetinspectApp(FileSource(str(cut), KeyLog.from_file(keys)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.pause(0.2)
        assert app.error and "cut.pcap" in app.error
        assert app.screen.list.count == 1
        screen = await _open_connection(app, pilot, 0)
        assert screen.events.count > 0
        await pilot.press("G", "d")
        await pilot.pause(0.2)
        assert app.screen.diagram.count > 0
