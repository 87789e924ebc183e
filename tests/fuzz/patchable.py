"""Decoders whose methods the harness can replace on an instance (to record or watch their calls)."""

from __future__ import annotations

from typing import Any

from inspector.decoders.http1 import Http1Decoder
from inspector.decoders.http2 import Http2Decoder
from inspector.decoders.registry import Registry
from inspector.decoders.websocket import upgrade_factory

_SUBCLASSES: dict[type, type] = {}


def patchable(cls: type) -> type:
    """``cls``, or, when its instances have no ``__dict__`` (a compiled C-level class, or ``__slots__``),
    a subclass of it that adds one, with the same name (the pipeline names layers after decoder classes)."""
    if getattr(cls, "__dictoffset__", 1):
        return cls
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = _SUBCLASSES[cls] = type(cls.__name__, (cls,), {"__module__": cls.__module__})
    return sub


class PatchableRegistry(Registry):
    """The registry, making the HTTP decoders inside TLS patchable."""

    def _h1(self, ctx: Any) -> Any:  # type: ignore[override]
        return patchable(Http1Decoder)(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)

    def _h2(self, ctx: Any) -> Any:  # type: ignore[override]
        return patchable(Http2Decoder)(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)
