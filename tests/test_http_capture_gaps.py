"""A real h2c capture with segments missing for good (tcpdump dropped them; see captures/http/README.md).

After each hole HTTP/2 framing must resynchronise, header blocks decoded with a
dynamic table that missed entries are flagged unreliable, and entries the
capture never showed are ``None``: never a guess.
"""

from __future__ import annotations

import os

from inspector.decoders.http2 import Http2Decoder
from inspector.events import Http2Frame
from inspector.pipeline import decode_file
from tests.support.http_follow import events_of, follow
from tests.support.http_registry import HttpRegistry
from tests.support.http_tshark import our_h2_frames, tshark_h2_frames

PCAP = os.path.join(os.path.dirname(__file__), "..", "captures", "http", "h2c-capture-drops.pcap")
PORT = 49983


def test_frames_agree_with_tshark_across_holes():
    """The test follower gives up on a hole at the ACK that covers it (as tshark decodes on), so
    even frame numbers agree."""
    ours = our_h2_frames(events_of(follow(PCAP, lambda ctx: Http2Decoder(ctx), server_port=PORT)))
    theirs = tshark_h2_frames(PCAP, PORT)
    assert len(theirs) > 500
    assert {k: v["frames"] for k, v in ours.items()} == {k: v["frames"] for k, v in theirs.items()}


def test_unreliable_headers_are_never_guessed():
    evs = events_of(follow(PCAP, lambda ctx: Http2Decoder(ctx), server_port=PORT))
    theirs = tshark_h2_frames(PCAP, PORT)
    frames = [e for e in evs if isinstance(e, Http2Frame) and e.headers is not None]
    unreliable = [e for e in frames if not e.headers_reliable]
    assert len(unreliable) > 100 and len(frames) - len(unreliable) > 100
    assert sum(1 for e in unreliable for n, v in e.headers if v is None) > 100
    assert all(v is not None for e in frames if e.headers_reliable for _, v in e.headers)
    # every value we do give equals tshark's at the same place in the same frame
    ours = our_h2_frames(evs)
    checked = 0
    for frame, row in ours.items():
        t = theirs[frame]
        assert len(row["names"]) == len(t["names"])
        for n, tn, v, tv in zip(row["names"], t["names"], row["values"], t["values"]):
            if n is not None:
                assert n == tn
                checked += 1
            if v is not None:
                assert v == tv
    assert checked > 3000


def test_pipeline_decodes_the_same_frame_sequence():
    """Through the real pipeline (which may declare a hole a packet later, moving frame numbers),
    the sequence of (direction, type, stream) is the same."""
    evs = []
    decode_file(PCAP, on_event=evs.append, registry=HttpRegistry())
    ref = [(e.direction, e.type, e.stream) for e in events_of(follow(PCAP, lambda ctx: Http2Decoder(ctx),
                                                                       server_port=PORT))
           if isinstance(e, Http2Frame)]
    got = [(e.direction, e.type, e.stream) for e in evs if isinstance(e, Http2Frame)]
    assert sorted(got) == sorted(ref) and [x for x in got if x[0] == "c2s"] == [x for x in ref if x[0] == "c2s"]
    assert [x for x in got if x[0] == "s2c"] == [x for x in ref if x[0] == "s2c"]
