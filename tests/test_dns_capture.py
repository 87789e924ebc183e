"""DNS on real traffic: dnsmasq on loopback asked by dig and Python sockets, checked against dig and tshark."""

from __future__ import annotations

import re

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.dns import DnsLookups, DnsTcpDecoder, DnsUdpDecoder
from inspector.events import DnsMessage, Malformed
from tests.support.capture import tshark_fields
from tests.support.dns_stack import record_dns_capture
from tests.support.ws_follow import follow_tcp, replay, udp_datagrams


@pytest.fixture(scope="session")
def dns_capture(tmp_path_factory):
    return record_dns_capture(str(tmp_path_factory.mktemp("dns") / "dns.pcap"))


@pytest.fixture(scope="session")
def decoded(dns_capture):
    """(events sorted by frame, decoders by (transport, client port), the shared lookups)."""
    lookups = DnsLookups()
    decoders: dict[tuple[str, int], object] = {}
    events = []
    server = ("127.0.0.1", dns_capture.port)
    for d in udp_datagrams(dns_capture.path, dns_capture.port):
        key = ("udp", d.client[1])
        if key not in decoders:
            decoders[key] = DnsUdpDecoder(DecodeContext(len(decoders), d.client, server), lookups)
        events += decoders[key].datagram(d.direction, d.data, d.frame, d.ts)
    for conn in follow_tcp(dns_capture.path):
        dec = decoders[("tcp", conn.client[1])] = DnsTcpDecoder(
            DecodeContext(len(decoders), conn.client, conn.server), lookups)
        events += replay(dec, conn)
    events.sort(key=lambda e: e.frame)
    return events, decoders, lookups


def _dns(events):
    return [e for e in events if isinstance(e, DnsMessage)]


def test_messages_agree_with_tshark(decoded, dns_capture):
    """Per frame: query/response, id, name, rcode and answer count as tshark decodes them."""
    events, _, _ = decoded
    port = dns_capture.port
    rows = tshark_fields(dns_capture.path, ["frame.number", "dns.flags.response", "dns.id", "dns.qry.name",
                                            "dns.flags.rcode", "dns.count.answers"],
                         display_filter="dns", options=[f"dns.tcp.port:{port}", f"dns.udp.port:{port}"])
    theirs = [(int(f), resp == "1", int(i, 16), name, int(rc) if resp == "1" else None, int(an))
              for f, resp, i, name, rc, an in rows]
    rcodes = {"NOERROR": 0, "NXDOMAIN": 3, "REFUSED": 5}
    ours = [(e.frame, e.type == "response", e.id, e.qname, rcodes[e.rcode] if e.rcode else None, len(e.answers))
            for e in _dns(events)]
    assert len(ours) >= 50
    assert ours == theirs
    assert not [e for e in events if isinstance(e, Malformed)]


def test_lookup_times_agree_with_tshark(decoded, dns_capture):
    events, _, _ = decoded
    port = dns_capture.port
    rows = tshark_fields(dns_capture.path, ["frame.number", "dns.time", "dns.response_to"],
                         display_filter="dns.flags.response == 1",
                         options=[f"dns.tcp.port:{port}", f"dns.udp.port:{port}"])
    theirs = {int(f): (float(t) * 1000, int(q)) for f, t, q in rows}
    responses = [e for e in _dns(events) if e.type == "response"]
    assert len(responses) == len(theirs)
    for e in responses:
        assert (e.lookup_ms, e.query_frame) == (pytest.approx(theirs[e.frame][0], abs=0.002), theirs[e.frame][1])


def _dig_data(data: str) -> str:
    return re.sub(r"(?<=\S)\.(?=\s|$)", "", data)  # dig writes names with the trailing dot, we do not


def test_answers_agree_with_dig(decoded, dns_capture):
    """Every record dig printed (A, AAAA, CNAME, NS, SOA, MX, TXT, PTR, SRV, HTTPS/SVCB) reads the same here."""
    events, _, _ = decoded
    responses = {(e.id, e.qname): e for e in _dns(events) if e.type == "response"}
    seen_types = set()
    for ans in dns_capture.dig:
        ev = responses[(ans.id, ans.name)]
        assert ev.rcode == ans.status
        assert [(a["name"], a["type"], a["data"]) for a in ev.answers] == [
            (owner, t, _dig_data(d)) for owner, t, d in ans.answers]
        seen_types |= {t for _, t, _ in ans.answers}
    assert {"A", "AAAA", "CNAME", "NS", "SOA", "MX", "TXT", "PTR", "SRV", "HTTPS", "SVCB"} <= seen_types
    https = next(a for e in _dns(events) for a in e.answers if a["name"] == "svc.example.test")
    assert https["alpn"] == ["h2", "h3"]
    soa = next(e for e in _dns(events) if e.qname == "missing.example.test" and e.type == "response")
    assert soa.rcode == "NXDOMAIN" and soa.authority[0]["type"] == "SOA"
    assert soa.flags == ["qr", "aa", "rd"]


def test_retransmission_from_a_new_port(decoded, dns_capture):
    """dig re-asks from a new source port while dnsmasq is stopped; both copies get answered."""
    events, decoders, lookups = decoded
    name, qtype = dns_capture.retransmitted
    copies = [e for e in _dns(events) if e.qname == name and e.qtype == qtype and e.transport == "udp"][-4:]
    assert [(e.type, e.retransmission) for e in copies] == [
        ("query", False), ("query", True), ("response", False), ("response", True)]
    assert len({e.conn for e in copies}) == 2  # two flows
    first_q, retry_q, first_r, second_r = copies
    assert first_r.query_frame == first_q.frame and second_r.query_frame == retry_q.frame
    assert first_r.lookup_ms > 1000  # the resolver was stopped for 1.4 s
    lookup = next(lk for d in decoders.values() for lk in d.summary()["dns"]["lookups"]
                  if lk["query_frame"] == first_q.frame)
    assert lookup["retransmissions"] == 1 and lookup["lookup_ms"] == first_r.lookup_ms


def test_tcp_and_unanswered(decoded, dns_capture):
    """DNS over TCP; a query the server never answered is counted as unanswered, as tshark sees it."""
    events, decoders, _ = decoded
    port = dns_capture.port
    rows = tshark_fields(dns_capture.path, ["frame.number"], display_filter="dns.flags.response == 0 && !dns.response_in",
                         options=[f"dns.tcp.port:{port}", f"dns.udp.port:{port}"], two_pass=True)
    unanswered = sorted(lk["query_frame"] for d in decoders.values() for lk in d.summary()["dns"]["lookups"]
                        if lk["response_frame"] is None)
    assert unanswered == sorted(int(r[0]) for r in rows)
    tcp = [e for e in _dns(events) if e.transport == "tcp"]
    assert {e.qname for e in tcp} >= {"api.example.test", "example.test", "www.example.test", "alias.example.test"}
    summary = next(d for (t, _), d in decoders.items() if t == "tcp").summary()
    assert summary["app"] == "dns" and summary["dns"]["transport"] == "tcp"


def test_socket_clients_and_shared_answers(decoded, dns_capture):
    events, _, lookups = decoded
    mine = [e for e in _dns(events) if e.id in dns_capture.socket_ids]
    assert [(e.type, e.flags) for e in mine] == [("query", ["rd"]), ("response", ["qr", "aa", "rd"])] * 2
    assert lookups.names()["alias.example.test"] == ["127.0.0.2"]  # through the CNAME
    assert set(lookups.names()["www.example.test"]) == {"127.0.0.2", "::2"}
    last = max((e for e in _dns(events) if e.type == "response" and any(a["data"] == "127.0.0.3" for a in e.answers)),
               key=lambda e: e.ts)
    res = lookups.resolution_for("127.0.0.3", last.ts + 1)
    assert res.response_frame == last.frame and res.qname == "api.example.test"


def test_through_the_pipeline(decoded, dns_capture):
    from tests.support.ws_registry import PushRegistry, run_pipeline

    reg = PushRegistry(dns_ports=frozenset({dns_capture.port}))
    events, summaries = run_pipeline(dns_capture.path, reg)
    key = lambda e: (e.frame, e.type, e.id, e.qname, e.qtype, e.rcode, e.lookup_ms, e.retransmission)  # noqa: E731
    assert [key(e) for e in _dns(events)] == [key(e) for e in _dns(decoded[0])]
    dns_flows = [s for s in summaries if s.get("app") == "dns"]
    assert len(dns_flows) == len(summaries)
    lookups = [lk for s in dns_flows for lk in s["dns"]["lookups"]]
    assert sum(1 for lk in lookups if lk["lookup_ms"] is not None) >= 20
    assert reg.dns.names() == decoded[2].names()
