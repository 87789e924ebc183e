"""inspector.output.jsontext writes exactly json.dumps's text: checked against json.dumps itself
(and float.__repr__) on generated values, the edge cases of the float shortcut, and real records."""

from __future__ import annotations

import enum
import importlib.util
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.output import jsontext

REPO = Path(__file__).resolve().parent.parent


def _from_source():
    """jsontext run from its Python source, as where nothing is compiled."""
    spec = importlib.util.spec_from_file_location("jsontext_source", REPO / "inspector/output/jsontext.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_source = _from_source()
#: the installed module (compiled where a C compiler was at hand) and the source, both checked
IMPLEMENTATIONS = [jsontext, _source] if jsontext.__file__.endswith(".so") else [jsontext]

# timestamps as captures give them: whole microseconds (pcap) or nanoseconds (pcapng), from 1970 to
# beyond 2**33 s, where the shortcut stops
micro = st.integers(0, 2**34 * 10**6).map(lambda n: n / 1e6)
nano = st.integers(0, 2**33 * 10**9).map(lambda n: n / 1e9)
millis = st.floats(0, 1e7, allow_nan=False).map(lambda x: round(x, 3))  # the *_ms values of records
any_float = st.floats(allow_nan=True, allow_infinity=True)
floats = st.one_of(micro, nano, millis, any_float, micro.map(lambda x: -x))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), floats, st.text(max_size=12))
json_like = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=5), st.lists(kids, max_size=3).map(tuple),
                           st.dictionaries(st.text(max_size=6), kids, max_size=5)),
    max_leaves=40)


@given(floats)
@settings(max_examples=3000)
def test_float_text_is_repr(x: float) -> None:
    if math.isfinite(x):
        for impl in IMPLEMENTATIONS:
            assert impl.float_text(x) == repr(x)


@given(st.integers(0, 2**64 - 1))
@settings(max_examples=3000)
def test_float_text_is_repr_for_any_bit_pattern(bits: int) -> None:
    x = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    if math.isfinite(x):
        for impl in IMPLEMENTATIONS:
            assert impl.float_text(x) == repr(x)


def test_float_text_at_the_edges_of_the_shortcut() -> None:
    edges = [0.0, -0.0, 1e-4, -1e-4, 0.000123, 0.0001234, 9.9999e-05, 1e-5, 5.0, -5.0, 0.5, 10.0, 9.9999995,
             999999.999999, 1000000.0, 2.0**33, 2.0**33 - 1e-6, 2.0**33 - 2**-20, 2.0**33 + 1, 1e15, 1e16, 1.5e16,
             1795274105.485587, 1795274105.48626, 1795274105.0, 1795274105.1, 0.1, 0.2, 0.3, 1 / 3,
             123456.000001, 123456.0000005, 2**-20, 8589934591.999999]
    # and the microseconds around every power of ten and two the shortcut meets
    edges += [round(base * 1e6 + n) / 1e6 for base in [10.0**k for k in range(-4, 10)] + [2.0**k for k in range(-13, 34)]
              for n in range(-3, 4)]
    for impl in IMPLEMENTATIONS:
        for x in edges:
            assert impl.float_text(x) == repr(x), x
            assert impl.float_text(-x) == repr(-x), -x


@given(json_like)
@settings(max_examples=1500)
def test_dumps_is_json_dumps(obj: object) -> None:
    for impl in IMPLEMENTATIONS:
        assert impl.dumps(obj) == json.dumps(obj)


class _Kind(enum.IntEnum):
    A = 3


class _Str(str):
    pass


class _Float(float):
    pass


class _List(list):
    pass


class _Dict(dict):
    pass


def _nested(depth: int) -> list:
    obj: list = [1]
    for i in range(depth):
        obj = [obj] if i % 2 else [{"k": obj}]
    return obj


def test_dumps_writes_subclasses_and_unusual_values_as_json_does() -> None:
    cases = [
        {"kind": _Kind.A, "name": _Str("x\u00e9\n\"\\"), "f": _Float(0.25), "l": _List([1, (2, 3)]), "d": _Dict(a=1)},
        {"nan": math.nan, "inf": math.inf, "-inf": -math.inf},
        {1: "int key", 2.5: "float key", None: "null key", True: "bool key"},
        [{}, [], (), "", 0, -0.0, 2**100, -(2**100)],
        {"deep": _nested(70)},
        "\ud800 lone surrogate \U0001f600",
    ]
    for impl in IMPLEMENTATIONS:
        for obj in cases:
            assert impl.dumps(obj) == json.dumps(obj), obj


def test_dumps_refuses_what_json_refuses() -> None:
    for obj in ({"x": object()}, [1, {2, 3}], {("a",): 1}, b"bytes"):
        try:
            json.dumps(obj)
        except TypeError as exc:
            expected = str(exc)
        for impl in IMPLEMENTATIONS:
            try:
                impl.dumps(obj)
            except TypeError as exc:
                assert str(exc) == expected
            else:
                raise AssertionError(f"{obj!r} was encoded")


def test_the_summary_of_every_sample_capture_is_json_dumps_text(tmp_path: Path) -> None:
    """The records ``summary --json`` writes through jsontext read back, and json.dumps of what they
    read back as is the same text: no float, string or number was written otherwise."""
    captures = sorted(p for p in (REPO / "captures").rglob("*.pcap*") if "fuzz" not in p.parts)
    assert len(captures) > 20
    for cap in captures:
        keylog = next((k for k in (cap.with_suffix(".keys"), cap.with_suffix(".keylog")) if k.exists()), None)
        argv = [sys.executable, "-m", "inspector.cli", "summary", "--json", str(cap)]
        if keylog is not None:
            argv[5:5] = ["--keylog", str(keylog)]
        text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        assert text == json.dumps(json.loads(text)) + "\n", cap.name


def test_the_encoder_is_compiled_where_the_hot_path_is() -> None:
    from inspector import native

    compiled = native.compiled_modules()
    if compiled:  # a build with a C compiler compiles it with the rest
        assert "inspector.output.jsontext" in compiled
        assert jsontext.__file__.endswith(".so")
