"""Live capture under load: can `netinspect live` keep up with 20k packets per second on loopback?

    sudo python benchmarks/live_load.py                     # 60 s at 20,000 packets/s (the issue's figure)
    sudo python benchmarks/live_load.py --pps 30000 --seconds 20 --json
    sudo python benchmarks/live_load.py --h2load 2000       # plus HTTP/2 requests/s from h2load to nginx

The traffic is the kernel's own TCP: one generator process holds ``--conns``
loopback connections to an echo server of its own (both ends in one process,
so the process is the only one paying Python's per-call costs) and, paced in
1 ms ticks, makes small request/response exchanges on them round-robin.  A
request and its response are two segments, and the client's next request
carries its ACK, so the generator asks for ``pps / 2`` exchanges per second
and the rate really put on the wire is measured, not assumed: an nftables
counter (table ``netinspect_live``, rule on the test port only, deleted
afterwards) counts every packet on the port in the ``output`` hook, which
every loopback packet passes exactly once.

netinspect runs as ``netinspect live -i lo -f "tcp port P" -w OUT.pcapng
--no-view`` and is stopped with SIGINT once the generator has closed its
connections.  Reported: packets/s generated (nftables), packets captured and
kernel drops (netinspect's own line, from ``PACKET_STATISTICS``), packets in
the written file (read by netinspect's reader and counted by tshark and
capinfos), and whether all four counts agree.  Needs root (AF_PACKET, nft).
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TABLE = "netinspect_live"
H2LOAD = shutil.which("h2load") or "h2load"


# --------------------------------------------------------------------------- traffic


def generate(port: int, pps: float, seconds: float, conns: int, size: int) -> dict:
    """Paced request/response exchanges over ``conns`` loopback connections (both ends here)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(conns)
    pairs = []
    for _ in range(conns):
        c = socket.create_connection(("127.0.0.1", port))
        s, _addr = srv.accept()
        for sock in (c, s):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pairs.append((c, s))
    srv.close()
    request, response = b"q" * size, b"r" * size
    rate = pps / 2.0  # exchanges per second
    exchanges = 0
    start = time.perf_counter()
    end = start + seconds
    i = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate) - exchanges
        if due <= 0:
            time.sleep(0.0005)
            continue
        for _ in range(min(due, 2000)):  # after a stall, catch up a little at a time
            c, s = pairs[i]
            i = (i + 1) % conns
            c.sendall(request)
            got = 0
            while got < size:
                got += len(s.recv(size - got))
            s.sendall(response)
            got = 0
            while got < size:
                got += len(c.recv(size - got))
            exchanges += 1
    elapsed = time.perf_counter() - start
    for c, s in pairs:
        c.close()
        s.close()
    return {"exchanges": exchanges, "seconds": elapsed}


# --------------------------------------------------------------------------- nftables counter


def nft(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def counter_start(ports: list[int]) -> None:
    rules = "".join(f"    tcp sport {p} counter\n    tcp dport {p} counter\n" for p in ports)
    nft("-f", "-", stdin=f"""table inet {TABLE} {{
  chain out {{
    type filter hook output priority 0; policy accept;
{rules}  }}
}}
""")


def counter_read() -> int:
    text = nft("list", "table", "inet", TABLE)
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", text))


def counter_stop() -> None:
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


# --------------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def netinspect_cmd() -> list[str]:
    exe = shutil.which("netinspect")
    return [exe] if exe else [sys.executable, "-m", "inspector"]


def count_with_tshark(path: str) -> int | None:
    tshark = shutil.which("tshark")
    if not tshark:
        return None
    proc = subprocess.run([tshark, "-n", "-r", path, "-T", "fields", "-e", "frame.number"],
                          capture_output=True, text=True)
    # tshark warns about running as root; anything else on stderr is about the file
    complaints = [ln for ln in proc.stderr.splitlines() if ln.strip() and "as user \"root\"" not in ln]
    if proc.returncode != 0 or complaints:
        raise SystemExit(f"tshark could not read {path} cleanly: {proc.stderr.strip()}")
    return len(proc.stdout.split())


def count_with_capinfos(path: str) -> int | None:
    capinfos = shutil.which("capinfos")
    if not capinfos:
        return None
    proc = subprocess.run([capinfos, "-M", "-c", path], capture_output=True, text=True)
    m = re.search(r"Number of packets:\s*(\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"capinfos could not read {path}: {proc.stderr.strip()}")
    return int(m.group(1))


def count_with_reader(path: str) -> int:
    sys.path.insert(0, str(REPO))
    from inspector.capture.reader import CaptureReader

    reader = CaptureReader(path)
    n = sum(1 for _ in reader)
    if reader.warning:
        raise SystemExit(f"netinspect's reader warns about {path}: {reader.warning}")
    return n


def run(pps: float, seconds: float, conns: int, size: int, outdir: str, keep: bool, h2load_rps: int = 0) -> dict:
    port = free_port()
    out = os.path.join(outdir, "live-load.pcapng")
    keys = os.path.join(outdir, "h2load.keys")
    with contextlib.ExitStack() as stack:
        ports = [port]
        if h2load_rps:
            sys.path.insert(0, str(HERE))
            import make_captures  # sibling script: nginx with HTTP/2 over TLS 1.3

            ports.append(stack.enter_context(make_captures.nginx_tls(Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="netinspect-live-nginx-"))))))
        bpf = " or ".join(f"tcp port {p}" for p in ports)
        counter_stop()
        counter_start(ports)
        stack.callback(counter_stop)
        cmd = [*netinspect_cmd(), "live", "-i", "lo", "-f", bpf, "-w", out, "--no-view"]
        if h2load_rps:
            cmd += ["--keylog", keys]
        errpath = os.path.join(outdir, "live.stderr")
        with open(errpath, "w") as err:
            live = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        stack.callback(lambda: live.poll() is None and live.kill())
        deadline = time.monotonic() + 30
        # capturing once the socket is bound and filtered ("capturing on lo ..." on stderr)
        while "capturing on" not in Path(errpath).read_text():
            if live.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"netinspect live did not start: {Path(errpath).read_text()}")
            time.sleep(0.05)
        t0 = time.perf_counter()
        h2load = None
        if h2load_rps:
            clients = 4
            h2load = subprocess.Popen([H2LOAD, "-c", str(clients), "-m", "1", "-t", "1", "--rps",
                                       str(max(1, h2load_rps // clients)), "-D", str(int(seconds)),
                                       f"https://127.0.0.1:{ports[1]}/live-load"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=dict(os.environ, SSLKEYLOGFILE=keys))
        gen = subprocess.run([sys.executable, __file__, "--generate", str(port), "--pps", str(pps),
                              "--seconds", str(seconds), "--conns", str(conns), "--size", str(size)],
                             capture_output=True, text=True, check=True)
        generated = json.loads(gen.stdout)
        h2 = None
        if h2load is not None:
            h2out = h2load.communicate(timeout=seconds + 60)[0]
            m = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed", h2out)
            h2 = {"succeeded": int(m.group(1)), "failed": int(m.group(2))} if m else {"output": h2out[-500:]}
        time.sleep(1.0)  # the last FINs and ACKs
        sent = counter_read()
        stop = time.perf_counter()
        live.send_signal(signal.SIGINT)
        _pid, status, usage = os.wait4(live.pid, 0)
        live.returncode = os.waitstatus_to_exitcode(status)
        exited = time.perf_counter()
        wall = exited - t0
        stderr = Path(errpath).read_text()
    m = re.search(r"(\d+) packets captured on lo, (\d+) dropped by the kernel.*wrote .* \((\d+) packets", stderr)
    if not m:
        raise SystemExit(f"no capture report from netinspect (exit {live.returncode}):\n{stderr}")
    captured, drops, written = (int(x) for x in m.groups())
    lag = re.search(r"decoding finished ([\d.]+) s after the capture stopped", stderr)
    result = {
        "target_pps": pps,
        "seconds": round(generated["seconds"], 2),
        "connections": conns,
        "exchanges": generated["exchanges"],
        "h2load_requests": h2,
        "packets_sent": sent,
        "pps_generated": round(sent / generated["seconds"]),
        "captured": captured,
        "kernel_drops": drops,
        "written": written,
        "file_reader": count_with_reader(out),
        "file_tshark": count_with_tshark(out),
        "file_capinfos": count_with_capinfos(out),
        "netinspect_exit": live.returncode,
        "netinspect_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "netinspect_peak_mb": round(usage.ru_maxrss / 1024),
        "stop_to_exit_s": round(exited - stop, 2),
        "decode_lag_s": float(lag.group(1)) if lag else None,
        "wall_s": round(wall, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    counts = [result[k] for k in ("packets_sent", "captured", "written", "file_reader", "file_tshark", "file_capinfos")]
    result["all_counts_equal"] = len({c for c in counts if c is not None}) == 1
    result["ok"] = result["all_counts_equal"] and drops == 0 and live.returncode == 0
    if not keep:
        os.unlink(out)
    else:
        result["file"] = out
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pps", type=float, default=20000, help="packets per second to put on loopback (default 20000)")
    ap.add_argument("--seconds", type=float, default=60, help="how long (default 60)")
    ap.add_argument("--conns", type=int, default=16, help="TCP connections the exchanges are spread over")
    ap.add_argument("--size", type=int, default=64, help="bytes per request and per response")
    ap.add_argument("--h2load", type=int, default=0, metavar="RPS",
                    help="also HTTP/2 over TLS 1.3: h2load (4 clients) to nginx at this many requests/s, "
                         "decrypted live with h2load's key log")
    ap.add_argument("--keep", metavar="DIR", help="keep the written capture in DIR")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--generate", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        print(json.dumps(generate(args.generate, args.pps, args.seconds, args.conns, args.size)))
        return 0
    if os.geteuid() != 0:
        print("live_load.py needs root (AF_PACKET capture and an nftables counter)", file=sys.stderr)
        return 2
    outdir = args.keep or tempfile.mkdtemp(prefix="netinspect-live-load-")
    result = run(args.pps, args.seconds, args.conns, args.size, outdir, bool(args.keep), args.h2load)
    if not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['pps_generated']:,} packets/s for {result['seconds']} s over {result['connections']} "
              f"connections ({result['packets_sent']:,} packets by the nftables counter)")
        print(f"captured {result['captured']:,}, kernel drops {result['kernel_drops']}, written {result['written']:,}; "
              f"file: reader {result['file_reader']:,}, tshark {result['file_tshark']}, "
              f"capinfos {result['file_capinfos']}")
        if result["h2load_requests"]:
            print(f"h2load: {result['h2load_requests']}")
        print(f"netinspect: {result['netinspect_cpu_s']} s CPU, peak {result['netinspect_peak_mb']} MB")
        print(f"exit {result['netinspect_exit']}, {result['stop_to_exit_s']} s from SIGINT to exit"
              + (f", decoding {result['decode_lag_s']} s behind at the stop" if result['decode_lag_s'] is not None else "")
              + f"; load {' '.join(f'{x:.2f}' for x in result['load_avg'])}")
        print("OK: all counts agree and no drops" if result["ok"] else "FAILED")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
