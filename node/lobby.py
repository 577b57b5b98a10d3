"""Lobbies: one public GossipSub room per interest (``docs/protocol.md`` §10).

:class:`Lobby` drives the pure rules of :mod:`strangers.discovery.lobby`
(topic names, message format, per-sender limits, nicknames, the member
estimate) over py-libp2p's GossipSub (:mod:`.libp2p.gossip`):

* *joining*: subscribe, announce ourselves as a provider of the lobby's DHT
  key for this epoch, look the key up, dial the members found (up to
  :data:`MAX_DIALS` at a time); mDNS neighbours are in the routing table, so
  the same lookup finds members on the LAN. Lookups repeat (:data:`LOOKUP_DELAYS`,
  then every :data:`LOOKUP_INTERVAL` s) to find newcomers and keep the estimate fresh;
* *validation*: every message, ours included, passes :class:`LobbyRules`
  before it is delivered or forwarded; a direct peer that floods is
  disconnected and refused for a while;
* *events*: ``joined``, ``lobby_message`` (each message once), ``lobby_sent``,
  ``members`` (when the estimate changes).

:func:`count_members` is the estimate of a lobby we are not in (``strangers
chat`` shows it while it searches): the DHT records of its key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.tools.anyio_service import background_trio_service

from strangers.discovery import lobby as rules
from strangers.discovery.topics import epoch_at, seconds_to_next_epoch
from strangers.errors import ConfigError, LocalProtocolError

from . import events
from .libp2p.gossip import PROTOCOLS, build_gossipsub, build_pubsub
from .supervision import spawn

logger = logging.getLogger(__name__)

MAX_DIALS = 8
"""Members dialled at once after a lookup (GossipSub meshes with 3..8 of them)."""
LOOKUP_DELAYS = (1.0, 3.0, 8.0, 15.0)
"""Seconds between the first lookups (newcomers are found fast), then :data:`LOOKUP_INTERVAL`."""
LOOKUP_INTERVAL = 30.0
MEMBERS_EVERY = 1.0
"""How often the member estimate is recomputed (an event only when it changes)."""
SEEN_IDS = 8192
"""Message ids remembered to deliver each message once (GossipSub's seen cache is the first guard)."""
DROPS_QUEUE = 64
DIAL_TIMEOUT = 5.0
JOIN_WAIT = 15.0
"""A message said before the first lookup ended waits this long for it."""
SUBSCRIPTIONS_WAIT = 2.0
"""After the first dials, how long ``joined`` waits for a member's subscription."""

Emit = Callable[[events.Event], Awaitable[None]]


def message_id(origin: bytes, seqno: bytes) -> str:
    """The public id of a lobby message (hex): from its signed ``from`` and ``seqno``."""
    return hashlib.sha256(bytes(origin) + bytes(seqno)).hexdigest()[:32]


class Lobby:
    """One joined lobby. Run :meth:`serve` in a nursery (``nursery.start``)."""

    def __init__(self, host, dht, interest: str, lane: str, emit: Emit) -> None:
        self.host = host
        self.dht = dht
        self.topic = rules.lobby_topic(interest, lane)
        self.interest = rules.parse_topic(self.topic)[1]
        self.lane = lane
        self._emit = emit
        self.rules = rules.LobbyRules(self.topic)
        self.estimate = rules.MemberEstimate()
        self.pubsub: Any = None
        """py-libp2p's Pubsub, once :meth:`serve` started it."""
        self._me = host.get_id()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._drops_send, self._drops_receive = trio.open_memory_channel[ID](DROPS_QUEUE)
        self._nicks: dict[str, str] = {}
        self._last_count = 0
        self._dialled: set[ID] = set()
        self._nursery: trio.Nursery | None = None
        self.joined = trio.Event()
        """Set once the first lookup found (and dialled) the members there were."""
        self.node_ready = trio.Event()
        """Set by the node once its seeds answered (or did not): lookups may start."""
        self.received = 0
        self.dropped_peers = 0

    # -- public --------------------------------------------------------------------

    @property
    def members(self) -> dict[str, str]:
        """Peer id (base58) -> nickname of the members we know of."""
        if self.pubsub is not None:
            for peer in self.pubsub.peer_topics.get(self.topic, ()):
                self._nicks.setdefault(peer.to_base58(), rules.nickname(peer.to_bytes()))
        return dict(self._nicks)

    def nick_of(self, peer_id: str) -> str:
        return rules.nickname(ID.from_base58(peer_id).to_bytes())

    async def send(self, text: str) -> str:
        """Publish ``text`` in the lobby; returns its id. Raises LocalProtocolError."""
        if self.pubsub is None:
            raise LocalProtocolError("not in a lobby yet")
        try:
            data = rules.encode_message(text)
        except ConfigError as exc:
            raise LocalProtocolError(str(exc)) from None
        # said before we found the members: wait for them (it would reach nobody)
        with trio.move_on_after(JOIN_WAIT):
            await self.joined.wait()
        if not self.rules.check_own(self._me.to_bytes(), trio.current_time()):
            raise LocalProtocolError(
                f"slow down: at most {rules.SEND_RATE:g} lobby messages a second")
        # the library makes the seqno synchronously as publish starts: counter + 1
        seqno = (self.pubsub.counter + 1).to_bytes(8, "big")
        await self.pubsub.publish(self.topic, data)
        ident = message_id(self._me.to_bytes(), seqno)
        await self._emit(events.LobbySent(ident, text))
        return ident

    def count(self) -> int:
        subscribed: set[bytes] = {peer.to_bytes() for peer in self.pubsub.peer_topics.get(
            self.topic, ())} if self.pubsub is not None else set()
        return self.estimate.count(trio.current_time(), subscribed=subscribed)

    # -- running -------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start GossipSub and subscribe (then ``started``), then find the members.

        Start it before the node dials anyone: pubsub opens its streams on
        the library's "connected" hook. The first lookup waits for
        :attr:`node_ready` (seeds connected).
        """
        router = build_gossipsub()
        pubsub = build_pubsub(self.host, router)
        pubsub.set_topic_validator(self.topic, self._validate, False)
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            self.pubsub = pubsub
            subscription = await pubsub.subscribe(self.topic)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                spawn(nursery, "lobby reader", self._read, subscription)
                spawn(nursery, "lobby drops", self._drop_floods)
                task_status.started(self)
                await self.node_ready.wait()
                await self._register_connected()
                await self._lookup_and_dial(announce=True)
                await self._wait_for_subscriptions()
                self.joined.set()
                await self._emit(events.LobbyJoined(self.topic, self._topic_peers()))
                spawn(nursery, "lobby members", self._report_members)
                spawn(nursery, "lobby lookups", self._keep_looking)
                spawn(nursery, "lobby announcements", self._keep_announced)
                await trio.sleep_forever()

    async def _wait_for_subscriptions(self) -> None:
        """Give the members we dialled a moment to tell us they are in the topic."""
        with trio.move_on_after(SUBSCRIPTIONS_WAIT):
            while self._topic_peers() < min(len(self._dialled), 1):
                await trio.sleep(0.05)

    def _topic_peers(self) -> int:
        return len(self.pubsub.peer_topics.get(self.topic, ())) if self.pubsub else 0

    def _validate(self, forwarder: ID, msg) -> bool:
        """The topic validator (synchronous: no await between the seen-check and marking seen)."""
        if forwarder == self._me:
            return True  # our own publish, checked by send()
        verdict = self.rules.check(self.topic, bytes(msg.from_id), forwarder.to_bytes(),
                                   bytes(msg.data), trio.current_time())
        if verdict is rules.Verdict.DROP_PEER:
            try:
                self._drops_send.send_nowait(forwarder)
            except trio.WouldBlock:
                pass
        return verdict is rules.Verdict.ACCEPT

    async def _read(self, subscription) -> None:
        async for msg in subscription:
            origin = bytes(msg.from_id)
            if origin == self._me.to_bytes():
                continue
            ident = message_id(origin, bytes(msg.seqno))
            if ident in self._seen:
                continue
            self._seen[ident] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
            try:
                text = rules.decode_message(bytes(msg.data))
            except Exception as exc:  # validated already: only a library change gets here
                logger.info("lobby message not decoded: %r", exc)
                continue
            sender = ID(origin).to_base58()
            nick = self._nicks.setdefault(sender, rules.nickname(origin))
            self.estimate.saw(origin, trio.current_time())
            self.received += 1
            await self._emit(events.LobbyMessage(ident, sender, nick, text))

    async def _drop_floods(self) -> None:
        async for peer in self._drops_receive:
            if self.pubsub is None or self.pubsub.is_peer_blacklisted(peer):
                continue
            logger.warning("lobby: %s floods, dropped for %.0f s", peer, rules.BAN_SECONDS)
            self.dropped_peers += 1
            self.pubsub.add_to_blacklist(peer)
            try:
                await self.host.disconnect(peer)
            except Exception as exc:  # gone already
                logger.debug("disconnect %s: %r", peer, exc)
            self.estimate.left(peer.to_bytes())
            if self._nursery is not None:
                spawn(self._nursery, "lobby ban", self._lift_ban, peer)

    async def _lift_ban(self, peer: ID) -> None:
        await trio.sleep(rules.BAN_SECONDS)
        if self.pubsub is not None:
            self.pubsub.remove_from_blacklist(peer)

    async def _report_members(self) -> None:
        while True:
            for peer in self.pubsub.peer_topics.get(self.topic, ()):
                self._nicks.setdefault(peer.to_base58(), rules.nickname(peer.to_bytes()))
            count = self.count()
            logger.debug("lobby: %d pubsub peers, %d in the topic, %d in the mesh, estimate %d",
                         len(self.pubsub.peers), self._topic_peers(),
                         len(self.pubsub.router.mesh.get(self.topic, ())), count)
            if count != self._last_count:
                self._last_count = count
                await self._emit(events.LobbyMembers(count))
            await trio.sleep(MEMBERS_EVERY)

    async def _register_connected(self) -> None:
        """Peers connected before we joined never fired pubsub's "connected" hook."""
        supported = set(PROTOCOLS)
        for peer in list(self.host.get_connected_peers()):
            try:
                protocols = set(self.host.get_peerstore().get_protocols(peer))
            except Exception:  # not identified (yet)
                continue
            if protocols & supported:
                with trio.move_on_after(DIAL_TIMEOUT):
                    await self.pubsub.ensure_peer_stream(peer, timeout=DIAL_TIMEOUT)

    async def _keep_looking(self) -> None:
        for delay in LOOKUP_DELAYS:
            await trio.sleep(delay)
            await self._lookup_and_dial(announce=False)
        while True:
            await trio.sleep(LOOKUP_INTERVAL)
            await self._lookup_and_dial(announce=False)

    async def _keep_announced(self) -> None:
        while True:
            await trio.sleep(seconds_to_next_epoch(time.time()) + 1.0)
            await self._announce()

    async def _announce(self) -> None:
        key = rules.member_key(self.topic, epoch_at(time.time()))
        try:
            stored = await self.dht.provide(key)
            logger.info("lobby %s announced on %d peers", self.topic, stored)
        except Exception as exc:  # nobody took it: the next epoch tries again
            logger.info("lobby announce failed: %r", exc)

    async def _lookup_and_dial(self, *, announce: bool) -> None:
        found: dict[ID, PeerInfo] = {}

        async def look(key: bytes) -> None:
            try:
                for info in await self.dht.find_providers(key, count=rules.MAX_TRACKED_SENDERS):
                    found.setdefault(info.peer_id, info)
            except Exception as exc:  # an empty or unreachable DHT: the next round
                logger.info("lobby lookup failed: %r", exc)

        async with trio.open_nursery() as nursery:
            if announce:
                nursery.start_soon(self._announce)
            for key in rules.member_keys(self.topic, time.time()):
                nursery.start_soon(look, key)
        now = trio.current_time()
        for peer in found:
            if peer != self._me and not (self.pubsub and self.pubsub.is_peer_blacklisted(peer)):
                self.estimate.saw_record(peer.to_bytes(), now)
                self._nicks.setdefault(peer.to_base58(), rules.nickname(peer.to_bytes()))
        in_topic = set(self.pubsub.peer_topics.get(self.topic, ()))
        wanted = [info for peer, info in found.items()
                  if peer != self._me and peer not in in_topic
                  and not self.pubsub.is_peer_blacklisted(peer)]
        room = max(0, MAX_DIALS - len(in_topic)) if len(in_topic) >= 3 else MAX_DIALS
        self._dialled.update(info.peer_id for info in wanted[:room])
        async with trio.open_nursery() as nursery:
            for info in wanted[:room]:
                nursery.start_soon(self._dial, info)

    async def _dial(self, info: PeerInfo) -> None:
        with trio.move_on_after(DIAL_TIMEOUT):
            try:
                if info.peer_id in self.host.get_connected_peers():
                    # connected before (DHT, mDNS): pubsub's "connected" hook never
                    # saw it; a new connection fires the hook, which opens the stream
                    await self.pubsub.ensure_peer_stream(info.peer_id, timeout=DIAL_TIMEOUT)
                else:
                    await self.host.connect(info)
            except Exception as exc:  # gone, or not in the lobby any more
                logger.info("lobby member %s not reached: %r", info.peer_id, exc)


async def count_members(dht, interest: str, lane: str = rules.DEFAULT_LANE) -> int:
    """How many people announced themselves in the lobby of ``interest`` (this epoch and the last)."""
    topic = rules.lobby_topic(interest, lane)
    found: set[ID] = set()
    for key in rules.member_keys(topic, time.time()):
        try:
            found.update(info.peer_id for info in await dht.find_providers(key, count=1000))
        except Exception as exc:
            logger.info("lobby count failed: %r", exc)
    return len(found)

LOBBY_COUNTS_FIRST = 3.0
"""Seconds after start before ``strangers chat`` first counts lobby members (its
first search has the network to itself)."""
LOBBY_COUNTS_EVERY = 60.0
MAX_LOBBY_COUNTS = 4
"""Interests whose lobbies are counted (each count is a DHT walk)."""


async def serve_lobby_counts(dht, interests: tuple[str, ...], searching: Callable[[], bool],
                             emit: Emit, lane: str = rules.DEFAULT_LANE) -> None:
    """While a chat node searches, tell how many people are in its interests' lobbies.

    An event only when some lobby has people and the figures changed.
    """
    await trio.sleep(LOBBY_COUNTS_FIRST)
    last: tuple[tuple[str, int], ...] | None = None
    while True:
        if searching():
            counts = []
            for interest in interests[:MAX_LOBBY_COUNTS]:
                counts.append((interest, await count_members(dht, interest, lane)))
            figures = tuple(counts)
            if figures != last and any(n for _i, n in figures):
                await emit(events.LobbyCounts(figures))
            last = figures
        await trio.sleep(LOBBY_COUNTS_EVERY)
