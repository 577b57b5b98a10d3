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

:func:`adopted` tells whether a peer's connection started that way: its dial
then cost one round trip less than :data:`~strangers.discovery.rtt.CONNECT_ROUND_TRIPS`,
and is no round-trip sample.

Canaries: ``tests/adapters/test_canary_predial.py``.
"""

from __future__ import annotations

import logging
import os
import socket

import trio
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp import tcp as _tcp
from multiaddr import Multiaddr

from strangers import preconnect

logger = logging.getLogger(__name__)

_adopted: set[tuple[str, int]] = set()


async def _adopt(sock: socket.socket, maddr: Multiaddr) -> trio.SocketStream:
    tsock = trio.socket.from_stdlib_socket(sock)
    try:
        await trio.lowlevel.wait_writable(tsock.fileno())  # the handshake is through (or failed)
        code = tsock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
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
        sock = preconnect.take(*target) if target is not None else None
        if target is None or sock is None:
            return await original(self, maddr, source)
        stream = await _adopt(sock, maddr)
        _adopted.add(target)
        logger.info("dial to %s took the connection started before the imports", maddr)
        return _tcp.RawConnection(_tcp.TrioTCPStream(stream), True)

    _dial_resolved.original = original
    return _dial_resolved


def install() -> None:
    """Wrap the TCP transport's dial (process-wide, once)."""
    if not hasattr(_tcp.TCP._dial_resolved, "original"):
        _tcp.TCP._dial_resolved = _wrap(_tcp.TCP._dial_resolved)  # type: ignore[method-assign]


def installed() -> bool:
    return hasattr(_tcp.TCP._dial_resolved, "original")


def adopted(addrs) -> bool:
    """Whether a dial to one of ``addrs`` took a connection started before the imports."""
    return any(target in _adopted for target in (preconnect.tcp_target(str(a)) for a in addrs)
               if target is not None)


__all__ = ["adopted", "install", "installed"]
