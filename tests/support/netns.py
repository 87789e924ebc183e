"""A two-host test network: this namespace and a fresh one, joined by a veth pair.

Loopback hands the kernel's 64 KiB GSO super-packets to tcpdump, so segment
sizes and loss look nothing like a real link.  A veth pair with offloads
turned off gives MTU-sized segments, and nftables rules on our end make real
loss.  Addresses are in a private range used only inside these namespaces.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@dataclass
class VethPair:
    ns: str  #: the peer namespace (run servers there with ``ip netns exec``)
    local_if: str  #: our end: capture here
    local_ip: str
    peer_ip: str

    def exec_cmd(self, *cmd: str) -> list[str]:
        """A command line that runs ``cmd`` inside the peer namespace."""
        return ["ip", "netns", "exec", self.ns, *cmd]


@contextmanager
def veth_pair(tag: str, mtu: int = 1500) -> Iterator[VethPair]:
    """Create namespace + veth pair (offloads off), remove them afterwards."""
    n = os.getpid() % 200 + 20
    sub = abs(hash(tag)) % 50
    ns = f"ni-{tag}-{os.getpid()}"[:15]
    a, b = f"ni{tag[:4]}{n}a"[:15], f"ni{tag[:4]}{n}b"[:15]
    local_ip, peer_ip = f"10.213.{n}.{sub * 4 + 1}", f"10.213.{n}.{sub * 4 + 2}"
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", a, "mtu", str(mtu), "type", "veth", "peer", "name", b, "mtu", str(mtu), "netns", ns)
        _run("ip", "addr", "add", f"{local_ip}/30", "dev", a)
        _run("ip", "link", "set", a, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{peer_ip}/30", "dev", b)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", b, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        for cmd in (["ethtool", "-K", a], ["ip", "netns", "exec", ns, "ethtool", "-K", b]):
            subprocess.run([*cmd, "tso", "off", "gso", "off", "gro", "off"], capture_output=True)
        yield VethPair(ns, a, local_ip, peer_ip)
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@dataclass
class RoutedPath:
    """client ns <-> router ns <-> server ns; capture and drop in the router."""

    client_ns: str
    router_ns: str
    server_ns: str
    client_ip: str
    server_ip: str
    router_client_if: str  #: the router's interface towards the client (capture here)

    def in_ns(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]


@contextmanager
def routed_path(tag: str, mtu: int = 1500) -> Iterator[RoutedPath]:
    """Three namespaces in a line.  Loss made in the router's forward hook is real
    loss for both stacks (no local error to retry on), and a capture on the
    router's client-side interface sees client data before the drop (a sender's
    view) and server data after it (a receiver's view)."""
    n = os.getpid() % 200 + 20
    base = f"{tag[:5]}{n}"
    c, r, s = f"nic-{base}", f"nir-{base}", f"nis-{base}"
    client_ip, rc_ip, rs_ip, server_ip = f"10.214.{n}.1", f"10.214.{n}.2", f"10.214.{n}.5", f"10.214.{n}.6"
    for ns in (c, r, s):
        _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", "c0", "netns", c, "mtu", str(mtu), "type", "veth", "peer", "name", "rc", "netns", r, "mtu", str(mtu))
        _run("ip", "link", "add", "s0", "netns", s, "mtu", str(mtu), "type", "veth", "peer", "name", "rs", "netns", r, "mtu", str(mtu))
        for ns, dev, addr in ((c, "c0", client_ip), (r, "rc", rc_ip), (r, "rs", rs_ip), (s, "s0", server_ip)):
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/30", "dev", dev)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"], capture_output=True)
        for ns in (c, r, s):
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        _run("ip", "netns", "exec", c, "ip", "route", "add", "default", "via", rc_ip)
        _run("ip", "netns", "exec", s, "ip", "route", "add", "default", "via", rs_ip)
        _run("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield RoutedPath(c, r, s, client_ip, server_ip, "rc")
    finally:
        for ns in (c, r, s):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
