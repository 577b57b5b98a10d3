"""Tiny TCP echo server and round-trip prober (stdlib only), run inside namespaces by the tests.

``python tcpprobe.py echo HOST`` listens on HOST with a free port, prints
``ready PORT``, echoes every connection until killed.
``python tcpprobe.py ping HOST PORT COUNT`` connects, does COUNT one-byte
round trips and prints one JSON line: ``{"connect": s, "first": s, "rtts": [s, ...]}``
(``first``: the first round trip, handshake included, measured from before connect).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time


def echo(host: str) -> None:
    server = socket.create_server((host, 0))
    print(f"ready {server.getsockname()[1]}", flush=True)

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    while True:
        conn, _addr = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def ping(host: str, port: int, count: int) -> None:
    started = time.monotonic()
    conn = socket.create_connection((host, port), timeout=30)
    connected = time.monotonic()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    first = 0.0
    for index in range(count):
        sent = time.monotonic()
        conn.sendall(b"x")
        if conn.recv(1) != b"x":
            raise SystemExit("echo broke")
        now = time.monotonic()
        if index == 0:
            first = now - started
        rtts.append(now - sent)
    conn.close()
    print(json.dumps({"connect": connected - started, "first": first, "rtts": rtts}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(sys.argv[2])
    else:
        ping(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
