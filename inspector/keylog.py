"""TLS/QUIC secrets in the NSS key log format (``SSLKEYLOGFILE``).

Lines look like ``LABEL <client_random hex> <secret hex>``; comments start
with ``#``.  Secrets come from ``--keylog``, from ``SSLKEYLOGFILE`` in the
environment, or from pcapng Decryption Secrets Blocks; all go into one
:class:`KeyLog`.  Secret values are never printed: ``repr`` shows counts only.
"""

from __future__ import annotations

import binascii
import os
from collections import defaultdict

from .errors import NetinspectError

#: Labels we understand (NSS key log format, RFC 9850 / draft-ietf-tls-keylogfile).
KNOWN_LABELS = frozenset(
    {
        "CLIENT_RANDOM",
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EARLY_EXPORTER_SECRET",
        "EXPORTER_SECRET",
    }
)


class KeyLog:
    """Secrets by client random and label; grows as lines are added (live capture)."""

    def __init__(self) -> None:
        self._secrets: dict[bytes, dict[str, bytes]] = defaultdict(dict)
        self.bad_lines = 0
        self.generation = 0  # bumps whenever a secret is added, so decoders can retry

    @classmethod
    def from_file(cls, path: str) -> KeyLog:
        """Read a key log file (OSError propagates to the caller)."""
        log = cls()
        with open(path, encoding="utf-8", errors="replace") as f:
            log.add_text(f.read())
        return log

    def add_text(self, text: str) -> int:
        """Add every valid line of ``text``; returns how many secrets were added."""
        added = 0
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3 or parts[0] not in KNOWN_LABELS:
                self.bad_lines += 1
                continue
            try:
                random = binascii.unhexlify(parts[1])
                secret = binascii.unhexlify(parts[2])
            except (binascii.Error, ValueError):
                self.bad_lines += 1
                continue
            if len(random) != 32 or not secret:
                self.bad_lines += 1
                continue
            slot = self._secrets[random]
            if slot.get(parts[0]) != secret:
                slot[parts[0]] = secret
                added += 1
        if added:
            self.generation += 1
        return added

    def get(self, client_random: bytes, label: str) -> bytes | None:
        """The secret logged under ``label`` for this ClientHello random, if any."""
        slot = self._secrets.get(client_random)
        return slot.get(label) if slot else None

    def __len__(self) -> int:
        return sum(len(v) for v in self._secrets.values())

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __repr__(self) -> str:
        return f"<KeyLog {len(self._secrets)} sessions, {len(self)} secrets>"


class KeyLogError(NetinspectError):
    """A key log the user named cannot be read."""


def load_keylog(path: str | None) -> KeyLog:
    """The key log from ``path`` (``--keylog``), else ``$SSLKEYLOGFILE``, else an empty one.

    An unreadable ``path`` raises :class:`KeyLogError`; an unreadable
    ``$SSLKEYLOGFILE`` is ignored (a stale variable must not stop a summary).
    """
    source = path or os.environ.get("SSLKEYLOGFILE")
    if not source:
        return KeyLog()
    try:
        return KeyLog.from_file(source)
    except OSError as e:
        if path:
            raise KeyLogError(f"cannot read key log {source}: {e.strerror or e}") from None
        return KeyLog()
