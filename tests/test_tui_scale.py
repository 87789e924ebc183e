"""What the UI keeps of a capture, at scale: compact events that read back equal, frame bytes
read back from the file, and the analyses' events listed where they completed.

The events come from the real lab captures (captures/samples); frame numbers and bytes are
checked against tshark's."""

from __future__ import annotations

from collections import defaultdict

import pytest

from inspector.capture.reader import CaptureReader
from inspector.keylog import KeyLog
from inspector.pipeline import decode_file
from inspector.timeline import CaptureModel, EventLog
from tests.support.capture import tshark_fields
from tests.support.tui_app import SAMPLES, sample

CAPTURES = sorted(p.stem for p in SAMPLES.glob("*.pcap") if not p.stem.endswith((".server", ".client")))


class _Host:
    def __init__(self, source) -> None:
        self.model = source.new_model()

    def source_progress(self, text, fraction, done):
        pass

    def source_replaced(self, model):
        raise AssertionError("a file is never re-decoded")

    def source_failed(self, error):
        raise AssertionError(error)


def _load(name: str) -> CaptureModel:
    from tui.sources import FileSource

    pcap, keys = sample(name)
    source = FileSource(pcap, KeyLog.from_file(keys) if keys else KeyLog())
    host = _Host(source)
    source.run(host)
    return host.model


@pytest.mark.parametrize("name", CAPTURES)
def test_compact_events_read_back_equal(name):
    """Every event the pipeline made, stored in an EventLog, reads back equal (by index, slice and
    iteration), and the bulk kinds are kept as columns, not objects."""
    pcap, keys = sample(name)
    made: dict[int, list] = defaultdict(list)
    decode_file(pcap, keylog=KeyLog.from_file(keys) if keys else KeyLog(),
                on_event=lambda e: made[e.conn].append(e) if e.conn is not None else None, segments=True)
    model = CaptureModel()
    for cid, events in made.items():
        log = EventLog(cid, model)
        for e in events:
            log.append(e)
        assert len(log) == len(events)
        assert list(log) == events
        assert [log[i] for i in range(len(log))] == events
        assert log[-1] == events[-1] and log[2:7] == events[2:7]
        assert [log.frame_at(i) for i in range(len(log))] == [e.frame for e in events]
        assert [log.ts_at(i) for i in range(len(log))] == [e.ts for e in events]
        bulk = sum(1 for e in events if e.layer == "tcp" and e.type == "segment" or e.layer == "http2"
                   and type(e).__name__ == "Http2Frame" or e.type == "ApplicationData")
        assert len(log._obj) == len(events) - bulk  # every bulk event went to the columns


def test_frame_bytes_are_read_back_from_the_file():
    """A pcap's frame bytes are not kept in memory: the hex view reads them back by offset,
    and gets what the file holds (lengths as tshark's frame.cap_len)."""
    pcap, _ = sample("http2-lossy")
    model = _load("http2-lossy")
    store = model.frame_store
    assert store.path == pcap and not store._kept
    frames = [p[2] for p in CaptureReader(pcap)]
    assert [store.get(i + 1) for i in range(len(frames))] == frames
    cap_len = [int(r[0]) for r in tshark_fields(pcap, ["frame.cap_len"])]
    assert [len(f) for f in frames] == cap_len
    assert store.get(0) is None and store.get(len(frames) + 1) is None
    store.close()


def test_frame_bytes_of_a_pcapng_are_kept(tmp_path):
    """pcapng records cannot be found by a running offset: their bytes are kept (within a budget)."""
    import subprocess

    pcap, _ = sample("tcp-handshake")
    ng = tmp_path / "tcp-handshake.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", pcap, str(ng)], check=True)
    model = CaptureModel(capture_path=str(ng))
    packets = list(CaptureReader(str(ng)))
    model.feed(packets)
    model.finish()
    assert model.frame_store.path is None
    assert [model.frame_bytes(i + 1) for i in range(len(packets))] == [p[2] for p in packets]


def _analysis_places(model: CaptureModel):
    for cid, log in enumerate(model.events):
        for i in range(len(log)):
            e = log[i]
            if e.layer == "analysis":
                yield cid, log, i, e


@pytest.mark.parametrize("name", ["tcp-handshake", "http1-keepalive", "http2-lossy", "tls12-vs-tls13"])
def test_analysis_events_are_listed_where_they_completed(name):
    """The RTT ledger and HOL episodes are made at the end of the capture; the UI lists each
    after every event of its frame (or of an earlier frame, or up to its time) and before the rest."""
    model = _load(name)
    places = list(_analysis_places(model))
    assert places
    inside = 0
    for _cid, log, i, e in places:
        before = [j for j in range(i) if log[j].layer != "analysis"]
        after = [j for j in range(i + 1, len(log)) if log[j].layer != "analysis"]
        assert all(log.frame_at(j) <= e.frame or log.ts_at(j) <= e.ts for j in before)
        if after:
            inside += 1
            nxt = after[0]
            assert log.frame_at(nxt) > e.frame and log.ts_at(nxt) > e.ts
    assert inside, "every analysis event still comes after all other events"
    # the annotation panel points at the same events
    for cid, notes in enumerate(model.annotations):
        for index, e in notes:
            assert model.events[cid][index] == e


def test_ledger_steps_follow_the_units_they_measure():
    """tcp-handshake (curl GET /hello.txt, provenance note): the TCP step is listed right after the
    handshake's ACK and the request step right after the frame of the response (frames from tshark)."""
    pcap, _ = sample("tcp-handshake")
    model = _load("tcp-handshake")
    log = model.events[0]
    steps = {e.step: i for _cid, _log, i, e in _analysis_places(model) if e.type == "ledger"}
    ack = int(tshark_fields(pcap, ["frame.number"], display_filter="tcp.flags == 0x010 && tcp.seq == 1 && tcp.ack == 1")[0][0])
    response = int(tshark_fields(pcap, ["frame.number"], display_filter="http.response")[0][0])
    assert log.frame_at(steps["tcp"] - 1) == ack and log[steps["tcp"] - 1].flags == "A"
    assert log[steps["request"]].frame == response
    assert max(log.frame_at(j) for j in range(steps["request"])) == response
    assert log.frame_at(steps["request"] + 1) > response
