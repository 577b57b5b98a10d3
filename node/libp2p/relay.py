"""Circuit relay v2 with no operator: every reachable node relays, the others reserve.

py-libp2p's ``libp2p.relay.circuit_v2`` does the wire protocol (HOP on the
relay, STOP on the node behind a NAT, Noise + Yamux inside the circuit); what
it gets wrong for us is fixed here (``../shared/notes``):

* the swarm drops every ``/p2p-circuit`` address before it dials (even with a
  circuit transport), so a stranger behind a NAT could never be dialled: we
  wrap ``swarm.dial_peer`` (:func:`install_circuit_dialing`): a peer with no
  connection that announces relayed addresses is dialled through
  ``CircuitV2Transport.dial`` first (the direct addresses of a node that
  announces relayed ones are private, so trying them first costs a timeout);
* ``CircuitV2Transport`` reserves on the relay before every dial when the
  CLIENT role is on: we give it the STOP role only and reserve ourselves
  (:meth:`RelayClient.reserve`), once per relay, renewed at half the TTL
  (the library's refresher renews only after expiry);
* the reservation answer's relay addresses are dropped by the library's
  client: we read them, so our relayed addresses name the relay's real
  address (``/ip4/R/tcp/P/p2p/RELAY/p2p-circuit``).

Limits of a relay (:data:`STRANGERS_RELAY_LIMITS`): a text chat is small, so
the per-circuit data limit is generous and the duration long (see
``docs/protocol.md`` §2).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import trio
from libp2p.custom_types import TProtocol
from libp2p.identity.identify_push.identify_push import push_identify_to_peers
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.relay.circuit_v2.protocol import STOP_PROTOCOL_ID, CircuitV2Protocol
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from multiaddr import Multiaddr

from .addresses import announcements
from .holepunch import conn_is_relayed

logger = logging.getLogger(__name__)

HOP = HOP_PROTOCOL_ID
STOP = STOP_PROTOCOL_ID

STRANGERS_RELAY_LIMITS = RelayLimits(
    duration=6 * 3600,
    data=64 * 1024 * 1024,
    max_circuit_conns=4,
    max_reservations=128,
    reservation_ttl=600,
)
"""What a strangers relay grants: circuits of at most 6 h and 64 MiB (a text
chat at one message a second moves ~3.6 MB an hour with framing), 4 circuits
at once per reserved peer (the per-peer cap), 128 reservations in all, each
valid 10 minutes (renewed by its holder every 5)."""

MIN_CIRCUIT_DURATION = 600
MIN_CIRCUIT_DATA = 1024 * 1024
"""A relay whose circuits are shorter or smaller than this is not reserved on
(0 means no limit): a text chat must fit."""
MAX_ADDRS_PER_RELAY = 2
"""Relayed addresses announced per relay (a searcher reads 8 per provider)."""

WANTED_RELAYS = 2
"""How many relays a node that is not reachable keeps a reservation on."""
RESERVE_TIMEOUT = 5.0
CIRCUIT_DIAL_TIMEOUT = 5.0
RENEW_FRACTION = 0.5
"""Renew a reservation when this fraction of its lifetime is over."""
RETRY_INTERVAL = 10.0
PUSH_TIMEOUT = 5.0
REFUSAL_MEMORY = 120.0
"""Seconds a connected peer that refused a reservation is not asked again
(unless its identify starts listing HOP)."""
"""Seconds between looks for relays while we hold fewer than wanted."""

# What this module tells addresses.py: the relayed addresses of each host,
# and whether it announces only those (--hide-ip).
_relayed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_hide_ip: weakref.WeakSet = weakref.WeakSet()


def limits_fit_a_chat(duration: int, data: int) -> bool:
    return (duration == 0 or duration >= MIN_CIRCUIT_DURATION) and (data == 0 or data >= MIN_CIRCUIT_DATA)


def relayed_addrs(host) -> list[Multiaddr]:
    """Our ``/…/p2p/RELAY/p2p-circuit`` addresses (without our own ``/p2p``)."""
    return list(_relayed.get(host, ()))


def hides_ip(host) -> bool:
    """Whether ``host`` announces only relayed addresses (``--hide-ip``)."""
    return host in _hide_ip


def is_circuit(addr: Multiaddr) -> bool:
    return "/p2p-circuit" in str(addr)


def circuit_addr(relay_addr: Multiaddr, relay_id: ID) -> Multiaddr:
    """``relay_addr`` (with or without ``/p2p/RELAY``) + ``/p2p-circuit``."""
    text = str(relay_addr)
    suffix = f"/p2p/{relay_id.to_base58()}"
    if "/p2p/" in text:
        text = text[: text.index("/p2p/")]
    return Multiaddr(f"{text}{suffix}/p2p-circuit")


@dataclass
class Reservation:
    relay: ID
    expires: float
    """Wall-clock seconds (the relay's ``expire`` field)."""
    addrs: list[Multiaddr]
    reserved_at: float = field(default_factory=time.time)


class RelayClient:
    """The relay side of one host: HOP for others, STOP for us, reservations, circuit dials."""

    def __init__(self, host, *, hop: bool, hide_ip: bool = False,
                 limits: RelayLimits = STRANGERS_RELAY_LIMITS,
                 on_change: Callable[[], None] | None = None,
                 direct_ok: Iterable[ID] = ()) -> None:
        self.host = host
        self.protocol = CircuitV2Protocol(host, limits=limits, allow_hop=hop)
        # STOP only: the library's CLIENT role would reserve before every dial.
        self.transport = CircuitV2Transport(host, self.protocol, RelayConfig(roles=RelayRole.STOP))
        self.reservations: dict[ID, Reservation] = {}
        self.hide_ip = hide_ip
        self.direct_ok = set(direct_ok)
        """With ``hide_ip``: the only peers we dial directly (the bootstrap peers we chose)."""
        self.on_change = on_change
        self.stats: dict[str, list[float]] = {"reserve": [], "circuit_dial": []}
        self._refused: dict[ID, tuple[float, bool]] = {}
        if hide_ip:
            _hide_ip.add(host)
            # identify, signed records, provider records: relayed addresses only
            announcements(host).relayed_only = True
        # the host's address book learns our relayed addresses as they come and go
        book = announcements(host)

        def keep_book(added: list[Multiaddr], removed: list[Multiaddr]) -> None:
            for addr in added:
                book.add(addr)
            for addr in removed:
                book.discard(addr)

        self.on_addrs = keep_book

    @property
    def hop(self) -> bool:
        return self.protocol.allow_hop

    async def enable_hop(self) -> None:
        """Start relaying for others (a chat node once AutoNAT says it is reachable),
        and tell connected peers (identify push: they learned our protocols before)."""
        if not self.protocol.allow_hop:
            self.protocol.allow_hop = True
            self.host.set_stream_handler(HOP, self.protocol._handle_hop_stream)
            try:
                with trio.move_on_after(PUSH_TIMEOUT):
                    await push_identify_to_peers(self.host)
            except Exception as exc:
                logger.info("identify push after enabling HOP failed: %r", exc)

    # -- reservations -------------------------------------------------------------

    async def reserve(self, relay: ID) -> Reservation | None:
        """Reserve a slot on ``relay`` (connected or in the peerstore); None if refused."""
        started = time.monotonic()
        stream = None
        try:
            with trio.fail_after(RESERVE_TIMEOUT):
                stream = await self.host.new_stream(relay, [HOP])
                await write_delimited_msg(stream, HopMessage(
                    type=HopMessage.RESERVE, peer=CircuitPeerId(id=self.host.get_id().to_bytes())))
                answer = await read_delimited_msg(stream, HopMessage)
        except Exception as exc:  # refused protocol, dead relay, timeout
            logger.info("reservation on %s failed: %r", relay, exc)
            if self.host.get_network().get_connections(relay):  # it answered, without HOP
                self._refuse(relay)
            return None
        finally:
            if stream is not None:
                try:
                    await stream.close()
                except Exception:
                    pass
        if answer.type != HopMessage.STATUS or answer.status != 100 or not answer.HasField("reservation"):
            logger.info("relay %s refused a reservation (status %s)", relay, answer.status)
            self._refuse(relay)
            return None
        if answer.HasField("limit") and not limits_fit_a_chat(answer.limit.duration, answer.limit.data):
            # e.g. go-libp2p's default relay: 2 minutes and 128 KiB per circuit would cut a chat.
            logger.info("relay %s grants circuits of %s s / %s bytes only: not used", relay,
                        answer.limit.duration, answer.limit.data)
            self._refuse(relay)
            return None
        # The address we reach the relay at first (it works from here), then
        # the ones it announces (a relay on a wildcard announces none).
        addrs = [circuit_addr(a, relay) for a in self._addrs_of(relay)]
        for raw in answer.reservation.addrs:
            try:
                addrs.append(circuit_addr(Multiaddr(raw), relay))
            except Exception:
                continue
        addrs = [a for a in addrs if not str(a).startswith(("/ip4/127.", "/ip6/::1/"))] or addrs
        addrs = list(dict.fromkeys(addrs))[:MAX_ADDRS_PER_RELAY]
        reservation = Reservation(relay, float(answer.reservation.expire), addrs)
        self.stats["reserve"].append(time.monotonic() - started)
        self.reservations[relay] = reservation
        self._publish()
        logger.info("reserved on %s in %.0f ms until %s: %s", relay,
                    1000 * self.stats["reserve"][-1], reservation.expires, addrs)
        return reservation

    def _addrs_of(self, peer: ID) -> list[Multiaddr]:
        out: list[Multiaddr] = []
        for conn in self.host.get_network().get_connections(peer):
            out.extend(getattr(conn, "get_transport_addresses", list)() or [])
        if not out:
            try:
                out = list(self.host.get_peerstore().addrs(peer))
            except Exception:
                out = []
        return [a for a in out if not is_circuit(a)]

    def drop(self, relay: ID) -> None:
        if self.reservations.pop(relay, None) is not None:
            self._publish()

    on_addrs: Callable[[list[Multiaddr], list[Multiaddr]], None] | None = None
    """Told (added, removed) relayed addresses: where another address book hooks in."""

    def _publish(self) -> None:
        before = _relayed.get(self.host, [])
        addrs = list(dict.fromkeys(a for r in self.reservations.values() for a in r.addrs))
        _relayed[self.host] = addrs
        if self.on_addrs is not None:
            self.on_addrs([a for a in addrs if a not in before], [a for a in before if a not in addrs])
        if self.on_change is not None:
            self.on_change()

    def _speaks_hop(self, peer: ID) -> bool:
        try:
            return HOP in (self.host.get_peerstore().get_protocols(peer) or [])
        except Exception:
            return False

    def _refuse(self, peer: ID) -> None:
        self._refused[peer] = (time.monotonic(), self._speaks_hop(peer))

    def _refused_lately(self, peer: ID) -> bool:
        """Refused less than REFUSAL_MEMORY ago, and identify has not said HOP since."""
        if peer not in self._refused:
            return False
        when, spoke_hop = self._refused[peer]
        if time.monotonic() - when >= REFUSAL_MEMORY or (self._speaks_hop(peer) and not spoke_hop):
            del self._refused[peer]
            return False
        return True

    def relay_candidates(self, extra: Iterable[ID] = ()) -> list[ID]:
        """Peers to reserve on: ``extra`` (bootstrap peers) first, then connected
        peers whose identify said they speak HOP, then other connected peers
        (a chat node starts relaying once it knows it is reachable, after its
        identify went out); a peer that refused is left alone for
        :data:`REFUSAL_MEMORY` seconds."""
        wanted_first = list(extra)  # asked again at every round: they are few
        seen: list[ID] = []
        for peer in [*wanted_first, *self.host.get_connected_peers()]:
            if peer in seen or peer == self.host.get_id() or peer in self.reservations:
                continue
            if peer not in wanted_first and self._refused_lately(peer):
                continue
            seen.append(peer)
        preferred = [p for p in seen if p in wanted_first]
        rest = [p for p in seen if p not in preferred]
        return preferred + sorted(rest, key=lambda p: not self._speaks_hop(p))

    async def keep_reservations(self, candidates: Callable[[], list[ID]], *,
                                wanted: int = WANTED_RELAYS,
                                clock: Callable[[], float] = time.time) -> None:
        """Hold ``wanted`` reservations forever: renew each at half its life,
        replace the ones that fail. Never returns."""
        while True:
            now = clock()
            for relay, held in list(self.reservations.items()):
                life = held.expires - held.reserved_at
                if now >= held.reserved_at + RENEW_FRACTION * life:
                    if await self.reserve(relay) is None:
                        self.drop(relay)
            if len(self.reservations) < wanted:
                for relay in candidates():
                    if len(self.reservations) >= wanted:
                        break
                    await self.reserve(relay)
            if self.reservations:
                next_renewal = min(r.reserved_at + RENEW_FRACTION * (r.expires - r.reserved_at)
                                   for r in self.reservations.values())
                pause = max(1.0, next_renewal - clock())
                if len(self.reservations) < wanted:
                    pause = min(pause, RETRY_INTERVAL)
            else:
                pause = RETRY_INTERVAL / 5 if not self.stats["reserve"] else RETRY_INTERVAL
            await trio.sleep(pause)

    # -- dialling through a relay -----------------------------------------------

    async def dial_circuit(self, peer: ID, addrs: list[Multiaddr]):
        """A connection to ``peer`` through the first of ``addrs`` (circuit
        addresses) that works; raises the last error."""
        last: Exception = ConnectionError(f"no relayed address for {peer}")
        for addr in addrs:
            target = Multiaddr(f"{addr}/p2p/{peer.to_base58()}") if not str(addr).endswith(
                f"/p2p/{peer.to_base58()}") else addr
            started = time.monotonic()
            try:
                with trio.fail_after(CIRCUIT_DIAL_TIMEOUT):
                    conn = await self.transport.dial(target)
            except Exception as exc:
                logger.info("circuit dial %s failed: %r", target, exc)
                last = exc
                continue
            self.stats["circuit_dial"].append(time.monotonic() - started)
            logger.info("dialled %s through %s in %.0f ms", peer, addr,
                        1000 * (time.monotonic() - started))
            return conn
        raise last


class WouldRevealAddress(ConnectionError):
    """``--hide-ip``: this peer can only be dialled directly, which would show it our IP."""


def install_circuit_dialing(host, client: RelayClient) -> None:
    """Wrap ``swarm.dial_peer`` so that peers announcing relayed addresses are
    dialled through a relay (the swarm itself drops ``/p2p-circuit``)."""
    swarm = host.get_network()
    original = swarm.dial_peer

    async def dial_peer(peer_id: ID):
        existing = swarm.get_connections(peer_id)
        if existing:
            return await original(peer_id)
        direct_ok = not client.hide_ip or peer_id in client.direct_ok
        try:
            known = list(host.get_peerstore().addrs(peer_id))
        except Exception:
            known = []
        circuits = [a for a in known if is_circuit(a)]
        if circuits:
            try:
                return [await client.dial_circuit(peer_id, circuits)]
            except Exception:
                if not direct_ok or not any(not is_circuit(a) for a in known):
                    raise
        if not direct_ok:
            raise WouldRevealAddress(f"{peer_id} has no relayed address; --hide-ip dials no one directly")
        return await original(peer_id)

    dial_peer.strangers_wrapped = True  # type: ignore[attr-defined]
    swarm.dial_peer = dial_peer


def connection_path(host, peer: ID) -> str | None:
    """"relayed" or "direct" for our connection to ``peer`` (None: none)."""
    conns = host.get_network().get_connections(peer)
    if not conns:
        return None
    return "relayed" if all(conn_is_relayed(conn) for conn in conns) else "direct"


def speaks_protocol(protocols: Iterable[str], protocol: TProtocol) -> bool:
    return protocol in set(protocols)
