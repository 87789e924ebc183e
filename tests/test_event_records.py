"""DataRecord's shared __repr__/__eq__ behave exactly as the ones @dataclass would generate for each
event and TLS handshake class (checked against a dataclass-generated twin of every class)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from inspector import events
from inspector.decoders.tls import handshake
from inspector.events import DataRecord

CLASSES = sorted({c for mod in (events, handshake) for _, c in inspect.getmembers(mod, inspect.isclass)
                  if issubclass(c, DataRecord) and c is not DataRecord and dataclasses.is_dataclass(c)},
                 key=lambda c: c.__qualname__)


def _twin(cls: type) -> type:
    """``cls`` with the __repr__ and __eq__ @dataclass generates."""
    sub = type(cls.__name__, (cls,), {"__qualname__": cls.__qualname__, "__module__": cls.__module__})
    return dataclasses.dataclass(repr=True, eq=True, kw_only=True)(sub)


def _kwargs(cls: type, tag: str) -> dict[str, object]:
    return {f.name: f"{tag}-{f.name}" for f in dataclasses.fields(cls)}


def test_every_event_class_uses_the_shared_methods() -> None:
    assert len(CLASSES) > 45
    for cls in CLASSES:
        assert cls.__repr__ is DataRecord.__repr__, cls
        assert cls.__eq__ is DataRecord.__eq__, cls
        assert cls.__hash__ is None, cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_repr_and_eq_are_the_dataclass_ones(cls: type) -> None:
    twin = _twin(cls)
    a, b = cls(**_kwargs(cls, "a")), cls(**_kwargs(cls, "a"))
    ta, tb = twin(**_kwargs(cls, "a")), twin(**_kwargs(cls, "a"))
    assert repr(a) == repr(ta)
    assert (a == b) is (ta == tb) is True
    assert (a != b) is (ta != tb) is False
    for f in dataclasses.fields(cls):  # one field differs: unequal, as the twins are
        kw = _kwargs(cls, "a") | {f.name: "other"}
        assert (a == cls(**kw)) is (ta == twin(**kw)) is False, f.name
    assert a.__eq__(ta) is NotImplemented  # another class: Python then tries the other side
    assert ta.__eq__(a) is NotImplemented
    with pytest.raises(TypeError):
        hash(a)
