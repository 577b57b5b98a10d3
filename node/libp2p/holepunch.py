"""Hole punching (DCUtR) and the path a chat's stream travels.

py-libp2p's ``libp2p.relay.circuit_v2.dcutr.DCUtRProtocol`` does the wire
protocol (CONNECT with observed addresses, SYNC, TCP simultaneous open with
dials bound to our listen port).  What it gets wrong for us is fixed here
(``../shared/notes/py-libp2p-0.8.1.md``, canaries in
``tests/adapters/test_canary_holepunch.py``):

* its dial timeout is 10 s, and every attempt first dials the peer's private
  (LAN) addresses, which hang behind a NAT that drops: :data:`DIAL_TIMEOUT`
  (2 s) brings a whole attempt to ~2.3 s;
* both sides start a hole punch towards every relayed peer every 2 s
  (``_auto_drive_loop``), so two sessions cross and each side dials twice:
  :class:`StrangersDCUtR` drives nothing by itself; the chat asks, from one
  side only (:meth:`HolePunch.upgrade`, called by the chat's responder, the
  side that accepted the relayed connection, as the DCUtR spec has it);
* the swarm keeps one connection per peer (``host.py`` sets
  ``max_connections_per_peer=1``), so the direct connection would be trimmed
  beside the relayed one that still carries the chat: while a relayed chat
  runs, :meth:`HolePunch.relayed_chat` allows two.  Not always: with a limit
  of 2, every dial waits out the swarm's 250 ms "happy eyeballs" delay (25 ms
  to connect on loopback becomes 261 ms);
* its relay-address filter (``_perform_hole_punch``) reads the *destination*
  id out of ``/p2p-circuit/p2p/<id>`` as the relay's and filters out the
  peer's own addresses, then adds back every address the peerstore holds for
  the peer, private ones included: harmless once the dial timeout is short
  (the private ones fail in :data:`DIAL_TIMEOUT`), pinned by a canary.

* after a successful punch the library closes the relayed connection only
  60 s later (``RELAY_CLOSE_GRACE_PERIOD``), so the relay carried an idle
  circuit (and counted it against its limits) for a minute:
  :meth:`HolePunch.upgrade` closes it as soon as no stream runs on it any
  more (the chat has moved and closed its old stream), within
  :data:`RELAY_IDLE_WAIT`.

Streams do not migrate: a chat moves to the direct connection on a new stream
(``node/chat.py``); :func:`stream_path` tells which path a stream runs on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import trio
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TProtocol
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from libp2p.tools.anyio_service import background_trio_service

from .announce import expand

logger = logging.getLogger(__name__)

DIAL_TIMEOUT = 2
PUNCH_ATTEMPTS = 3
"""Hole punches per relayed chat (py-libp2p's ``MAX_HOLE_PUNCH_ATTEMPTS`` per peer)."""
PUNCH_RETRY_PAUSE = 0.5
"""Seconds for one hole-punch dial (the library's default, 10, hangs on private addresses)."""
DIRECT_POLL = 0.2
"""How often a chat waiting for a direct connection looks for one."""
RELAY_IDLE_WAIT = 30.0
"""After a punch, how long we watch the relayed connection for its last stream
to end before leaving it to the library's 60 s close."""
RELAYED = "relayed"
DIRECT = "direct"


def conn_is_relayed(conn) -> bool:
    """Whether a swarm connection runs through a circuit relay.

    Reads the connection's own transport facts (type, and the addresses the
    swarm recorded when it upgraded it), never ``get_transport_addresses()``,
    which falls back to the *peerstore's* addresses for the peer (relayed
    ones included) when the swarm recorded none.
    """
    try:
        if conn.get_connection_type() is ConnectionType.RELAYED:
            return True
    except Exception:
        pass
    addrs = getattr(conn, "_actual_transport_addresses", None) or []
    return any("/p2p-circuit" in str(addr) for addr in addrs)


async def new_stream_on(host, conn, protocol: str, timeout: float = 5.0):
    """A stream on this very connection (``host.new_stream`` picks one by itself).

    The library's own steps: open a muxed stream on the swarm connection, then
    multistream-select the protocol, as ``BasicHost.new_stream`` does.
    """
    stream = await conn.new_stream()
    try:
        with trio.fail_after(timeout):
            selected = await host.multiselect_client.select_one_of(
                [TProtocol(protocol)], MultiselectCommunicator(stream), int(timeout))
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await stream.reset()
            except Exception:
                pass
        raise
    stream.set_protocol(selected)
    return stream


def stream_path(stream) -> str:
    """``"relayed"`` if ``stream`` runs on a relayed connection, else ``"direct"``."""
    conn = getattr(stream, "swarm_conn", None)
    if conn is not None and conn_is_relayed(conn):
        return RELAYED
    return DIRECT


def direct_connection(host, peer_id):
    """An open direct connection to ``peer_id``, or None."""
    for conn in host.get_network().get_connections(peer_id):
        if not getattr(conn, "is_closed", False) and not conn_is_relayed(conn):
            return conn
    return None


class ListenAddressesView:
    """The host as DCUtR must see it: ``get_addrs()`` lists our local listen addresses.

    py-libp2p's DCUtR takes the listen port of its NAT port prediction (the
    observed WAN address with our listen port) and the source address its
    hole-punch dials bind to from ``host.get_addrs()``. Ours
    (:mod:`.announce`) gives only public and relayed addresses, so behind a
    NAT DCUtR found no listen address, sent an empty CONNECT and failed in
    50 ms. Everything else goes to the host itself.
    """

    def __init__(self, host) -> None:
        self._host = host

    def __getattr__(self, name: str):
        return getattr(self._host, name)

    def get_addrs(self) -> list:
        local = [concrete for addr in self._host.get_transport_addrs() for concrete in expand(addr)
                 if "/p2p-circuit" not in str(concrete)]
        # widest scope first: the first one is what the punch's dials bind to
        return sorted(local, key=lambda addr: str(addr).startswith(("/ip4/127.", "/ip6/::1/")))


class StrangersDCUtR(DCUtRProtocol):
    """py-libp2p's DCUtR that punches only when asked (no ``_auto_drive_loop``),
    on a :class:`ListenAddressesView` of the host."""

    def __init__(self, host, **kwargs) -> None:
        super().__init__(ListenAddressesView(host), **kwargs)  # type: ignore[arg-type]  # a view of an IHost

    async def _auto_drive_loop(self) -> None:  # the library's: every 2 s, both sides
        await trio.sleep_forever()


@dataclass
class HolePunchStatistics:
    """What the hole punches of this node did (for logs, the report and tests)."""

    attempts: int = 0
    successes: int = 0
    seconds: list[float] = field(default_factory=list)
    """Time to a direct connection, per success."""


class HolePunch:
    """The DCUtR service of one host: ``await nursery.start(hole_punch.serve)``."""

    def __init__(self, host, *, dial_timeout: int = DIAL_TIMEOUT) -> None:
        self.host = host
        self.protocol = StrangersDCUtR(host, dial_timeout=dial_timeout)
        self.statistics = HolePunchStatistics()
        self._relayed_chats = 0
        self._usual_limit = 1
        self._nursery: trio.Nursery | None = None
        self.relayed_closed = 0
        """Relayed connections closed once idle after a punch (statistics, tests)."""

    @contextmanager
    def relayed_chat(self) -> Iterator[None]:
        """While inside: the swarm holds 2 connections per peer (a direct one beside
        the relayed one), then its usual limit again (see the module docstring)."""
        config = self.host.get_network().connection_config
        if self._relayed_chats == 0:
            self._usual_limit = config.max_connections_per_peer
            config.max_connections_per_peer = max(2, self._usual_limit)
        self._relayed_chats += 1
        try:
            yield
        finally:
            self._relayed_chats -= 1
            if self._relayed_chats == 0:
                config.max_connections_per_peer = self._usual_limit

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with background_trio_service(self.protocol), trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.protocol.event_started.wait()
            task_status.started()
            await trio.sleep_forever()

    async def upgrade(self, peer_id) -> bool:
        """Try to get a direct connection to ``peer_id`` (we hold a relayed one).

        Up to :data:`PUNCH_ATTEMPTS` fresh DCUtR exchanges (the spec's
        retries; py-libp2p allows as many per peer): a punch is a race of two
        simultaneous opens, and one that missed (its dials all timed out) often
        lines up on a new CONNECT/SYNC.
        """
        for attempt in range(PUNCH_ATTEMPTS):
            if attempt:
                await trio.sleep(PUNCH_RETRY_PAUSE)
            if await self._punch_once(peer_id):
                if self._nursery is not None:
                    self._nursery.start_soon(self.close_relayed_when_idle, peer_id)
                return True
        return False

    async def close_relayed_when_idle(self, peer_id, timeout: float = RELAY_IDLE_WAIT) -> int:
        """Close our relayed connections to ``peer_id`` once no stream runs on them
        (while a direct one is up); returns how many were closed."""
        closed = 0
        with trio.move_on_after(timeout):
            while True:
                if direct_connection(self.host, peer_id) is None:
                    return closed  # never strand the chat on no connection at all
                relayed = [conn for conn in self.host.get_network().get_connections(peer_id)
                           if conn_is_relayed(conn) and not getattr(conn, "is_closed", False)]
                if not relayed:
                    return closed
                for conn in relayed:
                    if not any(not _stream_over(stream) for stream in conn.get_streams()):
                        try:
                            await conn.close()
                        except Exception as exc:  # closing under us
                            logger.debug("relayed connection close: %r", exc)
                        closed += 1
                        self.relayed_closed += 1
                        logger.info("relayed connection to %s closed: the chat moved", peer_id)
                await trio.sleep(DIRECT_POLL)
        return closed

    async def _punch_once(self, peer_id) -> bool:
        if direct_connection(self.host, peer_id) is not None:
            return True
        self.statistics.attempts += 1
        started = time.monotonic()
        try:
            ok = await self.protocol.initiate_hole_punch(peer_id)
        except Exception as exc:  # the library logs and returns False; be sure
            logger.info("hole punch to %s failed: %r", peer_id, exc)
            ok = False
        ok = ok and direct_connection(self.host, peer_id) is not None
        elapsed = time.monotonic() - started
        if ok:
            self.statistics.successes += 1
            self.statistics.seconds.append(elapsed)
        logger.info("hole punch to %s: %s after %.2f s", peer_id,
                    "direct" if ok else "still relayed", elapsed)
        return ok


def _stream_over(stream) -> bool:
    """Whether a stream is over (closed both ways, reset): it no longer needs its connection."""
    try:
        return bool(stream.is_closed())
    except Exception:  # a stream type without the check: count it as running
        return False


async def wait_for_direct(host, peer_id, timeout: float):
    """A direct connection to ``peer_id`` once there is one (None after ``timeout`` s)."""
    with trio.move_on_after(timeout):
        while True:
            conn = direct_connection(host, peer_id)
            if conn is not None:
                return conn
            await trio.sleep(DIRECT_POLL)
    return None
