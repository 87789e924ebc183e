"""Messages from the loading worker to the UI (posted from the worker thread)."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from inspector.timeline import CaptureModel


@dataclass
class Progress(Message):
    """The model published new rows/events; ``fraction`` is None when unknown (live)."""

    text: str
    fraction: float | None
    done: bool


@dataclass
class ModelReplaced(Message):
    """The source rebuilt the model (live capture re-decoded with new secrets)."""

    model: CaptureModel


@dataclass
class SourceFailed(Message):
    """The source stopped with an error (shown in the status line)."""

    error: str
