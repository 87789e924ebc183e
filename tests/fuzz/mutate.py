"""Mutations: byte level (flips, insert/delete, splice, truncation, boundary
values of length fields) and record level (re-chunking, reordering,
duplication, gaps, splicing records of other inputs).

All randomness comes from the ``random.Random`` passed in, so a run is
reproducible from its seed.
"""

from __future__ import annotations

import random

from . import records as R

#: values that sit on the edges of 1/2/3/4/8-byte length fields and QUIC varints
BOUNDARIES = (0, 1, 2, 3, 7, 8, 0x3F, 0x40, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFF,
              0x10000, 0x3FFFFFFF, 0x40000000, 0x7FFFFFFF, 0x80000000, 0xFFFFFF, 0x1000000, 0xFFFFFFFF,
              (1 << 62) - 1, (1 << 63) - 1, (1 << 64) - 1)
#: tokens of the text protocols (HTTP/1.x, SSE, WebSocket handshakes)
TOKENS = (b"\r\n", b"\r\n\r\n", b"\n\n", b"\n", b"\r", b":", b": ", b" ", b"\x00", b"0\r\n\r\n", b"ffffffff\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: 18446744073709551616\r\n", b"Content-Length: -1\r\n",
          b"HTTP/1.1 101 Switching Protocols\r\n", b"HTTP/1.1 200 OK\r\n", b"GET / HTTP/1.1\r\n",
          b"Upgrade: websocket\r\n", b"Connection: Upgrade\r\n", b"Content-Type: text/event-stream\r\n",
          b"data:", b"id:", b"retry:", b"event:", b"\xef\xbb\xbf", b"\xff\xfe", b"%", b"\x80")


def _varint(value: int, size: int) -> bytes:
    """QUIC variable-length integer of ``size`` bytes (value truncated to fit)."""
    bits = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    value &= (1 << (8 * size - 2)) - 1
    return ((bits << (8 * size - 2)) | value).to_bytes(size, "big")


def mutate_bytes(rng: random.Random, data: bytes, donor: bytes = b"") -> bytes:
    """One to four stacked byte-level mutations of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        n = len(buf)
        op = rng.randrange(13)
        if op == 0 and n:  # flip one bit
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # flip several bits near each other
            i = rng.randrange(n)
            for j in range(i, min(n, i + rng.randrange(1, 9))):
                if rng.random() < 0.5:
                    buf[j] ^= 1 << rng.randrange(8)
        elif op == 2 and n:  # set a byte to an interesting value
            buf[rng.randrange(n)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 3:  # insert random bytes
            i = rng.randrange(n + 1)
            buf[i:i] = rng.randbytes(rng.choice((1, 1, 2, 4, 16, 100)))
        elif op == 4 and n:  # delete a range
            i = rng.randrange(n)
            del buf[i : i + rng.choice((1, 1, 2, 4, 16, 200))]
        elif op == 5 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif op == 6 and n:  # a big-endian (or little-endian) boundary value over a length field
            size = rng.choice((1, 2, 2, 3, 4, 4, 8))
            value = rng.choice(BOUNDARIES) + rng.choice((0, 0, 0, -1, 1))
            value &= (1 << (8 * size)) - 1
            i = rng.randrange(max(1, n - size + 1))
            buf[i : i + size] = value.to_bytes(size, rng.choice(("big", "big", "big", "little")))
        elif op == 7 and n:  # a QUIC varint boundary value
            size = rng.choice((1, 2, 4, 8))
            i = rng.randrange(n)
            buf[i : i + size] = _varint(rng.choice(BOUNDARIES), size)
        elif op == 8 and n:  # duplicate a range in place
            i = rng.randrange(n)
            j = min(n, i + rng.choice((1, 4, 16, 64, 512)))
            buf[j:j] = buf[i:j] * rng.choice((1, 1, 2, 16))
        elif op == 9 and donor:  # splice a range of another input in
            a = rng.randrange(len(donor))
            piece = donor[a : a + rng.choice((4, 16, 64, 256, 4096))]
            i = rng.randrange(n + 1)
            if rng.random() < 0.5:
                buf[i : i + len(piece)] = piece
            else:
                buf[i:i] = piece
        elif op == 10:  # a protocol token
            i = rng.randrange(n + 1)
            tok = rng.choice(TOKENS)
            if rng.random() < 0.5:
                buf[i:i] = tok
            else:
                buf[i : i + len(tok)] = tok
        elif op == 11 and n > 1:  # move a block (reorder bytes)
            i = rng.randrange(n)
            j = min(n, i + rng.choice((2, 8, 32, 256)))
            block = bytes(buf[i:j])
            del buf[i:j]
            k = rng.randrange(len(buf) + 1)
            buf[k:k] = block
        elif op == 12 and n:  # increment/decrement a byte (off-by-one lengths)
            i = rng.randrange(n)
            buf[i] = (buf[i] + rng.choice((-1, 1))) & 0xFF
    return bytes(buf)


def split_record(rng: random.Random, recs: list[R.Record], kinds: frozenset[int]) -> None:
    """Split one data record into two at a random offset (chunking at random offsets)."""
    idx = [i for i, (k, d) in enumerate(recs) if k in kinds and len(d) > 1]
    if idx:
        i = rng.choice(idx)
        kind, data = recs[i]
        cut = rng.randrange(1, len(data))
        recs[i : i + 1] = [(kind, data[:cut]), (kind, data[cut:])]


def rechunk(rng: random.Random, recs: list[R.Record], kinds: frozenset[int]) -> list[R.Record]:
    """Each direction's bytes in new random pieces (1 byte to 4 KiB), directions interleaved as before."""
    out: list[R.Record] = []
    pending: dict[int, bytes] = {}
    for kind, data in recs:
        if kind in kinds:
            pending[kind] = pending.get(kind, b"") + data
            while pending[kind] and rng.random() < 0.7:
                n = rng.choice((1, 2, 3, 7, 64, 500, 1460, 4096))
                out.append((kind, pending[kind][:n]))
                pending[kind] = pending[kind][n:]
        else:
            out.append((kind, data))
    for kind, rest in pending.items():
        if rest:
            out.append((kind, rest))
    return out


def mutate_records(rng: random.Random, recs: list[R.Record], kinds: frozenset[int], donor: list[R.Record],
                   gaps: bool = False) -> list[R.Record]:
    """One record-level or byte-level mutation of a record list (``kinds`` are the mutable data records)."""
    recs = list(recs)
    data_idx = [i for i, (k, _) in enumerate(recs) if k in kinds]
    donor_data = [d for k, d in donor if k in kinds and d]
    op = rng.randrange(20)
    if op < 9 and data_idx:  # mutate the bytes of one record
        i = rng.choice(data_idx)
        kind, data = recs[i]
        recs[i] = (kind, mutate_bytes(rng, data, rng.choice(donor_data) if donor_data else b""))
    elif op == 9:
        split_record(rng, recs, kinds)
    elif op == 10 and len(data_idx) > 1:  # merge two neighbouring records of one kind
        i = rng.randrange(len(recs) - 1)
        if recs[i][0] == recs[i + 1][0] and recs[i][0] in kinds:
            recs[i : i + 2] = [(recs[i][0], recs[i][1] + recs[i + 1][1])]
    elif op == 11:
        recs = rechunk(rng, recs, kinds)
    elif op == 12 and data_idx:  # drop a record (a segment or datagram lost)
        i = rng.choice(data_idx)
        kind, data = recs.pop(i)
        if gaps and kind in (R.C2S, R.S2C):
            recs.insert(i, R.gap(kind, len(data)))
    elif op == 13 and data_idx:  # duplicate a record (retransmission, replay)
        i = rng.choice(data_idx)
        recs.insert(rng.randrange(i, len(recs) + 1), recs[i])
    elif op == 14 and len(data_idx) > 1:  # swap two records (reordering)
        i, j = rng.sample(data_idx, 2)
        recs[i], recs[j] = recs[j], recs[i]
    elif op == 15 and data_idx:  # cut the input short
        del recs[rng.choice(data_idx) + rng.randrange(2) :]
    elif op == 16 and gaps:  # a gap that never fills
        i = rng.randrange(len(recs) + 1)
        recs.insert(i, R.gap(rng.randrange(2), rng.choice((1, 2, 100, 1460, 65536, 1 << 24, (1 << 31) - 1))))
    elif op == 17 and donor_data:  # a record of another input spliced in
        kinds_list = sorted(kinds)
        recs.insert(rng.randrange(len(recs) + 1), (rng.choice(kinds_list), rng.choice(donor_data)))
    elif op == 18 and data_idx:  # empty record
        i = rng.choice(data_idx)
        recs[i] = (recs[i][0], b"")
    elif data_idx:  # flip a record's direction
        i = rng.choice(data_idx)
        kind, data = recs[i]
        if kind in (R.C2S, R.S2C):
            recs[i] = (1 - kind, data)
    return recs


__all__ = ["mutate_bytes", "mutate_records", "rechunk", "split_record", "BOUNDARIES"]
