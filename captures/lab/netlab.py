#!/usr/bin/env python3
"""A network lab in namespaces: real stacks, real delay and loss, captured with key logs.

Topology (all inside namespaces this script creates and deletes)::

    [client ns]  c0 10.99.0.1/24 ==veth== rc  [delay ns]  rs ==veth== s0 10.99.0.2/24  [server ns]
                 ^ capture point          \\__ delayline.py __/

The delay namespace has no IP address: ``delayline.py`` reads every frame from
one veth end with a packet socket, holds it for the one-way delay and sends it out
of the other end, dropping exactly the packets the scenario names.  Client and
server see one /24 with static neighbour entries (no ARP) and no IPv6, so the
capture holds only the scenario's traffic.  Nothing routes out of these
namespaces: they have no default route and no link to the host.

Offloads (TSO/GSO/GRO, checksum offload) are off on both ends so that the capture
shows wire-sized segments with correct checksums, as a real NIC's wire would.

Usage (as root)::

    python captures/lab/netlab.py list
    python captures/lab/netlab.py run tcp-handshake [--out DIR] [--delay-ms 20]
    python captures/lab/netlab.py run all

Each run writes ``NAME.pcap``, ``NAME.keys`` (NSS key log, when TLS/QUIC) and
``NAME.json`` (provenance: what ran, versions, delay/loss, capture point, the
delay line's report and tshark's measurements) into the output directory.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import fcntl
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"

CLIENT_IP = "10.99.0.1"
SERVER_IP = "10.99.0.2"
CLIENT_MAC = "02:99:00:00:00:01"
SERVER_MAC = "02:99:00:00:00:02"
HOST = "lab.test"
DEFAULT_DELAY_MS = 20.0  # one way; RTT 40 ms

CLONE_NEWNET = 0x40000000
SIOCETHTOOL = 0x8946
# Legacy ethtool "set" commands (linux/ethtool.h); still honoured by the kernel.
ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO = 0x17, 0x1F, 0x24, 0x2C

_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- namespaces


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block (this thread) inside network namespace ``name``; sockets made here stay there."""
    orig = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({name})")
        try:
            yield
        finally:
            if _libc.setns(orig, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(back)")
    finally:
        os.close(target)
        os.close(orig)


class _EthtoolValue(ctypes.Structure):
    _fields_ = [("cmd", ctypes.c_uint32), ("data", ctypes.c_uint32)]


class _IfReq(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 16), ("data", ctypes.c_void_p), ("pad", ctypes.c_char * 16)]


def disable_offloads(ns: str, iface: str) -> None:
    """Turn off checksum offload, TSO, GSO and GRO on ``iface`` (what ``ethtool -K`` would do)."""
    with in_netns(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for cmd in (ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO):
            val = _EthtoolValue(cmd, 0)
            req = _IfReq(iface.encode(), ctypes.addressof(val))
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


# --------------------------------------------------------------------------- the lab


@dataclasses.dataclass
class Step:
    """One command the scenario ran, for the provenance note."""

    where: str
    argv: list[str]
    note: str = ""


class Lab:
    """Client, delay and server namespaces joined by veth pairs; tracks every process it starts."""

    def __init__(self, workdir: Path, delay_ms: float, drops: Sequence[dict] = (),
                 middle: tuple[float, float] | None = None, sysctls: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.delay_ms = delay_ms
        self.drops = list(drops)
        #: (client-side, server-side) one-way delays: a wire (mid0-mid1) in the delay namespace between two
        #: delay lines, where the capture is taken (see ``setup``); drops with ``"at": "client"`` are
        #: made by the client-side line (after the capture point for s2c), the others by the server-side one
        self.middle = middle
        #: sysctls set in the client and server namespaces (e.g. net.ipv4.tcp_fastopen=3)
        self.sysctls = list(sysctls)
        tag = f"nilab{os.getpid()}"
        self.ns = {"client": f"{tag}c", "delay": f"{tag}d", "server": f"{tag}s"}
        self.procs: list[subprocess.Popen] = []
        self.steps: list[Step] = []
        self.delay_report: dict = {}
        self._delayline: subprocess.Popen | None = None
        self._etc_netns: list[Path] = []
        self.server_capture: Path | None = None
        self.client_capture: Path | None = None  #: with ``middle``: the client's veth too

    # -- lifecycle
    def __enter__(self) -> Lab:
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def setup(self) -> None:
        c, d, s = self.ns["client"], self.ns["delay"], self.ns["server"]
        for ns in (c, d, s):
            sh("ip", "netns", "add", ns)
            # No IPv6: no router solicitations, MLD or ND in the captures.
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for ns in (c, s):
            for setting in self.sysctls:
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", setting)
        sh("ip", "link", "add", "c0", "netns", c, "address", CLIENT_MAC, "type", "veth", "peer", "name", "rc", "netns", d)
        sh("ip", "link", "add", "s0", "netns", s, "address", SERVER_MAC, "type", "veth", "peer", "name", "rs", "netns", d)
        for ns, ifc, ip, peer_ip, peer_mac in ((c, "c0", CLIENT_IP, SERVER_IP, SERVER_MAC), (s, "s0", SERVER_IP, CLIENT_IP, CLIENT_MAC)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifc)
            sh("ip", "-n", ns, "link", "set", ifc, "up")
            sh("ip", "-n", ns, "neigh", "replace", peer_ip, "lladdr", peer_mac, "nud", "permanent", "dev", ifc)
            disable_offloads(ns, ifc)
        for ifc in ("rc", "rs"):
            sh("ip", "-n", d, "link", "set", ifc, "up")
            disable_offloads(d, ifc)
        if self.middle is None:
            self._start_delayline("rc", "rs", self.delay_ms, self.drops, "delayline.json")
            return
        # The middle: a veth pair whose both ends are in the delay namespace, between two delay lines
        # (client side rc <-> mid0, server side mid1 <-> rs).  A capture on mid0 sees client packets one
        # client-side delay after they left and server packets one client-side delay before they arrive.
        sh("ip", "link", "add", "name", "mid0", "netns", d, "type", "veth", "peer", "name", "mid1", "netns", d)
        for ifc in ("mid0", "mid1"):
            sh("ip", "-n", d, "link", "set", ifc, "up")
            disable_offloads(d, ifc)
        near, far = self.middle
        self._start_delayline("rc", "mid0", near, [r for r in self.drops if r.get("at") == "client"], "delayline-client.json")
        self._start_delayline("mid1", "rs", far, [r for r in self.drops if r.get("at") != "client"], "delayline-server.json")

    def _start_delayline(self, a: str, b: str, delay_ms: float, drops: Sequence[dict], report: str) -> None:
        argv = [sys.executable, str(HERE / "delayline.py"), a, b, "--delay-ms", str(delay_ms),
                "--report", str(self.workdir / report)]
        for rule in drops:
            argv += ["--drop", json.dumps({k: v for k, v in rule.items() if k != "at"})]
        line = self.spawn("delay", argv, stdout=subprocess.PIPE)
        self._delayline = self._delayline or line
        assert line.stdout is not None
        if line.stdout.readline().strip() != "ready":
            raise RuntimeError("delay line did not start")

    def teardown(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        for d in self._etc_netns:
            shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(OSError):
                d.parent.rmdir()  # /etc/netns itself, if nothing else uses it
        self._etc_netns.clear()
        report = self.workdir / "delayline.json"
        if report.exists():
            self.delay_report = json.loads(report.read_text())
        sides = [self.workdir / f"delayline-{side}.json" for side in ("client", "server")]
        if all(p.exists() for p in sides):
            near, far = (json.loads(p.read_text()) for p in sides)
            lateness = [r["send_lateness_ms"] for r in (near, far)]
            self.delay_report = {
                "client_side": near, "server_side": far,
                "delay_ms": near["delay_ms"] + far["delay_ms"],
                # towards the client: what the client-side line sent on (the client capture has these)
                "forwarded": near["forwarded"],
                "dropped": [dict(d, at="client") for d in near["dropped"]] + [dict(d, at="server") for d in far["dropped"]],
                "send_lateness_ms": {k: max((x[k] for x in lateness if x[k] is not None), default=None)
                                     for k in ("median", "max")},
            }
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns, check=False)

    # -- processes
    def _argv(self, where: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[where], *argv]

    def spawn(self, where: str, argv: Sequence[str], *, env: dict | None = None, note: str = "", **kw) -> subprocess.Popen:
        """Start ``argv`` in namespace ``where`` ("client", "delay", "server"); stopped at teardown."""
        self.steps.append(Step(where, list(argv), note))
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(self._argv(where, argv), env=self._env(env), text=True, **kw)
        self.procs.append(p)
        return p

    def run(self, where: str, argv: Sequence[str], *, env: dict | None = None, note: str = "",
            timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` to completion in namespace ``where``; raise with its stderr if it fails."""
        self.steps.append(Step(where, list(argv), note))
        r = subprocess.run(self._argv(where, argv), env=self._env(env), capture_output=True, text=True,
                           timeout=timeout, input=input)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
        return r

    @staticmethod
    def _env(extra: dict | None) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("SSLKEYLOGFILE", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")}
        env["LC_ALL"] = "C"
        env.update(extra or {})
        return env

    def resolv_conf(self, where: str, text: str) -> None:
        """Give namespace ``where`` its own /etc/resolv.conf (``ip netns exec`` bind-mounts it); removed at teardown."""
        d = Path("/etc/netns") / self.ns[where]
        d.mkdir(parents=True, exist_ok=True)
        self._etc_netns.append(d)
        (d / "resolv.conf").write_text(text)
        self.steps.append(Step(where, ["/etc/resolv.conf"], text))

    def wait_listening(self, where: str, port: int, proto: str = "tcp", timeout: float = 10) -> None:
        """Wait until something in namespace ``where`` listens on ``port``."""
        flag = "-t" if proto == "tcp" else "-u"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = sh("ip", "netns", "exec", self.ns[where], "ss", "-Hln", flag, f"sport = :{port}").stdout
            if out.strip():
                return
            for p in self.procs:
                if p.poll() is not None and p.returncode not in (0, None) and "delayline.py" not in " ".join(p.args):
                    raise RuntimeError(f"server exited early: {p.args}: {p.stderr.read() if p.stderr else ''}")
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {proto}/{port} in {where}")

    def _tcpdump(self, where: str, iface: str, path: Path, note: str) -> subprocess.Popen:
        argv = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w", str(path)]
        p = self.spawn(where, argv, note=note)
        assert p.stderr is not None
        line = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if "listening on" in line or not line:
                break
        if "listening on" not in line:
            raise RuntimeError(f"tcpdump did not start: {line!r}")
        return p

    @contextlib.contextmanager
    def capture(self, path: Path) -> Iterator[Path]:
        """tcpdump on the client's veth (c0) inside the client namespace while the block runs.

        With ``server_capture`` set, a second tcpdump records the server's veth (s0) too:
        the sender's view of the same connection (a dropped packet is seen there, twice).
        """
        if self.middle is None:
            procs = [self._tcpdump("client", "c0", path, "capture point: the client's veth c0")]
        else:
            procs = [self._tcpdump("delay", "mid0", path, "capture point: mid0, the wire between the two delay lines")]
            if self.client_capture is not None:
                procs.append(self._tcpdump("client", "c0", self.client_capture, "second capture point: the client's veth c0"))
        try:
            if self.server_capture is not None:
                procs.append(self._tcpdump("server", "s0", self.server_capture, "second capture point: the server's veth s0"))
            yield path
            # Let the last FIN/ACKs cross the delay line before stopping.
            time.sleep(max(0.3, 4 * self.delay_ms / 1000))
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


# --------------------------------------------------------------------------- servers and material


def make_tls_material(workdir: Path) -> dict[str, Path]:
    """A throwaway CA and an ECDSA P-256 server certificate for lab.test / 10.99.0.2."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netinspect lab CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address(SERVER_IP))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": workdir / "ca.pem", "cert": workdir / "server.pem", "key": workdir / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def body(name: str, size: int) -> bytes:
    """A deterministic, readable response body of ``size`` bytes."""
    line = f"{name} netinspect lab object, line ".encode()
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line + b"%06d\n" % n
        n += 1
    return bytes(out[: size - 1]) + b"\n"


def make_docroot(workdir: Path, objects: dict[str, int]) -> Path:
    root = workdir / "www"
    for path, size in objects.items():
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body(path, size))
    return root


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {wd}/nginx.pid;
error_log {wd}/nginx-error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {wd}/nginx-access.log;
    client_body_temp_path {wd}/ngx-body;
    proxy_temp_path {wd}/ngx-proxy;
    fastcgi_temp_path {wd}/ngx-fastcgi;
    uwsgi_temp_path {wd}/ngx-uwsgi;
    scgi_temp_path {wd}/ngx-scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type text/plain;
    server_tokens off;
    keepalive_timeout 10s;
    server {{
        listen {ip}:80{fastopen};
        listen {ip}:443 ssl http2;
        listen {ip}:8080 http2;
        server_name {host};
        root {root};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {extra}
    }}
}}
"""


def start_nginx(lab: Lab, root: Path, tls: dict[str, Path], extra: str = "", fastopen: int = 0) -> None:
    """nginx (one process, no daemon) in the server namespace: :80 HTTP/1.1, :443 TLS (HTTP/2 by ALPN), :8080 h2c.

    ``fastopen``: accept TCP Fast Open on :80 with a queue of that many pending connections."""
    conf = lab.workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(wd=lab.workdir, ip=SERVER_IP, host=HOST, root=root, cert=tls["cert"], key=tls["key"], extra=extra,
                                      fastopen=f" fastopen={fastopen}" if fastopen else ""))
    lab.spawn("server", ["nginx", "-e", str(lab.workdir / "nginx-error.log"), "-c", str(conf)], note="nginx.conf:\n" + conf.read_text())
    lab.wait_listening("server", 443)
    lab.wait_listening("server", 80)
    lab.wait_listening("server", 8080)


def curl(lab: Lab, args: Sequence[str], keylog: Path | None = None, note: str = "") -> subprocess.CompletedProcess:
    argv = ["curl", "-sS", "--resolve", f"{HOST}:80:{SERVER_IP}", "--resolve", f"{HOST}:443:{SERVER_IP}", *args]
    env = {"SSLKEYLOGFILE": str(keylog)} if keylog else None
    return lab.run("client", argv, env=env, note=note)


# --------------------------------------------------------------------------- scenarios


@dataclasses.dataclass
class Scenario:
    name: str
    description: str
    func: Callable[[Lab, dict], None]
    drops: list[dict] = dataclasses.field(default_factory=list)
    tools: list[str] = dataclasses.field(default_factory=list)
    delay_ms: float = DEFAULT_DELAY_MS
    #: (client-side, server-side) one-way delays of a capture taken in the middle (see Lab.middle)
    middle: tuple[float, float] | None = None
    sysctls: list[str] = dataclasses.field(default_factory=list)  #: set in the client and server namespaces


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, description: str, *, drops: Sequence[dict] = (), tools: Sequence[str] = (),
             middle: tuple[float, float] | None = None, sysctls: Sequence[str] = ()) -> Callable:
    """Register a scenario function ``f(lab, ctx)``; ``ctx`` has ``pcap``, ``keylog`` and ``notes``."""

    def deco(func: Callable[[Lab, dict], None]) -> Callable[[Lab, dict], None]:
        delay = sum(middle) if middle else DEFAULT_DELAY_MS
        SCENARIOS[name] = Scenario(name, description, func, list(drops), list(tools), delay, middle, list(sysctls))
        return func

    return deco


SMALL = {"/hello.txt": 600}
MULTI = {f"/obj/{i}.txt": 4000 for i in range(1, 7)}
# Same six objects, bigger, for the lossy runs: several RTTs of data behind one loss.
LOSSY = {f"/obj/{i}.bin": 16000 for i in range(1, 7)}
LOSSY_DROP_BYTE = 30000  # a byte of the server's stream in the middle of the responses
H3_DROP_DATAGRAM = 25  # the 25th server->client datagram: a full packet of stream data mid-response


@scenario("tcp-handshake", "curl GET over plain HTTP/1.1 to nginx: one RTT of handshake before data, then teardown",
          tools=["curl", "nginx"])
def tcp_handshake(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, SMALL)
    start_nginx(lab, root, make_tls_material(lab.workdir))
    with lab.capture(ctx["pcap"]):
        curl(lab, ["-o", "/dev/null", f"http://{HOST}/hello.txt"])


@scenario("tls12-vs-tls13", "two curl GETs to the same nginx over the same RTT: a TLS 1.2 full handshake (2 RTT), then TLS 1.3 (1 RTT)",
          tools=["curl", "nginx", "openssl"])
def tls12_vs_tls13(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, SMALL)
    tls = make_tls_material(lab.workdir)
    start_nginx(lab, root, tls)
    with lab.capture(ctx["pcap"]):
        common = ["--http1.1", "--cacert", str(tls["ca"]), "-o", "/dev/null"]
        curl(lab, [*common, "--tlsv1.2", "--tls-max", "1.2", f"https://{HOST}/hello.txt"], ctx["keylog"], note="TLS 1.2")
        time.sleep(0.2)
        curl(lab, [*common, "--tlsv1.3", f"https://{HOST}/hello.txt"], ctx["keylog"], note="TLS 1.3")


@scenario("tls13-resumption-0rtt", "openssl s_client: a full TLS 1.3 handshake saves the session ticket; a second connection resumes it and sends the request as 0-RTT early data",
          tools=["openssl", "nginx"])
def tls13_resumption_0rtt(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, SMALL)
    tls = make_tls_material(lab.workdir)
    start_nginx(lab, root, tls, extra="ssl_early_data on;")
    sess = lab.workdir / "session.pem"
    request = f"GET /hello.txt HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    early = lab.workdir / "early.txt"
    early.write_text(request)
    base = ["openssl", "s_client", "-connect", f"{SERVER_IP}:443", "-servername", HOST, "-tls1_3", "-CAfile", str(tls["ca"]),
            "-keylogfile", str(ctx["keylog"]), "-ign_eof", "-quiet"]
    with lab.capture(ctx["pcap"]):
        lab.run("client", [*base, "-sess_out", str(sess)], input=request, note="full handshake, request after it; saves the ticket")
        time.sleep(0.2)
        lab.run("client", [*base, "-sess_in", str(sess), "-early_data", str(early)], input="",
                note="resumption with the saved ticket; the request goes as early data")


H1 = {**MULTI, "/big.bin": 40000}


@scenario("http1-keepalive", "HTTP/1.1 to nginx: three GETs on one kept-alive connection, then one connection each, "
          "then six GETs over at most three parallel connections, then three pipelined requests behind a 40 kB response",
          tools=["curl", "nginx"])
def http1_keepalive(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, H1)
    start_nginx(lab, root, make_tls_material(lab.workdir))
    urls = [f"http://{HOST}/obj/{i}.txt" for i in (1, 2, 3)]
    outs = [x for u in urls for x in (u, "-o", "/dev/null")]
    with lab.capture(ctx["pcap"]):
        curl(lab, outs, note="part 1 (tcp.stream 0): keep-alive, three requests on one connection")
        time.sleep(0.2)
        curl(lab, ["-H", "Connection: close", *outs], note="part 2 (tcp.streams 1-3): Connection: close, one connection per request")
        time.sleep(0.2)
        six = [x for i in range(1, 7) for x in (f"http://{HOST}/obj/{i}.txt", "-o", "/dev/null")]
        curl(lab, ["--parallel", "--parallel-immediate", "--parallel-max", "3", *six],
             note="part 3 (tcp.streams 4-6): six GETs, at most three connections: requests 4-6 wait for a free connection")
        time.sleep(0.2)
        lab.run("client", [sys.executable, str(HERE / "h1pipeline.py"), HOST, SERVER_IP, "80", "/big.bin", "/obj/1.txt", "/obj/2.txt"],
                note="part 4 (tcp.stream 7): three pipelined requests in one write; the 40 kB response comes first")


@scenario("http2-flow-control", "nghttp (h2c, prior knowledge) fetches two 16 kB objects with a 4 kB stream window: "
          "nginx stops at a zero window on each stream until the client's WINDOW_UPDATE arrives, one RTT later",
          tools=["nghttp2", "nginx"])
def http2_flow_control(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, LOSSY)
    start_nginx(lab, root, make_tls_material(lab.workdir))
    with lab.capture(ctx["pcap"]):
        lab.run("client", ["nghttp", "-n", "-w", "12", f"http://{SERVER_IP}:8080/obj/1.bin", f"http://{SERVER_IP}:8080/obj/2.bin"],
                note="nghttp -w 12: SETTINGS_INITIAL_WINDOW_SIZE 4095 for each stream")


def _h2_workload(lab: Lab, ctx: dict, objects: dict[str, int], nginx_extra: str = "") -> None:
    root = make_docroot(lab.workdir, objects)
    tls = make_tls_material(lab.workdir)
    start_nginx(lab, root, tls, extra=nginx_extra)
    urls = [f"https://{HOST}{p}" for p in objects]
    outs = []
    for u in urls:
        outs += [u, "-o", "/dev/null"]
    with lab.capture(ctx["pcap"]):
        curl(lab, ["--http2", "--tlsv1.3", "--cacert", str(tls["ca"]), "--parallel", "--parallel-max", "10",
                   "-H", "x-lab-client: netinspect-lab", "-H", "accept-language: en", *outs], ctx["keylog"])


@scenario("http2-multiplex", "curl --http2 --parallel: six GETs multiplexed on one TLS 1.3 connection to nginx; repeated headers show HPACK's savings",
          tools=["curl", "nginx", "openssl", "nghttp2"])
def http2_multiplex(lab: Lab, ctx: dict) -> None:
    _h2_workload(lab, ctx, MULTI)


@scenario("http2-lossy", "the HTTP/3 lossy workload over HTTP/2+TLS 1.3+TCP: one server->client segment dropped mid-response: the streams whose bytes arrived behind the gap wait for the retransmission too",
          drops=[{"dir": "s2c", "proto": "tcp", "port": 443, "byte": [LOSSY_DROP_BYTE]}],
          tools=["curl", "nginx", "openssl", "nghttp2"])
def http2_lossy(lab: Lab, ctx: dict) -> None:
    _h2_workload(lab, ctx, LOSSY)


TAIL_DROP_BYTE = 26000  # inside the last segment of the server's stream in the http2-multiplex workload


@scenario("http2-tail-loss", "the http2-multiplex workload with its last server->client segment (the end of the last "
          "response) dropped: the loss has nothing behind it, so no other stream is blocked; the tail waits for the sender's retransmission timer",
          drops=[{"dir": "s2c", "proto": "tcp", "port": 443, "byte": [TAIL_DROP_BYTE]}],
          tools=["curl", "nginx", "openssl", "nghttp2"])
def http2_tail_loss(lab: Lab, ctx: dict) -> None:
    _h2_workload(lab, ctx, MULTI)


#: bigger objects for the middle capture: several streams are mid-body when a segment is lost
MIDDLE = {f"/obj/{i}.bin": 32000 for i in range(1, 7)}
MIDDLE_DELAYS = (12.0, 8.0)  # one way, client side and server side of the capture point: RTT 40 ms


@scenario("http2-middle", "the lossy HTTP/2+TLS 1.3 workload with bigger objects sent interleaved (nginx "
          "http2_chunk_size 2k, 4 kB TLS records), captured in the middle of the path (12 ms one way to the client, "
          "8 ms to the server): one server->client segment dropped before the capture point (a gap there) and one "
          "after it (seen twice there); the client's own capture is kept alongside",
          drops=[{"dir": "s2c", "proto": "tcp", "port": 443, "byte": [40000]},
                 {"dir": "s2c", "proto": "tcp", "port": 443, "byte": [120000], "at": "client"}],
          tools=["curl", "nginx", "openssl", "nghttp2"], middle=MIDDLE_DELAYS)
def http2_middle(lab: Lab, ctx: dict) -> None:
    # small chunks and records: the streams' DATA frames interleave, so records held behind a loss carry
    # the middle of other streams' bodies
    _h2_workload(lab, ctx, MIDDLE, nginx_extra="http2_chunk_size 2k; ssl_buffer_size 4k;")


@scenario("tcp-fastopen", "TCP Fast Open (net.ipv4.tcp_fastopen=3 on both hosts, nginx listen fastopen): curl "
          "--tcp-fastopen asks for a cookie on its first connection, then sends its GET in the SYN of the second",
          tools=["curl", "nginx"], sysctls=["net.ipv4.tcp_fastopen=3"])
def tcp_fastopen(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, SMALL)
    start_nginx(lab, root, make_tls_material(lab.workdir), fastopen=16)
    with lab.capture(ctx["pcap"]):
        curl(lab, ["--tcp-fastopen", "-o", "/dev/null", f"http://{HOST}/hello.txt"],
             note="tcp.stream 0: the SYN carries an empty TFO option (cookie request); the SYN/ACK brings the cookie")
        time.sleep(0.2)
        curl(lab, ["--tcp-fastopen", "-o", "/dev/null", f"http://{HOST}/hello.txt"],
             note="tcp.stream 1: the SYN carries the cookie and the GET")


def _h3_workload(lab: Lab, ctx: dict, objects: dict[str, int]) -> None:
    root = make_docroot(lab.workdir, objects)
    tls = make_tls_material(lab.workdir)
    peer = str(HERE / "h3peer.py")
    lab.spawn("server", [sys.executable, peer, "server", "--host", SERVER_IP, "--port", "443", "--root", str(root),
                         "--cert", str(tls["cert"]), "--key", str(tls["key"])])
    lab.wait_listening("server", 443, "udp")
    with lab.capture(ctx["pcap"]):
        lab.run("client", [sys.executable, peer, "client", "--host", SERVER_IP, "--port", "443", "--server-name", HOST,
                           "--ca", str(tls["ca"]), "--keylog", str(ctx["keylog"]), *objects])


@scenario("http3-lossy", "the HTTP/2 lossy workload over HTTP/3+QUIC (aioquic): one server->client packet dropped mid-response stalls only its stream",
          drops=[{"dir": "s2c", "proto": "udp", "port": 443, "nth": [H3_DROP_DATAGRAM]}],
          tools=["aioquic", "pylsqpack", "cryptography"])
def http3_lossy(lab: Lab, ctx: dict) -> None:
    _h3_workload(lab, ctx, LOSSY)


@scenario("websocket", "websockets library, plain ws://: upgrade, three text and one binary message echoed (masked c2s), "
          "a client ping and a server ping with their pongs, close 1000",
          tools=["websockets"])
def websocket(lab: Lab, ctx: dict) -> None:
    peer = str(HERE / "wspeer.py")
    lab.spawn("server", [sys.executable, peer, "server", "--host", SERVER_IP, "--port", "8765"])
    lab.wait_listening("server", 8765)
    with lab.capture(ctx["pcap"]):
        lab.run("client", [sys.executable, peer, "client", "--url", f"ws://{HOST}:8765/echo", "--ip", SERVER_IP])


@scenario("websocket-lossy", "websockets library: the server pushes eight 1200-byte binary messages back to back; "
          "the segment holding the third is dropped, so the messages behind it wait for its retransmission",
          drops=[{"dir": "s2c", "proto": "tcp", "port": 8765, "nth_data": [4]}], tools=["websockets"])
def websocket_lossy(lab: Lab, ctx: dict) -> None:
    peer = str(HERE / "wspeer.py")
    lab.spawn("server", [sys.executable, peer, "server", "--host", SERVER_IP, "--port", "8765"])
    lab.wait_listening("server", 8765)
    with lab.capture(ctx["pcap"]):
        lab.run("client", [sys.executable, peer, "client", "--url", f"ws://{HOST}:8765/burst", "--ip", SERVER_IP],
                note="server data segments: 1 = the 101 response, 2.. = one message each; the 4th (message 3) is dropped")


@scenario("push-feed", "the same feed (4 updates, 250 ms apart) by short polling (every 200 ms), long polling, "
          "SSE and WebSocket, one after another; each update carries its publish time",
          tools=["websockets"])
def push_feed(lab: Lab, ctx: dict) -> None:
    peer = str(HERE / "feedpeer.py")
    lab.spawn("server", [sys.executable, peer, "server", "--host", SERVER_IP])
    lab.wait_listening("server", 8080)
    lab.wait_listening("server", 8081)
    with lab.capture(ctx["pcap"]):
        lab.run("client", [sys.executable, peer, "client", "--ip", SERVER_IP, "--host", HOST],
                note="tcp.stream 0: short polling; 1: long polling; 2: SSE; 3: WebSocket (port 8081)")


@scenario("grpc", "grpcio over plain HTTP/2: unary, server streaming, client streaming and bidirectional calls on one channel",
          tools=["grpcio"])
def grpc_calls(lab: Lab, ctx: dict) -> None:
    peer = str(HERE / "grpcpeer.py")
    lab.spawn("server", [sys.executable, peer, "server", "--host", SERVER_IP])
    lab.wait_listening("server", 50051)
    with lab.capture(ctx["pcap"]):
        lab.run("client", [sys.executable, peer, "client", "--ip", SERVER_IP, "--authority", f"{HOST}:50051"],
                note="streams 1: GetQuote (unary), 3: StreamQuotes, 5: RecordTrades, 7: Chat (bidi)")


@scenario("dns-then-connect", "curl https://lab.test/ with nothing cached: the stub resolver asks dnsmasq (in the server "
          "namespace) for A and AAAA, then TCP, TLS 1.3 and the GET follow",
          tools=["curl", "nginx", "dnsmasq", "openssl"])
def dns_then_connect(lab: Lab, ctx: dict) -> None:
    root = make_docroot(lab.workdir, SMALL)
    tls = make_tls_material(lab.workdir)
    start_nginx(lab, root, tls)
    lab.spawn("server", ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                         f"--listen-address={SERVER_IP}", f"--host-record={HOST},{SERVER_IP}", f"--local=/{HOST}/", "--local-ttl=60",
                         f"--pid-file={lab.workdir / 'dnsmasq.pid'}", "--log-queries", "--log-facility=-"])
    lab.wait_listening("server", 53, "udp")
    # `ip netns exec` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf for the client's
    # processes: the client's glibc stub resolver asks dnsmasq and nothing else.
    lab.resolv_conf("client", f"nameserver {SERVER_IP}\noptions timeout:2 attempts:1\n")
    with lab.capture(ctx["pcap"]):
        lab.run("client", ["curl", "-sS", "--cacert", str(tls["ca"]), "-o", "/dev/null", f"https://{HOST}/hello.txt"],
                env={"SSLKEYLOGFILE": str(ctx["keylog"])}, note="no --resolve: lab.test is looked up through /etc/resolv.conf")


@scenario("http3-multiplex", "the http2-multiplex workload (six GETs in parallel, same headers) over HTTP/3+QUIC with aioquic, no loss",
          tools=["aioquic", "pylsqpack", "cryptography"])
def http3_multiplex(lab: Lab, ctx: dict) -> None:
    _h3_workload(lab, ctx, MULTI)


# --------------------------------------------------------------------------- provenance and measurement


def _version(argv: Sequence[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    out = (r.stdout or r.stderr).strip().splitlines()
    return out[0] if out else ""


def versions(tools: Sequence[str]) -> dict[str, str]:
    v = {"kernel": platform.release(), "python": platform.python_version(), "tcpdump": _version(["tcpdump", "--version"])}
    probes = {
        "curl": ["curl", "--version"],
        "nginx": ["nginx", "-v"],
        "openssl": ["openssl", "version"],
        "dnsmasq": ["dnsmasq", "--version"],
    }
    for t in tools:
        if t in probes:
            v[t] = _version(probes[t])
        else:
            try:
                from importlib.metadata import version

                v[t] = version(t)
            except Exception:
                v[t] = "unknown"
    return v


def tshark(pcap: Path, fields: Sequence[str], dfilter: str, keylog: Path | None = None) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-o", "tcp.reassemble_out_of_order:TRUE", "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,", "-Y", dfilter]
    if keylog and keylog.exists():
        argv += ["-o", f"tls.keylog_file:{keylog}"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C")).stdout
    return [line.split("\t") for line in out.splitlines()]


def measure(pcap: Path, keylog: Path | None) -> dict:
    """What tshark says about the capture: frames, per-TCP-stream iRTT, retransmissions."""
    m: dict = {"frames": len(tshark(pcap, ["frame.number"], "frame"))}
    irtt = tshark(pcap, ["tcp.stream", "tcp.analysis.initial_rtt"], "tcp.flags.syn==1 && tcp.flags.ack==0 || tcp.analysis.initial_rtt")
    streams: dict[str, float] = {}
    for stream, rtt in irtt:
        if rtt and stream not in streams:
            streams[stream] = round(float(rtt) * 1000, 3)
    if streams:
        m["tcp_irtt_ms"] = streams
    m["tcp_retransmissions"] = len(tshark(pcap, ["frame.number"], "tcp.analysis.retransmission || tcp.analysis.fast_retransmission"))
    quic = tshark(pcap, ["frame.time_epoch", "ip.src"], "quic")
    if quic:
        first_c = next((float(t) for t, src in quic if src == CLIENT_IP), None)
        first_s = next((float(t) for t, src in quic if src == SERVER_IP), None)
        m["quic_datagrams"] = len(quic)
        if first_c is not None and first_s is not None:
            # Client Initial to the server's first reply: one RTT plus the server's handshake work.
            m["quic_first_reply_ms"] = round((first_s - first_c) * 1000, 3)
    return m


def _step(step: Step, workdir: Path) -> dict:
    """A step for the note, with the throwaway work directory written as $WORK."""
    def clean(text: str) -> str:
        text = text.replace(str(workdir), "$WORK").replace(str(HERE), "captures/lab")
        return "python3" if text == sys.executable else text

    d = dataclasses.asdict(step)
    d["argv"] = [clean(a) for a in d["argv"]]
    d["note"] = clean(d["note"])
    return d


#: A run whose delay line sent any frame later than this after it was due is run again: on a
#: shared virtual machine the whole VM can stall for milliseconds (steal time), which would put
#: a stall into the capture that the lab did not ask for.
MAX_LATENESS_MS = 1.5
ATTEMPTS = 4


def run_scenario(name: str, outdir: Path, delay_ms: float | None = None, drops: Sequence[dict] | None = None) -> dict:
    """Run one scenario; write NAME.pcap, NAME.keys and NAME.json into ``outdir``; return the provenance.

    ``delay_ms`` (one way) and ``drops`` override the scenario's own settings.  The run is
    repeated (up to ``ATTEMPTS`` times) while the delay line reports a frame sent more than
    ``MAX_LATENESS_MS`` late; the provenance says how many attempts it took.
    """
    sc = SCENARIOS[name]
    outdir.mkdir(parents=True, exist_ok=True)
    delay = sc.delay_ms if delay_ms is None else delay_ms
    drops = sc.drops if drops is None else list(drops)
    discarded = []
    for attempt in range(1, ATTEMPTS + 1):
        prov = _run_once(sc, outdir, delay, drops)
        late = prov["delay_line"]["send_lateness_ms"]["max"] or 0.0
        if late <= MAX_LATENESS_MS or attempt == ATTEMPTS:
            break
        discarded.append({"attempt": attempt, "max_lateness_ms": late})
    prov["attempts"] = {"used": attempt, "discarded": discarded, "max_lateness_allowed_ms": MAX_LATENESS_MS}
    (outdir / f"{name}.json").write_text(json.dumps(prov, indent=1) + "\n")
    return prov


def _run_once(sc: Scenario, outdir: Path, delay: float, drops: list[dict]) -> dict:
    name = sc.name
    with tempfile.TemporaryDirectory(prefix=f"netlab-{name}-") as tmp:
        wd = Path(tmp)
        ctx = {"pcap": wd / f"{name}.pcap", "keylog": wd / f"{name}.keys", "notes": []}
        lab = Lab(wd, delay, drops, sc.middle, sc.sysctls)
        if sc.middle:
            lab.client_capture = wd / f"{name}.client.pcap"
        elif drops:
            lab.server_capture = wd / f"{name}.server.pcap"
        started = time.time()
        with lab:
            sc.func(lab, ctx)
        pcap_out = outdir / f"{name}.pcap"
        shutil.copyfile(ctx["pcap"], pcap_out)
        server_out = None
        if lab.server_capture is not None and lab.server_capture.exists():
            server_out = outdir / f"{name}.server.pcap"
            shutil.copyfile(lab.server_capture, server_out)
        client_out = None
        if lab.client_capture is not None and lab.client_capture.exists():
            client_out = outdir / f"{name}.client.pcap"
            shutil.copyfile(lab.client_capture, client_out)
        keys_out = None
        if ctx["keylog"].exists() and ctx["keylog"].stat().st_size:
            keys_out = outdir / f"{name}.keys"
            shutil.copyfile(ctx["keylog"], keys_out)
        prov = {
            "name": name,
            "description": sc.description,
            "made": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
            "made_by": "captures/lab/netlab.py run " + name,
            "capture_point": _capture_point(sc, drops),
            "topology": {"client": CLIENT_IP, "server": SERVER_IP, "path": "client ns <veth> delay ns (user-space delay line) <veth> server ns",
                         "mtu": 1500, "offloads": "tx checksum, TSO, GSO, GRO off on both ends"},
            "server_capture": server_out.name if server_out else None,
            "client_capture": client_out.name if client_out else None,
            "one_way_delay_ms": delay,
            "middle_one_way_delays_ms": {"client_side": sc.middle[0], "server_side": sc.middle[1]} if sc.middle else None,
            "sysctls": sc.sysctls,
            "rtt_ms": 2 * delay,
            "drops": drops,
            "delay_line": lab.delay_report,
            "keylog": keys_out.name if keys_out else None,
            "steps": [_step(s, wd) for s in lab.steps if s.where != "delay"],
            "versions": versions(sc.tools),
            "notes": ctx["notes"],
            "measured": measure(pcap_out, keys_out),
            "size_bytes": pcap_out.stat().st_size,
            "server_capture_measured": measure(server_out, keys_out) if server_out else None,
            "client_capture_measured": measure(client_out, keys_out) if client_out else None,
        }
        return prov


def _capture_point(sc: Scenario, drops: list[dict]) -> str:
    if sc.middle:
        near, far = sc.middle
        return (f"middle: tcpdump -i mid0 inside the delay namespace, on the wire between the client-side delay line "
                f"({near} ms one way) and the server-side one ({far} ms); s2c drops made by the server-side line never "
                "appear there (a gap, then the retransmission), those made by the client-side line appear twice "
                "(the original, then the retransmission); also client_capture: tcpdump -i c0 inside the client "
                "namespace, the same traffic at the client")
    return ("client: tcpdump -i c0 inside the client namespace (10.99.0.1); the client's own veth, so "
            "server->client packets appear after the delay line and dropped ones never appear"
            + ("; also server_capture: tcpdump -i s0 inside the server namespace (10.99.0.2), the sender's "
               "view, where the dropped packet appears too" if drops else ""))


def clean_stale() -> list[str]:
    """Delete ``nilab<pid>{c,d,s}`` namespaces whose lab process no longer exists; return their names."""
    import re

    gone = []
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.fullmatch(r"(nilab(\d+)[cds])(\s.*)?", line.strip())
        if m and not Path(f"/proc/{m.group(2)}").exists():
            # Servers, tcpdump and the delay line of the dead run are still inside: stop them by pid.
            for pid in sh("ip", "netns", "pids", m.group(1), check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGTERM)
            sh("ip", "netns", "del", m.group(1), check=False)
            shutil.rmtree(f"/etc/netns/{m.group(1)}", ignore_errors=True)
            gone.append(m.group(1))
    return gone


INDEX_HEAD = """\
# Sample captures from the lab

Made by `captures/lab/netlab.py` (see `captures/lab/README.md`): real stacks in network
namespaces, a one-way delay of {delay} ms each way (RTT {rtt} ms) added by a user-space
delay line, deterministic drops, captured with tcpdump on the client's veth. Each
`NAME.pcap` has a provenance note `NAME.json` (commands, versions, delay, drops and what
was dropped, capture point, tshark's measurements) and, for TLS/QUIC, a key log
`NAME.keys`. Lossy runs also have `NAME.server.pcap`, the same traffic seen at the server
(the sender's view). `tests/test_lab_captures.py` checks each story with tshark.

This file is generated from the notes by `python captures/lab/netlab.py index`.

| capture | what it shows | size | frames | TCP iRTT (ms) | dropped by the delay line |
| --- | --- | ---: | ---: | --- | --- |
"""


def write_index(outdir: Path) -> Path:
    """Write ``outdir/README.md``: one table row per provenance note found there."""
    provs = [json.loads(p.read_text()) for p in sorted(outdir.glob("*.json"))]
    order = list(SCENARIOS)
    provs.sort(key=lambda p: order.index(p["name"]) if p["name"] in order else len(order))
    delays = {p["one_way_delay_ms"] for p in provs}
    delay = delays.pop() if len(delays) == 1 else "(see each note)"
    out = [INDEX_HEAD.format(delay=delay, rtt=2 * delay if isinstance(delay, float) else "(see each note)")]
    for p in provs:
        m = p["measured"]
        irtt = ", ".join(f"{v:.1f}" for v in m.get("tcp_irtt_ms", {}).values()) or "-"
        dropped = "; ".join(f"{d['dir']} {d['what']}" for d in p["delay_line"].get("dropped", [])) or "-"
        files = [f"`{p['name']}.pcap`"] + ([f"`{p['keylog']}`"] if p["keylog"] else []) + \
                ([f"`{p['server_capture']}`"] if p.get("server_capture") else [])
        out.append(f"| {' '.join(files)} | {p['description']} | {p['size_bytes']:,} B | {m['frames']} | {irtt} | {dropped} |\n")
    path = outdir / "README.md"
    path.write_text("".join(out))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="netinspect capture lab (run as root)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list scenarios")
    r = sub.add_parser("run", help="run scenarios by name (or 'all')")
    r.add_argument("names", nargs="+")
    r.add_argument("--out", type=Path, default=SAMPLES)
    r.add_argument("--delay-ms", type=float, default=None, help="override the one-way delay")
    r.add_argument("--no-index", action="store_true", help="do not rewrite the output directory's README.md")
    i = sub.add_parser("index", help="rewrite the samples README.md from the provenance notes")
    i.add_argument("--out", type=Path, default=SAMPLES)
    sub.add_parser("clean", help="delete namespaces left by lab runs that were killed (their process is gone)")
    args = p.parse_args(argv)
    if args.cmd == "clean":
        for ns in clean_stale():
            print(f"deleted {ns}")
        return 0
    if args.cmd == "list":
        for sc in SCENARIOS.values():
            print(f"{sc.name:24} {sc.description}")
        return 0
    if args.cmd == "index":
        print(write_index(args.out))
        return 0
    names = list(SCENARIOS) if args.names == ["all"] else args.names
    for n in names:
        if n not in SCENARIOS:
            p.error(f"unknown scenario {n!r}; see 'list'")
    if os.geteuid() != 0:
        p.error("the lab needs root (network namespaces, packet sockets)")
    # SIGTERM unwinds like Ctrl-C, so the lab's finally blocks stop processes and delete namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for n in names:
        prov = run_scenario(n, args.out, args.delay_ms)
        m = prov["measured"]
        print(f"{n}: {prov['size_bytes']} bytes, {m['frames']} frames, iRTT {m.get('tcp_irtt_ms', {})} ms, "
              f"retransmissions {m['tcp_retransmissions']}, dropped {len(prov['delay_line'].get('dropped', []))}")
    if not args.no_index:
        write_index(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
