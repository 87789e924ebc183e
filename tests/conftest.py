"""Shared fixtures: real captures made once per test session."""

from __future__ import annotations

import pytest

from tests.support import tcp_captures


@pytest.fixture(scope="session")
def http_pcap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """curl against Python's HTTP server on loopback (kernel TCP, clean)."""
    return tcp_captures.http_capture(str(tmp_path_factory.mktemp("tcp") / "http.pcap"))


@pytest.fixture(scope="session")
def lossy_pcap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bulk exchange through a router dropping ~4% of data segments each way."""
    return tcp_captures.lossy_capture(str(tmp_path_factory.mktemp("tcp") / "lossy.pcap"), 4, 4)
