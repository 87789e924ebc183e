"""Read pcap and pcapng captures (plain or gzip-compressed), lazily.

Both formats are read here with one precompiled ``struct`` per record header
over large buffered reads.  dpkt's readers are well kept but cost an object
per record (about 2x our time on a 400k-packet capture) and its pcapng reader
follows only the first interface, so it cannot give per-interface link types
and ``if_tsresol``, nor Decryption Secrets Blocks.

A reader yields ``(ts, linktype, data, orig_len)`` per packet in capture
order; frames are numbered from 1 by the consumer, exactly like Wireshark's
``frame.number`` (only packet blocks count).  Problems part-way through set
:attr:`CaptureReader.warning` (shown once) and end the iteration; a file that
is not a capture at all raises :class:`~inspector.errors.CaptureError`.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..errors import CaptureError

_CHUNK = 1 << 20
#: Largest record we accept; Wireshark's limit for most link types is 256 KiB.
MAX_RECORD = 1 << 18

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_GZIP = b"\x1f\x8b"

#: pcapng Decryption Secrets Block secret types (pcapng spec, section 4.7).
SECRETS_TLS_KEYLOG = 0x544C534B

Packet = tuple[float, int, bytes, int]


class CaptureReader:
    """Iterate over the packets of a capture file; see the module docstring."""

    def __init__(self, path: str, on_secrets: Callable[[str], object] | None = None) -> None:
        self.path = path
        self.on_secrets = on_secrets
        self.warning: str | None = None
        self.format = ""
        self.compressed = False
        self.comments: dict[int, str] = {}  # packet ordinal (1-based) -> comment
        self._f = self._open(path)
        try:
            head = self._f.read(4)
        except (OSError, EOFError, zlib.error) as e:  # a gzip file damaged in its first block (found by fuzzing)
            self._f.close()
            raise CaptureError(f"{path}: damaged compressed data ({e})") from None
        if not head:
            self._f.close()
            raise CaptureError(f"{path}: empty file")
        if head in _PCAP_MAGICS:
            self.format = "pcap"
        elif head == _PCAPNG_SHB:
            self.format = "pcapng"
        else:
            self._f.close()
            raise CaptureError(f"{path}: not a pcap or pcapng capture")
        self._head = head

    def _open(self, path: str) -> BinaryIO:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by close()/iteration end
        except IsADirectoryError:
            raise CaptureError(f"{path}: is a directory") from None
        except OSError as e:
            raise CaptureError(f"{path}: {e.strerror or e}") from None
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if magic == _GZIP:
            self.compressed = True
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Packet]:
        try:
            if self.format == "pcap":
                yield from self._pcap()
            else:
                yield from self._pcapng()
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            # A damaged gzip stream or a read error part-way: keep what we have.
            self._warn(f"capture ends early: {e}")
        finally:
            self._f.close()

    def _warn(self, message: str) -> None:
        if self.warning is None:
            self.warning = message

    # ------------------------------------------------------------------ pcap

    def _pcap(self) -> Iterator[Packet]:
        endian, scale = _PCAP_MAGICS[self._head]
        rest = self._f.read(20)
        if len(rest) < 20:
            raise CaptureError(f"{self.path}: pcap file header is truncated")
        _vmaj, _vmin, _zone, _sigfigs, _snaplen, linktype = struct.unpack(endian + "HHiIII", rest)
        linktype &= 0xFFFF  # upper bits carry FCS information
        unpack = struct.Struct(endian + "IIII").unpack_from
        read = self._f.read
        buf = b""
        pos = 0
        n = 0  # len(buf)
        while True:
            if n - pos < 16:
                buf = buf[pos:] + read(_CHUNK)
                pos = 0
                n = len(buf)
                if n < 16:
                    if buf:
                        self._warn("capture is cut short in the middle of a packet header")
                    return
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > MAX_RECORD:
                self._warn(f"capture is corrupt: a {incl}-byte packet is larger than the {MAX_RECORD}-byte maximum")
                return
            start = pos + 16
            end = start + incl
            if end > n:
                buf = buf[pos:] + read(max(_CHUNK, incl + 16))
                pos = 0
                n = len(buf)
                start, end = 16, 16 + incl
                if end > n:
                    self._warn("capture is cut short in the middle of a packet")
                    return
            pos = end
            yield sec + frac * scale, linktype, buf[start:end], orig

    # ------------------------------------------------------------------ pcapng

    def _pcapng(self) -> Iterator[Packet]:
        f = self._f
        stream = _BlockStream(f, self._head)
        endian = "<"
        # per-section interface table: (linktype, ts_unit_seconds, ts_offset_seconds, snaplen)
        interfaces: list[tuple[int, float, int, int]] = []
        last_ts = 0.0
        ordinal = 0
        while True:
            got = stream.next_block(endian)
            if got is None:
                if stream.error:
                    self._warn(stream.error)
                return
            btype, body, endian = got
            if btype == 0x0A0D0D0A:  # Section Header Block: new section, new interfaces
                interfaces = []
                continue
            if btype == 0x00000006:  # Enhanced Packet Block
                if len(body) < 20:
                    self._warn("capture is corrupt: short enhanced packet block")
                    return
                iface, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(endian + "IIIII", body, 0)
                if iface >= len(interfaces) or caplen > len(body) - 20:
                    self._warn("capture is corrupt: enhanced packet block names an unknown interface or overruns")
                    return
                linktype, unit, offset, _snap = interfaces[iface]
                last_ts = ((ts_hi << 32) | ts_lo) * unit + offset
                ordinal += 1
                opts_at = 20 + ((caplen + 3) & ~3)
                if opts_at < len(body):
                    self._packet_comment(ordinal, body, opts_at, endian)
                yield last_ts, linktype, body[20 : 20 + caplen], origlen
            elif btype == 0x00000003:  # Simple Packet Block: no timestamp, interface 0
                if not interfaces or len(body) < 4:
                    self._warn("capture is corrupt: simple packet block before any interface")
                    return
                (origlen,) = struct.unpack_from(endian + "I", body, 0)
                linktype, _unit, _off, snap = interfaces[0]
                caplen = min(origlen, len(body) - 4, snap or origlen)
                ordinal += 1
                # No timestamp in an SPB: reuse the previous packet's so durations stay sane.
                yield last_ts, linktype, body[4 : 4 + caplen], origlen
            elif btype == 0x00000002:  # obsolete Packet Block
                if len(body) < 20:
                    self._warn("capture is corrupt: short packet block")
                    return
                iface, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(endian + "HHIIII", body, 0)
                if iface >= len(interfaces) or caplen > len(body) - 20:
                    self._warn("capture is corrupt: packet block names an unknown interface or overruns")
                    return
                linktype, unit, offset, _snap = interfaces[iface]
                last_ts = ((ts_hi << 32) | ts_lo) * unit + offset
                ordinal += 1
                yield last_ts, linktype, body[20 : 20 + caplen], origlen
            elif btype == 0x00000001:  # Interface Description Block
                if len(body) < 8:
                    self._warn("capture is corrupt: short interface description block")
                    return
                linktype, _res, snaplen = struct.unpack_from(endian + "HHI", body, 0)
                unit, offset = 1e-6, 0
                for code, value in _options(body, 8, endian):
                    if code == 9 and value:  # if_tsresol
                        r = value[0]
                        unit = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                    elif code == 14 and len(value) == 8:  # if_tsoffset
                        (offset,) = struct.unpack(endian + "q", value)
                interfaces.append((linktype, unit, offset, snaplen))
            elif btype == 0x0000000A:  # Decryption Secrets Block
                if len(body) >= 8:
                    stype, slen = struct.unpack_from(endian + "II", body, 0)
                    if stype == SECRETS_TLS_KEYLOG and self.on_secrets is not None:
                        self.on_secrets(body[8 : 8 + slen].decode("utf-8", "replace"))
            # other blocks (name resolution, statistics, custom) carry nothing we need

    def _packet_comment(self, ordinal: int, body: bytes, at: int, endian: str) -> None:
        for code, value in _options(body, at, endian):
            if code == 1:  # opt_comment
                self.comments[ordinal] = value.decode("utf-8", "replace")


def _options(body: bytes, at: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options (code, value) from ``at`` until opt_endofopt or the end."""
    n = len(body)
    while at + 4 <= n:
        code, length = struct.unpack_from(endian + "HH", body, at)
        if code == 0:
            return
        value = body[at + 4 : at + 4 + length]
        if len(value) < length:
            return
        yield code, value
        at += 4 + ((length + 3) & ~3)


class _BlockStream:
    """Splits a pcapng file into blocks, following byte-order changes per section."""

    def __init__(self, f: BinaryIO | io.BufferedIOBase, head: bytes) -> None:
        self._f = f
        self._pending = head
        self.error: str | None = None

    def _read(self, n: int) -> bytes:
        data = self._pending[:n]
        self._pending = self._pending[n:]
        if len(data) < n:
            data += self._f.read(n - len(data))
        return data

    def next_block(self, endian: str) -> tuple[int, bytes, str] | None:
        head = self._read(8)
        if not head:
            return None
        if len(head) < 8:
            self.error = "capture is cut short in the middle of a block header"
            return None
        if head[:4] == _PCAPNG_SHB:
            bom = self._read(4)
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                self.error = "capture is corrupt: bad section header byte-order magic"
                return None
            (total,) = struct.unpack(endian + "I", head[4:])
            if total < 28 or total % 4 or total > 1 << 24:
                self.error = "capture is corrupt: bad section header length"
                return None
            rest = self._read(total - 12)
            if len(rest) < total - 12:
                self.error = "capture is cut short in a section header"
                return None
            return 0x0A0D0D0A, bom + rest[:-4], endian
        btype, total = struct.unpack(endian + "II", head)
        if total < 12 or total % 4 or total > 1 << 24:
            self.error = f"capture is corrupt: block of {total} bytes"
            return None
        rest = self._read(total - 8)
        if len(rest) < total - 8:
            self.error = "capture is cut short in the middle of a packet"
            return None
        return btype, rest[:-4], endian
