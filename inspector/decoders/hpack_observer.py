"""HPACK (RFC 7541) decoding for a passive observer of one HTTP/2 direction.

Why not ``hpack.Decoder``: on header blocks like curl's and nginx's it costs
23-40 us per block here (pure-Python per-header objects), which alone would
spend most of the HTTP/2 benchmark budget; this decoder takes 3-6 us on the same
blocks.  It still uses hpack's static table, and the tests check it against the
RFC 7541 Appendix C vectors and against ``hpack.Decoder`` itself.

Huffman strings: every request in the HTTP/2 benchmark carries a new one (its
path).  Compiled (setup.py), this module runs hpack's decoding automaton
(nghttp2's, 4 bits at a time) over C arrays in :func:`huffman_octets`, ~4x
cheaper than the next best, a call into ls-qpack (``pylsqpack``, C): QPACK
string literals are HPACK's, same prefix and same Huffman code (RFC 9204
§4.1.2), so an HPACK string wrapped in a one-line QPACK field section decodes
in ~1.3 us, where the automaton as Python (hpack's ``decode_huffman``) takes
~8 us for a 14-octet path.  So as Python this module uses ls-qpack, except for
strings beyond its 64 KiB field limit.

What an observer needs beyond an endpoint's decoder:

* **Missing header blocks.**  When a block is missing from the capture the
  dynamic table is out of sync.  :meth:`HpackObserver.lose_sync` forgets the
  table: entries inserted afterwards are known exactly (they are the newest,
  so their indices are known), references to anything older decode to
  ``None`` and the block is reported unreliable.  Once the entries inserted
  since the loss fill the table (no room is left for even the smallest
  older entry, 32 octets, or one of them is evicted) or a size update to 0
  empties it, the table is in sync again.  (A size update inside a lost block is only learnt at the next
  update; until then eviction follows the last size seen.)
* **Bounded memory.**  The table never exceeds the size the peer allowed
  (SETTINGS_HEADER_TABLE_SIZE); a header list larger than
  ``max_header_list_size`` is still decoded to keep the table in sync, but
  only its first fields are kept and the block is reported as oversized.
* **Measured compression.**  ``encoded_bytes`` and ``plain_bytes`` add up, per
  direction, the header block octets and the size of the same fields written
  out as ``name: value\\r\\n`` lines.
"""

from __future__ import annotations

from collections import deque

from hpack.huffman_table import HUFFMAN_TABLE
from hpack.table import HeaderTable
from pylsqpack import DecompressionFailed
from pylsqpack import Decoder as _QpackDecoder

from ..errors import DecodeError

#: RFC 7541 Appendix A, as (name, value, entry size, [name, value]) with 1-based indices.
_STATIC: tuple[tuple[str, str, int, list[str]], ...] = ((("", "", 0, ["", ""]),) + tuple(
    (n.decode("ascii"), v.decode("ascii"), len(n) + len(v) + 32, [n.decode("ascii"), v.decode("ascii")])
    for n, v in HeaderTable.STATIC_TABLE
))
_STATIC_LEN = len(_STATIC) - 1  # 61
#: Indexed field octets 0x81-0xBD (static indices 1-61) -> (entry size, [name, value]); list-indexed by octet.
_INDEXED_STATIC: list[tuple[int, list[str]] | None] = [None] * 0x81 + [(e[2], e[3]) for e in _STATIC[1:]]
assert len(_INDEXED_STATIC) == 0xBE
#: Distinct literal fields whose ``[name, value]`` list is shared, per direction (then started afresh).
_PAIRS_LIMIT = 4096

#: Largest integer accepted in a representation (RFC 7541 §5.1 leaves it to the implementation).
_MAX_INT = (1 << 32) - 1
#: Decoded strings are cached by their encoded octets: header values repeat a lot.
_CACHE_LIMIT = 8192


#: A QPACK field section (Required Insert Count 0, Base 0) holding one literal field line with
#: the literal name "x" (RFC 9204 §4.5.6); an HPACK string literal appended is its value.
_QPACK_LINE = b"\x00\x00\x21x"
#: No dynamic table and no blocked streams: it keeps no state between calls.
_QPACK = _QpackDecoder(0, 0)
#: Huffman strings at most this long go to ls-qpack (its decoded field limit is 64 KiB).
_QPACK_MAX = 16384


#: hpack's Huffman decoding automaton (256 states x 16 nibbles: next state, flags, symbol) as three
#: flat tables, which the compiled huffman_octets reads as C arrays
_HUF_NEXT = bytes(entry[0] for entry in HUFFMAN_TABLE)
_HUF_FLAGS = bytes(entry[1] for entry in HUFFMAN_TABLE)
_HUF_SYM = bytes(entry[2] for entry in HUFFMAN_TABLE)
_HUF_ACCEPTED, _HUF_EMIT, _HUF_FAIL = 1, 2, 4  # hpack's HUFFMAN_COMPLETE, _EMIT_SYMBOL, _FAIL
#: True where this module runs compiled (a C extension's __file__ is the .so)
_COMPILED = not __file__.endswith(".py")


def huffman(literal: bytes) -> bytes:
    """Decode a Huffman-coded HPACK string literal (RFC 7541 §5.2), given with its length prefix.

    Raises :class:`DecodeError` for an invalid code (EOS, padding over 7 bits or not all ones).
    """
    if not _COMPILED and len(literal) <= _QPACK_MAX:
        try:
            return _QPACK.feed_header(0, _QPACK_LINE + literal)[1][0][1]
        except DecompressionFailed:
            raise DecodeError("HPACK: invalid Huffman code") from None
    start = 1
    if literal[0] & 0x7F == 0x7F:
        _, start = _integer_tail(literal, 1, len(literal), 0x7F)
    return bytes(huffman_octets(literal, start, len(literal)))


def huffman_octets(data: bytes, start: int, stop: int) -> bytearray:
    """Decode the Huffman-coded octets ``data[start:stop]`` with hpack's automaton, a nibble at a time
    (hpack's ``decode_huffman``, over flat tables).

    Raises :class:`DecodeError` for an invalid code: a state that fails (EOS, or a code no symbol
    has), or an end that is not accepted (padding over 7 bits, or not all ones).
    """
    out = bytearray((stop - start) * 8 // 5)  # room for the most symbols: the shortest code has 5 bits
    n = 0
    state = 0
    flags = _HUF_ACCEPTED  # an empty string is complete
    for i in range(start, stop):
        octet = data[i]
        index = (state << 4) | (octet >> 4)
        flags = _HUF_FLAGS[index]
        if flags & _HUF_FAIL:
            raise DecodeError("HPACK: invalid Huffman code")
        if flags & _HUF_EMIT:
            out[n] = _HUF_SYM[index]
            n += 1
        state = _HUF_NEXT[index]
        index = (state << 4) | (octet & 0x0F)
        flags = _HUF_FLAGS[index]
        if flags & _HUF_FAIL:
            raise DecodeError("HPACK: invalid Huffman code")
        if flags & _HUF_EMIT:
            out[n] = _HUF_SYM[index]
            n += 1
        state = _HUF_NEXT[index]
    if not flags & _HUF_ACCEPTED:
        raise DecodeError("HPACK: invalid Huffman code")
    del out[n:]
    return out


def _text(raw: bytes) -> str:
    """Header octets as text: UTF-8 when valid, else Latin-1 (lossless, never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class HpackResult:
    """One decoded header block."""

    __slots__ = ("headers", "reliable", "oversized", "list_size", "plain_bytes")

    def __init__(self, headers: list[list[str | None]], reliable: bool, oversized: bool,
                 list_size: int, plain_bytes: int) -> None:
        self.headers = headers  #: [name, value] pairs; None where the entry was never seen
        self.reliable = reliable  #: False when the table was out of sync for this block
        self.oversized = oversized  #: the header list exceeded the limit (fields past it dropped)
        self.list_size = list_size  #: RFC 9113 §6.5.2 size: name + value + 32 per field
        self.plain_bytes = plain_bytes


class HpackObserver:
    """Decodes the header blocks one endpoint's encoder produced, in order."""

    __slots__ = ("_dyn", "_size", "max_size", "max_allowed", "max_header_list_size",
                 "synced", "_unknown_room", "encoded_bytes", "plain_bytes", "blocks",
                 "_hcache", "_pcache", "_bcache", "_seen", "_version", "_pairs")

    def __init__(self, max_allowed: int = 4096, max_header_list_size: int = 256 * 1024) -> None:
        # Newest entry first: dynamic index 62 is _dyn[0].  Entries are (name, value, size, [name, value]):
        # every field decoded from an entry shares that entry's list (decoded header lists are read-only).
        # Sharing matters for memory and for the cyclic GC, which walks every list kept per request.
        self._dyn: deque[tuple[str | None, str | None, int, list[str | None]]] = deque()
        self._size = 0
        self.max_size = max_allowed  #: current table size (changed by size updates)
        self.max_allowed = max_allowed  #: upper bound from the decoder side's SETTINGS_HEADER_TABLE_SIZE
        self.max_header_list_size = max_header_list_size
        self.synced = True
        self._unknown_room = False  # older, unseen entries may still sit behind the known ones
        self.encoded_bytes = 0
        self.plain_bytes = 0
        self.blocks = 0
        self._hcache: dict[bytes, tuple[str, int]] = {}
        self._pcache: dict[bytes, tuple[str, int]] = {}
        # whole blocks: bytes -> (table version it depends on or None, headers, insertions, plain, list size)
        self._bcache: dict[bytes, tuple[int | None, list, list, int, int]] = {}
        self._seen: set[bytes] = set()  # blocks decoded once: cached if they come again
        self._version = 0  # bumped whenever the dynamic table changes
        self._pairs: dict[tuple[str | None, str | None], list[str | None]] = {}  # literal fields, shared

    # ------------------------------------------------------------------ state

    def lose_sync(self) -> None:
        """A header block was missing from the capture: forget the table's contents."""
        self._version += 1
        self._dyn.clear()
        self._size = 0
        self.synced = False
        self._unknown_room = True

    def set_max_allowed(self, value: int) -> None:
        """The decoding side announced SETTINGS_HEADER_TABLE_SIZE ``value``."""
        self.max_allowed = value
        if self.max_size > value:
            # The encoder must follow with a size update; keep the table within the bound meanwhile.
            self._resize(value)

    def _resize(self, size: int) -> None:
        self._version += 1
        self.max_size = size
        self._evict(0)
        if size == 0:
            self._resync()
        elif self._unknown_room and self._size + 32 > size:
            self._resync()

    def _resync(self) -> None:
        self._unknown_room = False
        self.synced = True

    def _evict(self, room: int) -> None:
        dyn = self._dyn
        limit = self.max_size - room
        evicted = False
        while self._size > limit and dyn:
            self._size -= dyn.pop()[2]
            evicted = True
        if evicted and self._unknown_room:
            # a seen entry only goes once every older (unseen) one has gone
            self._resync()

    def _insert(self, name: str | None, value: str | None, size: int, pair: list[str | None]) -> None:
        self._version += 1
        if size > self.max_size:  # RFC 7541 §4.4: an entry larger than the table empties it
            self._dyn.clear()
            self._size = 0
            if self._unknown_room:
                self._resync()
            return
        if self._size + size > self.max_size:
            self._evict(size)
        self._dyn.appendleft((name, value, size, pair))
        self._size += size
        if self._unknown_room and self._size + 32 > self.max_size:
            self._resync()

    def table(self) -> list[tuple[str | None, str | None]]:
        """The dynamic table, newest first (for tests and the detail view)."""
        return [(n, v) for n, v, _, _ in self._dyn]

    @property
    def table_size(self) -> int:
        """Current dynamic table size in octets (RFC 7541 §4.1)."""
        return self._size

    # ------------------------------------------------------------------ decoding

    def _string(self, data: bytes, pos: int, end: int) -> tuple[str, int, int]:
        """String literal at ``pos`` (RFC 7541 §5.2): (text, octet length, next position)."""
        if pos >= end:
            raise DecodeError("HPACK: string literal cut off", pos)
        b = data[pos]
        length = b & 0x7F
        start = pos
        pos += 1
        if length == 0x7F:
            length, pos = _integer_tail(data, pos, end, 0x7F)
        stop = pos + length
        if stop > end:
            raise DecodeError("HPACK: string literal runs past the header block", pos)
        if b & 0x80:
            literal = data[start:stop]  # with its length prefix: the cache key and ls-qpack's input
            cache = self._hcache
            hit = cache.get(literal)
            if hit is None:
                try:
                    octets = huffman_octets(data, pos, stop) if _COMPILED else huffman(literal)
                except DecodeError:
                    raise DecodeError("HPACK: invalid Huffman code", pos) from None
                hit = (_text(octets), len(octets))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[literal] = hit
        else:
            raw = data[pos:stop]
            cache = self._pcache
            hit = cache.get(raw)
            if hit is None:
                hit = (_text(raw), length)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[raw] = hit
        return hit[0], hit[1], stop

    def _entry(self, index: int, pos: int) -> tuple[str | None, str | None, int, list[str | None]]:
        if index == 0:
            raise DecodeError("HPACK: index 0", pos)
        if index <= _STATIC_LEN:
            return _STATIC[index]
        i = index - _STATIC_LEN - 1
        if i < len(self._dyn):
            return self._dyn[i]
        if self._unknown_room:
            return (None, None, 32, [None, None])  # an entry from a block the capture does not have
        raise DecodeError(f"HPACK: index {index} beyond the table ({len(self._dyn)} dynamic entries)", pos)

    def decode(self, data: bytes) -> HpackResult:
        """Decode one complete header block; raises :class:`DecodeError` if it is invalid.

        On an error the table may have been changed by the fields before it, as
        in the encoder, so the caller should :meth:`lose_sync` after reporting.
        The returned header lists may be shared between results: do not mutate them
        (a repeated block returns the very list of its first decoding, and its
        ``[name, value]`` pairs are shared with the table entries and other blocks).
        """
        return HpackResult(*self.decode_fields(bytes(data)))

    def decode_fields(self, data: bytes) -> tuple[list[list[str | None]], bool, bool, int, int]:
        """:meth:`decode` as a plain tuple ``(headers, reliable, oversized, list_size, plain_bytes)``
        (the HTTP/2 decoder's per-block path; no result object)."""
        if self.synced:
            # Real connections repeat whole blocks (same request headers, same response headers
            # within a second).  A block that references no dynamic entry decodes the same in
            # any state; one that does, the same in the same table version.  Its insertions
            # are replayed so the table stays exact.
            hit = self._bcache.get(data)
            if hit is not None and (hit[0] is None or hit[0] == self._version):
                _, headers, inserts, plain, list_size = hit
                if inserts:
                    # _insert for a table in sync (no unseen entries), inlined: nginx's responses
                    # replay four insertions each
                    dyn = self._dyn
                    max_size = self.max_size
                    used = self._size
                    for entry in inserts:
                        size = entry[2]
                        if size > max_size:  # RFC 7541 §4.4: an entry larger than the table empties it
                            dyn.clear()
                            used = 0
                            continue
                        while used + size > max_size and dyn:
                            used -= dyn.pop()[2]
                        dyn.appendleft(entry)
                        used += size
                    self._size = used
                    self._version += len(inserts)
                self.blocks += 1
                self.encoded_bytes += len(data)
                self.plain_bytes += plain
                return headers, True, False, list_size, plain  # shared, as the docstring says
        start_version = self._version
        start_synced = self.synced
        refs_dynamic = False
        inserts: list[tuple[str | None, str | None, int, list[str | None]]] | None = None
        updated = False
        end = len(data)
        pos = 0
        headers: list[list[str | None]] = []
        reliable = self.synced
        list_size = 0  # every field's name + value + 32; the plain size is 28 less per field
        fields = 0
        limit = self.max_header_list_size
        oversized = False
        INDEXED = _INDEXED_STATIC
        dyn = self._dyn
        pairs = self._pairs
        while pos < end:
            b = data[pos]
            if b & 0x80:  # §6.1 indexed header field
                pos += 1
                if 0x80 < b < 0xBE:  # static index 1..61 in the prefix
                    size, pair = INDEXED[b]
                elif 0xBE <= b < 0xFF and b - 0xBE < len(dyn):  # dynamic index 62..126 in the prefix
                    name, _, size, pair = dyn[b - 0xBE]
                    refs_dynamic = True
                    if name is None:
                        reliable = False
                else:
                    index = b & 0x7F
                    if index == 0x7F:
                        index, pos = _integer_tail(data, pos, end, 0x7F)
                    if 0 < index <= 61:
                        _, _, size, pair = _STATIC[index]
                    else:
                        if index > 61 and index - 62 < len(dyn):
                            name, _, size, pair = dyn[index - 62]
                        else:
                            name, _, size, pair = self._entry(index, pos)
                        refs_dynamic = True
                        if name is None:
                            reliable = False
                list_size += size
                fields += 1
                if list_size > limit:
                    oversized = True
                else:
                    headers.append(pair)
                continue
            if b & 0x40:  # §6.2.1 literal with incremental indexing
                index = b & 0x3F
                pos += 1
                if index == 0x3F:
                    index, pos = _integer_tail(data, pos, end, 0x3F)
                indexing = True
            elif b & 0x20:  # §6.3 dynamic table size update
                if fields:
                    raise DecodeError("HPACK: table size update after a header field", pos)
                size = b & 0x1F
                pos += 1
                if size == 0x1F:
                    size, pos = _integer_tail(data, pos, end, 0x1F)
                if size > self.max_allowed:
                    raise DecodeError(f"HPACK: table size update to {size} above the allowed {self.max_allowed}", pos)
                self._resize(size)
                updated = True
                continue
            else:  # §6.2.2 without indexing (0000), §6.2.3 never indexed (0001)
                index = b & 0x0F
                pos += 1
                if index == 0x0F:
                    index, pos = _integer_tail(data, pos, end, 0x0F)
                indexing = False
            if index:
                if index <= 61:
                    name = _STATIC[index][0]
                    nlen = len(name)  # static names are ASCII
                else:
                    name = self._entry(index, pos)[0]
                    refs_dynamic = True
                    if name is None:
                        reliable = False
                        nlen = 0
                    else:
                        nlen = len(name.encode()) if not name.isascii() else len(name)
            else:
                name, nlen, pos = self._string(data, pos, end)
            value, vlen, pos = self._string(data, pos, end)
            size = nlen + vlen + 32
            key = (name, value)
            pair = pairs.get(key)
            if pair is None:
                if len(pairs) >= _PAIRS_LIMIT:
                    pairs.clear()
                pair = pairs[key] = [name, value]
            if indexing:
                if name is None:
                    # The entry's size is unknown, so eviction can no longer be followed.
                    self.lose_sync()
                    dyn = self._dyn
                else:
                    self._insert(name, value, size, pair)
                    if inserts is None:
                        inserts = [(name, value, size, pair)]
                    else:
                        inserts.append((name, value, size, pair))
            list_size += size
            fields += 1
            if list_size > limit:
                oversized = True
            else:
                headers.append(pair)
        # name + value + ": " + CRLF per field (an unseen entry counts as 32 octets, so 4)
        plain = list_size - 28 * fields
        self.blocks += 1
        self.encoded_bytes += end
        self.plain_bytes += plain
        # A block that both reads and changes the table can never hit again (its insertions move the
        # table past the version it read): not cached.  Others are cached the second time they are
        # seen, so that blocks which never repeat (curl's requests: a new :path each) cost a set entry.
        if start_synced and reliable and not oversized and not updated and end <= 4096 and not (refs_dynamic and inserts):
            seen = self._seen
            if data not in seen:
                if len(seen) >= 4096:
                    seen.clear()
                seen.add(bytes(data))
            else:
                cache = self._bcache
                if len(cache) >= 4096:
                    cache.clear()
                cache[bytes(data)] = (start_version if refs_dynamic else None, headers, inserts, plain, list_size)
        return headers, reliable, oversized, list_size, plain


def _integer_tail(data: bytes, pos: int, end: int, prefix_max: int) -> tuple[int, int]:
    """The continuation octets of an integer whose prefix was all ones (RFC 7541 §5.1)."""
    value = prefix_max
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError("HPACK: integer cut off", pos)
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        if value > _MAX_INT:
            raise DecodeError("HPACK: integer too large", pos)
        if not b & 0x80:
            return value, pos
        shift += 7
