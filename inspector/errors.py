"""The error family shared by readers and decoders.

"Need more data" is never an error: decoders keep bytes buffered and return
no event.  "Invalid" is a :class:`DecodeError` with a reason (and where known
an offset); the pipeline turns it into a ``malformed`` event and goes on.
"""

from __future__ import annotations


class NetinspectError(Exception):
    """Base of netinspect's own errors."""


class CaptureError(NetinspectError):
    """The capture cannot be read at all (not a capture, unreadable, empty)."""


class DecodeError(NetinspectError):
    """A unit that is malformed; ``offset`` is where in the unit, when known."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
