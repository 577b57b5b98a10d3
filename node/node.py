"""The node facade: ``async with open_node(config) as node`` and talk to strangers.

A :class:`Node` owns every task it starts (one nursery), and reports what
happens as :mod:`~strangers.node.events` on :meth:`Node.events`. The CLI only
uses this module's public objects.

Life of a chat node::

    ready -> searching -> (advertised) -> matched -> messages ... -> stranger_left
                ^                                                        |
                +-------------------- auto next -------------------------+
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.tools.anyio_service import background_trio_service

from strangers.crypto.handshake import Role
from strangers.crypto.session import ChatConnection
from strangers.discovery.lookup import K_VALUE, SEARCH_CLOSEST
from strangers.discovery.matcher import Matcher, MatchState, Phase, Refusal
from strangers.discovery.proposal import Accept
from strangers.discovery.topics import (
    HOME_SHARD,
    READVERTISE_SPREAD,
    advertise_keys,
    draw_shard,
    epoch_at,
    search_rounds,
    seconds_to_next_epoch,
)
from libp2p.crypto.keys import KeyType

from strangers.errors import LocalProtocolError, RemoteProtocolError, StrangersError

from . import events
from .chat import CHAT_PROTOCOL, ChatSession
from .config import NodeConfig
from .identity import Identity, fresh_identity, load_or_create_identity
from .libp2p.addresses import dialable_addrs
from .libp2p.host import build_host, ensure_port_free, running_host
from .libp2p.kad import StrangersDHT
from .libp2p.mdns import LocalDiscovery
from .libp2p.streamio import forget_closed_connections, reset_quietly
from .matching import CHAT_OPEN_TIMEOUT, MATCH_PROTOCOL, MatchService, PendingMatch

logger = logging.getLogger(__name__)

EVENT_QUEUE = 1024
POLL_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Pause between two searches of the DHT while nobody fits (then the last value)."""
READVERTISE_RETRY = 3.0
LARGE_NETWORK_TABLE = 100
"""A routing table this big means a network of several hundred nodes or more
(tables hold ~130 peers at 1k nodes, ~200 at 10k, docs/scale.md): searches of
a hot interest then probe a random shard before the home shard."""
THOROUGH_SOURCES = 5
"""A thorough walk (after a search that found only busy strangers) stops once
this many record holders have answered, or at 20 providers: each holder may
know only some announcers, and a few of them know nearly all."""
HOT_PROVIDERS = K_VALUE
"""A home key whose walk returned this many providers (a full answer) is hot."""
CANDIDATE_GRACE = 0.0
"""Once a walk found a stranger, how long the other walks may still finish."""
FIRST_SEARCH_HEAD_START = 2.0
"""Seconds the first search runs alone before the routing table is filled."""
SKIP_UNREACHABLE = 5.0
REFUSE_AFTER_NO_SHOW = 20.0
"""Seconds we refuse a proposer that was accepted and never opened the chat."""
"""Seconds before proposing again to a candidate that did not answer in time."""
SKIP_AFTER_REFUSAL = {
    Refusal.BUSY: 2.0,  # proposing to someone else, or chatting: may be free soon
    Refusal.CROSSED: 2.0,
    Refusal.NOT_LOOKING: 30.0,
    Refusal.NO_COMMON_INTERESTS: 10.0,  # until one of us falls back to random
}


@dataclass(frozen=True)
class NodeStatistics:
    state: str
    routing_table: int
    connected_peers: int
    lookups: int
    dht_messages: int
    chats: int


class Node:
    """A running strangers node. Create it with :func:`open_node`."""

    def __init__(self, config: NodeConfig, identity: Identity, host, dht: StrangersDHT,
                 nursery: trio.Nursery) -> None:
        self.config = config
        self.identity = identity
        self.host = host
        self.dht = dht
        self._nursery = nursery
        self._rng = random.Random()
        self._send_events, self._receive_events = trio.open_memory_channel[events.Event](EVENT_QUEUE)
        self.matcher = Matcher(
            local_id=identity.peer_id.to_bytes(),
            interests=config.interests,
            random_after=config.random_after,
            interests_only=config.interests_only,
        )
        self.matching = MatchService(host, self.matcher, on_accepted=self._on_accepted_incoming)
        self._search_scope: trio.CancelScope | None = None
        self._session: ChatSession | None = None
        self._pending: PendingMatch | None = None
        self._pending_round = 0
        self._shard = 1
        """The shard this search advertises on besides home, and probes first (drawn per search)."""
        self._hot: dict[str | None, bool] = {}
        """Per topic (None: anyone), whether its home key was hot when last walked."""
        self._advertised_epoch_keys: set[bytes] = set()
        self._advertised_once = False
        self._chats = 0
        self._session_established = False
        self._chat_over = trio.Event()
        self._first_search_done = trio.Event()
        self._closest_hint: dict[bytes, list[ID]] = {}
        """Closest peers of keys our last search walked completely (reused to announce)."""
        self._wake = trio.Event()
        self._stopping = False
        self.stopped = trio.Event()

    # -- public ------------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    @property
    def addrs(self) -> list[str]:
        return [f"{addr}/p2p/{self.peer_id}" for addr in dialable_addrs(self.host)]

    def events(self) -> trio.MemoryReceiveChannel[events.Event]:
        """The stream of events (one consumer)."""
        return self._receive_events

    async def emit(self, event: events.Event) -> None:
        await self._send_events.send(event)

    async def send_text(self, text: str) -> int:
        """Send a message to the current stranger; returns its id. Raises if not chatting."""
        if not isinstance(text, str) or not text.strip():
            raise LocalProtocolError("cannot send an empty message")
        session = self._session
        if session is None or not session.established.is_set():
            raise LocalProtocolError("you are not chatting with anyone right now")
        message_id = await session.send_text(text)
        await self.emit(events.Sent(message_id, text))
        return message_id

    async def set_typing(self, active: bool) -> None:
        if self._session is not None and self._session.established.is_set():
            await self._session.send_typing(active)

    async def next(self) -> None:
        """Leave the current stranger (if any) and look for the next one."""
        if self._session is not None:
            await self._session.close("next")
        elif self.matcher.state is MatchState.IDLE and self.config.chat:
            self.start_search()

    async def quit(self) -> None:
        """Say goodbye to the stranger and stop the node."""
        self._stopping = True
        if self._session is not None:
            await self._session.close("quit")
            with trio.move_on_after(1.0):  # let it report stranger_left
                await self._chat_over.wait()
        self._nursery.cancel_scope.cancel()

    def statistics(self) -> NodeStatistics:
        return NodeStatistics(
            state=self.matcher.state.value,
            routing_table=self.dht.routing_table.size(),
            connected_peers=len(self.host.get_connected_peers()),
            lookups=self.dht.stats.lookups,
            dht_messages=self.dht.stats.messages,
            chats=self._chats,
        )

    async def fill_routing_table(self, reached: int) -> None:
        """Fill the routing table, after our first search had the network to itself.

        The first search walks the DHT through the bootstrap peer anyway; the
        self-lookup and random lookup dial many new peers, so running them at
        the same moment would slow down the search the user waits for.
        """
        if self.config.chat:
            with trio.move_on_after(FIRST_SEARCH_HEAD_START):
                await self._first_search_done.wait()
        # A chat node's own searches walk the network anyway: the self-lookup
        # is enough for it; a serve node also walks somewhere at random.
        await self.dht.fill_table(reached, random_lookup=not self.config.chat)

    # -- searching ---------------------------------------------------------------

    def start_search(self) -> None:
        if self._stopping or self.matcher.state is not MatchState.IDLE:
            return
        self.matcher.start_search(trio.current_time())
        self._shard = draw_shard(self._rng)
        self._search_scope = trio.CancelScope()
        self._nursery.start_soon(self._search, self._search_scope)

    def _stop_search(self) -> None:
        if self._search_scope is not None:
            self._search_scope.cancel()
            self._search_scope = None

    async def _search(self, scope: trio.CancelScope) -> None:
        with scope:
            await self.emit(events.Searching(
                self.config.interests, self.matcher.phase(trio.current_time()) is Phase.RANDOM))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._advertise_loop)
                await self._poll_loop()
                nursery.cancel_scope.cancel()

    async def _poll_loop(self) -> None:
        attempt = 0
        thorough = False
        told_random = self.matcher.phase(trio.current_time()) is Phase.RANDOM
        while self.matcher.state is MatchState.SEARCHING:
            now = trio.current_time()
            phase = self.matcher.phase(now)
            if phase is Phase.RANDOM and not told_random:
                told_random = True
                await self.emit(events.Searching(self.config.interests, True))
            # On a small network, home only (it lists everyone); on a large
            # one, hot topics probe our random shard first (search_rounds).
            rounds = search_rounds(self.config.interests, anyone=phase is Phase.RANDOM,
                                   now=time.time(),
                                   probe=self._shard if self._large_network() else None,
                                   hot=self._hot)
            self._closest_hint.clear()
            found_any = False
            for round_number, keys in enumerate(rounds):
                logger.info("search %d.%d: walking %d key(s)", attempt, round_number, len(keys))
                candidates = await self._find_candidates(keys, thorough=thorough)
                logger.info("search %d.%d: %d candidate(s), routing table %d", attempt,
                            round_number, len(candidates), self.dht.routing_table.size())
                found_any = found_any or bool(candidates)
                if await self._try_candidates(candidates):
                    return  # matched: our announcement is not needed
                if self.matcher.state is not MatchState.SEARCHING:
                    return
                if candidates or round_number == len(rounds) - 1:
                    self._first_search_done.set()  # nobody free: announce ourselves
            # Everyone we found was busy or skipped: others may be listed on
            # peers the fast walk did not reach.
            thorough = found_any
            delay = POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)]
            attempt += 1
            left = self.matcher.seconds_to_random(trio.current_time())
            if left is not None and not told_random:
                delay = min(delay, left + 0.01)
            with trio.move_on_after(delay):
                await self._wake.wait()
            if self._wake.is_set():
                # Our records just landed on the DHT: a stranger who joined at
                # the same moment and looked before may be listed by now too.
                self._wake = trio.Event()
                attempt = 0

    async def _try_candidates(self, candidates) -> bool:
        """Propose to candidates in the matcher's order; True once matched (or no longer searching)."""
        while self.matcher.state is MatchState.SEARCHING:
            peer_bytes = self.matcher.choose_candidate(
                {peer: found for peer, (_info, found) in candidates.items()},
                trio.current_time(), self._rng,
            )
            if peer_bytes is None:
                return False
            info, _found = candidates[peer_bytes]
            if await self._try_candidate(info):
                return True
        return False

    async def _find_candidates(self, keys, *, thorough: bool = False
                               ) -> dict[bytes, tuple[PeerInfo, tuple[str, ...]]]:
        """Providers of ``keys``, fresh from the DHT: peer -> (info, interests found under).

        The walks run in parallel. As soon as one finds a stranger who shares
        an interest, the others get :data:`CANDIDATE_GRACE` seconds more and
        are then dropped: a walk for a key nobody holds (say the previous
        epoch's) visits every close node, and the user should not wait for
        it when someone is already there. The next search repeats them.
        """
        found: dict[bytes, tuple[PeerInfo, tuple[str, ...]]] = {}
        me = self.identity.peer_id.to_bytes()

        async def one(key, nursery: trio.Nursery) -> None:
            # Fast path: stop at the first peer holding records. A holder may
            # know only some of the announcers, so a search that found nobody
            # usable that way walks on to every close peer the next time.
            result = await self.dht.lookup(
                key.multihash, providers=True, enough_sources=THOROUGH_SOURCES if thorough else 1,
                num_results=K_VALUE if thorough else SEARCH_CLOSEST)
            if key.shard == HOME_SHARD and key.epoch == epoch_at(time.time()):
                # what this topic's next searches probe first (search_rounds)
                self._hot[key.interest] = len(result.providers) >= HOT_PROVIDERS
            if thorough and not result.providers and result.closest:
                # A complete walk: its closest peers are where to announce
                # ourselves on this key, without walking again.
                self._closest_hint[key.multihash] = result.closest
            note(key, result, nursery)

        def note(key, result, nursery: trio.Nursery) -> None:
            for peer_id, info in result.providers.items():
                peer = peer_id.to_bytes()
                old_info, old_interests = found.get(peer, (info, ()))
                interests = old_interests
                if key.interest is not None and key.interest not in interests:
                    interests = (*interests, key.interest)
                found[peer] = (old_info, interests)
            now = trio.current_time()
            if key.interest is not None and any(
                    p != me and not self.matcher.is_skipped(p, now) for p in result_peers(result)):
                nursery.cancel_scope.deadline = min(
                    nursery.cancel_scope.deadline, trio.current_time() + CANDIDATE_GRACE)

        def result_peers(result) -> list[bytes]:
            return [peer_id.to_bytes() for peer_id in result.providers]

        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(one, key, nursery)
        found.pop(me, None)
        return found

    async def _try_candidate(self, info: PeerInfo) -> bool:
        """Propose to one candidate; True once we are in a chat with it."""
        peer = info.peer_id.to_bytes()
        match_id = os.urandom(16)
        self.matcher.propose(peer)
        logger.info("proposing to %s", info.peer_id)
        answer = await self.matching.propose(info, match_id, self.config.interests)
        logger.info("answer from %s: %s", info.peer_id, type(answer).__name__)
        if self.matcher.state is not MatchState.PROPOSING or self.matcher.peer != peer:
            # Meanwhile we accepted this peer's own proposal (or another's):
            # that match stands; this late accept is ignored.
            return self.matcher.state is not MatchState.SEARCHING
        if not isinstance(answer, Accept):
            skip = SKIP_UNREACHABLE if answer is None else SKIP_AFTER_REFUSAL[answer.reason]
            self.matcher.proposal_failed(peer, trio.current_time(), skip)
            return self.matcher.state is not MatchState.SEARCHING
        self.matcher.proposal_accepted(peer)
        self._search_scope = None
        common = tuple(i for i in self.config.interests if i in answer.interests)
        self._nursery.start_soon(self._run_initiator, info.peer_id, match_id, common)
        return True

    def _large_network(self) -> bool:
        return self.dht.routing_table.size() >= LARGE_NETWORK_TABLE

    def _advertise_keys(self):
        # The other shards are only searched on a large network: on a small
        # one, home is enough (a node whose table has grown by its next
        # announcement lists itself on its shard too).
        shard = self._shard if self._large_network() else HOME_SHARD
        return advertise_keys(self.config.interests, anyone=self.matcher.advertises_anyone,
                              now=time.time(), shard=shard)

    async def _advertise_loop(self) -> None:
        # The first search goes first: if a stranger is already waiting, the
        # proposal should not queue behind our own announcement's dials.
        with trio.move_on_after(FIRST_SEARCH_HEAD_START):
            await self._first_search_done.wait()
        while True:
            keys = self._advertise_keys()
            fresh = [key for key in keys if key.multihash not in self._advertised_epoch_keys]
            stored: list[int] = []

            async def one(key) -> None:
                closest = self._closest_hint.pop(key.multihash, None)
                stored.append(await self.dht.provide(key.multihash, closest=closest))

            async with trio.open_nursery() as nursery:
                for key in fresh:
                    nursery.start_soon(one, key)
            if fresh and min(stored) == 0:
                await trio.sleep(READVERTISE_RETRY)  # nobody took it: no DHT peers yet
                continue
            if fresh:
                current = {key.multihash for key in keys}
                self._advertised_epoch_keys = current
                self._wake.set()
                if not self._advertised_once:
                    self._advertised_once = True
                    await self.emit(events.Advertised(self.config.interests, min(stored)))
            # Searches cover the previous epoch too, so re-announcing can be
            # spread over the new epoch's first minutes instead of a burst.
            await trio.sleep(seconds_to_next_epoch(time.time())
                             + self._rng.uniform(1.0, READVERTISE_SPREAD))

    # -- chats -------------------------------------------------------------------------

    def _on_accepted_incoming(self, pending: PendingMatch) -> None:
        """The match service accepted a proposal: stop searching, await the chat stream."""
        self._stop_search()
        renewed = self._pending is not None and self._pending.peer_id == pending.peer_id
        self._pending = pending
        if not renewed:
            # A repeated proposal (new match id) keeps the first deadline, so
            # re-proposing cannot hold us matched with nobody for ever.
            self._pending_round += 1
            self._nursery.start_soon(self._expire_pending, self._pending_round, pending.timeout)

    async def _expire_pending(self, round_: int, timeout: float) -> None:
        await trio.sleep(timeout)
        pending = self._pending
        if pending is not None and self._pending_round == round_:
            logger.info("proposer %s never opened the chat", pending.peer_id)
            self._pending = None
            self.matching.accepted = None
            now = trio.current_time()
            self.matcher.end_chat(now, SKIP_UNREACHABLE)
            # A peer that makes us wait for nothing does not get to do it again
            # at once (otherwise it could keep us matched with nobody).
            self.matcher.refuse_for(pending.peer_id.to_bytes(), now, REFUSE_AFTER_NO_SHOW)
            self.start_search()

    async def handle_chat_stream(self, stream) -> None:
        """Incoming ``/strangers/chat/1.0.0``: only from the peer we accepted."""
        peer_id = stream.muxed_conn.peer_id
        pending = self._pending
        if pending is None or pending.peer_id != peer_id:
            logger.info("unexpected chat stream from %s refused", peer_id)
            await reset_quietly(stream, 1.0)
            return
        self._pending = None
        self.matching.accepted = None
        done = trio.Event()
        self._nursery.start_soon(self._run_chat, stream, Role.RESPONDER, peer_id,
                                 pending.match_id, pending.common, done)
        await done.wait()

    async def _run_initiator(self, peer_id: ID, match_id: bytes, common: tuple[str, ...]) -> None:
        stream = None
        with trio.move_on_after(CHAT_OPEN_TIMEOUT):
            while stream is None:
                try:
                    forget_closed_connections(self.host, peer_id)
                    stream = await self.host.new_stream(peer_id, [TProtocol(CHAT_PROTOCOL)])
                except Exception as exc:  # e.g. the connection we used was just replaced
                    logger.info("opening the chat with %s failed (%r); retrying", peer_id, exc)
                    await trio.sleep(0.05)
        if stream is None:  # the stranger vanished between accept and chat
            logger.info("could not open the chat with %s", peer_id)
            self.matcher.end_chat(trio.current_time(), SKIP_UNREACHABLE)
            self.start_search()
            return
        await self._run_chat(stream, Role.INITIATOR, peer_id, match_id, common, trio.Event())

    async def _run_chat(self, stream, role: Role, peer_id: ID, match_id: bytes,
                        common: tuple[str, ...], done: trio.Event) -> None:
        self._session_established = False
        try:
            try:
                remote_key = peer_id.extract_public_key()
                if remote_key is None or remote_key.get_type() != KeyType.Ed25519:
                    raise RemoteProtocolError(f"stranger {peer_id} has no Ed25519 identity")
                connection = ChatConnection(
                    role=role,
                    match_id=match_id,
                    local_identity=self.identity.signing_key,
                    remote_identity=remote_key.to_bytes(),
                    rng=os.urandom,
                )
            except Exception as exc:  # a peer id we cannot build a chat with
                logger.info("chat with %s refused: %r", peer_id, exc)
                await reset_quietly(stream, 1.0)
                connection = None
            if connection is not None:
                await self._chat_session(stream, connection, role, peer_id, common)
        finally:
            self._session = None
            self._chat_over.set()
            done.set()
            if self.matcher.state is MatchState.MATCHED:
                now = trio.current_time()
                if self._session_established:
                    self.matcher.end_chat(now)
                else:
                    # matched, then no working chat: a stall, a bad key, or a
                    # vanished peer; do not let it hold us again at once
                    self.matcher.end_chat(now, SKIP_UNREACHABLE)
                    self.matcher.refuse_for(peer_id.to_bytes(), now, REFUSE_AFTER_NO_SHOW)
        if self.config.auto_next and not self._stopping:
            self.start_search()

    async def _chat_session(self, stream, connection: ChatConnection, role: Role,
                            peer_id: ID, common: tuple[str, ...]) -> None:
        async def established(safety_code: str) -> None:
            logger.info("chat with %s established", peer_id)
            self._chats += 1
            self._session_established = True
            await self.emit(events.Matched(peer_id.to_base58(), common, safety_code,
                                           role is Role.INITIATOR))

        session = ChatSession(stream, connection, on_event=self.emit, on_established=established)
        self._session = session
        self._chat_over = trio.Event()
        end = await session.run()
        self._session = None
        if session.established.is_set():
            await self.emit(events.StrangerLeft(end.reason, end.by_us))


def _load_identity(config: NodeConfig) -> Identity:
    if config.identity_file is None:
        return fresh_identity()
    return load_or_create_identity(config.identity_file)


@asynccontextmanager
async def open_node(config: NodeConfig) -> AsyncIterator[Node]:
    """Start a node (host, DHT, discovery, matching) and stop it cleanly on exit."""
    identity = _load_identity(config)
    for addr in config.listen_addrs:
        ensure_port_free(addr)
    host = build_host(identity, mdns=config.mdns)
    async with running_host(host, config.listen_addrs):
        dht = StrangersDHT(host)
        async with background_trio_service(dht), trio.open_nursery() as nursery:
            node = Node(config, identity, host, dht, nursery)
            if config.chat:
                host.set_stream_handler(TProtocol(MATCH_PROTOCOL), node.matching.handle_stream)
                host.set_stream_handler(TProtocol(CHAT_PROTOCOL), node.handle_chat_stream)
            local = LocalDiscovery(host, dht) if config.mdns else None
            if local is not None:
                await nursery.start(local.serve)
            reached = 0
            if config.bootstrap_peers:
                # Ready once a seed answers; the routing table fills in the
                # background (the first searches walk the network through the
                # seed anyway), so start-up does not wait for two lookups.
                reached = await dht.connect_seeds(list(config.bootstrap_peers))
                nursery.start_soon(node.fill_routing_table, reached)
            await node.emit(events.Ready(node.peer_id, tuple(node.addrs),
                                         config.identity_file is not None))
            if config.bootstrap_peers and not reached:
                where = "the default public bootstrap peers" if config.uses_default_bootstrap else "the --bootstrap peers"
                hint = " on the local network (mDNS)" if config.mdns else ""
                await node.emit(events.Warning(
                    f"none of {where} answered; looking for strangers{hint} only"
                    if config.mdns else f"none of {where} answered; nobody can be found until one does"))
            if config.chat:
                node.start_search()
            try:
                yield node
            finally:
                node._stopping = True
                if node._session is not None:
                    with trio.CancelScope(shield=True):
                        await node._session.close("quit")
                nursery.cancel_scope.cancel()
