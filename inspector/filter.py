"""The display filter language: which events, and which connections, to show.

Used by ``netinspect view`` (the ``/`` filter) and open to any other output
(an ``export --filter`` would compile the same expressions).  Grammar::

    expr     := or
    or       := and (("or" | "||") and)*
    and      := not (("and" | "&&") not)*
    not      := ("not" | "!") not | atom
    atom     := "(" expr ")" | STRING | field [op value]
    op       := "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "matches" | "~"
    value    := NUMBER | STRING | WORD
    field    := NAME ("." NAME)*

Two scopes:

* **Events.** ``LAYER.FIELD...`` is looked up on an event of that layer
  (``http2.stream == 5``, ``tls.sni contains "example"``, ``quic.frames ==
  ACK``); ``tcp.analysis.retransmission`` is true for segments carrying that
  analysis flag.  A plain ``NAME`` compared with a value is an event attribute
  (``frame > 100``, ``direction == s2c``, ``severity == warning``).  A bare
  ``NAME`` is true when the event's layer, type or severity is that name
  (``tls``, ``HEADERS``, ``warning``, ``hol``).  ``conn.FIELD...`` reaches the
  event's connection record.
* **Connections.** Fields are looked up on the connection record (the
  ``summary --json`` object: ``tls.sni``, ``tcp.analysis.retransmission``,
  ``requests.status == 404``, ``app == h2``); a bare ``NAME`` is true when the
  record has that key with a value that is not empty, or ``app`` is that name.
  A connection matches when its record matches or one of its events does.

Everywhere: ``port`` and ``addr`` match either end of the connection
(``tcp.port``/``udp.port``/``ip.addr`` are aliases), a field alone is true
when it has a value that is not empty, zero or false, a field with several
values (lists) matches when any value does (``!=``: when none equals), a
``"quoted string"`` alone is a case-insensitive text search over every field,
``contains`` is case-sensitive, ``matches`` a case-insensitive regular
expression, and an unquoted value compares case-insensitively with text
(``http2.type == headers``) while a quoted one must match exactly.  Keywords and layer names are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]

#: Wireshark spellings accepted for ours.
ALIASES = {
    "http2.streamid": "http2.stream",
    "tls.handshake.extensions_server_name": "tls.sni",
    "tcp.stream": "conn",
    "frame.number": "frame",
    "ip.addr": "addr",
    "ipv6.addr": "addr",
    "tcp.port": "port",
    "udp.port": "port",
    "dir": "direction",
}


class FilterError(ValueError):
    """An expression that does not parse; ``position`` is the offending character."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at column {position + 1})")
        self.message = message
        self.position = position


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|&&|\|\||[<>()!~]|=)
      | (?P<word>[^\s"'()<>=!~&|]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "contains", "matches"}
_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$")


@dataclass(slots=True)
class _Tok:
    kind: str  # "str", "op", "word", "kw", "end"
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"unexpected {text[pos:].lstrip()[:1]!r}", pos)
        kind = m.lastgroup or "word"
        value = m.group(kind)
        start = m.start(kind)
        if kind == "op" and value == "=":
            raise FilterError("use == to compare", start)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append(_Tok(kind, value, start))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# --------------------------------------------------------------------------- values


def _number(text: str) -> int | float | None:
    if not _NUMBER.match(text):
        return None
    try:
        return int(text, 0)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


@dataclass(slots=True, frozen=True)
class _Literal:
    text: str
    number: int | float | None
    quoted: bool


_MISSING = object()


def _walk(value: Any, parts: list[str]) -> Iterator[Any]:
    """Values reached from ``value`` through ``parts`` (several where lists fan out)."""
    if not parts:
        if isinstance(value, (list, tuple)):
            for v in value:
                if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], str):
                    yield f"{v[0]}: {v[1]}"  # a header pair reads as "name: value"
                else:
                    yield v
        elif value is not None:
            yield value
        return
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        if head in value:
            yield from _walk(value[head], rest)
        return
    if isinstance(value, (list, tuple)):
        if not value:
            return
        first = value[0]
        if isinstance(first, str):
            # a list of names (TCP analysis flags, QUIC frame types): membership
            if head in value and not rest:
                yield True
            return
        if isinstance(first, (list, tuple)):
            # header pairs: values of the headers with that name (case-insensitive)
            low = head.lower()
            for pair in value:
                if len(pair) == 2 and isinstance(pair[0], str) and pair[0].lower() == low:
                    yield from _walk(pair[1], rest)
            return
        for item in value:
            yield from _walk(item, parts)
        return
    if hasattr(value, "__dataclass_fields__"):
        attr = getattr(value, head, _MISSING)
        if attr is not _MISSING:
            yield from _walk(attr, rest)


def _strings(value: Any) -> Iterator[str]:
    """Every string (and number, as text) inside a value, for text search."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bool, int, float)):
        yield str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            if name != "raw":
                yield from _strings(getattr(value, name, None))


def _truthy(values: Iterator[Any]) -> bool:
    return any(bool(v) for v in values)


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        n = _number(v.strip())
        return None if n is None else n
    return None


def _equal(v: Any, lit: _Literal) -> bool:
    if isinstance(v, bool):
        return v == (lit.text.lower() in ("true", "1", "yes"))
    if lit.number is not None:
        n = _as_number(v)
        if n is not None:
            return n == lit.number
    if isinstance(v, str):
        # an unquoted word compares case-insensitively (http2.type == headers)
        return v == lit.text or (not lit.quoted and v.lower() == lit.text.lower())
    return str(v) == lit.text


def _order(op: str) -> Callable[[Any, Any], bool]:
    return {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[op]


# --------------------------------------------------------------------------- nodes
# Each node compiles to two predicates: on an event (with its connection record,
# possibly None) and on a connection record alone.

EventPred = Callable[[Any, Record | None], bool]
RecordPred = Callable[[Record], bool]


def _record_values(record: Record | None, parts: list[str]) -> Iterator[Any]:
    if record is None:
        return iter(())
    head = parts[0]
    if head == "port" and len(parts) == 1:
        return iter(_endpoints(record, port=True))
    if head == "addr" and len(parts) == 1:
        return iter(_endpoints(record, port=False))
    if head == "conn" and len(parts) == 1:
        return iter((record.get("id"),))
    if head == "conn":
        parts = parts[1:]
    return _walk(record, parts)


def _endpoints(record: Record, port: bool) -> list[Any]:
    out: list[Any] = []
    for key in ("client", "server"):
        ep = record.get(key)
        if isinstance(ep, str) and ":" in ep:
            host, _, p = ep.rpartition(":")
            host = host.strip("[]")
            out.append(int(p) if port and p.isdigit() else host)
    return out if port else [h for h in out if isinstance(h, str)]


def _event_values(event: Any, record: Record | None, parts: list[str]) -> Iterator[Any]:
    head = parts[0]
    if head in ("port", "addr") and len(parts) == 1 or head == "conn" and len(parts) > 1:
        return _record_values(record, parts)
    if len(parts) == 1:
        return _walk(event, parts)
    if getattr(event, "layer", None) == head:
        return _walk(event, parts[1:])
    return iter(())


def _bare_event(name: str) -> EventPred:
    low = name.lower()

    def pred(event: Any, record: Record | None) -> bool:
        if getattr(event, "layer", "") == low or str(getattr(event, "type", "")).lower() == low:
            return True
        sev = getattr(event, "severity", None)
        return sev is not None and sev == low

    return pred


def _bare_record(name: str) -> RecordPred:
    low = name.lower()

    def pred(record: Record) -> bool:
        if str(record.get("app", "")).lower() == low or str(record.get("transport", "")).lower() == low:
            return True
        return bool(record.get(low) or record.get(name))

    return pred


@dataclass(slots=True)
class _Node:
    on_event: EventPred
    on_record: RecordPred


def _compare(op: str, lit: _Literal) -> Callable[[Iterator[Any]], bool]:
    if op == "==":
        return lambda values: any(_equal(v, lit) for v in values)
    if op == "!=":

        def ne(values: Iterator[Any]) -> bool:
            seen = False
            for v in values:
                seen = True
                if _equal(v, lit):
                    return False
            return seen

        return ne
    if op in ("<", "<=", ">", ">="):
        cmp = _order(op)
        if lit.number is not None:
            num = lit.number

            def numeric(values: Iterator[Any]) -> bool:
                for v in values:
                    n = _as_number(v)
                    if n is not None and cmp(n, num):
                        return True
                return False

            return numeric
        text = lit.text
        return lambda values: any(isinstance(v, str) and cmp(v, text) for v in values)
    if op == "contains":
        needle = lit.text
        return lambda values: any(needle in s for v in values for s in _strings(v))
    # matches / ~
    try:
        rx = re.compile(lit.text, re.IGNORECASE)
    except re.error as e:
        raise FilterError(f"bad regular expression: {e}", 0) from None
    return lambda values: any(rx.search(s) for v in values for s in _strings(v))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise FilterError("empty filter", 0)
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise FilterError(f"unexpected {tok.text!r}", tok.pos)
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.peek().text in ("or", "||"):
            self.take()
            a, b = node, self.and_()
            node = _Node(lambda e, r, a=a, b=b: a.on_event(e, r) or b.on_event(e, r),
                         lambda r, a=a, b=b: a.on_record(r) or b.on_record(r))
        return node

    def and_(self) -> _Node:
        node = self.not_()
        while self.peek().text in ("and", "&&"):
            self.take()
            a, b = node, self.not_()
            node = _Node(lambda e, r, a=a, b=b: a.on_event(e, r) and b.on_event(e, r),
                         lambda r, a=a, b=b: a.on_record(r) and b.on_record(r))
        return node

    def not_(self) -> _Node:
        if self.peek().text in ("not", "!"):
            self.take()
            a = self.not_()
            return _Node(lambda e, r, a=a: not a.on_event(e, r), lambda r, a=a: not a.on_record(r))
        return self.atom()

    def atom(self) -> _Node:
        tok = self.take()
        if tok.text == "(" and tok.kind == "op":
            node = self.or_()
            close = self.take()
            if close.text != ")":
                raise FilterError("missing )", close.pos)
            return node
        if tok.kind == "str":
            needle = _unquote(tok.text).lower()
            return _Node(lambda e, r: any(needle in s.lower() for s in _strings(e)),
                         lambda r: any(needle in s.lower() for s in _strings(r)))
        if tok.kind != "word":
            raise FilterError(f"expected a field, found {tok.text or 'the end'!r}", tok.pos)
        name = ALIASES.get(tok.text.lower(), tok.text)
        parts = name.split(".")
        if any(not p for p in parts):
            raise FilterError(f"bad field name {tok.text!r}", tok.pos)
        parts[0] = parts[0].lower()
        op_tok = self.peek()
        if op_tok.text in ("==", "!=", "<", "<=", ">", ">=", "contains", "matches", "~"):
            self.take()
            val = self.take()
            if val.kind not in ("word", "str"):
                raise FilterError(f"expected a value after {op_tok.text}", val.pos)
            text = _unquote(val.text) if val.kind == "str" else val.text
            lit = _Literal(text, None if val.kind == "str" else _number(text), val.kind == "str")
            op = "matches" if op_tok.text == "~" else op_tok.text
            try:
                test = _compare(op, lit)
            except FilterError as e:
                raise FilterError(e.message, val.pos) from None
            return _Node(lambda e, r: test(_event_values(e, r, parts)),
                         lambda r: test(_record_values(r, parts)))
        if len(parts) == 1 and parts[0] not in ("port", "addr"):
            return _Node(_bare_event(parts[0]), _bare_record(parts[0]))
        return _Node(lambda e, r: _truthy(_event_values(e, r, parts)),
                     lambda r: _truthy(_record_values(r, parts)))


class Filter:
    """A compiled filter expression; see the module docstring for the language."""

    __slots__ = ("text", "_node")

    def __init__(self, text: str) -> None:
        """Parse ``text``; raises :class:`FilterError` with a column on bad input."""
        self.text = text.strip()
        self._node = _Parser(text).parse()

    def match_event(self, event: Any, record: Record | None = None) -> bool:
        """Does this event pass?  ``record`` is its connection's summary (for ``conn.``/``port``/``addr``)."""
        return self._node.on_event(event, record)

    def match_record(self, record: Record) -> bool:
        """Does this connection record alone pass?"""
        return self._node.on_record(record)

    def match_connection(self, record: Record, events: list[Any] | None) -> bool:
        """A connection passes when its record does or any of its events does."""
        if self._node.on_record(record):
            return True
        if events:
            on_event = self._node.on_event
            for event in events:
                if on_event(event, record):
                    return True
        return False

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"
