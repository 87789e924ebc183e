"""Drive netinspect in a real terminal: tmux runs it, we send keys and read the screen.

What ``capture()`` returns is the text a user sees in the pane (tmux renders
the escape sequences Textual writes, exactly as a terminal would).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence

TMUX = shutil.which("tmux") or "tmux"


class TmuxSession:
    """One detached tmux session of a given size running one command."""

    def __init__(self, command: Sequence[str], width: int = 120, height: int = 36, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = f"ni-{uuid.uuid4().hex[:10]}"
        # a private server socket: other tmux users on the machine are not disturbed
        self.socket = f"ni-{uuid.uuid4().hex[:10]}"
        environment = {"TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items())
        # COLUMNS/LINES from the test process would override the pane's real size
        line = f"env -u COLUMNS -u LINES {exports} {shlex.join(command)}; echo '[exited '$?']'; sleep 600"
        subprocess.run([TMUX, "-L", self.socket, "new-session", "-d", "-s", self.name, "-x", str(width),
                        "-y", str(height), "-c", cwd or os.getcwd(), line], check=True)

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Send keys (tmux names: Enter, Escape, Tab, Down, C-p...); literal=True types text."""
        cmd = [TMUX, "-L", self.socket, "send-keys", "-t", self.name]
        if literal:
            cmd.append("-l")
        subprocess.run([*cmd, *keys], check=True)
        if not literal and keys and keys[-1] == "Escape":
            # a key right after Esc would arrive as Alt+key (the terminal's escape prefix)
            time.sleep(0.2)

    def capture(self) -> str:
        out = subprocess.run([TMUX, "-L", self.socket, "capture-pane", "-p", "-t", self.name],
                             capture_output=True, text=True, check=True)
        return out.stdout

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Wait until ``text`` is on screen and the screen has stopped changing (a redraw in
        progress is not what a user reads); returns it (AssertionError with it on timeout)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return self.settled(screen)
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{screen}")

    def settled(self, screen: str, quiet: float = 0.25, limit: float = 5.0) -> str:
        """The screen once it stayed the same for ``quiet`` seconds (at most ``limit``)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            time.sleep(quiet)
            again = self.capture()
            if again == screen:
                return screen
            screen = again
        return screen

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)

    def __enter__(self) -> TmuxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
