"""The search adapter: drives the pure planner with real time, DHT walks, proposals and announcements.

Every decision is :class:`~strangers.discovery.search.SearchPlanner`'s (the
policy is ``docs/protocol.md`` §3.4); this module asks it what to do, does it
(``StrangersDHT.lookup`` and ``provide``, ``MatchService.propose``), and
reports the outcome. One search runs in one task with its own cancel scope,
so the node can end it the moment a proposal of someone else is accepted.

Failures stay small: a walk, an announcement or a proposal that raises counts
as one that found nothing (or was not answered), and the search goes on. If
the search itself fails (a bug), it is logged and started again after
:data:`RESTART_DELAY` seconds.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Awaitable, Callable

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from strangers.discovery import search
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.proposal import Accept, Refuse
from strangers.discovery.search import CANDIDATE_GRACE, SearchPlanner
from strangers.discovery.topics import TopicKey
from strangers.node.libp2p.kad import StrangersDHT

from . import events
from .matching import MatchService
from .supervision import spawn

logger = logging.getLogger(__name__)

RESTART_DELAY = 2.0
"""Seconds before a search that failed unexpectedly is started again."""

Matched = Callable[[ID, bytes, tuple[str, ...]], None]


class SearchService:
    """Runs a node's searches, one at a time, in tasks of ``nursery``."""

    def __init__(self, planner: SearchPlanner, dht: StrangersDHT, matching: MatchService, *,
                 emit: Callable[[events.Event], Awaitable[None]], on_matched: Matched,
                 nursery: trio.Nursery) -> None:
        self.planner = planner
        self.dht = dht
        self.matching = matching
        self._emit = emit
        self._on_matched = on_matched
        self._nursery = nursery
        self._scope: trio.CancelScope | None = None
        self._generation = 0
        self._changed = trio.Event()
        self._infos: dict[bytes, PeerInfo] = {}
        self._charged = dht.stats.messages
        """DHT requests already charged to the planner's budget."""
        self.stopping = False
        """Set when the node shuts down: no new search starts."""
        self.head_start_over = trio.Event()
        """The first search has ended a round without a match (or has ended)."""

    @property
    def matcher(self) -> Matcher:
        return self.planner.matcher

    def start(self) -> None:
        """Start a search, unless one runs, we are matched, or the node stops."""
        if self.stopping or self.matcher.state is not MatchState.IDLE:
            return
        self.planner.start(trio.current_time())
        self._infos = {}  # addresses of this search's candidates only
        self._generation += 1
        self._scope = trio.CancelScope()
        generation = self._generation

        async def restart(_exc: BaseException) -> None:
            if generation != self._generation:
                return  # a newer search runs already
            if self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING):
                self.matcher.stop()
            await trio.sleep(RESTART_DELAY)
            if generation == self._generation:
                self.start()

        spawn(self._nursery, "search", self._run, self._scope, generation, on_crash=restart)

    def peers_added(self) -> None:
        """Peers joined the routing table (mDNS): a search that had nobody to ask looks again now."""
        if self.planner.on_peers_added():
            self._changed.set()

    def stop(self) -> None:
        """End the running search (the matcher's state is the caller's)."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _run(self, scope: trio.CancelScope, generation: int) -> None:
        with scope:
            try:
                async with trio.open_nursery() as tasks:
                    await self._drive(tasks)
                    tasks.cancel_scope.cancel()
            finally:
                if generation == self._generation:  # not replaced by a newer search yet
                    self.planner.stop()
                    self._note_head_start()
        if self._scope is scope:
            self._scope = None

    def _note_head_start(self) -> None:
        if self.planner.head_start_over:
            self.head_start_over.set()

    async def _drive(self, tasks: trio.Nursery) -> None:
        while True:
            changed = self._changed = trio.Event()
            self._charge_requests()
            action = self.planner.next(trio.current_time(), time.time(),
                                       self.dht.routing_table.size())
            self._note_head_start()
            if isinstance(action, search.Done):
                return
            if isinstance(action, search.Searching):
                await self._emit(events.Searching(self.matcher.interests, action.random,
                                                  self.planner.lang))
            elif isinstance(action, search.Walk):
                tasks.start_soon(self._walk_round, action)
            elif isinstance(action, search.Propose):
                tasks.start_soon(self._propose, action)
            elif isinstance(action, search.Announce):
                tasks.start_soon(self._announce, action)
            else:
                until = math.inf if action.until is None else action.until
                with trio.move_on_at(until):
                    await changed.wait()

    def _charge_requests(self) -> None:
        """Charge every DHT request the node sent since the last call to the
        planner's load budget (walks, announcements, anything else)."""
        sent = self.dht.stats.messages
        self.planner.on_requests(sent - self._charged, trio.current_time())
        self._charged = sent

    # -- walking ---------------------------------------------------------------

    async def _walk_round(self, walk: search.Walk) -> None:
        logger.info("search %d.%d: walking %d key(s)%s", walk.attempt, walk.round,
                    len(walk.keys), " (thorough)" if walk.thorough else "")
        async with trio.open_nursery() as walks:
            for key in walk.keys:
                walks.start_soon(self._walk_one, key, walk, walks)
        self.planner.on_round_done()
        self._changed.set()

    async def _walk_one(self, key: TopicKey, walk: search.Walk, walks: trio.Nursery) -> None:
        try:
            result = await self.dht.lookup(key.multihash, providers=True,
                                           enough_sources=walk.enough_sources,
                                           num_results=walk.num_results)
        except Exception as exc:  # one DHT request failing ends only this walk
            logger.info("walk to %s failed: %r", key.name, exc)
            return
        providers = []
        for peer_id, info in result.providers.items():
            peer = peer_id.to_bytes()
            self._infos[peer] = info
            providers.append(peer)
        logger.info("walk to %s: %d provider(s)", key.name, len(providers))
        if self.planner.on_walk_result(key, providers, [p.to_bytes() for p in result.closest],
                                       trio.current_time(), time.time()):
            walks.cancel_scope.deadline = min(walks.cancel_scope.deadline,
                                              trio.current_time() + CANDIDATE_GRACE)

    # -- proposing ---------------------------------------------------------------

    async def _propose(self, action: search.Propose) -> None:
        info = self._infos.get(action.peer) or PeerInfo(ID(action.peer), [])
        match_id = os.urandom(16)
        logger.info("proposing to %s", info.peer_id)
        try:
            answer = await self.matching.propose(info, match_id, action.interests)
        except Exception as exc:  # one proposal failing ends only this proposal
            logger.info("proposal to %s failed: %r", info.peer_id, exc)
            answer = None
        logger.info("answer from %s: %s", info.peer_id, type(answer).__name__)
        matched = self.planner.on_proposal_result(
            action.peer, trio.current_time(), accepted=isinstance(answer, Accept),
            refusal=answer.reason if isinstance(answer, Refuse) else None)
        if matched and isinstance(answer, Accept):
            common = tuple(i for i in self.matcher.interests if i in answer.interests)
            self._on_matched(info.peer_id, match_id, common)
        self._changed.set()

    # -- announcing --------------------------------------------------------------

    async def _announce(self, action: search.Announce) -> None:
        stored = [0] * len(action.keys)

        async def one(index: int, key: TopicKey) -> None:
            hint = action.closest.get(key.multihash)
            try:
                stored[index] = await self.dht.provide(
                    key.multihash, closest=[ID(peer) for peer in hint] if hint else None)
            except Exception as exc:  # counts as nobody took it: retried
                logger.info("announcing %s failed: %r", key.name, exc)

        async with trio.open_nursery() as nursery:
            for index, key in enumerate(action.keys):
                nursery.start_soon(one, index, key)
        first = self.planner.on_announced(stored, trio.current_time(), time.time())
        self._changed.set()
        if first is not None:
            await self._emit(events.Advertised(self.matcher.interests, first))
