"""The filter language (inspector.filter) on real captures, against tshark's display filters.

Where both tools have the field, the frames whose events match our filter are the
frames tshark's display filter selects.  Grammar and precedence are checked
against Python's boolean operators (the same precedence as Wireshark's:
not, then and, then or).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.events import Note
from inspector.filter import Filter, FilterError
from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.capture import tshark_fields

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"


def _decode(name: str):
    pcap = SAMPLES / f"{name}.pcap"
    keys = SAMPLES / f"{name}.keys"
    events: list = []
    keylog = KeyLog.from_file(str(keys)) if keys.exists() else KeyLog()
    pipe, _ = decode_file(str(pcap), keylog=keylog, on_event=events.append, segments=True)
    records = {s["id"]: s for s in summaries(pipe.connections, pipe.registry)}
    return events, records


@pytest.fixture(scope="module")
def decoded():
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = _decode(name)
        return cache[name]

    return get


def _frames(events, records, text: str) -> list[int]:
    flt = Filter(text)
    return sorted({e.frame for e in events if flt.match_event(e, records.get(e.conn))})


def _tshark_frames(name: str, display: str, keys: bool = True) -> list[int]:
    pcap = SAMPLES / f"{name}.pcap"
    opts = ["tcp.reassemble_out_of_order:TRUE"]
    if keys and (SAMPLES / f"{name}.keys").exists():
        opts.append(f"tls.keylog_file:{SAMPLES / f'{name}.keys'}")
    rows = tshark_fields(str(pcap), ["frame.number"], display_filter=display, options=opts)
    return sorted(int(r[0]) for r in rows)


@pytest.mark.parametrize(
    ("name", "ours", "theirs"),
    [
        # HTTP/2 inside TLS 1.3, decrypted with the key log
        ("http2-multiplex", "http2.stream == 5", "http2.streamid == 5"),
        ("http2-multiplex", "http2.streamid == 5", "http2.streamid == 5"),
        ("http2-multiplex", "http2.stream >= 9 and http2.type == HEADERS", "http2.streamid >= 9 && http2.type == 1"),
        # TCP analysis flags: the lost segment's retransmission
        ("http2-lossy", "tcp.analysis.retransmission", "tcp.analysis.retransmission"),
        ("http2-lossy", "tcp.analysis.lost_segment", "tcp.analysis.lost_segment"),
        # SNI: contains is case-sensitive in both tools, matches is not
        ("tls12-vs-tls13", 'tls.sni contains "lab"', 'tls.handshake.extensions_server_name contains "lab"'),
        ("tls12-vs-tls13", 'tls.sni contains "LAB"', 'tls.handshake.extensions_server_name contains "LAB"'),
        ("tls12-vs-tls13", 'tls.sni matches "^LAB[.]"', 'tls.handshake.extensions_server_name matches "^LAB[.]"'),
        ("tls12-vs-tls13", "tls.version == 1.2 and tls.type == ServerHello",
         "tls.handshake.type == 2 && tls.handshake.version == 0x0303 && !tls.handshake.extensions.supported_version"),
        # HTTP/1.1 requests
        ("http1-keepalive", 'http.target contains "obj"', 'http.request.uri contains "obj"'),
        # DNS over UDP
        ("dns-then-connect", "dns.qtype == AAAA", "dns.qry.type == 28"),
        # ports match either end
        ("dns-then-connect", "udp.port == 53", "udp.port == 53"),
    ],
)
def test_event_filter_selects_the_frames_tshark_selects(decoded, name, ours, theirs):
    events, records = decoded(name)
    got = _frames(events, records, ours)
    want = _tshark_frames(name, theirs)
    assert got == want, f"{ours!r}: ours {got}, tshark ({theirs!r}) {want}"


def test_negation_is_per_event_not_per_frame(decoded):
    """Frame 127 carries two pipelined requests (GET /big.bin, GET /obj/1.txt): tshark tests the
    frame as a whole, we test each request, so a negated condition differs there and only there."""
    events, records = decoded("http1-keepalive")
    got = _frames(events, records, 'http.method == GET and not http.target == "/big.bin"')
    want = _tshark_frames("http1-keepalive", 'http.request.method == "GET" && !(http.request.uri == "/big.bin")')
    both = _tshark_frames("http1-keepalive", 'http.request.uri == "/big.bin" && http.request.uri contains "obj"')
    assert both == [127]
    assert got == sorted(want + both)


def test_bare_names_and_websocket_types(decoded):
    events, records = decoded("websocket")
    # frames holding WebSocket frames with the text opcode, per tshark
    assert _frames(events, records, "websocket.type == text") == _tshark_frames("websocket", "websocket.opcode == 1")
    pings = _tshark_frames("websocket", "websocket.opcode == 9")
    assert _frames(events, records, "ping") == pings  # a bare name is an event type
    assert len(pings) == 2


def test_connection_scope_uses_the_record_then_the_events(decoded):
    events, records = decoded("http1-keepalive")
    streams = {int(r[0]) for r in tshark_fields(str(SAMPLES / "http1-keepalive.pcap"), ["tcp.stream"],
                                                  display_filter='http.request.uri == "/big.bin"')}
    flt = Filter('requests.path == "/big.bin"')
    by_conn: dict[int, list] = {}
    for e in events:
        by_conn.setdefault(e.conn, []).append(e)
    got = {cid for cid, rec in records.items() if flt.match_connection(rec, by_conn.get(cid))}
    assert got == streams and streams  # our connection ids count like tcp.stream
    # an event-only field: the connection matches through one of its events
    flt = Filter('http.target == "/big.bin"')
    assert {cid for cid, rec in records.items() if flt.match_connection(rec, by_conn.get(cid))} == streams
    # record fields: the app, the SNI, the analysis counters
    tls_events, tls_records = decoded("tls12-vs-tls13")
    assert {cid for cid, rec in tls_records.items() if Filter("tls.version == 1.3").match_record(rec)} == {1}
    assert {cid for cid, rec in tls_records.items() if Filter('tls.sni contains "lab"').match_record(rec)} == {0, 1}
    lossy_events, lossy_records = decoded("http2-lossy")
    assert Filter("tcp.analysis.retransmission").match_record(lossy_records[0])
    assert not Filter("tcp.analysis.retransmission").match_record(tls_records[0])
    assert Filter("h2 and tls").match_record(lossy_records[0])
    assert Filter("app == h2 && tcp.irtt_ms > 40 && tcp.irtt_ms < 41").match_record(lossy_records[0])


def test_conn_prefix_reaches_the_record_from_an_event(decoded):
    events, records = decoded("tls12-vs-tls13")
    frames = _frames(events, records, "conn.tls.version == 1.2 and tls.type == ClientHello")
    # the first connection is the TLS 1.2 one (provenance: tls12-vs-tls13.json), its ClientHello per tshark
    want = [int(r[0]) for r in tshark_fields(str(SAMPLES / "tls12-vs-tls13.pcap"), ["frame.number"],
                                              display_filter="tls.handshake.type == 1 && tcp.stream == 0")]
    assert frames == want


def test_text_search_and_header_lookup(decoded):
    events, records = decoded("http2-multiplex")
    want = _tshark_frames("http2-multiplex", 'http2.header.value == "/obj/4.txt"')
    assert _frames(events, records, 'http2.headers.:path == "/obj/4.txt"') == want
    assert _frames(events, records, '"/OBJ/4.TXT"') == want  # quoted text: any field, any case


# --------------------------------------------------------------------------- grammar


def test_parse_errors_say_where():
    cases = {"": 0, "tls.sni ==": 10, "(tls": 4, "a = 1": 2, "tls and": 7, "x ~ \"(\"": 4, "a == b c": 7}
    for text, pos in cases.items():
        with pytest.raises(FilterError) as info:
            Filter(text)
        assert info.value.position == pos, (text, info.value)


ATOMS = {
    "A": "severity == warning",
    "B": 'message contains "x"',
    "C": "frame > 5",
    "D": "note",
}


def _note(sev: str, msg: str, frame: int) -> Note:
    return Note(frame=frame, ts=0.0, conn=0, layer="tcp", severity=sev, message=msg)


def _expr(depth: int):
    leaf = st.sampled_from(sorted(ATOMS))
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.just("not"), sub),
        st.tuples(sub, st.sampled_from(["and", "or", "&&", "||"]), sub),
        st.tuples(st.just("("), sub, st.just(")")),
    )


def _render(tree, python: bool) -> str:
    if isinstance(tree, str):
        return tree if python else ATOMS[tree]
    if tree[0] == "not":
        return f"not {_render(tree[1], python)}"
    if tree[0] == "(":
        return f"({_render(tree[1], python)})"
    op = {"&&": "and", "||": "or"}.get(tree[1], tree[1]) if python else tree[1]
    return f"{_render(tree[0], python)} {op} {_render(tree[2], python)}"


@settings(max_examples=300, deadline=None)
@given(_expr(3), st.sampled_from(["warning", "note"]), st.sampled_from(["x", "y"]), st.integers(0, 10))
def test_precedence_is_not_then_and_then_or(tree, sev, msg, frame):
    event = _note(sev, msg, frame)
    values = {"A": sev == "warning", "B": "x" in msg, "C": frame > 5, "D": True}
    want = eval(_render(tree, python=True), {}, values)  # noqa: S307 - Python's precedence is the reference
    assert Filter(_render(tree, python=False)).match_event(event) == want
