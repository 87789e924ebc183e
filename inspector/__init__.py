"""netinspect's library: capture reading, flows, decoders, analyses and outputs.

Nothing in this package imports the Textual UI (``tui``); a test enforces it.
"""

__version__ = "0.1.0"

from .native import guard as _guard

_guard()
