"""The floor for pure Python: one loop over a pcap's records with precompiled structs.

    python benchmarks/floor.py CAPTURE

Reads a classic pcap (Ethernet or Linux cooked link type, IPv4/IPv6, TCP),
unpacks the record, IP and TCP headers of every packet, and counts packets
and bytes per bidirectional TCP connection: the least any Python summary must
do. Prints ``{"connections": [...]}`` with ``transport``, ``client``,
``server``, ``packets`` and ``bytes``, so run.py can check it like
``netinspect summary --json``. It tracks no TCP state, reassembles nothing and
decodes no payload: it shows how much of netinspect's time is the Python
interpreter's unavoidable per-packet cost and how much is everything else.
"""

from __future__ import annotations

import json
import struct
import sys

CHUNK = 1 << 20
REC = struct.Struct("<IIII")
IP4 = struct.Struct("!BBHHHBBH4s4s")
PORTS_SEQ = struct.Struct("!HHIIBB")


def main(path: str) -> None:
    flows: dict[tuple, list] = {}
    with open(path, "rb", buffering=0) as f:
        head = f.read(24)
        magic = head[:4]
        rec = REC if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else struct.Struct(">IIII")
        linktype = struct.unpack_from(rec.format[0] + "I", head, 20)[0]
        l2 = {1: 14, 113: 16, 276: 20}[linktype]
        unpack_rec, unpack_ip, unpack_tcp = rec.unpack_from, IP4.unpack_from, PORTS_SEQ.unpack_from
        buf = b""
        while chunk := f.read(CHUNK):
            # Whole records only; the cut record's start waits for the next chunk.
            m = buf + chunk
            size = len(m)
            off = 0
            while off + 16 <= size:
                _s, _us, caplen, _wire = unpack_rec(m, off)
                p = off + 16
                if p + caplen > size:
                    break
                off = p + caplen
                ip = p + l2
                vihl = m[ip]
                if vihl >> 4 == 4:
                    _v, _tos, _tot, _id, _frag, _ttl, proto, _ck, src, dst = unpack_ip(m, ip)
                    if proto != 6:
                        continue
                    t = ip + (vihl & 15) * 4
                elif vihl >> 4 == 6:
                    if m[ip + 6] != 6:
                        continue
                    src, dst = m[ip + 8:ip + 24], m[ip + 24:ip + 40]
                    t = ip + 40
                else:
                    continue
                sport, dport, _seq, _ack, _off, flags = unpack_tcp(m, t)
                a, b = (src, sport), (dst, dport)
                key = (a, b) if a < b else (b, a)
                fl = flows.get(key)
                if fl is None:
                    # Client = sender of the first packet (the SYN, in these captures).
                    fl = flows[key] = [a, b, 0, 0]
                fl[2] += 1
                fl[3] += caplen
            buf = m[off:]

    def ep(e):
        addr, port = e
        if len(addr) == 4:
            return f"{'.'.join(map(str, addr))}:{port}"
        return f"[{bytes(addr).hex()}]:{port}"

    conns = [{"id": i, "transport": "tcp", "client": ep(c), "server": ep(s), "packets": n, "bytes": nb}
             for i, (c, s, n, nb) in enumerate(flows.values())]
    json.dump({"connections": conns}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
