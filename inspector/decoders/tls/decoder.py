"""TlsDecoder: TLS over one TCP connection, with key-log decryption.

Per direction the reassembled TCP stream is cut into records
(:mod:`.record`); handshake records go through one
:class:`~.handshake.HandshakeBuffer` per direction; protected records are
opened with keys from the key log (:mod:`.ciphers`).  Decrypted application
data becomes a plaintext stream per direction with its own
:class:`~inspector.flows.streamindex.StreamIndex` (each record's plaintext
maps to the TCP frame that completed the record and the arrival/delivery
times of its TCP bytes) and is fed to the inner decoder that
``inner_factory`` picks from the ALPN or the first plaintext bytes.

Key changes follow the handshake: TLS 1.2 switches at ChangeCipherSpec;
TLS 1.3 switches at Finished, EndOfEarlyData and KeyUpdate, and tries the
next expected key when the current one fails where the handshake allows a
silent switch (0-RTT data ending without EndOfEarlyData when the server
rejected it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag

from ...errors import DecodeError
from ...events import (
    DIRECTIONS,
    Event,
    Malformed,
    Note,
    TlsAlert,
    TlsApplicationData,
    TlsChangeCipherSpec,
    TlsEncryptedHandshake,
)
from ...flows.streamindex import Span, StreamIndex
from ..base import DecodeContext, StreamDecoder
from .ciphers import SUITES, Opener, Tls13Opener, suite_kx, tls12_openers
from .constants import HandshakeType, alert_name, cipher_name, version_name
from .handshake import (
    ClientHello,
    EncryptedExtensions,
    HandshakeBuffer,
    KeyUpdate,
    ServerHello,
    message_event,
    parse_alert,
    parse_message,
)
from .record import HEADER, HEADER_LEN, MAX_RECORD_PAYLOAD, Record, RecordSplitter, looks_like_record

_CCS, _ALERT, _HANDSHAKE, _APPDATA, _HEARTBEAT = 20, 21, 22, 23, 24  # content types as plain ints (hot path)
#: ``Span(...)`` without the namedtuple's Python-level ``__new__`` (half the cost, once per record)
_new_span = tuple.__new__
_unpack_header = HEADER.unpack_from

InnerFactory = Callable[[DecodeContext, "str | None", bytes, int], "StreamDecoder | None"]

#: Plaintext held while the inner decoder is not chosen yet, or 0-RTT data awaiting the server's verdict.
MAX_PENDING_PLAINTEXT = 1 << 17
#: Alerts listed in the summary (a hostile peer could send millions).
MAX_ALERTS_KEPT = 16
#: How far past the expected sequence number to search after a TCP gap.
MAX_SEQ_SEARCH = 1024
#: Consumed TCP stream bytes are released from the index once this many have accumulated
#: (one StreamIndex.release call per 64 KiB rather than per record).
RELEASE_STEP = 1 << 16
assert MAX_RECORD_PAYLOAD == 18432  # the literal in TlsDecoder._whole_records


class _Key:
    """One candidate protection for a direction: the stage it belongs to and its opener."""

    __slots__ = ("stage", "opener", "decrypt", "iv")

    def __init__(self, stage: str, opener: Opener) -> None:
        self.stage = stage  # "early", "handshake", "app"
        self.opener = opener
        # for TlsDecoder._whole_records, which inlines Tls13Opener.open: the AEAD's bound decrypt and the
        # IV as an int, looked up once per key rather than once per TCP segment (None for other openers)
        if type(opener) is Tls13Opener:
            self.decrypt, self.iv = opener._aead.decrypt, opener._iv
        else:
            self.decrypt, self.iv = None, 0


class _Side:
    """State of one direction."""

    __slots__ = (
        "d",
        "name",
        "records",
        "hs",
        "hs_dead",
        "keys",
        "seq",
        "stage",
        "encrypting",
        "pending12",
        "plain_offset",
        "plain_index",
        "dead",
        "resync",
        "lost",
        "last_frame",
        "last_ts",
        "protected_seen",
        "protected_opened",
        "release_at",
    )

    def __init__(self, d: int) -> None:
        self.d = d
        self.name = DIRECTIONS[d]
        self.records = RecordSplitter()
        self.hs = HandshakeBuffer()
        self.hs_dead = False
        self.keys: list[_Key] = []  # current first, then the ones that may follow
        self.seq = 0
        self.stage = "plain"  # plain, early, handshake, app
        self.encrypting = False  # TLS 1.2: after this side's ChangeCipherSpec
        self.pending12: Opener | None = None  # TLS 1.2 key waiting for ChangeCipherSpec
        self.plain_offset = 0
        self.plain_index = StreamIndex()
        self.dead = False
        self.resync = False  # a TCP gap broke record framing
        self.lost = 0  # TCP bytes lost since the last good record (bounds the sequence search)
        self.last_frame = 0
        self.last_ts = 0.0
        self.protected_seen = 0
        self.protected_opened = 0
        self.release_at = 0  # next TCP stream offset at which to release the index (hot path)


class TlsDecoder:
    """StreamDecoder for TLS (SSL 3.0 framing through TLS 1.3) over TCP."""

    def __init__(self, ctx: DecodeContext, inner_factory: InnerFactory | None = None) -> None:
        self.ctx = ctx
        self.inner_factory = inner_factory
        self.sides = (_Side(0), _Side(1))
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.hrr = False
        self.version: int | None = None
        self.suite_id: int | None = None
        self.alpn: str | None = None
        self.resumed = False
        self.resumption: str | None = None
        self.early_offered = False
        self.early_sent = False
        self.early_status: str | None = None  # accepted / rejected
        self._early_pending: list[tuple[bytes, Span]] = []
        self._early_pending_bytes = 0
        self.tickets = 0
        self.certificate: dict[str, Any] | None = None
        self.alerts: list[str] = []
        self.times: dict[str, float] = {}
        self.frames: dict[str, int] = {}  #: the frame of each of ``times`` the ledger places a step at
        self._key_problem_reported = False
        self._no_key_reason: str | None = None
        self._tls12_unsupported: str | None = None
        # inner decoder
        self._inner: StreamDecoder | None = None
        self._inner_state = "undecided"  # undecided, active, none, failed
        self._inner_pending: list[tuple[int, bytes, int]] = []
        self._inner_pending_bytes = 0
        self._keylog_generation = ctx.keylog.generation if ctx.keylog is not None else 0
        #: set to a list to collect (frame, content type) per record, the inner type when opened
        self.record_log: list[tuple[int, int]] | None = None
        # whether anyone reads per-record events (the pipeline sets False for a summary)
        self._events = ctx.facts.get("events", True)

    @property
    def idle(self) -> bool:
        """For a summary, nothing after this point can change what we know.

        Without keys, once the client has sent TLS 1.3 application data the
        rest is opaque records (alerts included, unlike TLS 1.2 where an
        encrypted alert still shows its content type): the pipeline may stop
        reassembling (summary mode only; export and the UI see every record).
        """
        return (
            self._no_key_reason is not None
            and "first_app_data" in self.times
            and self.version is not None
            and self.version >= 0x0304
        )

    # ------------------------------------------------------------------ StreamDecoder

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        side = self.sides[direction]
        out: list[Event] = []
        if side.dead or not data:
            return out
        if side.resync:
            data, offset = self._resync(side, data, offset, index, out)
            if not data:
                return out
        splitter = side.records
        if not splitter._buf and splitter.error is None and side.keys and not side.lost:
            # hot path: whole application-data records opened with the current key
            done = self._whole_records(side, data, offset, index, out)
            if done:
                if side.dead:
                    return out
                end = offset + done
                if done == len(data):
                    splitter.next_offset = splitter._buf_start = end  # RecordSplitter.reset, nothing held
                    if end >= side.release_at:
                        index.release(end)
                        side.release_at = end + RELEASE_STEP
                    return out
                data = data[done:]
                offset = end
                splitter.reset(offset)
        for rec in splitter.feed(data, offset):
            self._record(side, rec, index, out)
            if side.dead:
                return out
        if splitter.error is not None:
            exc = splitter.error
            span = index.locate(exc.offset if exc.offset is not None else offset)
            self._stop(side, span.frame, span.delivered, f"{exc.reason}; cannot re-frame records", out)
            return out
        index.release(splitter.pending_start)
        return out

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        side = self.sides[direction]
        out: list[Event] = []
        if side.dead:
            return out
        lost_partial = side.records.pending
        side.records.reset(offset + length)
        side.resync = True
        side.lost += length + lost_partial
        try:
            span = index.locate(max(offset - 1, 0))
            frame, ts = span.frame, span.delivered
        except LookupError:
            frame, ts = side.last_frame, side.last_ts
        out.append(
            self._note(
                frame,
                ts,
                f"{length} bytes missing from the capture at offset {offset}; resynchronising on the next record",
                side,
                "warning",
            )
        )
        side.hs = HandshakeBuffer()  # a message cut by the gap can never complete
        if self._inner is not None and self._inner_state == "active":
            # The plaintext length of the lost records is unknown: the TCP byte count bounds it.
            out += self._inner_call("gap", direction, side.plain_offset, length, side.plain_index)
            side.plain_offset += length
        return out

    def finish(self) -> list[Event]:
        out: list[Event] = []
        for side in self.sides:
            if side.records.pending and not side.dead:
                out.append(
                    self._note(
                        side.last_frame,
                        side.last_ts,
                        f"capture ended inside a TLS record ({side.records.pending} bytes held)",
                        side,
                    )
                )
        last = max(self.sides, key=lambda s: s.last_ts)
        if self.client_hello is not None and self.server_hello is None and not self.alerts:
            out.append(self._note(last.last_frame, last.last_ts, "TLS handshake incomplete: no ServerHello", None))
        if self._early_pending:
            out.append(
                self._note(
                    last.last_frame,
                    last.last_ts,
                    f"{self._early_pending_bytes} bytes of 0-RTT data never confirmed by the server",
                    self.sides[0],
                )
            )
            self._early_pending.clear()
        if self._inner_state == "active":
            out += self._inner_call("finish")
        return out

    def summary(self) -> dict[str, Any]:
        inner: dict[str, Any] = {}
        if self._inner is not None and self._inner_state in ("active", "failed"):
            try:
                inner = dict(self._inner.summary() or {})
            except Exception:  # noqa: BLE001 - an inner decoder's bug must not lose the TLS summary
                inner = {}
        app = inner.get("app") or self.alpn or "tls"
        out = dict(inner)
        out["tls"] = self.tls_summary()
        out["app"] = app
        return out

    # ------------------------------------------------------------------ summary

    def tls_summary(self) -> dict[str, Any]:
        ch = self.client_hello
        opened = sum(s.protected_opened for s in self.sides)
        seen = sum(s.protected_seen for s in self.sides)
        return {
            "version": version_name(self.version) if self.version is not None else None,
            "sni": ch.sni if ch else None,
            "alpn_offered": list(ch.alpn) if ch else [],
            "alpn": self.alpn,
            "cipher": cipher_name(self.suite_id) if self.suite_id is not None else None,
            "resumed": self.resumed,
            "hrr": self.hrr,
            "early_data": self.early_status,
            "decrypted": opened > 0,
            "handshake_rtts": self._handshake_rtts(),
            "resumption": self.resumption,
            "decryption": self._decryption_status(opened, seen),
            "times_ms": self._times_ms(),
            "tickets": self.tickets,
            "alerts": list(self.alerts),
            "certificate": self.certificate,
        }

    def _handshake_rtts(self) -> int | None:
        if self.server_hello is None or self.version is None:
            return None
        if self.version >= 0x0304:
            if self.early_status == "accepted" and self.early_sent:
                return 0
            return 2 if self.hrr else 1
        return 1 if self.resumed else 2

    def _decryption_status(self, opened: int, seen: int) -> str:
        if seen == 0:
            return "no encrypted records"
        if opened == 0 and self.client_hello is None:
            return "encrypted, no key (the handshake is not in the capture)"
        if opened == 0:
            return self._no_key_reason or "encrypted, no key"
        if opened < seen:
            return "partial"
        return "decrypted"

    def _times_ms(self) -> dict[str, float | None]:
        t = self.times
        start = t.get("client_hello")

        def rel(key: str) -> float | None:
            v = t.get(key)
            return None if v is None or start is None else round((v - start) * 1000, 3)

        out = {k: rel(k) for k in ("server_hello", "server_finished", "client_finished", "first_app_data")}
        if self.early_status == "accepted" and "early_data" in t:
            out["first_app_data"] = rel("early_data")
        return out

    # ------------------------------------------------------------------ records

    def _record(self, side: _Side, rec: Record, index: StreamIndex, out: list[Event]) -> None:
        first = index.locate(rec.start)
        spans = [first] if first.end >= rec.end else index.spans(rec.start, rec.end)
        last = spans[-1]
        frame, ts = last.frame, last.delivered
        side.last_frame, side.last_ts = frame, ts
        ctype = rec.type
        log = self.record_log
        if ctype == _CCS:
            if log is not None:
                log.append((frame, ctype))
            out.append(TlsChangeCipherSpec(frame=frame, ts=ts, conn=self.ctx.conn, direction=side.name))
            if self.version is not None and self.version < 0x0304 and not side.encrypting:
                side.encrypting = True
                side.seq = 0
                side.keys = [_Key("app", side.pending12)] if side.pending12 is not None else []
                side.stage = "app"
            return
        protected = side.encrypting or ctype == _APPDATA
        if protected:
            side.protected_seen += 1
            opened = self._open(side, rec, frame, ts, out)
            if opened is None:
                if log is not None:
                    log.append((frame, ctype))
                self._unopened(side, rec, frame, ts, out)
                return
            side.protected_opened += 1
            inner_type, content = opened
        else:
            inner_type, content = ctype, rec.payload
        self._content(side, rec, inner_type, content, spans, frame, ts, protected, out)

    def _whole_records(self, side: _Side, data: bytes, offset: int, index: StreamIndex, out: list[Event]) -> int:
        """The hot path of :meth:`feed`: complete records at the start of ``data`` that are
        application data opened by the current key, handed to the inner decoder without
        building :class:`Record` objects.  Returns how many bytes it consumed; it stops at
        the first record it does not take (partial, other type, or not opened by that key),
        which then goes through the general path.

        With ``ctx.facts["events"] = False`` (a summary, nobody reads events) no
        ``TlsApplicationData`` event is built: on the HTTP/2 benchmark that is one
        dataclass per record, ~5% of the decoding time.
        """
        key = side.keys[0]
        if key.stage != "app":
            return 0
        # Tls13Opener.open inlined with the key's decrypt and IV (one Python call less per record)
        decrypt = key.decrypt
        iv = key.iv
        generic = None if decrypt is not None else key.opener.open
        unpack = _unpack_header
        # locate() answers the index's last span for any offset from its start on: the reassembler has
        # just added the span of ``data``, so most records need no search
        last = index.last
        last_start = last.start if last is not None else 1 << 63  # (None: locate raises, as before)
        inner = self._inner if self._inner_state == "active" else None
        events = self._events
        log = self.record_log
        plain_index = side.plain_index
        first_app = side.d == 0 and "first_app_data" not in self.times
        extras = log is not None or events or first_app  # anything besides handing the plaintext on
        d = side.d
        seq = side.seq
        plain_off = side.plain_offset
        opened_n = 0  # records opened since the counters were last updated
        n = len(data)
        pos = 0
        frame = -1
        ts = 0.0
        while n - pos >= 5:
            ctype, version, length = unpack(data, pos)
            body = pos + 5
            end = body + length
            # application data with the TLS 1.2/1.3 record version (literals: no global lookups here)
            if ctype != 23 or version != 0x0303 or end > n or length > 18432:
                break
            if generic is None:
                try:
                    plain = decrypt((iv ^ seq).to_bytes(12, "big"), data[body:end], data[pos:body])
                except InvalidTag:
                    break  # the general path tries the other keys and reports
                inner_type = plain[-1] if plain else 0
                if not inner_type:
                    break  # empty or padded TLSInnerPlaintext: the general path strips it
                content = plain[:-1]
            else:
                opened = generic(seq, data[pos:body], data[body:end])
                if opened is None:
                    break
                inner_type, content = opened
            seq += 1
            start = offset + pos
            span = last if start >= last_start else index.locate(start)
            if span.end >= offset + end:
                spans = None
                arrival, arrival_frame = span.arrival, span.arrival_frame
            else:
                spans = index.spans(start, offset + end)
                span = spans[-1]
                first = max(spans, key=_arrival)
                arrival, arrival_frame = first.arrival, first.arrival_frame
            frame, ts = span.frame, span.delivered
            if inner_type != 23 or inner is None:
                side.seq = seq
                side.protected_seen += opened_n + 1
                side.protected_opened += opened_n + 1
                opened_n = 0
                side.plain_offset = plain_off
                side.last_frame, side.last_ts = frame, ts
                rec = Record(ctype, version, data[pos:body], data[body:end], start, offset + end)
                self._content(side, rec, inner_type, content, spans or [span], frame, ts, True, out)
                pos = end
                if side.dead or not side.keys or side.keys[0] is not key:
                    return pos  # key change (KeyUpdate) or a fatal problem: back to the general path
                seq = side.seq
                plain_off = side.plain_offset
                inner = self._inner if self._inner_state == "active" else None
                frame = -1
                continue
            opened_n += 1
            pos = end
            if extras:
                if log is not None:
                    log.append((frame, inner_type))
                if events:
                    out.append(TlsApplicationData(frame=frame, ts=ts, conn=self.ctx.conn, direction=side.name,
                                                  length=length, plaintext_len=len(content)))
                if first_app:
                    self.times["first_app_data"] = ts
                    first_app = False
                    extras = log is not None or events
            if not content:
                continue
            pstart = plain_off
            plain_off += len(content)
            plain_index.add(_new_span(Span, (pstart, plain_off, frame, arrival, ts, arrival_frame)))
            try:
                more = inner.feed(d, content, pstart, plain_index)
            except Exception as exc:  # noqa: BLE001 - the inner decoder stops, TLS goes on
                side.last_frame, side.last_ts = frame, ts
                out += self._inner_failed(exc, side)
                break
            if more:
                out += more
        side.seq = seq
        side.plain_offset = plain_off
        if opened_n:
            side.protected_seen += opened_n
            side.protected_opened += opened_n
        if frame >= 0:
            side.last_frame, side.last_ts = frame, ts
        return pos

    def _content(self, side: _Side, rec: Record, inner_type: int, content: bytes | memoryview, spans: list[Span],
                 frame: int, ts: float, protected: bool, out: list[Event]) -> None:
        """A record's (opened) content, by its (inner) content type."""
        log = self.record_log
        if log is not None:
            log.append((frame, inner_type))
        if inner_type == _HANDSHAKE:
            self._handshake_bytes(side, content, frame, ts, protected, out)
        elif inner_type == _APPDATA:
            self._app_data(side, rec, content, spans, frame, ts, out)
        elif inner_type == _ALERT:
            try:
                alerts = parse_alert(content)
            except DecodeError as exc:
                out.append(self._malformed(frame, ts, f"alert: {exc.reason}", side))
                return
            for a in alerts:
                if len(self.alerts) < MAX_ALERTS_KEPT:
                    self.alerts.append(f"{side.name} {a.level_name} {a.description_name}")
                out.append(
                    TlsAlert(
                        frame=frame,
                        ts=ts,
                        conn=self.ctx.conn,
                        direction=side.name,
                        level=a.level_name,
                        description=a.description_name,
                        code=a.description,
                        encrypted=protected,
                    )
                )
        elif inner_type == _HEARTBEAT:
            out.append(self._note(frame, ts, f"heartbeat record ({len(content)} bytes)", side))
        else:
            out.append(self._malformed(frame, ts, f"record with inner content type {inner_type}", side))

    def _open(self, side: _Side, rec: Record, frame: int, ts: float, out: list[Event]) -> tuple[int, bytes] | None:
        keys = side.keys
        if not keys:
            log = self.ctx.keylog
            if log is not None and log.generation != self._keylog_generation and self._refresh_keys(side):
                keys = side.keys
            else:
                if side.stage == "app":
                    side.seq += 1  # keep counting: secrets may still arrive (live capture)
                return None
        header, payload = rec.header, rec.payload
        if side.lost:
            return self._open_after_gap(side, header, payload)
        # fast path: the current key opens the record (every record but those at key changes)
        result = keys[0].opener.open(side.seq, header, payload)
        if result is not None:
            side.seq += 1
            if keys[0].stage == "early" and len(keys) > 1 and keys[1].stage == "early":
                side.keys = [keys[0]] + [k for k in keys[1:] if k.stage != "early"]
            return result
        for i, key in enumerate(keys):
            if i == 0:
                continue  # tried above
            seq = 0
            result = key.opener.open(seq, header, payload)
            if result is not None:
                if i:
                    # a later expected key opened it: the earlier stage is over
                    side.keys = [key] + [k for k in keys[i + 1 :] if k.stage != key.stage]
                    side.stage = key.stage
                    if keys[0].stage == "early" and key.stage != "early":
                        self._early_over(side, frame, ts, out, by_end_of_early_data=False)
                side.seq = seq + 1
                if key.stage == "early":
                    # several suites were tried for 0-RTT: keep the one that worked
                    side.keys = [key] + [k for k in side.keys[1:] if k.stage != "early"]
                return result
        if side.stage == "app":
            side.seq += 1  # a record that fails authentication still used its sequence number
        elif side.d == 0 and self.early_offered and not any(k.stage == "early" for k in keys):
            self.early_sent = True  # 0-RTT data without CLIENT_EARLY_TRAFFIC_SECRET in the key log
            return None
        self._report_key_problem(side, frame, ts, out)
        return None

    def _refresh_keys(self, side: _Side) -> bool:
        """Secrets were added to the key log since this side's keys were set up (live capture): retry."""
        log = self.ctx.keylog
        assert log is not None
        self._keylog_generation = log.generation
        ch, sh = self.client_hello, self.server_hello
        if ch is None or sh is None or self.version is None:
            return False
        suite = SUITES.get(sh.cipher_suite)
        if suite is None:
            return False
        if self.version >= 0x0304:
            if side.stage == "handshake":
                label = "CLIENT_HANDSHAKE_TRAFFIC_SECRET" if side.d == 0 else "SERVER_HANDSHAKE_TRAFFIC_SECRET"
            elif side.stage == "app":
                label = "CLIENT_TRAFFIC_SECRET_0" if side.d == 0 else "SERVER_TRAFFIC_SECRET_0"
            else:
                return False
            secret = self._secret(label)
            if secret is None:
                return False
            side.keys = [_Key(side.stage, Tls13Opener(suite, secret))]
            return True
        master = self._secret("CLIENT_RANDOM")
        if master is None or suite.tls13 or sh.version < 0x0302:
            return False
        etm = bool(suite.mac) and sh.encrypt_then_mac and ch.encrypt_then_mac
        c2s, s2c = tls12_openers(suite, master, ch.random, sh.random, encrypt_then_mac=etm)
        self.sides[0].pending12, self.sides[1].pending12 = c2s, s2c
        if not side.encrypting:
            return False
        side.keys = [_Key("app", side.pending12)]
        return True

    def _open_after_gap(self, side: _Side, header: bytes, payload: bytes | memoryview) -> tuple[int, bytes] | None:
        """After lost bytes the number of lost records is unknown: search the sequence number."""
        key = side.keys[0]
        limit = min(side.lost // (HEADER_LEN + 17) + 2, MAX_SEQ_SEARCH)
        for seq in range(side.seq, side.seq + limit + 1):
            result = key.opener.open(seq, header, payload)
            if result is not None:
                side.seq = seq + 1
                side.lost = 0
                return result
        return None

    def _unopened(self, side: _Side, rec: Record, frame: int, ts: float, out: list[Event]) -> None:
        ctype = rec.type
        length = len(rec.payload)
        early = self.version is None and self.early_offered and side.d == 0
        if early:
            self.early_sent = True
        if ctype == _APPDATA:
            if self._events:
                out.append(
                    TlsApplicationData(frame=frame, ts=ts, conn=self.ctx.conn, direction=side.name, length=length, early=early)
                )
            if side.d == 0 and not early and self.version is not None:
                # without keys, TLS 1.3's client Finished is the client's first protected record
                key = "client_finished" if self.version >= 0x0304 and "client_finished" not in self.times else "first_app_data"
                self.times.setdefault(key, ts)
        elif ctype == _HANDSHAKE:
            out.append(TlsEncryptedHandshake(frame=frame, ts=ts, conn=self.ctx.conn, direction=side.name, length=length))
            if side.d == 0:
                self.times.setdefault("client_finished", ts)
            else:
                self.times.setdefault("server_finished", ts)
                self.frames.setdefault("server_finished", frame)
        elif ctype == _ALERT:
            if len(self.alerts) < MAX_ALERTS_KEPT:
                self.alerts.append(f"{side.name} encrypted")
            out.append(TlsAlert(frame=frame, ts=ts, conn=self.ctx.conn, direction=side.name, encrypted=True))
        else:
            out.append(self._note(frame, ts, f"protected record of type {ctype} not opened", side))

    def _report_key_problem(self, side: _Side, frame: int, ts: float, out: list[Event]) -> None:
        if self._key_problem_reported:
            return
        self._key_problem_reported = True
        self._no_key_reason = "key does not decrypt"
        out.append(
            self._note(
                frame,
                ts,
                f"key log has secrets for this connection but they do not decrypt its {side.name} records "
                f"({side.stage} key, record {side.seq})",
                side,
                "warning",
            )
        )

    # ------------------------------------------------------------------ handshake

    def _handshake_bytes(
        self, side: _Side, content: bytes | memoryview, frame: int, ts: float, encrypted: bool, out: list[Event]
    ) -> None:
        if side.hs_dead:
            return
        try:
            messages = side.hs.feed(content)
        except DecodeError as exc:
            side.hs_dead = True
            out.append(self._malformed(frame, ts, f"handshake stream: {exc.reason}", side))
            return
        tls13 = self.version is not None and self.version >= 0x0304
        kx = suite_kx(self.suite_id) if self.suite_id is not None else None
        for msg_type, body in messages:
            try:
                msg = parse_message(msg_type, body, tls13=tls13, kx=kx)
            except DecodeError as exc:
                out.append(self._malformed(frame, ts, f"{_hs_name(msg_type)}: {exc.reason}", side))
                continue
            out.append(
                message_event(
                    msg,
                    frame=frame,
                    ts=ts,
                    conn=self.ctx.conn,
                    direction=side.name,
                    encrypted=encrypted,
                    raw=bytes([msg_type]) + len(body).to_bytes(3, "big") + body,
                )
            )
            self._handshake_message(side, msg, frame, ts, out)
            tls13 = self.version is not None and self.version >= 0x0304
            kx = suite_kx(self.suite_id) if self.suite_id is not None else None

    def _handshake_message(self, side: _Side, msg: Any, frame: int, ts: float, out: list[Event]) -> None:
        t = msg.msg_type
        if t == HandshakeType.CLIENT_HELLO and side.d == 0:
            self._client_hello(msg, frame, ts)
        elif t == HandshakeType.SERVER_HELLO and side.d == 1:
            self._server_hello(msg, frame, ts, out)
        elif t == HandshakeType.ENCRYPTED_EXTENSIONS and side.d == 1:
            self._encrypted_extensions(msg, frame, ts, out)
        elif t == HandshakeType.CERTIFICATE and side.d == 1:
            if self.version is not None and self.version < 0x0304 and self.resumed:
                self.resumed = False  # a full handshake after all
                self.resumption = None
            if msg.certificates and self.certificate is None:
                info = msg.describe()[0]
                self.certificate = {"subject": info.subject, "issuer": info.issuer, "sans": info.sans, "not_after": info.not_after}
        elif t == HandshakeType.FINISHED:
            self._finished(side, ts, out, frame)
        elif t == HandshakeType.END_OF_EARLY_DATA and side.d == 0:
            self._early_over(side, frame, ts, out, by_end_of_early_data=True)
            side.keys = [k for k in side.keys if k.stage != "early"]
            side.stage = side.keys[0].stage if side.keys else "handshake"
            side.seq = 0
        elif t == HandshakeType.KEY_UPDATE:
            assert isinstance(msg, KeyUpdate)
            if side.keys and isinstance(side.keys[0].opener, Tls13Opener):
                side.keys = [_Key("app", side.keys[0].opener.next())]
                side.seq = 0
        elif t == HandshakeType.NEW_SESSION_TICKET:
            self.tickets += 1

    def _client_hello(self, msg: ClientHello, frame: int, ts: float) -> None:
        if self.client_hello is None:
            self.client_hello = msg
            self.times["client_hello"] = ts
            self.frames["client_hello"] = frame
            if msg.sni:
                self.ctx.facts["sni"] = msg.sni
            if msg.alpn:
                self.ctx.facts["alpn_offered"] = list(msg.alpn)
        else:
            # the second ClientHello after a HelloRetryRequest (same random, RFC 8446 §4.1.2)
            self.client_hello = msg
        if msg.early_data and not self.hrr:
            self.early_offered = True
            self._setup_early_keys(msg)

    def _secret(self, label: str) -> bytes | None:
        ch = self.client_hello
        log = self.ctx.keylog
        if ch is None or log is None:
            return None
        return log.get(ch.random, label)

    def _setup_early_keys(self, ch: ClientHello) -> None:
        secret = self._secret("CLIENT_EARLY_TRAFFIC_SECRET")
        if secret is None:
            return
        side = self.sides[0]
        # The 0-RTT suite is the PSK's, not known before the ServerHello: try each offered TLS 1.3 suite.
        keys = [_Key("early", Tls13Opener(SUITES[s], secret)) for s in ch.cipher_suites if s in SUITES and SUITES[s].tls13]
        side.keys = keys + [k for k in side.keys if k.stage != "early"]
        side.stage = "early"
        side.seq = 0

    def _server_hello(self, msg: ServerHello, frame: int, ts: float, out: list[Event]) -> None:
        if msg.is_hrr:
            self.hrr = True
            self.times.setdefault("hello_retry_request", ts)
            if self.early_offered:
                self._reject_early(frame, ts, out, "the server sent a HelloRetryRequest")
            return
        self.server_hello = msg
        self.version = msg.version
        self.suite_id = msg.cipher_suite
        self.times.setdefault("server_hello", ts)
        self.frames.setdefault("server_hello", frame)
        self.ctx.facts["tls_version"] = version_name(msg.version)
        ch = self.client_hello
        suite = SUITES.get(msg.cipher_suite)
        if msg.version >= 0x0304:
            if msg.psk_identity is not None:
                self.resumed = True
                self.resumption = "psk"
            if self.early_offered and msg.psk_identity != 0:
                self._reject_early(frame, ts, out, "the server did not accept the first PSK")
            if suite is None or not suite.tls13:
                out.append(self._note(frame, ts, f"cannot decrypt suite {cipher_name(msg.cipher_suite)}", None))
                return
            cs = self._secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
            ss = self._secret("SERVER_HANDSHAKE_TRAFFIC_SECRET")
            client, server = self.sides
            server.stage = "handshake"
            server.seq = 0
            server.keys = [_Key("handshake", Tls13Opener(suite, ss))] if ss else []
            early = [k for k in client.keys if k.stage == "early" and k.opener.suite is suite]
            client.keys = early + ([_Key("handshake", Tls13Opener(suite, cs))] if cs else [])
            if not early:
                client.stage = "handshake"
                client.seq = 0
            if ss is None and cs is None:
                self._no_key_reason = self._missing_reason()
            return
        # TLS 1.2 and older
        self.alpn = msg.alpn
        if msg.alpn:
            self.ctx.facts["alpn"] = msg.alpn
        if ch is not None and ch.session_id and msg.session_id == ch.session_id:
            self.resumed = True
            self.resumption = "ticket" if ch.session_ticket else "session_id"
        master = self._secret("CLIENT_RANDOM")
        if master is None:
            self._no_key_reason = self._missing_reason()
            return
        if msg.version < 0x0302 or suite is None or suite.tls13:
            self._tls12_unsupported = f"cannot decrypt {version_name(msg.version)} with {cipher_name(msg.cipher_suite)}"
            self._no_key_reason = self._tls12_unsupported
            out.append(self._note(frame, ts, self._tls12_unsupported, None))
            return
        assert ch is not None
        etm = bool(suite.mac) and msg.encrypt_then_mac and ch.encrypt_then_mac
        c2s, s2c = tls12_openers(suite, master, ch.random, msg.random, encrypt_then_mac=etm)
        self.sides[0].pending12 = c2s
        self.sides[1].pending12 = s2c

    def _missing_reason(self) -> str:
        log = self.ctx.keylog
        if log is None or not log:
            return "encrypted, no key"
        return "encrypted, no key (key log has no secrets for this client random)"

    def _encrypted_extensions(self, msg: EncryptedExtensions, frame: int, ts: float, out: list[Event]) -> None:
        self.alpn = msg.alpn
        if msg.alpn:
            self.ctx.facts["alpn"] = msg.alpn
        if self.early_offered and self.early_status is None:
            if msg.early_data:
                self.early_status = "accepted"
                pending, self._early_pending = self._early_pending, []
                self._early_pending_bytes = 0
                for content, span in pending:
                    self._deliver(self.sides[0], content, span, out)
            else:
                self._reject_early(frame, ts, out, "EncryptedExtensions has no early_data")

    def _reject_early(self, frame: int, ts: float, out: list[Event], why: str) -> None:
        if self.early_status is not None:
            return
        self.early_status = "rejected"
        if self._early_pending or self.early_sent:
            out.append(
                self._note(frame, ts, f"0-RTT data rejected ({why}); {self._early_pending_bytes} bytes not processed", self.sides[0])
            )
        self._early_pending.clear()
        self._early_pending_bytes = 0

    def _early_over(self, side: _Side, frame: int, ts: float, out: list[Event], *, by_end_of_early_data: bool) -> None:
        if side.stage == "early":
            side.stage = "handshake"

    def _finished(self, side: _Side, ts: float, out: list[Event], frame: int) -> None:
        tls13 = self.version is not None and self.version >= 0x0304
        if side.d == 0:
            self.times.setdefault("client_finished", ts)
        else:
            self.times.setdefault("server_finished", ts)
            self.frames.setdefault("server_finished", frame)
        if not tls13 or side.stage == "app":
            return
        suite = SUITES.get(self.suite_id) if self.suite_id is not None else None
        secret = self._secret("CLIENT_TRAFFIC_SECRET_0" if side.d == 0 else "SERVER_TRAFFIC_SECRET_0")
        side.stage = "app"
        side.seq = 0
        if suite is None or secret is None:
            side.keys = []
            if secret is None and suite is not None:
                self._no_key_reason = "partial key log: handshake secrets only"
                out.append(
                    self._note(
                        frame, ts, f"key log lacks the {side.name} application traffic secret: application data stays encrypted", side
                    )
                )
            return
        side.keys = [_Key("app", Tls13Opener(suite, secret))]

    # ------------------------------------------------------------------ application data

    def _app_data(
        self, side: _Side, rec: Record, content: bytes, spans: list[Span], frame: int, ts: float, out: list[Event]
    ) -> None:
        early = side.stage == "early"
        if self._events:
            out.append(
                TlsApplicationData(
                    frame=frame,
                    ts=ts,
                    conn=self.ctx.conn,
                    direction=side.name,
                    length=len(rec.payload),
                    plaintext_len=len(content),
                    early=early,
                )
            )
        if side.d == 0:
            # 0-RTT data counts as the first application data only if the server accepts it
            self.times.setdefault("early_data" if early else "first_app_data", ts)
        if not content:
            return
        arrival_span = max(spans, key=_arrival) if len(spans) > 1 else spans[0]
        # The record is usable once all its bytes are there: arrival = latest arrival among its TCP bytes.
        start = side.plain_offset
        span = Span(start, start + len(content), frame, arrival_span.arrival, ts, arrival_span.arrival_frame)
        if not early and self._inner_state == "active":
            # hot path: straight to the inner decoder
            side.plain_offset = span.end
            side.plain_index.add(span)
            try:
                more = self._inner.feed(side.d, content, start, side.plain_index)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001
                out += self._inner_failed(exc, side)
                return
            if more:
                out += more
            return
        if early:
            self.early_sent = True
            if self.early_status == "rejected":
                return
            if self.early_status is None:
                if self._early_pending_bytes + len(content) <= MAX_PENDING_PLAINTEXT:
                    self._early_pending.append((content, span))
                    self._early_pending_bytes += len(content)
                return
        self._deliver(side, content, span, out)

    def _deliver(self, side: _Side, content: bytes, span: Span, out: list[Event]) -> None:
        start = side.plain_offset
        end = start + len(content)
        side.plain_offset = end
        side.plain_index.add(span._replace(start=start, end=end))
        state = self._inner_state
        if state == "active":
            out += self._inner_call("feed", side.d, content, start, side.plain_index)
            return
        if state != "undecided":
            side.plain_index.release(end)
            return
        self._inner_pending.append((side.d, content, start))
        self._inner_pending_bytes += len(content)
        inner = None
        if self.inner_factory is not None:
            first = b"".join(c for d, c, _ in self._inner_pending if d == side.d)
            try:
                inner = self.inner_factory(self.ctx, self.alpn, first, side.d)
            except Exception as exc:  # noqa: BLE001
                out.append(self._malformed(span.frame, span.delivered, f"choosing the inner decoder failed: {exc!r}", side))
                self._inner_state = "failed"
        if inner is None:
            if self._inner_state == "failed" or self.inner_factory is None or self._inner_pending_bytes > MAX_PENDING_PLAINTEXT:
                if self._inner_state == "undecided":
                    self._inner_state = "none"
                self._inner_pending.clear()
                for s in self.sides:
                    s.plain_index.release(s.plain_offset)
            return
        self._inner = inner
        self._inner_state = "active"
        pending, self._inner_pending = self._inner_pending, []
        for d, c, off in pending:
            out += self._inner_call("feed", d, c, off, self.sides[d].plain_index)
            if self._inner_state != "active":
                break

    def _inner_call(self, method: str, *args: Any) -> list[Event]:
        inner = self._inner
        if inner is None or self._inner_state != "active":
            return []
        try:
            return list(getattr(inner, method)(*args) or [])
        except Exception as exc:  # noqa: BLE001 - the inner decoder stops, TLS goes on
            return self._inner_failed(exc, self.sides[args[0]] if method in ("feed", "gap") else self.sides[0])

    def _inner_failed(self, exc: Exception, side: _Side) -> list[Event]:
        self._inner_state = "failed"
        reason = exc.reason if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"
        return [
            self._malformed(
                side.last_frame,
                side.last_ts,
                f"{type(self._inner).__name__}: {reason}; stopped decoding the application",
                side,
            )
        ]

    # ------------------------------------------------------------------ gaps

    def _resync(
        self, side: _Side, data: bytes, offset: int, index: StreamIndex, out: list[Event]
    ) -> tuple[bytes, int]:
        """Find the next record header after a gap; returns the data from there on."""
        held = side.records.pending
        buf = bytes(side.records._buf) + bytes(data) if held else bytes(data)
        base = offset - held
        n = len(buf)
        for pos in range(0, n - HEADER_LEN + 1):
            if not looks_like_record(buf, pos):
                continue
            length = HEADER.unpack_from(buf, pos)[2]
            nxt = pos + HEADER_LEN + length
            # confirm with the following header when it is there, else with the chunk ending on the record
            if nxt < n - HEADER_LEN and not looks_like_record(buf, nxt):
                continue
            if nxt > n and n - pos < 64:
                break  # too little to judge: wait for more
            side.resync = False
            side.lost += pos
            side.records.reset(base + pos)
            return buf[pos:], base + pos
        if n > 2 * (MAX_RECORD_PAYLOAD + HEADER_LEN):
            span = index.locate(offset)
            self._stop(side, span.frame, span.delivered, "no TLS record header found after a gap", out)
            return b"", offset
        keep = buf[max(0, n - (MAX_RECORD_PAYLOAD + HEADER_LEN)) :] if n > HEADER_LEN else buf
        side.lost += n - len(keep)
        side.records.reset(base + n - len(keep))
        side.records._buf = bytearray(keep)
        side.records._buf_start = base + n - len(keep)
        side.records.next_offset = base + n
        return b"", offset

    def _stop(self, side: _Side, frame: int, ts: float, reason: str, out: list[Event]) -> None:
        side.dead = True
        out.append(self._malformed(frame, ts, reason, side))
        out.append(self._note(frame, ts, f"stopped decoding TLS {side.name}: {reason}", side, "error"))

    # ------------------------------------------------------------------ helpers

    def _note(self, frame: int, ts: float, message: str, side: _Side | None, severity: str = "note") -> Note:
        return Note(
            frame=frame,
            ts=ts,
            conn=self.ctx.conn,
            layer="tls",
            severity=severity,
            message=message,
            direction=side.name if side else None,
        )

    def _malformed(self, frame: int, ts: float, reason: str, side: _Side | None) -> Malformed:
        return Malformed(frame=frame, ts=ts, conn=self.ctx.conn, layer="tls", reason=reason, direction=side.name if side else None)


def _arrival(span: Span) -> float:
    return span.arrival


def _hs_name(msg_type: int) -> str:
    from .constants import handshake_name

    return handshake_name(msg_type)


__all__ = ["TlsDecoder", "alert_name"]
