"""Open and re-seal the QUIC packets of a seed, so mutations reach the frames.

Mutating a protected packet only exercises the "does not decrypt" path.  The
QUIC target therefore also mutates *plaintext*: it opens a packet with
aioquic's own packet protection (Initial keys from the client's first DCID,
the others from the seed's key log), mutates the frames, fixes the Length
field and seals it again with the same keys.  The mutated datagram is an
ordinary input: a finding replays with nothing but its datagrams and key log.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aioquic.quic.crypto import CryptoContext, CryptoPair
from aioquic.quic.packet import decode_packet_number
from aioquic.tls import CipherSuite

from inspector.decoders.base import DecodeContext
from inspector.decoders.quic import QuicDecoder
from inspector.keylog import KeyLog

from . import records as R

VERSION_2 = 0x6B3343CF
#: long-header type bits -> name, per version (RFC 9000 §17.2, RFC 9369 §3.2)
_LONG_TYPES = {1: ("initial", "0rtt", "handshake", "retry"), VERSION_2: ("retry", "initial", "0rtt", "handshake")}
_LABELS = {("0rtt", 0): "CLIENT_EARLY_TRAFFIC_SECRET", ("handshake", 0): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
           ("handshake", 1): "SERVER_HANDSHAKE_TRAFFIC_SECRET", ("1rtt", 0): "CLIENT_TRAFFIC_SECRET_0",
           ("1rtt", 1): "SERVER_TRAFFIC_SECRET_0"}
_SPACE = {"initial": "initial", "handshake": "handshake", "0rtt": "app", "1rtt": "app"}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    size = 1 << (first >> 6)
    if pos + size > len(buf):
        raise IndexError("varint past the end")
    return int.from_bytes(buf[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1), pos + size


class _Packet:
    __slots__ = ("start", "end", "kind", "pn_offset", "len_start")

    def __init__(self, start: int, end: int, kind: str, pn_offset: int, len_start: int | None) -> None:
        self.start, self.end, self.kind, self.pn_offset, self.len_start = start, end, kind, pn_offset, len_start


class Protector:
    """Keys of one seed's QUIC connection, and the packet numbers seen per space."""

    def __init__(self, recs: list[R.Record]) -> None:
        keytext = b"".join(d for k, d in recs if k == R.KEYLOG).decode(errors="replace")
        datagrams = [(k, d) for k, d in recs if k in (R.C2S, R.S2C)]
        keylog = KeyLog()
        keylog.add_text(keytext)
        # the decoder under test only tells us the client random and suite it saw (facts of the seed)
        dec = QuicDecoder(DecodeContext(conn=0, client=("127.0.0.1", 50000), server=("127.0.0.1", 443), keylog=keylog))
        for i, (d, data) in enumerate(datagrams):
            dec.datagram(d, data, i + 1, 1.0 + i / 1000)
        self.version = dec.version or 1
        self.cids: set[bytes] = set()
        self.keys: dict[tuple[str, int], CryptoContext] = {}
        self.pns: dict[tuple[int, str], set[int]] = {}
        first = next((d for k, d in datagrams if k == R.C2S and d and d[0] & 0x80), None)
        if first is not None and len(first) > 6:
            dcid = first[6 : 6 + first[5]]
            pair = CryptoPair()
            pair.setup_initial(dcid, is_client=True, version=self.version)
            self.keys[("initial", 0)], self.keys[("initial", 1)] = pair.send, pair.recv
        if dec.client_random is not None:
            for (kind, d), label in _LABELS.items():
                secret = keylog.get(dec.client_random, label)
                if secret is None:
                    continue
                suite = dec.suite or (CipherSuite.AES_256_GCM_SHA384 if len(secret) == 48
                                      else CipherSuite.AES_128_GCM_SHA256)
                ctx = CryptoContext()
                ctx.setup(cipher_suite=suite, secret=secret, version=self.version)
                self.keys[(kind, d)] = ctx
        # walk the seed once: connection IDs (for short headers) and packet numbers per space
        for d, data in datagrams:
            for pkt in self._packets(data):
                if pkt.kind != "1rtt":
                    self.cids.add(data[pkt.start + 7 + data[pkt.start + 5] : pkt.start + 7 + data[pkt.start + 5]
                                       + data[pkt.start + 6 + data[pkt.start + 5]]])
        for d, data in datagrams:
            for pkt in self._packets(data):
                self._open(d, data, pkt)

    @property
    def usable(self) -> bool:
        return bool(self.keys)

    def _packets(self, data: bytes) -> list[_Packet]:
        """The packets of a datagram this module can re-seal (stops at anything it cannot parse)."""
        out: list[_Packet] = []
        pos = 0
        try:
            while pos < len(data):
                first = data[pos]
                if first & 0x80:
                    version = int.from_bytes(data[pos + 1 : pos + 5], "big")
                    types = _LONG_TYPES.get(version)
                    if types is None:
                        break
                    kind = types[(first & 0x30) >> 4]
                    if kind == "retry":
                        break
                    p = pos + 5
                    p += 1 + data[p]  # DCID
                    p += 1 + data[p]  # SCID
                    if kind == "initial":
                        token_len, p = _varint(data, p)
                        p += token_len
                    len_start = p
                    length, p = _varint(data, p)
                    end = p + length
                    if end > len(data) or length < 20:
                        break
                    out.append(_Packet(pos, end, kind, p, len_start))
                    pos = end
                else:
                    for cid in self.cids:
                        if data[pos + 1 : pos + 1 + len(cid)] == cid:
                            out.append(_Packet(pos, len(data), "1rtt", pos + 1 + len(cid), None))
                            break
                    break
        except IndexError:
            pass
        return out

    def _open(self, d: int, data: bytes, pkt: _Packet) -> tuple[bytes, bytes, int, CryptoContext] | None:
        ctx = self.keys.get((pkt.kind, d))
        if ctx is None:
            return None
        packet = data[pkt.start : pkt.end]
        off = pkt.pn_offset - pkt.start
        try:
            plain_header, truncated = ctx.hp.remove(packet, off)
        except Exception:  # noqa: BLE001 - too short to sample: not re-sealable
            return None
        bits = ((plain_header[0] & 3) + 1) * 8
        seen = self.pns.setdefault((d, _SPACE[pkt.kind]), set())
        for expected in sorted({decode_packet_number(truncated, bits, e + 1) for e in seen} | {truncated}):
            try:
                payload = ctx.aead.decrypt(packet[len(plain_header) :], plain_header, expected)
            except Exception:  # noqa: BLE001 - wrong guess of the packet number, or a key update
                continue
            seen.add(expected)
            return plain_header, payload, expected, ctx
        return None

    def mutate(self, rng: random.Random, recs: list[R.Record],
               mutate_payload: Callable[[random.Random, bytes], bytes]) -> list[R.Record] | None:
        """``recs`` with the plaintext of one packet mutated and sealed again (None if none opens)."""
        idx = [i for i, (k, d) in enumerate(recs) if k in (R.C2S, R.S2C) and d]
        rng.shuffle(idx)
        for i in idx[:8]:
            d, data = recs[i]
            pkts = self._packets(data)
            if not pkts:
                continue
            pkt = rng.choice(pkts)
            opened = self._open(d, data, pkt)
            if opened is None:
                continue
            plain_header, payload, pn, ctx = opened
            payload = mutate_payload(rng, payload)
            pn_len = (plain_header[0] & 3) + 1
            if pn_len + len(payload) < 4:  # header protection samples 4 bytes past the packet number
                payload += bytes(4 - pn_len - len(payload))
            if pkt.len_start is not None:
                length = pn_len + len(payload) + 16
                field = (0x4000 | length).to_bytes(2, "big") if length < 0x4000 else \
                    (0x80000000 | length).to_bytes(4, "big")
                rel = pkt.len_start - pkt.start
                header = plain_header[:rel] + field + plain_header[pkt.pn_offset - pkt.start :]
            else:
                header = plain_header
            sealed = ctx.hp.apply(header, ctx.aead.encrypt(payload, header, pn))
            out = list(recs)
            out[i] = (d, data[: pkt.start] + sealed + data[pkt.end :])
            return out
        return None
