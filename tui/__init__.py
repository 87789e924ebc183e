"""The Textual terminal UI (arrives with the `view` verb)."""
