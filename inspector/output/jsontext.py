"""JSON text exactly as ``json.dumps(obj)`` writes it (default separators, ASCII only), faster for
the records of ``summary --json``.

Most numbers in those records are timestamps, and json's encoder calls ``float.__repr__`` for every
float: finding the shortest digits of a 16-digit value like 1795274105.485587 takes ~7,000
instructions (dtoa's big-number loop), nearly half the encoding time of a 30,000-request connection.
:func:`float_text` writes a float that is a whole number of microseconds from that integer instead,
once a division proves the six-decimal text reads back as the same float; below 2**33 that text is
then also the shortest one, which is what repr writes (see there).  Everything else is written as
json's C encoder writes it; anything unusual (a key that is not a str, NaN or infinity, a type
json.dumps needs ``default`` for, deep nesting) sends the whole object to ``json.dumps``, so the
text is always json.dumps's.  Compiled with the hot path (``jsontext.pxd`` types its locals).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii  # the C function where the _json module is built
from typing import Any

#: below 2**33 the spacing of doubles is under 1e-6, so no two texts with six decimals or fewer read
#: back as the same double
_EXACT_BELOW = 8589934592.0
#: repr writes fixed-point digits from here up (1e-05 is written in exponent form)
_FIXED_FROM = 1e-4
_MAX_DEPTH = 64
_MEMO_MAX = 4096

_float_repr = float.__repr__
_string = encode_basestring_ascii


class _Unusual(Exception):
    """Something only json.dumps writes (or refuses) as it should."""


def dumps(obj: Any) -> str:
    """``json.dumps(obj)``: the same text."""
    parts: list[str] = []
    try:
        _value(obj, parts, {}, 0)
    except _Unusual:
        return json.dumps(obj)
    return "".join(parts)


def float_text(x: float) -> str:
    """``float.__repr__(x)`` for a finite float, without dtoa when ``x`` has at most six decimals.

    If the double nearest to n/10**6 (one correctly rounded division: n is exact below 2**53) is
    ``x``, the text of n/10**6 reads back as ``x``.  Where doubles lie less than 1e-6 apart (below
    2**33, beyond year 2242 as a Unix time) no other text with six decimals or fewer does, and a
    shorter text would have fewer decimals: so it is the shortest, repr's.  From 1e-4 up repr writes
    it in fixed point, with at least one decimal ("5.0").
    """
    ax = -x if x < 0.0 else x
    if _FIXED_FROM <= ax < _EXACT_BELOW:
        n = int(ax * 1e6 + 0.5)
        if n / 1e6 == ax:
            q = n // 1000000
            frac = n - q * 1000000
            sign = "-" if x < 0.0 else ""
            if frac == 0:
                return f"{sign}{q}.0"
            text = f"{sign}{q}.{frac:06d}"
            cut = 0  # its trailing zeros
            while frac % 10 == 0:
                frac //= 10
                cut += 1
            return text[:len(text) - cut]
    return _float_repr(x)


def _value(obj: Any, parts: list[str], memo: dict[str, str], depth: int) -> None:
    t = type(obj)
    if t is str:
        parts.append(_string(obj))
    elif t is float:
        parts.append(_float(obj))
    elif t is int:
        parts.append(f"{obj}")  # int.__repr__ (compiled: called directly, not through a Python call)
    elif obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif t is dict:
        _dict(obj, parts, memo, depth)
    elif t is list or t is tuple:
        _list(obj, parts, memo, depth)
    # subclasses, in json's order of checks
    elif isinstance(obj, str):
        parts.append(_string(obj))
    elif isinstance(obj, int):
        parts.append(int.__repr__(obj))
    elif isinstance(obj, float):
        parts.append(_float(obj))
    elif isinstance(obj, (list, tuple)):
        _list(obj, parts, memo, depth)
    elif isinstance(obj, dict):
        _dict(obj, parts, memo, depth)
    else:
        raise _Unusual


def _float(x: float) -> str:
    if x - x != 0.0:  # NaN or an infinity: json writes NaN/Infinity
        raise _Unusual
    return float_text(x)


def _dict(obj: dict[Any, Any], parts: list[str], memo: dict[str, str], depth: int) -> None:
    if not obj:
        parts.append("{}")
        return
    if depth >= _MAX_DEPTH:
        raise _Unusual
    depth += 1
    parts.append("{")
    first = True
    for k, v in obj.items():
        if type(k) is not str:
            raise _Unusual  # json writes int, float, bool and None keys as strings; rare in records
        key = memo.get(k)
        if key is None:
            key = _string(k) + ": "
            if len(memo) < _MEMO_MAX:
                memo[k] = key
        if first:
            first = False
        else:
            parts.append(", ")
        parts.append(key)
        _value(v, parts, memo, depth)
    parts.append("}")


def _list(obj: list[Any] | tuple[Any, ...], parts: list[str], memo: dict[str, str], depth: int) -> None:
    if not obj:
        parts.append("[]")
        return
    if depth >= _MAX_DEPTH:
        raise _Unusual
    depth += 1
    parts.append("[")
    first = True
    for v in obj:
        if first:
            first = False
        else:
            parts.append(", ")
        _value(v, parts, memo, depth)
    parts.append("]")
