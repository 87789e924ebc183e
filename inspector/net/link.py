"""Link layers: where the IP header starts in a frame.

Each function takes the frame bytes and returns the offset of the IPv4/IPv6
header, or -1 when the frame carries something else (ARP, LLDP...).  The
dispatch table is keyed by pcap LINKTYPE_* values.
"""

from __future__ import annotations

from collections.abc import Callable

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)


def _ethertype_ok(t: int) -> bool:
    return t == ETH_IPV4 or t == ETH_IPV6


def ethernet(data: bytes) -> int:
    """Ethernet II, skipping any number of 802.1Q / 802.1ad VLAN tags."""
    off = 12
    n = len(data)
    while off + 2 <= n:
        t = (data[off] << 8) | data[off + 1]
        if t in _VLAN_TAGS:
            off += 4
            continue
        return off + 2 if _ethertype_ok(t) else -1
    return -1


def linux_sll(data: bytes) -> int:
    """Linux cooked capture v1: 16-byte header, protocol at offset 14."""
    if len(data) < 16:
        return -1
    return 16 if _ethertype_ok((data[14] << 8) | data[15]) else -1


def linux_sll2(data: bytes) -> int:
    """Linux cooked capture v2: 20-byte header, protocol at offset 0."""
    if len(data) < 20:
        return -1
    return 20 if _ethertype_ok((data[0] << 8) | data[1]) else -1


# BSD loopback address families that mean IPv6 on some platform (Linux 10, BSDs 24/28/30).
_NULL_IPV4 = {2}
_NULL_IPV6 = {10, 24, 28, 30}


def bsd_null(data: bytes) -> int:
    """BSD loopback (DLT_NULL): 4-byte address family in the capturing host's byte order."""
    if len(data) < 4:
        return -1
    le = int.from_bytes(data[:4], "little")
    be = int.from_bytes(data[:4], "big")
    for fam in (le, be):
        if fam in _NULL_IPV4 or fam in _NULL_IPV6:
            return 4
    return -1


def openbsd_loop(data: bytes) -> int:
    """OpenBSD loopback (DLT_LOOP): address family in network byte order."""
    if len(data) < 4:
        return -1
    fam = int.from_bytes(data[:4], "big")
    return 4 if fam in _NULL_IPV4 or fam in _NULL_IPV6 else -1


def raw_ip(data: bytes) -> int:
    """Raw IPv4/IPv6: the version nibble tells which."""
    return 0 if data and (data[0] >> 4) in (4, 6) else -1


#: LINKTYPE_* value -> function returning the IP header offset (or -1).
LINK_TYPES: dict[int, Callable[[bytes], int]] = {
    0: bsd_null,
    1: ethernet,
    12: raw_ip,  # DLT_RAW on some BSDs
    14: raw_ip,  # DLT_RAW on OpenBSD
    101: raw_ip,
    108: openbsd_loop,
    113: linux_sll,
    228: raw_ip,  # LINKTYPE_IPV4
    229: raw_ip,  # LINKTYPE_IPV6
    276: linux_sll2,
}

LINK_NAMES = {0: "null", 1: "ethernet", 12: "raw", 14: "raw", 101: "raw", 108: "loop", 113: "sll", 228: "ipv4", 229: "ipv6", 276: "sll2"}
