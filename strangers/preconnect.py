"""TCP connections to the peers a launch dials first, opened before py-libp2p is imported.

A launch spends most of a second of CPU importing (py-libp2p, trio,
cryptography; ``docs/performance.md``) before its host can dial anyone, and
then waits for its first peer's TCP handshake: one round trip on the
critical path of every launch (100 ms at 100 ms RTT). The kernel completes a
non-blocking ``connect()`` on its own while Python imports, so the
executable starts those connects first thing (``cli/main.py``, :func:`start`)
to the addresses it knows before any import: the ``--bootstrap``
addresses, or without them the strangers servers the last run cached
(``servers.json``: the front door dials them first, :func:`launch_addrs`).
When the host dials one of those addresses it adopts the socket
(``node/libp2p/predial.py``, :func:`take`) and goes on with multistream and
Noise at once. Nothing is sent on a socket before the host takes it; what
the host did not take is closed once the node is ready (:func:`close_all`),
as after a dial that was given up.

Only ``/ip4`` and ``/ip6`` TCP addresses (no DNS name, no relay circuit), at
most :data:`MAX_TARGETS`; a socket older than :data:`MAX_AGE` is not adopted.
The standard library, the data directory's reader (``strangers.home``) and
the front door's pure server cache only: this runs before the heavy imports
it saves a round trip beside.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

MAX_TARGETS = 8
"""Connections started at most (the front door dials the 8 newest cached servers)."""
MAX_AGE = 30.0
"""Seconds after which a started connection is not adopted (the peer may have given up on it)."""

_open: dict[tuple[str, int], tuple[socket.socket, float]] = {}


def tcp_target(addr: str) -> tuple[str, int] | None:
    """``(ip, port)`` of a direct TCP multiaddr (``/ip4/A/tcp/P[/p2p/ID]``), else None."""
    parts = addr.split("/")
    if len(parts) < 5 or parts[0] != "" or parts[1] not in ("ip4", "ip6") or parts[3] != "tcp":
        return None
    if len(parts) > 5 and (parts[5] not in ("p2p", "ipfs") or len(parts) > 7):
        return None  # /ws, /tls, a relay circuit: not a plain TCP dial
    try:
        ip = ipaddress.ip_address(parts[2])
        port = int(parts[4])
    except ValueError:
        return None
    if ip.version != (4 if parts[1] == "ip4" else 6) or not 0 < port < 65536:
        return None
    if ip.is_unspecified or ip.is_multicast:
        return None
    return str(ip), port


def launch_addrs(bootstrap: Sequence[str] | None, home: Path) -> list[str]:
    """The addresses a node started with ``bootstrap`` (None: the default list) dials first.

    ``--bootstrap`` peers: theirs. The default list: the first address of
    each of the cached servers the front door tries first (the public
    bootstrap peers come after them, and only if none answers).
    """
    if bootstrap is not None:
        return list(bootstrap)
    from strangers.discovery.frontdoor import CACHE_TRIES, SERVERS_FILE, ServerCache
    from strangers.home import DataDir

    # bounded; none, unreadable or damaged reads as no servers (the front door warns later)
    document = DataDir(home).read_json(SERVERS_FILE, None, quiet=True)
    addrs = []
    for server in ServerCache.from_json(document).newest(CACHE_TRIES):
        first = next((addr for addr in server.addrs if tcp_target(addr) is not None), None)
        if first is not None:
            addrs.append(first)
    return addrs


def start(addrs: Iterable[str]) -> int:
    """Start a connect to each direct TCP address (at most :data:`MAX_TARGETS`); how many started."""
    started = 0
    for addr in addrs:
        target = tcp_target(addr)
        if target is None or target in _open:
            continue
        if len(_open) >= MAX_TARGETS:
            break
        sock = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET,
                             socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(target)
        except OSError:
            code = -1
        if code not in (0, errno.EINPROGRESS):  # refused at once, no route: the host's dial tells
            sock.close()
            continue
        _open[target] = (sock, time.monotonic())
        started += 1
    return started


def take(ip: str, port: int) -> socket.socket | None:
    """The connection started to ``ip:port``, if there is one young enough (handed over once)."""
    if not _open:
        return None
    try:
        key = (str(ipaddress.ip_address(ip)), port)
    except ValueError:
        return None
    entry = _open.pop(key, None)
    if entry is None:
        return None
    sock, since = entry
    if time.monotonic() - since > MAX_AGE:
        sock.close()
        return None
    return sock


def waiting() -> list[tuple[str, int]]:
    """The targets whose connections nobody took yet."""
    return list(_open)


def close_all() -> int:
    """Close every connection nobody took; how many."""
    count = len(_open)
    for sock, _ in _open.values():
        sock.close()
    _open.clear()
    return count


__all__ = ["MAX_AGE", "MAX_TARGETS", "close_all", "launch_addrs", "start", "take", "tcp_target",
           "waiting"]
