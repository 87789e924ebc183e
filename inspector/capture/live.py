"""Live capture: packets from a network interface, as the file reader yields them.

:class:`LiveCapture` reads an ``AF_PACKET`` socket (Linux) and gives
``(ts, linktype, data, orig_len)`` tuples, exactly what
:class:`~inspector.capture.reader.CaptureReader` yields, so the same
:class:`~inspector.pipeline.Pipeline` decodes both.  A raw socket rather
than scapy's sniffer: scapy builds a packet object per frame (tens of
microseconds each), which falls behind a busy loopback; here a frame costs
one ``recvmsg``.  The BPF filter is compiled by ``tcpdump -ddd`` (libpcap's
compiler, so the syntax is tcpdump's) and attached in the kernel before the
socket is bound, so no unfiltered packet slips in.  Kernel drops are read
from ``PACKET_STATISTICS``.

:class:`PcapngWriter` writes what was captured as pcapng, with the TLS/QUIC
secrets in a Decryption Secrets Block ahead of the packets, so the file
reopens decrypted in ``netinspect view`` and in Wireshark.  :class:`KeyLogFollower`
picks up lines appended to a key log file while a capture runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator

from .. import __version__
from ..errors import CaptureError
from ..keylog import KNOWN_LABELS, KeyLog

Packet = tuple[float, int, bytes, int]

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMPNS = 35
_PACKET_OUTGOING = 4
_MAX_FRAME = 262144
_STATS = struct.Struct("II")  # struct tpacket_stats: tp_packets, tp_drops
_TIMESPEC = struct.Struct("qq")

#: Linux ARPHRD_* device types -> pcap link types (what an AF_PACKET SOCK_RAW socket returns).
ARPHRD_LINKTYPES = {
    1: 1,  # ARPHRD_ETHER: Ethernet
    772: 1,  # ARPHRD_LOOPBACK: a zeroed Ethernet header
    65534: 101,  # ARPHRD_NONE (tun, wireguard): raw IP
    778: 101,  # ARPHRD_IPGRE
    776: 101,  # ARPHRD_SIT
    768: 101,  # ARPHRD_TUNNEL
}


def interface_linktype(interface: str) -> int:
    """The pcap link type of a Linux interface; CaptureError if there is no such interface."""
    try:
        with open(f"/sys/class/net/{interface}/type", encoding="ascii") as f:
            arphrd = int(f.read().strip())
    except (OSError, ValueError):
        names = ", ".join(sorted(os.listdir("/sys/class/net"))) if os.path.isdir("/sys/class/net") else ""
        raise CaptureError(f"no network interface named {interface!r}" + (f" (there are: {names})" if names else "")) from None
    linktype = ARPHRD_LINKTYPES.get(arphrd)
    if linktype is None:
        raise CaptureError(f"interface {interface} has link type {arphrd}, which netinspect cannot decode")
    return linktype


def compile_bpf(interface: str, expression: str, linktype: int = 1) -> list[tuple[int, int, int, int]]:
    """Compile a tcpdump filter for ``interface`` with libpcap (through ``tcpdump -ddd``).

    tcpdump opens the interface to compile for it (exactly what libpcap would
    attach there); when it may not (no capture rights of its own, e.g. when
    only the Python binary has CAP_NET_RAW), the filter is compiled against
    an empty capture file of the interface's link type instead.
    """
    tcpdump = shutil.which("tcpdump") or next(
        (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump", "/sbin/tcpdump") if os.path.exists(p)), None)
    if tcpdump is None:
        raise CaptureError("a capture filter needs tcpdump (its libpcap compiles the filter): install tcpdump")
    proc = subprocess.run([tcpdump, "-i", interface, "-ddd", "--", expression],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and "syntax error" not in proc.stderr and "parse filter" not in proc.stderr:
        with tempfile.NamedTemporaryFile(suffix=".pcap") as empty:
            empty.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, _MAX_FRAME, linktype))
            empty.flush()
            proc = subprocess.run([tcpdump, "-r", empty.name, "-ddd", "--", expression],
                                  capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["tcpdump failed"])[-1]
        message = message.removeprefix("tcpdump: ")
        raise CaptureError(f"bad capture filter {expression!r}: {message}")
    lines = proc.stdout.split()
    count = int(lines[0])
    nums = [int(x) for x in lines[1:]]
    if len(nums) != 4 * count:
        raise CaptureError(f"unexpected tcpdump -ddd output for {expression!r}")
    return [tuple(nums[i : i + 4]) for i in range(0, len(nums), 4)]  # type: ignore[misc]


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native alignment)
    fprog = struct.pack("HP", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


class LiveCapture:
    """Frames from one interface; iterate, or call :meth:`read` for batches.

    Raises :class:`CaptureError` when the interface does not exist, the
    filter does not compile, or the process may not capture (no root or
    CAP_NET_RAW).
    """

    def __init__(self, interface: str, bpf: str | None = None, buffer_bytes: int = 32 << 20) -> None:
        if not hasattr(socket, "AF_PACKET"):
            raise CaptureError("live capture needs Linux (AF_PACKET sockets)")
        self.interface = interface
        self.bpf = bpf or ""
        self.linktype = interface_linktype(interface)
        self.received = 0
        self.dropped = 0  # kernel drops (the socket buffer overflowed)
        self._kernel_seen = 0
        try:
            # protocol 0: the socket receives nothing until bind() names a protocol,
            # so the filter is in place before the first packet.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(
                f"capturing on {interface} needs root or the CAP_NET_RAW capability "
                f"(try: sudo netinspect ..., or setcap cap_net_raw+ep on the Python binary)") from None
        except OSError as e:
            raise CaptureError(f"cannot open a capture socket: {e.strerror or e}") from None
        self._sock = sock
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, buffer_bytes)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            if self.bpf:
                _attach_filter(sock, compile_bpf(interface, self.bpf, self.linktype))
            sock.bind((interface, _ETH_P_ALL))
        except CaptureError:
            sock.close()
            raise
        except OSError as e:
            sock.close()
            raise CaptureError(f"cannot capture on {interface}: {e.strerror or e}") from None
        self._loopback = self._is_loopback(interface)
        self._ancbuf = socket.CMSG_SPACE(_TIMESPEC.size)
        self.closed = False

    @staticmethod
    def _is_loopback(interface: str) -> bool:
        try:
            with open(f"/sys/class/net/{interface}/type", encoding="ascii") as f:
                return f.read().strip() == "772"
        except OSError:
            return False

    def _recv(self, flags: int) -> Packet | None:
        data, anc, _flags, addr = self._sock.recvmsg(_MAX_FRAME, self._ancbuf, flags)
        # Loopback frames pass the tap twice (sent, then received): keep one, as libpcap does.
        if self._loopback and addr[2] == _PACKET_OUTGOING:
            return None
        ts = 0.0
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(cdata) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(cdata)
                ts = sec + nsec * 1e-9
        if not ts:
            ts = time.time()
        self.received += 1
        return ts, self.linktype, data, len(data)

    def read(self, timeout: float = 0.1, limit: int = 4096) -> list[Packet]:
        """Wait up to ``timeout`` s for a packet, then take whatever else is queued (up to ``limit``)."""
        out: list[Packet] = []
        sock = self._sock
        sock.settimeout(timeout)
        try:
            while len(out) < limit:
                try:
                    pkt = self._recv(0 if not out else socket.MSG_DONTWAIT)
                except (BlockingIOError, TimeoutError, socket.timeout):
                    break
                if pkt is not None:
                    out.append(pkt)
                elif not out:
                    sock.settimeout(0.001)  # a skipped duplicate: look briefly for more
        except OSError:
            if not self.closed:
                raise
        return out

    def stats(self) -> tuple[int, int]:
        """(packets received by us, packets the kernel dropped) so far."""
        if not self.closed:
            try:
                raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)
                seen, drops = _STATS.unpack(raw)  # the kernel resets these on each read
                self._kernel_seen += seen
                self.dropped += drops
            except OSError:
                pass
        return self.received, self.dropped

    def __iter__(self) -> Iterator[Packet]:
        while not self.closed:
            yield from self.read(0.2)

    def close(self) -> None:
        if not self.closed:
            self.stats()
            self.closed = True
            self._sock.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- key log


class KeyLogFollower:
    """Feeds lines appended to a key log file into a :class:`KeyLog` (call :meth:`poll` now and then).

    The file may not exist yet (a program started later creates it); a line
    is taken only once its newline has been written.
    """

    def __init__(self, path: str, keylog: KeyLog) -> None:
        self.path = path
        self.keylog = keylog
        self._offset = 0
        self._partial = b""
        self.lines: list[str] = []  # every valid secret line seen, for a Decryption Secrets Block

    def poll(self) -> int:
        """Read what was appended since the last call; returns how many secrets were new."""
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset:  # truncated or replaced: read it again
                    self._offset, self._partial = 0, b""
                if size == self._offset:
                    return 0
                f.seek(self._offset)
                chunk = f.read(size - self._offset)
        except OSError:
            return 0
        self._offset += len(chunk)
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        text = data[:cut].decode("utf-8", errors="replace")
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in KNOWN_LABELS:
                self.lines.append(line.strip())
        return self.keylog.add_text(text)

    def secrets_text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


# --------------------------------------------------------------------------- pcapng

_SHB_MAGIC = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _EPB, _DSB = 1, 6, 0x0000000A
SECRETS_TLS_KEYLOG = 0x544C534B  # pcapng spec: "TLSK"


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) & 3)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def shb() -> bytes:
    opts = _option(4, f"netinspect {__version__}".encode()) + _option(0, b"")  # shb_userappl
    return _block(_SHB_MAGIC, struct.pack("<IHHq", _BOM, 1, 0, -1) + opts)


def idb(linktype: int, name: str = "", snaplen: int = _MAX_FRAME) -> bytes:
    opts = b""
    if name:
        opts += _option(2, name.encode())  # if_name
    opts += _option(9, b"\x09")  # if_tsresol: nanoseconds
    opts += _option(0, b"")
    return _block(_IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts)


def dsb(secrets: str) -> bytes:
    """A Decryption Secrets Block holding NSS key log lines (pcapng spec, section 4.7)."""
    data = secrets.encode()
    return _block(_DSB, struct.pack("<II", SECRETS_TLS_KEYLOG, len(data)) + _pad(data))


def epb(ts: float, data: bytes, orig_len: int, interface: int = 0) -> bytes:
    ns = round(ts * 1e9)
    return _block(_EPB, struct.pack("<IIIII", interface, ns >> 32, ns & 0xFFFFFFFF, len(data), orig_len) + _pad(data))


class PcapngWriter:
    """Write packets as pcapng while they arrive; :meth:`close` puts the secrets in front.

    Packets go to the file at once (a crash leaves a readable capture), after
    a section header and one interface block.  Secrets usually arrive after
    the packets they open, but one-pass readers need them first, so on
    :meth:`close` with secrets the file is rewritten as header, interface,
    Decryption Secrets Block, packets.
    """

    def __init__(self, path: str, linktype: int, interface: str = "") -> None:
        self.path = path
        try:
            self._f = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise CaptureError(f"cannot write {path}: {e.strerror or e}") from None
        self._head = shb() + idb(linktype, interface)
        self._f.write(self._head)
        self.packets = 0
        self.secrets = 0

    def packet(self, ts: float, data: bytes, orig_len: int) -> None:
        self._f.write(epb(ts, data, orig_len))
        self.packets += 1

    def close(self, secrets: str = "") -> None:
        """Finish the file; ``secrets`` (key log lines) become a Decryption Secrets Block."""
        if self._f.closed:
            return
        self._f.flush()
        if not secrets.strip():
            self._f.close()
            return
        self._f.close()
        self.secrets = sum(1 for line in secrets.splitlines() if line.strip() and not line.startswith("#"))
        tmp = self.path + ".tmp"
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(len(self._head))
            dst.write(self._head)
            dst.write(dsb(secrets))
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, self.path)
