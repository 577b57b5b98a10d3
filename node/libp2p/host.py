"""Build the py-libp2p host strangers runs on: TCP, Noise only, Yamux.

Choices and the library faults they work around (``../shared/notes``):

* security: Noise only (py-libp2p's default list also offers plaintext and
  secio);
* ``ConnectionConfig(max_connections_per_peer=1)``: without it every dial
  waits 250 ms for "happy eyeballs";
* no dial retries in the swarm (they cost 0.7 s per dead peer);
* no "auto-connector": by default the swarm keeps dialing every peer it has
  heard of until it holds ~200 connections (on a 60-node loopback crowd,
  thousands of Noise handshakes that starve every process of CPU);
* multistream-select pipelined, and optimistic where we propose one
  protocol (:mod:`.multistream`): 3 round trips from a TCP connect to the
  answer of a first request instead of 9, 1 on a new stream instead of 3;
* ``PY_YAMUX_RELEASE_ON_READ=0`` and :mod:`.yamuxwindow`: otherwise Yamux
  sends a window update on every read, an extra encrypted write per message;
* the library logs ERROR tracebacks on ordinary stream resets and shutdown:
  :func:`quiet_library_logs` keeps them out of the user's terminal;
* an exception in the handling of one inbound stream (py-libp2p's own
  handlers, or its multistream-select on bytes that are not UTF-8) stops
  the whole host in 0.8.1: :func:`guard_inbound_streams` ends that stream
  only, and :func:`running_host` turns a host that failed anyway into a
  :class:`~strangers.errors.HostFailed` instead of a silent cancellation;
* ``host.run()`` is entered and left by hand in :func:`running_host`, so that
  the caller's errors never travel through the library's nurseries (where
  trio would wrap them in ``ExceptionGroup``) and its shutdown noise never
  replaces them; on the way out it also closes the listeners, which
  ``host.run()`` leaves open.

The canaries in ``tests/adapters/test_canary_host.py`` fail if py-libp2p
changes under any of these.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

import trio  # noqa: E402
from libp2p import new_host  # noqa: E402
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair  # noqa: E402
from libp2p.network.config import ConnectionConfig, RetryConfig  # noqa: E402
from libp2p.network.swarm import Swarm  # noqa: E402
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID  # noqa: E402
from libp2p.security.noise.transport import Transport as NoiseTransport  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from strangers.errors import ConfigError, HostFailed  # noqa: E402
from strangers.node.identity import Identity  # noqa: E402
from strangers.node.libp2p import (  # noqa: E402
    earlymuxer,
    framebatch,
    lazydns,
    multistream,
    predial,
    securewrite,
    yamuxreset,
    yamuxwindow,
)

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 2.0
"""Seconds the library gets to stop its services when a node ends."""
LISTENER_CLOSE_TIMEOUT = 0.5
"""Seconds to close the listening sockets after that."""


OPTIMISTIC_ENV = "STRANGERS_OPTIMISTIC_MULTISTREAM"
"""Set to 0, hosts negotiate as py-libp2p does by itself: how benchmarks show what it saves."""


def build_host(identity: Identity, *, mdns: bool = False, optimistic: bool | None = None):
    """A host ready to ``run(listen_addrs)``.

    ``optimistic``: pipelined and lazy multistream-select (:mod:`.multistream`);
    False leaves py-libp2p's negotiation as it comes (tests of the fallback);
    None (the default): on, unless ``STRANGERS_OPTIMISTIC_MULTISTREAM=0``.
    """
    if optimistic is None:
        optimistic = os.environ.get(OPTIMISTIC_ENV, "1") != "0"
    key_pair = identity.key_pair
    lazydns.install()  # before the swarm is built: it makes a DNS resolver it never asks
    noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_preference="YAMUX",
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=mdns,
    )
    # The swarm retries a failed dial 3 times with back-off (0.1+0.2+0.4 s):
    # a dead candidate or DHT peer would cost 0.7 s before we can skip it.
    # Our own layers decide when to try again.
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):  # the patches below are Swarm's
        raise TypeError(f"py-libp2p's host runs on a {type(swarm).__name__}, not a Swarm")
    swarm.retry_config = RetryConfig(max_retries=0)
    # The auto-connector aims at (low + high watermark) / 2 connections, so
    # no watermark setting turns it off without also changing pruning: its
    # one entry point becomes a no-op instead.
    swarm.auto_connector.maybe_connect = _no_auto_connect  # type: ignore[method-assign]
    securewrite.install()  # a cancelled write must not desync Noise (see the module)
    yamuxwindow.install()  # one window update per half window read, not one per read
    yamuxreset.install()  # bytes sent before a reset are read before it (see the module)
    framebatch.install()  # frames written together leave in one segment (see the module)
    predial.install()  # dials take the connections the executable started early
    multistream.install_tolerant_reads()  # a non-UTF-8 protocol id is a refusal, not a crash
    guard_inbound_streams(swarm)
    if optimistic:
        multistream.install(host)
        earlymuxer.install(host, noise)  # the muxer chosen inside Noise where the peer can
    return host


STREAM_RESET_TIMEOUT = 1.0
"""Seconds to reset an inbound stream whose handling failed."""


def guard_inbound_streams(swarm) -> None:
    """A failure while handling one inbound stream ends that stream, never the host.

    py-libp2p 0.8.1 runs every inbound stream (negotiation, then the
    protocol's handler) in the connection's nursery with nothing around it:
    any exception there (a ``UnicodeDecodeError`` from multistream-select on
    a protocol id that is not UTF-8, a library handler's bug) cancels the
    swarm and so the whole node. Our own handlers are supervised already
    (``node/supervise.py``); this is the net under the library's.
    """
    handle = swarm.common_stream_handler

    async def guarded(stream) -> None:
        try:
            await handle(stream)
        except Exception as exc:
            peer = getattr(getattr(stream, "muxed_conn", None), "peer_id", "?")
            logger.info("inbound stream from %s failed, reset: %r", peer, exc)
            with trio.CancelScope(shield=True), trio.move_on_after(STREAM_RESET_TIMEOUT):
                try:
                    await stream.reset()
                except Exception:  # already gone
                    pass

    guarded.guarded = handle  # type: ignore[attr-defined]
    swarm.common_stream_handler = guarded


def _host_failure(host) -> BaseException | None:
    """The error that stopped ``host``'s swarm service, if one did."""
    manager = getattr(host.get_network(), "_manager", None)
    errors = getattr(manager, "_errors", None) or []
    return errors[0][1] if errors else None


async def _no_auto_connect() -> None:
    """Replaces py-libp2p's AutoConnector.maybe_connect (see build_host)."""


@asynccontextmanager
async def running_host(host, listen_addrs: Sequence[Multiaddr]) -> AsyncIterator[None]:
    """Run ``host`` listening on ``listen_addrs`` for the body of the ``async with``.

    Raises :class:`~strangers.errors.ConfigError` if it cannot listen on every
    address (py-libp2p only logs a failed bind and runs on without it; a port
    that another process holds is shared, not refused: :func:`ensure_port_free`
    checks that first). On the way out the library gets at most
    :data:`SHUTDOWN_TIMEOUT` seconds, shielded from cancellation, errors of its
    shutdown are logged, not raised, and the listening sockets are closed.
    If the host's own services failed while the body ran (which cancels the
    body), the way out raises :class:`~strangers.errors.HostFailed` naming
    the library's error instead of passing on a bare cancellation.

    ``host.run()`` is entered by hand rather than with ``async with``: the
    body's exceptions (and cancellation) then stay in the caller's scopes
    instead of passing through the library's nurseries, which would wrap them
    in ``ExceptionGroup`` or swallow them behind shutdown errors.
    """
    where = ", ".join(str(addr) for addr in listen_addrs)
    context = host.run(list(listen_addrs))
    try:
        await context.__aenter__()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    except Exception as exc:  # py-libp2p wraps bind errors in its own types
        raise ConfigError(f"cannot listen on {where}: {exc}") from None
    try:
        if len(host.get_transport_addrs()) < len(listen_addrs):
            raise ConfigError(f"cannot listen on {where}: not an address of this machine, or not free")
        yield
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SHUTDOWN_TIMEOUT):
                try:
                    await context.__aexit__(None, None, None)
                except Exception as exc:  # library shutdown noise
                    logger.debug("host shutdown: %r", exc)
            with trio.move_on_after(LISTENER_CLOSE_TIMEOUT):
                await _close_listeners(host)
        failure = _host_failure(host)
        if failure is not None:
            raise HostFailed(f"the libp2p host stopped on an error: {failure!r}") from failure


async def _close_listeners(host) -> None:
    """Close the swarm's listeners: ``host.run()`` leaves their sockets open.

    py-libp2p 0.8.1 stops the swarm service on exit without reaching the code
    that closes its listeners, so the port stays taken until the process ends
    (a stopped node in a test, or a restarted one, could not listen there).
    """
    for listener in list(host.get_network().listeners.values()):
        try:
            await listener.close()
        except Exception as exc:  # already closed, or torn down half-way
            logger.debug("listener close: %r", exc)


class _BelowLevel(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def quiet_library_logs(level: int = logging.CRITICAL) -> None:
    """Keep py-libp2p's and zeroconf's noisy logs away from the user.

    Their ERROR messages on normal closes are not errors for us; our own
    code reports what matters as events. ``--verbose`` lowers ``level``.
    """
    for name in ("libp2p", "zeroconf", "multiaddr", "async_service"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = level < logging.CRITICAL


def ensure_port_free(addr) -> None:
    """Refuse a listen address we cannot bind: not ours, or its port taken.

    py-libp2p binds with SO_REUSEPORT (for hole punching), so a second node
    on the same port would *succeed* and silently share the port with the
    first one. A plain bind without SO_REUSEPORT tells the truth.
    """
    import socket

    ipv6 = str(addr).startswith("/ip6/")
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    host = addr.value_for_protocol("ip6" if ipv6 else "ip4")
    port = int(addr.value_for_protocol("tcp"))
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {addr}: {exc.strerror or exc}") from None
    finally:
        probe.close()
