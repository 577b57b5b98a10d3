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
(``node/libp2p/predial.py``, :func:`take`) and goes on from where the
socket is. What the host did not take is closed once the node is ready
(:func:`close_all`), as after a dial that was given up.

**The first flight, during the imports too.** A dial's first flight is
always the same: multistream-select's header and the ``/noise`` proposal,
then Noise XX's first message, which is only the initiator's ephemeral
public key (libp2p's Noise spec: its payload is empty). A thread of this
module sends it the moment each connect completes (:data:`EARLY_FLIGHT`, one
X25519 key per connection, made here and used once), so the peer's second
Noise message is on its way, or already here, when the host dials: the
host's handshake then starts with that key and does not send those bytes
again (``predial``). That is Noise's round trip, the last one of the seed's
dial, also spent during the imports. A connect that completes only after
the host took the socket carries no early flight: the host sends it, as
before.

Only ``/ip4`` and ``/ip6`` TCP addresses (no DNS name, no relay circuit), at
most :data:`MAX_TARGETS`; a socket older than :data:`MAX_AGE` is not adopted.
The standard library, the data directory's reader (``strangers.home``), the
front door's pure server cache and cryptography's X25519 only: this runs
before the heavy imports it saves round trips beside.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

MAX_TARGETS = 8
"""Connections started at most (the front door dials the 8 newest cached servers)."""
MAX_AGE = 8.0
"""Seconds after which a started connection is not adopted: the peer may have given up on it
(py-libp2p's listeners wait 10 s for a connection's upgrade, ``INBOUND_UPGRADE_TIMEOUT``)."""
MULTISTREAM = b"/multistream/1.0.0\n"
NOISE = b"/noise\n"
NOISE_KEY_BYTES = 32
EARLY_FLIGHT = True
"""Whether :func:`start` sends each connection's first flight as soon as it connects."""
POLL_SECONDS = 0.05
"""How often the sender thread looks again at connections still under way (select's timeout)."""


class Early:
    """A connection started before the imports, and what was sent on it."""

    __slots__ = ("broken", "connected_after", "ephemeral", "error", "flight", "sent", "since",
                 "sock")

    def __init__(self, sock: socket.socket, since: float) -> None:
        self.sock = sock
        self.since = since
        self.ephemeral: bytes | None = None
        """The X25519 private key of Noise's first message (raw), once one was made."""
        self.flight = b""
        """The bytes to send once connected (multistream-select and Noise's first message)."""
        self.sent = False
        """Whether :attr:`flight` went out whole (then the host must not send it again)."""
        self.broken = False
        """Part of the flight went out, not all: nobody can go on from there."""
        self.connected_after: float | None = None
        """Seconds the TCP handshake took, as the sender saw it (at least one round trip)."""
        self.error = 0
        """The connect's error (``errno``), once the sender read it: reading ``SO_ERROR``
        clears it, so whoever adopts the socket looks here first."""


_open: dict[tuple[str, int], Early] = {}
_lock = threading.Lock()
_sender: threading.Thread | None = None


def _delimited(message: bytes) -> bytes:
    """A multistream-select message: its length (an unsigned varint: one byte, as both of
    ours are shorter than 128 bytes), then it."""
    if len(message) >= 0x80:
        raise ValueError("a one-byte varint counts up to 127")
    return bytes([len(message)]) + message


def first_flight(ephemeral_public: bytes) -> bytes:
    """What a dial sends before any answer: multistream-select's header and the Noise
    proposal, then Noise XX's first message (2-byte length, the ephemeral key, no payload)."""
    if len(ephemeral_public) != NOISE_KEY_BYTES:
        raise ValueError("an X25519 public key is 32 bytes")
    return (_delimited(MULTISTREAM) + _delimited(NOISE)
            + len(ephemeral_public).to_bytes(2, "big") + ephemeral_public)


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


def launch_addrs(bootstrap: Sequence[str] | None, home: Path,
                 search_keys: Sequence[bytes] = ()) -> list[str]:
    """The addresses a node started with ``bootstrap`` (None: the default list) dials first.

    ``--bootstrap`` peers: theirs. The default list: the first address of
    each of the cached servers the front door tries first (the public
    bootstrap peers come after them, and only if none answers): those
    closest to ``search_keys``, the first search's, then the newest
    (``ServerCache.first_tries``).
    """
    if bootstrap is not None:
        return list(bootstrap)
    from strangers.discovery.frontdoor import CACHE_TRIES, SERVERS_FILE, ServerCache
    from strangers.home import DataDir

    # bounded; none, unreadable or damaged reads as no servers (the front door warns later)
    document = DataDir(home).read_json(SERVERS_FILE, None, quiet=True)
    addrs = []
    for server in ServerCache.from_json(document).first_tries(search_keys, CACHE_TRIES):
        first = next((addr for addr in server.addrs if tcp_target(addr) is not None), None)
        if first is not None:
            addrs.append(first)
    return addrs


def start(addrs: Iterable[str], *, early_flight: bool | None = None) -> int:
    """Start a connect to each direct TCP address (at most :data:`MAX_TARGETS`); how many started.

    With ``early_flight`` (default :data:`EARLY_FLIGHT`), a thread sends each
    one's first flight once it is connected (see the module).
    """
    started: list[Early] = []
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
        early = Early(sock, time.monotonic())
        with _lock:
            _open[target] = early
        started.append(early)
    if started and (EARLY_FLIGHT if early_flight is None else early_flight):
        _arm(started)
    return len(started)


def _arm(started: list[Early]) -> None:
    """Make each connection's first flight (after the SYNs left) and start the sender."""
    global _sender
    try:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    except ImportError:  # pragma: no cover - a dependency of the node: then no early flights
        return
    for early in started:
        key = X25519PrivateKey.generate()
        with _lock:
            early.ephemeral = key.private_bytes_raw()
            early.flight = first_flight(key.public_key().public_bytes_raw())
    if _sender is None or not _sender.is_alive():
        _sender = threading.Thread(target=_send_flights, name="strangers-preconnect",
                                   daemon=True)
        _sender.start()


def _send_flights() -> None:
    """The sender thread: each connection's flight once its connect completed, until none is
    left to send (taken, closed, sent, failed) or :data:`MAX_AGE` passed."""
    while True:
        with _lock:
            pending = [early for early in _open.values()
                       if early.flight and not early.sent and early.connected_after is None
                       and time.monotonic() - early.since <= MAX_AGE]
            fds = {early.sock.fileno(): early for early in pending if early.sock.fileno() >= 0}
        if not fds:
            return
        try:
            _, writable, _ = select.select([], list(fds), [], POLL_SECONDS)
        except (OSError, ValueError):  # a socket closed meanwhile (taken, or close_all)
            continue
        now = time.monotonic()
        with _lock:
            for fd in writable:
                early = fds[fd]
                if early.sock.fileno() != fd or early not in _open.values():
                    continue  # taken or closed since: the host owns it now
                early.connected_after = now - early.since
                _send(early)


def _send(early: Early) -> None:
    """Send ``early``'s flight if its connect succeeded (called under the lock)."""
    try:
        early.error = early.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if early.error:
            return  # refused: the host's dial reports it
        sent = early.sock.send(early.flight)
    except OSError as error:
        early.error = error.errno or errno.EIO
        return
    early.sent = sent == len(early.flight)
    early.broken = 0 < sent < len(early.flight)  # never seen on a fresh connection's empty buffer


def take(ip: str, port: int) -> Early | None:
    """The connection started to ``ip:port``, if there is one young enough (handed over once).

    Its :attr:`~Early.sent` tells whether its first flight went out (with
    :attr:`~Early.ephemeral`, the key it carries); the sender does not touch
    it after this. A connection that sent half a flight is not handed over.
    """
    if not _open:
        return None
    try:
        key = (str(ipaddress.ip_address(ip)), port)
    except ValueError:
        return None
    with _lock:
        early = _open.pop(key, None)
    if early is None:
        return None
    if time.monotonic() - early.since > MAX_AGE or early.broken:
        early.sock.close()
        return None
    return early


def waiting() -> list[tuple[str, int]]:
    """The targets whose connections nobody took yet."""
    return list(_open)


def close_all() -> int:
    """Close every connection nobody took; how many."""
    with _lock:
        count = len(_open)
        for early in _open.values():
            early.sock.close()
        _open.clear()
    return count


__all__ = ["EARLY_FLIGHT", "MAX_AGE", "MAX_TARGETS", "Early", "close_all", "first_flight",
           "launch_addrs", "start", "take", "tcp_target", "waiting"]
