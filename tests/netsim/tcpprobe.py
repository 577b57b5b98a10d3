"""Tiny TCP and UDP echo servers and round-trip probers (stdlib only), run inside namespaces by the tests.

``python tcpprobe.py echo HOST`` listens on HOST with a free port, prints
``ready PORT``, then ``peer IP`` for every connection it accepts, and echoes
every connection until killed.
``python tcpprobe.py ping HOST PORT COUNT`` connects, does COUNT one-byte
round trips and prints one JSON line: ``{"connect": s, "first": s, "rtts": [s, ...]}``
(``first``: the first round trip, handshake included, measured from before connect).
``python tcpprobe.py udpecho HOST`` binds a UDP port on HOST, prints ``ready PORT``
and answers every datagram with the sender's address as it saw it (``IP``).
``python tcpprobe.py udpping HOST PORT COUNT`` sends COUNT datagrams one after the
other (each waits up to 2 s for its answer) and prints one JSON line:
``{"rtts": [s, ...], "lost": N, "seen_as": [IP, ...]}``.
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
        conn, addr = server.accept()
        print(f"peer {addr[0]}", flush=True)
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


def udp_echo(host: str) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((host, 0))
    print(f"ready {server.getsockname()[1]}", flush=True)
    while True:
        data, addr = server.recvfrom(2048)
        server.sendto(data[:8] + addr[0].encode(), addr)


def udp_ping(host: str, port: int, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    rtts, seen, lost = [], set(), 0
    for index in range(count):
        tag = index.to_bytes(8, "big")
        sent = time.monotonic()
        sock.sendto(tag, (host, port))
        deadline = sent + 2.0
        while True:
            try:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data, _ = sock.recvfrom(2048)
            except TimeoutError:
                lost += 1
                break
            if data[:8] == tag:  # a late answer to an earlier datagram is not this one's
                rtts.append(time.monotonic() - sent)
                seen.add(data[8:].decode())
                break
    print(json.dumps({"rtts": rtts, "lost": lost, "seen_as": sorted(seen)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(sys.argv[2])
    elif sys.argv[1] == "udpecho":
        udp_echo(sys.argv[2])
    elif sys.argv[1] == "udpping":
        udp_ping(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        ping(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
