"""Build the benchmark captures on loopback with real stacks.

Every capture but the two hand-built many-tiny-connections ones (scan-1m, dns-1m)
is real traffic: nginx (TLS via OpenSSL) serving h2load or curl
(nghttp2) over the kernel's loopback TCP, recorded by tcpdump with full packets
(no snap length cut: a cut would leave TLS records and HTTP/2 frames that
nobody can decode). Each run uses a temporary nginx prefix with a fresh
self-signed certificate on a free port, and tcpdump filters on that port only,
so traffic of anyone else on the machine never lands in the file.

    python benchmarks/make_captures.py                 # what is missing
    python benchmarks/make_captures.py --force tls-bulk
    python benchmarks/make_captures.py --list

Captures land in ``benchmarks/out/`` (git-ignored), each with a ``NAME.json``
describing how it was made (commands, tool versions, packets, bytes, kernel
drops, and what tshark sees in it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
H2LOAD = shutil.which("h2load") or "h2load"
CURL = shutil.which("curl") or "curl"
TCPDUMP = shutil.which("tcpdump") or "tcpdump"
TSHARK = shutil.which("tshark") or "tshark"
OPENSSL = shutil.which("openssl") or "openssl"

# A response body of a typical small API answer: big enough that every
# response carries a DATA frame, small enough that one request/response
# exchange is a handful of packets (the benchmark is about packets, not bytes).
BODY = ("netinspect benchmark " * 12)[:256]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not found"
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def tool_versions() -> dict[str, str]:
    return {
        "nginx": _version([NGINX, "-v"]),
        "h2load": _version([H2LOAD, "--version"]),
        "curl": _version([CURL, "--version"]),
        "openssl": _version([OPENSSL, "version"]),
        "tcpdump": _version([TCPDUMP, "--version"]),
        "tshark": _version([TSHARK, "--version"]),
        "kernel": os.uname().release,
    }


# --------------------------------------------------------------------------- nginx

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    # One connection may carry all requests of a run (nginx's default of
    # 1000 would end each connection with GOAWAY).
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        ssl_protocols {protocols};
        location / {{
            return 200 "{body}\\n";
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_tls(tmp: Path, protocols: str = "TLSv1.3") -> Iterator[int]:
    """Run nginx with HTTP/2 over TLS on a free loopback port; yield the port."""
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=localhost", "-days", "2",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )
    for _attempt in range(5):
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, protocols=protocols, body=BODY))
        proc = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if _wait_listening(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError(f"nginx did not start: {(tmp / 'error.log').read_text(errors='replace')[-2000:]}")
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish and close connections
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------- tcpdump


@dataclass
class CaptureStats:
    received: int = -1
    dropped_by_kernel: int = -1


@contextlib.contextmanager
def tcpdump(path: Path, bpf: str, stats: CaptureStats) -> Iterator[None]:
    """Record full packets matching ``bpf`` on ``lo`` into ``path`` while the block runs.

    A 64 MiB kernel buffer and block-buffered writes (no ``-U``) keep tcpdump
    from dropping packets while the two cores are busy with client and server.
    """
    cmd = [TCPDUMP, "-i", "lo", "-n", "-s", "0", "-B", "65536", "-w", str(path), bpf]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"tcpdump did not start: {line!r}")
    try:
        yield
        # libpcap hands packets over in blocks that the kernel retires after a
        # timeout (1 s for tcpdump); a SIGINT before then loses the last block.
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if m := re.search(r"(\d+) packets received by filter", err):
            stats.received = int(m.group(1))
        if m := re.search(r"(\d+) packets dropped by kernel", err):
            stats.dropped_by_kernel = int(m.group(1))


def count_pcap(path: Path) -> dict[str, int]:
    """Packets, captured bytes, SYNs (connections opened) and FIN segments of a
    classic Ethernet/IPv4 pcap from tcpdump on ``lo``.

    Two FINs per connection show that the capture holds the end of every
    connection (tcpdump stopped too early would cut it off).
    """
    packets = total = fins = syns = 0
    with open(path, "rb") as f:
        magic = f.read(24)[:4]
        endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        rec = struct.Struct(endian + "IIII")
        while True:
            hdr = f.read(16)
            if len(hdr) < 16:
                break
            caplen = rec.unpack(hdr)[2]
            data = f.read(caplen)
            packets += 1
            total += caplen
            # Ethernet (14) + IPv4 (IHL words) + TCP flags at byte 13.
            if len(data) > 34 and data[12:14] == b"\x08\x00" and data[23] == 6:
                ihl = (data[14] & 0x0F) * 4
                flags = data[14 + ihl + 13] if len(data) > 14 + ihl + 13 else 0
                fins += flags & 0x01
                syns += (flags & 0x12) == 0x02
    return {"packets": packets, "bytes": total, "connections": syns, "fins": fins}


# ------------------------------------------------------------------------ captures


@dataclass
class Spec:
    name: str
    description: str
    build: Callable[[Path, Path], dict]
    quick: bool = True  # part of `run.py --quick`

    @property
    def pcap(self) -> Path:
        return OUT / f"{self.name}.pcap"

    @property
    def keylog(self) -> Path:
        return OUT / f"{self.name}.keys"

    @property
    def meta(self) -> Path:
        return OUT / f"{self.name}.json"


def _h2load(name: str, requests: int, clients: int, streams: int, min_packets: int) -> Callable[[Path, Path], dict]:
    def build(pcap: Path, keylog: Path) -> dict:
        keylog.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"nibench-{name}-") as d:
            tmp = Path(d)
            stats = CaptureStats()
            with nginx_tls(tmp) as port:
                cmd = [H2LOAD, "-n", str(requests), "-c", str(clients), "-m", str(streams), "-t", "1",
                       f"https://127.0.0.1:{port}/bench"]
                # h2load (OpenSSL) writes its TLS secrets here, so the capture can be decrypted too.
                env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
                t0 = time.monotonic()
                with tcpdump(pcap, f"tcp port {port}", stats):
                    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
                elapsed = time.monotonic() - t0
            if run.returncode != 0:
                raise RuntimeError(f"h2load failed: {run.stderr[-2000:]}")
            ok = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed", run.stdout)
        counts = count_pcap(pcap)
        packets = counts["packets"]
        meta = {
            "command": " ".join(cmd).replace(str(port), "PORT"),
            "seconds": round(elapsed, 1),
            "requests_succeeded": int(ok.group(1)) if ok else None,
            "requests_failed": int(ok.group(2)) if ok else None,
            **counts,
            "file_bytes": pcap.stat().st_size,
            "keylog": keylog.name,
            "tcpdump_received": stats.received,
            "tcpdump_dropped_by_kernel": stats.dropped_by_kernel,
        }
        _check_complete(name, counts, stats)
        if packets < min_packets:
            raise RuntimeError(f"{name}: only {packets} packets (want >= {min_packets}): {meta}")
        return meta

    return build


def _check_complete(name: str, counts: dict[str, int], stats: CaptureStats) -> None:
    if stats.dropped_by_kernel:
        raise RuntimeError(f"{name}: tcpdump dropped {stats.dropped_by_kernel} packets; rerun on a quieter machine")
    if counts["fins"] < 2 * counts["connections"]:
        raise RuntimeError(f"{name}: the capture lacks connection ends ({counts}); tcpdump stopped too early?")


def _curl_parallel(name: str, requests: int, parallel: int) -> Callable[[Path, Path], dict]:
    def build(pcap: Path, keylog: Path) -> dict:
        keylog.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"nibench-{name}-") as d:
            tmp = Path(d)
            stats = CaptureStats()
            with nginx_tls(tmp, protocols="TLSv1.3") as port:
                config = tmp / "urls.conf"
                with open(config, "w") as f:
                    for i in range(requests):
                        # Varied paths make every request's :path a fresh HPACK literal.
                        f.write(f'url = "https://127.0.0.1:{port}/item/{i}?page={i % 97}"\noutput = "/dev/null"\n')
                cmd = [CURL, "--silent", "--show-error", "--insecure", "--http2", "--tlsv1.3",
                       "--parallel", "--parallel-max", str(parallel), "-K", str(config),
                       "--write-out", "%{http_version} %{response_code}\\n"]
                env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
                t0 = time.monotonic()
                with tcpdump(pcap, f"tcp port {port}", stats):
                    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
                elapsed = time.monotonic() - t0
            if run.returncode != 0:
                raise RuntimeError(f"curl failed ({run.returncode}): {run.stderr[-2000:]}")
        codes = run.stdout.split("\n")
        ok = sum(1 for line in codes if line == "2 200")
        counts = count_pcap(pcap)
        meta = {
            "command": " ".join(cmd).replace(str(config), "URLS.conf") + f"  (URLS.conf: {requests} urls)",
            "seconds": round(elapsed, 1),
            "requests_succeeded": ok,
            **counts,
            "file_bytes": pcap.stat().st_size,
            "keylog": keylog.name,
            "tcpdump_received": stats.received,
            "tcpdump_dropped_by_kernel": stats.dropped_by_kernel,
        }
        if ok != requests:
            raise RuntimeError(f"{name}: {ok} of {requests} requests were HTTP/2 200: {meta}")
        _check_complete(name, counts, stats)
        # What the oracle sees: every request decrypted and decoded as HTTP/2.
        meta["tshark_h2_requests"] = tshark_count(
            pcap, 'http2.type == 1 && http2.header.name == ":method"', [f"tls.keylog_file:{keylog}"],
            field="http2.header.name", match=":method",
        )
        if meta["tshark_h2_requests"] != requests:
            raise RuntimeError(f"{name}: tshark decodes {meta['tshark_h2_requests']} requests, want {requests}")
        return meta

    return build


def _hand_built(kind: str, count: int) -> Callable[[Path, Path], dict]:
    """Many tiny connections (issue 10), which no lab stack opens in seconds: ``tests/support/hardening_tiny.py``
    repeats one connection with new client ports ("scan": a SYN answered by RST/ACK; "dns": the lab's real
    DNS query and answer), 10 microseconds between packets."""

    def build(pcap: Path, keylog: Path) -> dict:
        sys.path.insert(0, str(HERE.parent))
        from tests.support import hardening_tiny

        t0 = time.monotonic()
        if kind == "scan":
            hardening_tiny.write_tiny_connections(str(pcap), count, scan=True)
        else:
            hardening_tiny.write_dns_flows(str(pcap), count)
        counts = count_pcap(pcap)
        return {"command": f"tests/support/hardening_tiny.py ({kind}, {count:,})", "hand_built": True,
                "seconds": round(time.monotonic() - t0, 1), **counts, "file_bytes": pcap.stat().st_size,
                "flows": count, "tcpdump_dropped_by_kernel": 0}

    return build


def tshark_count(pcap: Path, display_filter: str, options: list[str] = (), field: str | None = None,
                 match: str | None = None) -> int:
    """Frames matching ``display_filter``, or occurrences of ``match`` in ``field`` of those frames."""
    cmd = [TSHARK, "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=\t", "-e", field or "frame.number"]
    for o in options:
        cmd += ["-o", o]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    if match is None:
        return len(out.splitlines())
    return sum(line.split("\t").count(match) for line in out.splitlines())


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("tls-bulk",
             "h2load over TLS 1.3 to nginx: 4 connections, one stream at a time; >= 400k packets",
             _h2load("tls-bulk", requests=215_000, clients=4, streams=1, min_packets=400_000)),
        Spec("h2-30k",
             "curl --parallel (100) of 30k HTTP/2 requests over TLS 1.3 to nginx, with its key log",
             _curl_parallel("h2-30k", requests=30_000, parallel=100)),
        Spec("tls-1m",
             "h2load over TLS 1.3 to nginx, as tls-bulk but longer: >= 1M packets",
             _h2load("tls-1m", requests=520_000, clients=4, streams=1, min_packets=1_000_000),
             quick=False),
        Spec("scan-1m",
             "hand-built: 1M refused SYNs (SYN, RST/ACK), a port scan's many tiny connections",
             _hand_built("scan", 1_000_000), quick=False),
        Spec("dns-1m",
             "hand-built: 1M DNS lookups, each from its own client port (a resolver's many tiny flows)",
             _hand_built("dns", 1_000_000), quick=False),
    )
}


def ensure(spec: Spec, force: bool = False, log=print) -> dict:
    """Build ``spec`` unless its capture and description exist; return the description."""
    OUT.mkdir(parents=True, exist_ok=True)
    if not force and spec.pcap.exists() and spec.meta.exists():
        return json.loads(spec.meta.read_text())
    log(f"building {spec.name}: {spec.description} ...")
    tmp_pcap = spec.pcap.with_suffix(".pcap.part")
    meta = spec.build(tmp_pcap, spec.keylog)
    os.replace(tmp_pcap, spec.pcap)
    meta = {"name": spec.name, "description": spec.description, "made": time.strftime("%Y-%m-%d %H:%M:%S"),
            **meta, "tools": tool_versions()}
    spec.meta.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"  {spec.pcap.name}: {meta['packets']:,} packets, {meta['file_bytes'] / 1e6:.0f} MB, "
        f"{meta['seconds']} s, kernel drops {meta['tcpdump_dropped_by_kernel']}")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"captures to build (default: all missing): {', '.join(SPECS)}")
    ap.add_argument("--force", action="store_true", help="rebuild even if present")
    ap.add_argument("--list", action="store_true", help="describe the captures and exit")
    args = ap.parse_args(argv)
    if args.list:
        for s in SPECS.values():
            state = "present" if s.pcap.exists() else "missing"
            print(f"{s.name:10} {state:8} {s.description}")
        return 0
    unknown = [n for n in args.names if n not in SPECS]
    if unknown:
        ap.error(f"unknown capture(s): {', '.join(unknown)}")
    for name in args.names or SPECS:
        ensure(SPECS[name], force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
