"""Real DNS traffic for tests: dnsmasq on loopback, queried by dig and by Python sockets.

:func:`record_dns_capture` starts dnsmasq (from apt's dnsmasq-base) on a
free port, authoritative for ``example.test`` with one record of each type
the decoder shows, and captures while real clients ask: dig over UDP and
TCP (one query per connection, and several on one kept-open connection), a
Python UDP socket, and dig retransmitting a query while dnsmasq is stopped
(SIGSTOP), so the retransmission and the duplicate answer are the stacks'
own.  Each query's expected answer comes from dig's own parse of the reply.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field

from .capture import free_port, loopback_capture
from .ws_follow import TCPDUMP_BIG_RING

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DIG = shutil.which("dig") or "dig"

#: HTTPS RR for svc.example.test (RFC 9460 §2.2 wire form): priority 1, target ".", alpn=h2,h3, ipv4hint=1.2.3.4
HTTPS_RDATA = "0001" + "00" + "0001" + "0006" + "026832" + "026833" + "0004" + "0004" + "01020304"

#: RFC 9460 Appendix D wire-format test vectors, served as they are (names, type, RDATA hex)
_FOO_COM = "03666f6f076578616d706c6503636f6d00"
SVCB_VECTORS = [
    ("d1.svcb.example.test", 65, "0000" + _FOO_COM),  # D.1 AliasMode: 0 foo.example.com.
    ("d2a.svcb.example.test", 64, "000100"),  # D.2 Figure 3: 1 .
    ("d2b.svcb.example.test", 64, "0010" + _FOO_COM + "000300020035"),  # D.2 Figure 4: port=53
    ("d2c.svcb.example.test", 64, "0001" + _FOO_COM + "029b000568656c6c6f"),  # D.2 Figure 5: key667=hello
    ("d2e.svcb.example.test", 64, "0001" + _FOO_COM + "00060020" + "20010db8000000000000000000000001"
     + "20010db8000000000000000000530001"),  # D.2 Figure 7: ipv6hint=2001:db8::1,2001:db8::53:1
    ("d2g.svcb.example.test", 64, "0010" + "03666f6f076578616d706c65036f726700" + "00000004000100040001000902683205"
     + "68332d313900040004c0000201"),  # D.2 Figure 9: mandatory=alpn,ipv4hint alpn=h2,h3-19 ipv4hint=192.0.2.1
]

RECORDS = [
    "--host-record=www.example.test,127.0.0.2,::2",
    "--host-record=api.example.test,127.0.0.3",
    "--cname=alias.example.test,www.example.test",
    "--txt-record=txt.example.test,v=spf1 -all,second string",
    "--srv-host=_sip._tcp.example.test,sip.example.test,5060,10,20",
    "--mx-host=example.test,mail.example.test,10",
    "--ptr-record=2.0.0.127.in-addr.arpa,www.example.test",
    f"--dns-rr=svc.example.test,65,{HTTPS_RDATA}",
    *(f"--dns-rr={name},{rtype},{rdata}" for name, rtype, rdata in SVCB_VECTORS),
]

#: (name, type, transport) asked with dig, in order
DIG_QUERIES = [
    ("www.example.test", "A", "udp"),
    ("www.example.test", "AAAA", "udp"),
    ("alias.example.test", "A", "udp"),
    ("txt.example.test", "TXT", "udp"),
    ("_sip._tcp.example.test", "SRV", "udp"),
    ("example.test", "MX", "udp"),
    ("2.0.0.127.in-addr.arpa", "PTR", "udp"),
    ("svc.example.test", "HTTPS", "udp"),
    ("example.test", "SOA", "udp"),
    ("example.test", "NS", "udp"),
    *((name, "HTTPS" if rtype == 65 else "SVCB", "udp") for name, rtype, _ in SVCB_VECTORS),
    ("missing.example.test", "A", "udp"),
    ("api.example.test", "A", "tcp"),
    ("example.test", "SOA", "tcp"),
]


@dataclass
class DigAnswer:
    name: str
    type: str
    transport: str
    status: str
    id: int
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # (owner, type, data) as dig prints


@dataclass
class DnsCapture:
    path: str
    port: int
    dig: list[DigAnswer]
    socket_ids: list[int]
    retransmitted: tuple[str, str]  # (name, type) of the query dig sent twice


def _parse_dig(out: str, name: str, rtype: str, transport: str) -> list[DigAnswer]:
    res: list[DigAnswer] = []
    section = ""
    for line in out.splitlines():
        if line.startswith(";; ->>HEADER<<-"):
            parts = dict(p.strip().split(": ", 1) for p in line[len(";; ->>HEADER<<- "):].split(", "))
            res.append(DigAnswer(name, rtype, transport, parts["status"], int(parts["id"])))
            section = ""
        elif line.startswith(";; ") and line.endswith("SECTION:"):
            section = line[3:].split()[0]
        elif line and not line.startswith(";") and section == "ANSWER":
            owner, _ttl, _cls, t, data = line.split(None, 4)
            res[-1].answers.append((owner.rstrip("."), t, data))
    return res


def _dig(port: int, args: list[str]) -> str:
    cmd = [DIG, "@127.0.0.1", "-p", str(port), "+noall", "+comments", "+answer", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout


def _socket_query(port: int, qid: int, name: str, qtype: int) -> bytes:
    """A plain recursive query sent from a Python UDP socket."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00" + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q, ("127.0.0.1", port))
        return s.recv(4096)


def start_dnsmasq(port: int) -> subprocess.Popen:
    cmd = [DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
           "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root",
           "--auth-server=ns1.example.test,127.0.0.1", "--auth-zone=example.test,127.0.0.0/24,::/64",
           "--auth-soa=2024010101,hostmaster.example.test,1200,120,604800", *RECORDS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # ready once it answers
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            _socket_query(port, 1, "www.example.test", 1)
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("dnsmasq did not answer")


def record_dns_capture(path: str) -> DnsCapture:
    port = free_port()
    proc = start_dnsmasq(port)
    try:
        with loopback_capture(path, f"port {port}", tcpdump=TCPDUMP_BIG_RING):
            answers: list[DigAnswer] = []
            for name, rtype, transport in DIG_QUERIES:
                extra = ["+tcp"] if transport == "tcp" else []
                answers += _parse_dig(_dig(port, [*extra, name, rtype]), name, rtype, transport)
            # two queries on one kept-open TCP connection
            out = _dig(port, ["+tcp", "+keepopen", "www.example.test", "A", "alias.example.test", "A"])
            parsed = _parse_dig(out, "", "", "tcp")
            for ans, (name, rtype) in zip(parsed, [("www.example.test", "A"), ("alias.example.test", "A")]):
                ans.name, ans.type = name, rtype
            answers += parsed
            ids = [0x1234, 0xBEEF]
            for qid in ids:
                _socket_query(port, qid, "api.example.test", 1)
            # dnsmasq stopped: dig's first try goes unanswered, it retransmits, then both are answered
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                dig = subprocess.Popen([DIG, "@127.0.0.1", "-p", str(port), "+noall", "+comments", "+answer",
                                        "+timeout=1", "+tries=2", "www.example.test", "AAAA"],
                                       stdout=subprocess.PIPE, text=True)
                time.sleep(1.4)
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            answers += _parse_dig(dig.communicate(timeout=10)[0], "www.example.test", "AAAA", "udp")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return DnsCapture(path, port, answers, ids, ("www.example.test", "AAAA"))
