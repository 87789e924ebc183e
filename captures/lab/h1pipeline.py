"""HTTP/1.1 pipelining over one kernel TCP socket: all requests written at once, responses read in order.

    python h1pipeline.py HOST IP PORT PATH [PATH ...]

curl no longer pipelines, so the lab uses this small client; nginx answers pipelined
requests one after another on the same connection, so a slow or large first response
delays every later one (HTTP/1.1 head-of-line blocking).  The last request says
``Connection: close`` and the client reads until the server closes.
"""

from __future__ import annotations

import socket
import sys


def main(argv: list[str]) -> int:
    host, ip, port, *paths = argv
    reqs = []
    for i, path in enumerate(paths):
        last = i == len(paths) - 1
        reqs.append(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lab-pipeline\r\n"
                    f"{'Connection: close' + chr(13) + chr(10) if last else ''}\r\n")
    with socket.create_connection((ip, int(port))) as s:
        s.sendall("".join(reqs).encode())  # one write: the requests leave back to back
        total = 0
        while chunk := s.recv(65536):
            total += len(chunk)
    print(f"{len(paths)} requests, {total} response bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
