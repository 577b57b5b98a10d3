"""The host adopts the TCP connections the executable started before importing py-libp2p.

:mod:`strangers.preconnect` starts a non-blocking ``connect()`` to each
address a launch dials first, before the imports; the kernel finishes the
TCP handshake meanwhile. :func:`install` wraps py-libp2p 0.8.1's
``TCP._dial_resolved`` (the one place its TCP transport opens a socket for
a dial without a source port): a dial to such an address takes that socket
(waiting for its handshake if it is still under way) instead of opening a
new one, and the library goes on as after its own ``trio.open_tcp_stream``.
A connect that failed fails the dial as the library's would
(``OpenConnectionError``); a dial cancelled while it waits closes the socket.

Where the first flight went out during the imports (multistream-select's
``/noise`` proposal and Noise XX's first message, ``preconnect``), the
connection is an :class:`EarlyRawConnection`: the host's dial writes the
same bytes again, and this connection drops them (checking, byte for byte,
that they are the ones sent; anything else fails the dial), and the Noise
handshake starts with the ephemeral key that flight carried (the wrap of
``PatternXX.handshake_outbound``). The peer's answer has been on its way
since then: the seed's dial no longer waits a round trip after the imports.

:func:`adopted` tells whether a peer's connection started that way: its dial
then cost one round trip less than :data:`~strangers.discovery.rtt.CONNECT_ROUND_TRIPS`,
none at all with the early flight (:func:`handshake_seconds` is then the
round-trip sample: the TCP handshake, as the sender thread saw it).

Canaries: ``tests/adapters/test_canary_predial.py``.
"""

from __future__ import annotations

import logging
import os
import socket

import trio
from libp2p.network.connection.exceptions import RawConnError
from libp2p.security.noise.patterns import PatternXX
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp import tcp as _tcp
from multiaddr import Multiaddr

from strangers import preconnect

logger = logging.getLogger(__name__)

_adopted: dict[tuple[str, int], preconnect.Early] = {}


class EarlyRawConnection(_tcp.RawConnection):
    """A dialled TCP connection whose first bytes went out before the host took it.

    ``already`` is what was sent: the host's first writes must be those bytes
    (they are dropped, not sent twice), and ``ephemeral`` the Noise key they
    carry, for the handshake (taken once).
    """

    def __init__(self, stream, *, already: bytes, ephemeral: bytes) -> None:
        super().__init__(stream, True)
        self.already = already
        self.early_ephemeral: bytes | None = ephemeral

    async def write(self, data: bytes) -> None:
        if self.already:
            count = min(len(data), len(self.already))
            if data[:count] != self.already[:count]:
                self.already = b""
                raise RawConnError("the dial writes other bytes than the first flight sent "
                                   "before the imports")
            self.already, data = self.already[count:], data[count:]
            if not data:
                return
        await super().write(data)


async def _adopt(early: preconnect.Early, maddr: Multiaddr) -> trio.SocketStream:
    tsock = trio.socket.from_stdlib_socket(early.sock)
    try:
        await trio.lowlevel.wait_writable(tsock.fileno())  # the handshake is through (or failed)
        # the sender thread may have read (and so cleared) the connect's error already
        code = early.error or tsock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
        return trio.SocketStream(tsock)
    except OSError as error:
        tsock.close()
        raise OpenConnectionError(f"Failed to open TCP stream to {maddr}: {error}") from error
    except BaseException:
        tsock.close()
        raise


def _wrap(original):
    async def _dial_resolved(self, maddr: Multiaddr, source: tuple[str, int] | None = None):
        target = preconnect.tcp_target(str(maddr)) if source is None and preconnect.waiting() else None
        early = preconnect.take(*target) if target is not None else None
        if target is None or early is None:
            return await original(self, maddr, source)
        stream = await _adopt(early, maddr)
        _adopted[target] = early
        tcp_stream = _tcp.TrioTCPStream(stream)
        if early.sent and early.ephemeral is not None:
            logger.info("dial to %s took the connection started before the imports, "
                        "its first flight sent", maddr)
            return EarlyRawConnection(tcp_stream, already=early.flight, ephemeral=early.ephemeral)
        logger.info("dial to %s took the connection started before the imports", maddr)
        return _tcp.RawConnection(tcp_stream, True)

    _dial_resolved.original = original
    return _dial_resolved


def _with_early_key(original):
    async def handshake_outbound(self, conn, remote_peer):
        private = getattr(conn, "early_ephemeral", None)
        if private is not None:
            conn.early_ephemeral = None  # one handshake, once
            self.create_noise_state = _starting_with(self.create_noise_state, private)
        return await original(self, conn, remote_peer)

    handshake_outbound.original = original
    return handshake_outbound


def _starting_with(create_noise_state, private: bytes):
    """``create_noise_state`` whose handshake, once started, uses ephemeral key ``private``.

    Set on the handshake state after it started (as noiseprotocol itself sets
    a generated one on the first ``e`` token), not through the connection's
    keypairs, which would make it warn that an ephemeral key was chosen for it.
    """
    def create(prologue=None):
        state = create_noise_state(prologue)
        start = state.start_handshake

        def start_handshake() -> None:
            start()
            protocol = state.noise_protocol
            protocol.handshake_state.e = protocol.dh_fn.klass.from_private_bytes(private)

        state.start_handshake = start_handshake
        return state

    return create


def install() -> None:
    """Wrap the TCP transport's dial and Noise's outbound handshake (process-wide, once)."""
    if not hasattr(_tcp.TCP._dial_resolved, "original"):
        _tcp.TCP._dial_resolved = _wrap(_tcp.TCP._dial_resolved)  # type: ignore[method-assign]
    if not hasattr(PatternXX.handshake_outbound, "original"):
        PatternXX.handshake_outbound = _with_early_key(  # type: ignore[method-assign]
            PatternXX.handshake_outbound)


def installed() -> bool:
    return (hasattr(_tcp.TCP._dial_resolved, "original")
            and hasattr(PatternXX.handshake_outbound, "original"))


def _taken(addrs) -> list[preconnect.Early]:
    return [_adopted[target] for target in (preconnect.tcp_target(str(a)) for a in addrs)
            if target is not None and target in _adopted]


def adopted(addrs) -> bool:
    """Whether a dial to one of ``addrs`` took a connection started before the imports."""
    return bool(_taken(addrs))


def handshake_seconds(addrs) -> float | None:
    """The TCP handshake's time of the connection a dial to ``addrs`` took, if its first
    flight went out before (the dial itself then waited for no round trip of its own)."""
    for early in _taken(addrs):
        if early.sent and early.connected_after is not None:
            return early.connected_after
    return None


__all__ = ["EarlyRawConnection", "adopted", "handshake_seconds", "install", "installed"]
