"""Live capture: packets from a network interface, as the file reader yields them.

:class:`LiveCapture` reads an ``AF_PACKET`` socket (Linux) and gives
``(ts, linktype, data, orig_len)`` tuples, exactly what
:class:`~inspector.capture.reader.CaptureReader` yields, so the same
:class:`~inspector.pipeline.Pipeline` decodes both.  A raw socket rather
than scapy's sniffer: scapy builds a packet object per frame (tens of
microseconds each), which falls behind a busy loopback.  The socket has a
``TPACKET_V3`` ring (``PACKET_MMAP``) as libpcap uses: the kernel writes
frames into shared memory blocks without a system call per frame, the
ring (64 MiB by default) absorbs seconds of traffic while Python is busy,
and a whole block is taken per wake-up.  The BPF filter is compiled by
``tcpdump -ddd`` (libpcap's compiler, so the syntax is tcpdump's) and
attached in the kernel before the socket is bound, so no unfiltered packet
slips in.  Kernel drops are read from ``PACKET_STATISTICS``.

``-i any`` is a ``SOCK_DGRAM`` socket on every interface: the kernel strips
the link headers (which differ per device) and each frame gets a Linux
cooked v2 header (``LINKTYPE_LINUX_SLL2``, what ``tcpdump -i any`` writes)
made from its ``sockaddr_ll``.

:class:`CaptureThread` empties the ring into a queue (and the ``-w``
writer) in its own thread, so capturing never waits for decoding.

:class:`PcapngWriter` writes what was captured as pcapng, with the TLS/QUIC
secrets in a Decryption Secrets Block ahead of the packets, so the file
reopens decrypted in ``netinspect view`` and in Wireshark.  :class:`KeyLogFollower`
picks up lines appended to a key log file while a capture runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator

from .. import __version__
from ..errors import CaptureError
from ..keylog import KNOWN_LABELS, KeyLog

Packet = tuple[float, int, bytes, int]

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_RX_RING = 5
_PACKET_STATISTICS = 6
_PACKET_VERSION = 10
_TPACKET_V3 = 2
_SO_ATTACH_FILTER = 26
_PACKET_OUTGOING = 4
_MAX_FRAME = 262144
_STATS = struct.Struct("=III")  # struct tpacket_stats_v3: tp_packets, tp_drops, tp_freeze_q_cnt
_REQ3 = struct.Struct("=7I")  # struct tpacket_req3
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1's block_status, num_pkts,
# offset_to_first_pkt (at byte 8)
_BLOCK = struct.Struct("=III")
_TP_STATUS_KERNEL = b"\0\0\0\0"
_TP_STATUS_USER = 1
_TP_STATUS_VLAN_VALID = 0x10
_TP_STATUS_VLAN_TPID_VALID = 0x40
# struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net, rxhash, vlan_tci, vlan_tpid
_HDR3 = struct.Struct("=IIIIIIHHIIH")
# struct sockaddr_ll follows the header at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) = 48:
# family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
_SLL_AT = 48
_SLL = struct.Struct("=H2siHBB8s")
_SLL2 = struct.Struct(">2sHIHBB8s")  # LINKTYPE_LINUX_SLL2 header: protocol, reserved, ifindex, hatype, pkttype, halen, addr
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_RAW = 101
# classic BPF with the kernel's ancillary loads (linux/filter.h)
_SKF_AD_PKTTYPE = 0xFFFFF000 + 4
_SKF_AD_IFINDEX = 0xFFFFF000 + 8
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06

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
    """The pcap link type of a Linux interface; CaptureError if there is no such interface.

    ``any`` (every interface) is Linux cooked v2, as ``tcpdump -i any`` writes it."""
    if interface == "any":
        return LINKTYPE_LINUX_SLL2
    try:
        with open(f"/sys/class/net/{interface}/type", encoding="ascii") as f:
            arphrd = int(f.read().strip())
    except (OSError, ValueError):
        names = ", ".join(sorted(os.listdir("/sys/class/net"))) if os.path.isdir("/sys/class/net") else ""
        raise CaptureError(f"no network interface named {interface!r}" + (f" (there are: {names}, any)" if names else "")) from None
    linktype = ARPHRD_LINKTYPES.get(arphrd)
    if linktype is None:
        raise CaptureError(f"interface {interface} has link type {arphrd}, which netinspect cannot decode")
    return linktype


def _tcpdump() -> str:
    tcpdump = shutil.which("tcpdump") or next(
        (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump", "/sbin/tcpdump") if os.path.exists(p)), None)
    if tcpdump is None:
        raise CaptureError("a capture filter needs tcpdump (its libpcap compiles the filter): install tcpdump")
    return tcpdump


def _compile_for_linktype(tcpdump: str, expression: str, linktype: int) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile(suffix=".pcap") as empty:
        empty.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, _MAX_FRAME, linktype))
        empty.flush()
        return subprocess.run([tcpdump, "-r", empty.name, "-ddd", "--", expression],
                              capture_output=True, text=True, timeout=30)


def compile_bpf(interface: str, expression: str, linktype: int = 1) -> list[tuple[int, int, int, int]]:
    """Compile a tcpdump filter for ``interface`` with libpcap (through ``tcpdump -ddd``).

    tcpdump opens the interface to compile for it (exactly what libpcap would
    attach there); when it may not (no capture rights of its own, e.g. when
    only the Python binary has CAP_NET_RAW), the filter is compiled against
    an empty capture file of the interface's link type instead.  For ``any``
    the program is compiled for raw IP: the ``SOCK_DGRAM`` socket's frames
    start at the IP header.
    """
    tcpdump = _tcpdump()
    if interface == "any":
        proc = _compile_for_linktype(tcpdump, expression, LINKTYPE_RAW)
    else:
        proc = subprocess.run([tcpdump, "-i", interface, "-ddd", "--", expression],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0 and "syntax error" not in proc.stderr and "parse filter" not in proc.stderr:
            proc = _compile_for_linktype(tcpdump, expression, linktype)
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


def _skip_loopback_outgoing(lo_index: int) -> list[tuple[int, int, int, int]]:
    """BPF that rejects the copy of a loopback frame on its way out.

    A loopback frame passes the tap twice, sent then received; libpcap keeps
    one (the received one).  Rejecting the other in the kernel halves the
    work and the ring space, and the kernel's counters count each frame once."""
    return [
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_PKTTYPE),
        (_BPF_JEQ_K, 0, 3, _PACKET_OUTGOING),  # not outgoing: on to the filter
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_IFINDEX),
        (_BPF_JEQ_K, 0, 1, lo_index),  # outgoing on another interface: on to the filter
        (_BPF_RET_K, 0, 0, 0),
    ]


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native alignment)
    fprog = struct.pack("HP", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _bind(sock: socket.socket, ifindex: int) -> None:
    """bind(2) to an interface index; 0 is every interface (Python's bind() wants a name)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    # struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
    addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(_ETH_P_ALL), ifindex, 0, 0, 0, b"")
    if libc.bind(sock.fileno(), addr, len(addr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class LiveCapture:
    """Frames from one interface (or ``any``); iterate, or call :meth:`read` for batches.

    Raises :class:`CaptureError` when the interface does not exist, the
    filter does not compile, or the process may not capture (no root or
    CAP_NET_RAW).  ``buffer_bytes`` is the size of the kernel ring.
    """

    #: ring block size: holds the largest frame (64 KiB GSO packets on loopback) with room to spare
    BLOCK = 256 << 10
    #: a block not yet full is handed over after this many milliseconds (the view's latency)
    BLOCK_TIMEOUT_MS = 50

    def __init__(self, interface: str, bpf: str | None = None, buffer_bytes: int = 64 << 20) -> None:
        if not hasattr(socket, "AF_PACKET"):
            raise CaptureError("live capture needs Linux (AF_PACKET sockets)")
        self.interface = interface
        self.bpf = bpf or ""
        self.linktype = interface_linktype(interface)
        self.cooked = interface == "any"
        self.received = 0
        self.dropped = 0  # kernel drops (the ring was full)
        self._kernel_seen = 0
        self._stats_lock = threading.Lock()
        self.closed = True
        try:
            ifindex = 0 if self.cooked else socket.if_nametoindex(interface)
        except OSError:
            raise CaptureError(f"no network interface named {interface!r}") from None
        try:
            # protocol 0: the socket receives nothing until bind() names a protocol,
            # so the filter is in place before the first packet.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(
                f"capturing on {interface} needs root or the CAP_NET_RAW capability "
                f"(try: sudo netinspect ..., or setcap cap_net_raw+ep on the Python binary)") from None
        except OSError as e:
            raise CaptureError(f"cannot open a capture socket: {e.strerror or e}") from None
        self._sock = sock
        self._map: mmap.mmap | None = None
        try:
            program = compile_bpf(interface, self.bpf, self.linktype) if self.bpf else [(_BPF_RET_K, 0, 0, _MAX_FRAME)]
            if self.cooked or self._is_loopback(interface):
                program = _skip_loopback_outgoing(socket.if_nametoindex("lo")) + program
            _attach_filter(sock, program)
            sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
            self._nblocks = max(8, buffer_bytes // self.BLOCK)
            size = self._nblocks * self.BLOCK
            # block size, block count, frame size (V3 frames are variable: only a bound), frame count,
            # block timeout (ms), private area, features
            sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, _REQ3.pack(
                self.BLOCK, self._nblocks, 2048, size // 2048, self.BLOCK_TIMEOUT_MS, 0, 0))
            self._map = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            _bind(sock, ifindex)
        except CaptureError:
            self._release()
            raise
        except OSError as e:
            self._release()
            raise CaptureError(f"cannot capture on {interface}: {e.strerror or e}") from None
        self._block = 0  # the next block to look at
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self.closed = False

    def _release(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self._sock.close()

    @staticmethod
    def _is_loopback(interface: str) -> bool:
        try:
            with open(f"/sys/class/net/{interface}/type", encoding="ascii") as f:
                return f.read().strip() == "772"
        except OSError:
            return False

    def _take_block(self, out: list[Packet]) -> bool:
        """Move the frames of the next block to ``out`` if the kernel has handed it over."""
        ring = self._map
        base = self._block * self.BLOCK
        status, count, first = _BLOCK.unpack_from(ring, base + 8)
        if not status & _TP_STATUS_USER:
            return False
        linktype = self.linktype
        hdr = _HDR3.unpack_from
        append = out.append
        at = base + first
        if self.cooked:
            sll, sll2 = _SLL.unpack_from, _SLL2.pack
            for _ in range(count):
                step, sec, nsec, snap, length, _st, mac, _net, _h, _tci, _tpid = hdr(ring, at)
                _fam, proto, ifindex, hatype, pkttype, halen, addr = sll(ring, at + _SLL_AT)
                head = sll2(proto, 0, ifindex, hatype, pkttype, halen, addr)
                append((sec + nsec * 1e-9, linktype, head + ring[at + mac : at + mac + snap], length + 20))
                at += step
        else:
            for _ in range(count):
                step, sec, nsec, snap, length, st, mac, _net, _h, tci, tpid = hdr(ring, at)
                data = ring[at + mac : at + mac + snap]
                if st & _TP_STATUS_VLAN_VALID and linktype == 1:
                    # the driver took the 802.1Q tag out: put it back, as libpcap does
                    tag = struct.pack(">HH", tpid if st & _TP_STATUS_VLAN_TPID_VALID else 0x8100, tci)
                    data = data[:12] + tag + data[12:]
                    length += 4
                append((sec + nsec * 1e-9, linktype, data, length))
                at += step
        ring[base + 8 : base + 12] = _TP_STATUS_KERNEL  # the block goes back to the kernel
        self._block = (self._block + 1) % self._nblocks
        self.received += count
        return True

    def read(self, timeout: float = 0.1, limit: int = 4096) -> list[Packet]:
        """Wait up to ``timeout`` s for packets, then take every block ready (at least ``limit`` packets' worth)."""
        out: list[Packet] = []
        if self.closed:
            return out
        deadline = time.monotonic() + timeout
        while len(out) < limit:
            if self._take_block(out):
                continue
            if out:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self._poll.poll(max(1, int(left * 1000)))
            except InterruptedError:
                pass
            if self.closed:
                break
        return out

    def stats(self) -> tuple[int, int]:
        """(packets received by us, packets the kernel dropped) so far."""
        with self._stats_lock:  # the kernel resets its counters on each read: add each read once
            if not self.closed:
                try:
                    raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)
                    seen, drops, _freezes = _STATS.unpack(raw)
                    self._kernel_seen += seen
                    self.dropped += drops
                except OSError:
                    pass
        return self.received, self.dropped

    def __iter__(self) -> Iterator[Packet]:
        while not self.closed:
            yield from self.read(0.2)

    def close(self) -> None:
        """Stop capturing (call from the thread that reads, or once it has stopped)."""
        if not self.closed:
            self.stats()
            with self._stats_lock:
                self.closed = True
                self._release()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureThread(threading.Thread):
    """Empties a :class:`LiveCapture` into a queue (and a :class:`PcapngWriter`) until stopped.

    Capturing never waits for decoding: the consumer takes what has
    arrived with :meth:`take` at its own pace (the queue grows while it
    lags).  :meth:`stop` ends the capture once the frames the kernel
    already holds are taken; the capture is closed when the thread ends.
    """

    def __init__(self, capture: LiveCapture, writer: PcapngWriter | None = None) -> None:
        super().__init__(name="netinspect-capture", daemon=True)
        self.capture = capture
        self.writer = writer
        self.queued = 0
        self.error: BaseException | None = None
        self.ended: float | None = None  #: time.monotonic() when the capture ended
        self._queue: deque[list[Packet]] = deque()
        self._arrived = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        capture, writer = self.capture, self.writer
        try:
            while True:
                last = self._stopping.is_set()
                # a last look that lasts longer than the block timeout gets the block being filled
                batch = capture.read(capture.BLOCK_TIMEOUT_MS / 500 if last else 0.1)
                if batch:
                    if writer is not None:
                        writer.write_batch(batch)
                    self._queue.append(batch)
                    self.queued += len(batch)
                    self._arrived.set()
                elif last:
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self.error = e
        finally:
            capture.close()
            if writer is not None:
                writer.flush()
            self.ended = time.monotonic()
            self._arrived.set()

    def stop(self) -> None:
        """Take what the kernel holds, then end (returns at once; :meth:`join` waits)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def take(self, timeout: float = 0.05, limit: int = 1 << 30) -> list[Packet]:
        """The frames captured since the last call (up to about ``limit``), waiting up to ``timeout`` s for some."""
        queue = self._queue
        if not queue and self.is_alive():
            self._arrived.wait(timeout)
        self._arrived.clear()
        out: list[Packet] = []
        while queue and len(out) < limit:
            out += queue.popleft()
        if queue:
            self._arrived.set()
        return out

    @property
    def pending(self) -> int:
        """Frames captured and not yet taken."""
        return sum(len(b) for b in list(self._queue))


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


_EPB_HEAD = struct.Struct("<IIIIIII")  # type, total length, interface, time high, time low, captured, original
_U32 = struct.Struct("<I")
_PADS = (b"", b"\0", b"\0\0", b"\0\0\0")


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

    def write_batch(self, packets: list[Packet]) -> None:
        """Write a batch of ``(ts, linktype, data, orig_len)`` and flush it to the file."""
        parts: list[bytes] = []
        head, u32, pads = _EPB_HEAD.pack, _U32.pack, _PADS
        for ts, _lt, data, orig in packets:
            n = len(data)
            pad = -n & 3
            total = 32 + n + pad
            ns = round(ts * 1e9)
            parts += (head(_EPB, total, 0, ns >> 32, ns & 0xFFFFFFFF, n, orig), data, pads[pad], u32(total))
        self._f.write(b"".join(parts))
        self._f.flush()
        self.packets += len(packets)

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

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
