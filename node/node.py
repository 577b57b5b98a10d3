"""The node facade: ``async with open_node(config) as node`` and talk to strangers.

A :class:`Node` composes the pieces and owns every task they start (one
nursery): the search (:mod:`.searching`, driving the pure planner of
:mod:`strangers.discovery.search`), the match protocol (:mod:`.matching`), the
chats (:mod:`.conversation`), the DHT and local discovery. Every task is
supervised (:mod:`.supervision`): one failing ends only itself. What happens
is reported as :mod:`~strangers.node.events` on :meth:`Node.events`. The CLI
only uses this module's public objects.

Life of a chat node::

    ready -> searching -> (advertised) -> matched -> messages ... -> stranger_left
                ^                                                        |
                +-------------------- auto next -------------------------+
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.tools.anyio_service import background_trio_service

from strangers.discovery.contact import AgreedContact
from strangers.discovery.language import normalize_lang
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.search import FIRST_SEARCH_HEAD_START, SearchPlanner
from strangers.errors import LocalProtocolError

from . import events
from .chat import CHAT_PROTOCOL
from .config import NodeConfig
from .contacts import ContactBook, check_name
from .conversation import Conversations
from .events import Event
from .filters import load_word_filter, mark_message
from .identity import Identity, fresh_identity, load_or_create_identity
from .libp2p.addresses import announcements, dialable_addrs
from .libp2p.holepunch import HolePunch
from .libp2p.host import build_host, ensure_port_free, running_host
from .libp2p.kad import StrangersDHT
from .libp2p.mdns import LocalDiscovery
from .lists import ListSubscriptions, install_validator, parse_trusted
from .matching import MATCH_PROTOCOL, MatchService, PendingMatch, node_rtt_estimator
from .nat import FIRST_RESERVATION_WAIT, NatService, serve_nat
from .question import QuestionWatch
from .reports import write_report
from .searching import SearchService
from .supervision import spawn, supervised, supervised_handler
from .transcript import Transcript, write_log

logger = logging.getLogger(__name__)

EVENT_QUEUE = 1024


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

    nat: NatService
    """Reachability and relays (set by open_node)."""

    def __init__(self, config: NodeConfig, identity: Identity, host, dht: StrangersDHT,
                 nursery: trio.Nursery) -> None:
        self.config = config
        self.identity = identity
        self.host = host
        self.dht = dht
        self._nursery = nursery
        self._send_events, self._receive_events = trio.open_memory_channel[Event](EVENT_QUEUE)
        self.matcher = Matcher(
            local_id=identity.peer_id.to_bytes(),
            interests=config.interests,
            random_after=config.random_after,
            interests_only=config.interests_only,
        )
        self.matching = MatchService(host, self.matcher, on_accepted=self._on_accepted_incoming,
                                     rtt=dht.rtt)  # WAN timing: one round-trip estimate per node
        self.search = SearchService(SearchPlanner(self.matcher, random.Random()), dht,
                                    self.matching, emit=self.emit, nursery=nursery,
                                    on_matched=self._on_accepted_outgoing)
        self.matching.lang = self.search.planner.lang = config.lang
        self.transcript = Transcript(config.question)
        """The current (or last) chat, for ``/save`` (node/transcript.py): never written unasked."""
        self._last_hidden: events.MessageReceived | None = None
        self.word_filter = load_word_filter(config.filter_words)
        """The user's word list: matching messages arrive hidden (node/filters.py)."""
        self.lists = ListSubscriptions(parse_trusted(config.trust_lists))
        """Shared blocklists the user trusts (node/lists.py): nobody on them is matched."""
        self.matching.refuse_peer = self._refuses
        self.chats = Conversations(host, identity, self.matcher, self.matching, emit=self.emit,
                                   start_search=self.start_search, auto_next=config.auto_next,
                                   nursery=nursery)
        self.contacts = ContactBook()
        """Contacts kept by mutual consent (node/contacts.py, ``contacts.json``)."""
        self._keep_name = ""
        self._last_common: tuple[str, ...] = ()
        if config.expect_peer is None:  # a chat with a kept contact offers nothing more
            self.chats.on_contact = self._contact_agreed
        self.matching.discusses_questions = self.search.planner.discusses_questions = (
            config.questions)
        self._watched = False
        self.question_watch = QuestionWatch(self, config.question) if config.question else None
        """Question mode (node/question.py): two strangers, relayed, watched; no typing."""

    # -- public ------------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    @property
    def addrs(self) -> list[str]:
        return [f"{addr}/p2p/{self.peer_id}" for addr in dialable_addrs(self.host)]

    def events(self) -> trio.MemoryReceiveChannel[Event]:
        """The stream of events (one consumer)."""
        return self._receive_events

    async def emit(self, event: Event) -> None:
        if isinstance(event, events.MessageReceived):  # local filters (node/filters.py)
            event = mark_message(event, self.word_filter)
            if event.hidden:
                self._last_hidden = event
        if isinstance(event, events.Matched):
            self._watched = bool(event.question)
            self._keep_name = ""
            self._last_common = event.common_interests
            if self.config.contact_name:  # the rendezvous is nobody's interest: do not show it
                event = replace(event, common_interests=(), contact=self.config.contact_name)
        self.transcript.record(event, time.time())
        await self._send_events.send(event)

    def _refuses(self, peer_id: str) -> str | None:
        """Nobody on a trusted blocklist; with ``expect_peer``, nobody but that contact."""
        expected = self.config.expect_peer
        if expected is not None and peer_id != expected:
            return "not the contact we are looking for"
        return self.lists.refuses(peer_id)

    async def keep(self, name: str | None = None) -> None:
        """Offer the stranger to keep in touch; saved as ``name`` if both agree (``kept``)."""
        session = self.chats.session
        if session is None or not session.established.is_set():
            raise LocalProtocolError("you are not chatting with anyone right now")
        if self._watched:
            raise LocalProtocolError("someone is watching this chat: keeping in touch is for"
                                     " one-to-one chats")
        chosen = check_name(name) if name else ""
        await session.offer_keep()
        self._keep_name = chosen or self._keep_name

    async def _contact_agreed(self, agreed: AgreedContact) -> None:
        name = self._keep_name or "stranger"
        saved = await trio.to_thread.run_sync(self.contacts.add, name, agreed, self._last_common)
        await self.emit(events.Kept(saved.name, saved.peer_id))

    async def save(self, path: str | None = None) -> str:
        """Write the current (or last) chat's log to ``path`` (default: a new file in the
        user's documents directory); a ``saved`` event tells where."""
        saved = await trio.to_thread.run_sync(write_log, self.transcript.chat, path)
        await self.emit(events.Saved(str(saved)))
        return str(saved)

    @property
    def lang(self) -> str:
        """The language lane searched first ("" for none)."""
        return self.search.planner.lang

    async def set_lang(self, lang: str) -> None:
        """Change the language lane; a search that runs starts again in it."""
        code = normalize_lang(lang)
        self.search.planner.lang = self.matching.lang = code
        await self.emit(events.Language(code))
        if self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING):
            self.stop_search()
            self.start_search()

    async def reveal(self) -> None:
        """Show the last message the word filter hid (a ``revealed`` event)."""
        hidden = self._last_hidden
        if hidden is None:
            raise LocalProtocolError("no message was hidden by your word filter")
        await self.emit(events.Revealed(hidden.id, hidden.text))

    async def send_text(self, text: str) -> int:
        """Send a message to the current stranger; returns its id. Raises if not chatting."""
        if self.question_watch is not None:
            raise LocalProtocolError("you are watching: only the two strangers talk")
        if not isinstance(text, str) or not text.strip():
            raise LocalProtocolError("cannot send an empty message")
        session = self.chats.session
        if session is None or not session.established.is_set():
            raise LocalProtocolError("you are not chatting with anyone right now")
        message_id = await session.send_text(text)
        await self.emit(events.Sent(message_id, text))
        return message_id

    async def set_typing(self, active: bool) -> None:
        session = self.chats.session
        if session is not None and session.established.is_set():
            await session.send_typing(active)

    async def report(self, reason: str = "") -> str:
        """Save a signed report of the current (or last) stranger's texts; its path.

        The file stays in the data directory (``reports/``) until the user sends it on.
        """
        path = await trio.to_thread.run_sync(functools.partial(
            write_report, self.chats.last_connection, self.identity.signing_key, reason))
        await self.emit(events.Reported(str(path)))
        return str(path)

    async def next(self) -> None:
        """Leave the current stranger (if any) and look for the next one."""
        if self.question_watch is not None:
            await self.question_watch.next()
            return
        if self.chats.session is not None:
            await self.chats.session.close("next")
        elif self.matcher.state is MatchState.IDLE and self.config.chat:
            self.start_search()

    async def quit(self) -> None:
        """Say goodbye to the stranger and stop the node."""
        self.search.stopping = True
        if self.question_watch is not None:
            await self.question_watch.close("quit")
        await self.chats.close("quit")
        self._nursery.cancel_scope.cancel()

    def statistics(self) -> NodeStatistics:
        return NodeStatistics(
            state=self.matcher.state.value,
            routing_table=self.dht.routing_table.size(),
            connected_peers=len(self.host.get_connected_peers()),
            lookups=self.dht.stats.lookups,
            dht_messages=self.dht.stats.messages,
            chats=self.chats.chats,
        )

    def start_search(self) -> None:
        """Look for a stranger (unless already searching, matched, or stopping)."""
        if self.question_watch is not None:
            if not self.search.stopping:
                self.question_watch.start()
            return
        self.search.start()

    def stop_search(self) -> None:
        """Stop looking for strangers; a chat in progress goes on."""
        self.search.stop()
        if self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING):
            self.matcher.stop()

    async def fill_routing_table(self, reached: int) -> None:
        """Fill the routing table, after our first search had the network to itself.

        The first search walks the DHT through the bootstrap peer anyway; the
        self-lookup and random lookup dial many new peers, so running them at
        the same moment would slow down the search the user waits for.
        """
        if self.config.chat:
            with trio.move_on_after(FIRST_SEARCH_HEAD_START):
                await self.search.head_start_over.wait()
        # A chat node's own searches walk the network anyway: the self-lookup
        # is enough for it; a serve node also walks somewhere at random.
        await self.dht.fill_table(reached, random_lookup=not self.config.chat)

    # -- composition ---------------------------------------------------------------

    def _on_accepted_incoming(self, pending: PendingMatch) -> None:
        """The match service accepted a proposal: stop searching, await the chat stream."""
        self.search.stop()
        self.chats.expect(pending)

    def _on_accepted_outgoing(self, peer_id, match_id: bytes, common: tuple[str, ...]) -> None:
        self.chats.start_initiator(peer_id, match_id, common)


async def _serve_local(node: Node, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Local discovery (mDNS); if it fails, the node goes on without it."""
    started = trio.Event()

    class Status:  # passes "started" on to open_node, and remembers it
        def started(self, value=None) -> None:
            started.set()
            task_status.started(value)

    async def lost(_exc: BaseException) -> None:
        await node.emit(events.Warning("local network discovery (mDNS) stopped working"))

    discovery = LocalDiscovery(node.host, node.dht, announcements(node.host))
    serve = functools.partial(discovery.serve, task_status=Status())
    await supervised("local discovery", serve, on_crash=lost)
    if not started.is_set():  # it failed before it ran: start-up goes on all the same
        task_status.started()


def _load_identity(config: NodeConfig) -> Identity:
    if config.identity_seed is not None:  # a kept contact's own key (node/contacts.py)
        return Identity(create_new_key_pair(config.identity_seed))
    if config.identity_file is None:
        return fresh_identity()
    return load_or_create_identity(config.identity_file)


@asynccontextmanager
async def open_node(config: NodeConfig) -> AsyncIterator[Node]:
    """Start a node (host, DHT, discovery, matching) and stop it cleanly on exit."""
    identity = _load_identity(config)
    for addr in config.listen_addrs:
        ensure_port_free(addr)
    host = build_host(identity, mdns=False)  # our own mDNS (LocalDiscovery), not py-libp2p's
    book = announcements(host)  # what we announce, to whom, what we accept
    async with running_host(host, config.listen_addrs):
        dht = StrangersDHT(host, rtt=node_rtt_estimator())  # WAN timing: timeouts from round trips
        install_validator(dht)  # shared blocklist records (node/lists.py)
        async with background_trio_service(dht), trio.open_nursery() as nursery:
            node = Node(config, identity, host, dht, nursery)
            spawn(nursery, "address announcements", book.serve)
            if config.chat:
                host.set_stream_handler(TProtocol(MATCH_PROTOCOL), supervised_handler(
                    "match stream", node.matching.handle_stream))
                host.set_stream_handler(TProtocol(CHAT_PROTOCOL), supervised_handler(
                    "chat stream", node.chats.handle_chat_stream))
            # hole punching: relayed chats move to a direct path (DCUtR); never with
            # --hide-ip (H8-B's option: a direct path shows the stranger our address)
            if config.chat and not config.hide_ip:
                node.chats.holepunch = HolePunch(host)
                await nursery.start(node.chats.holepunch.serve)
            if config.mdns:
                await nursery.start(_serve_local, node)
            # Reachability (AutoNAT) and relays: see nat.py.
            node.nat = NatService(node)
            await nursery.start(serve_nat, node, node.nat)
            reached = 0
            if config.bootstrap_peers:
                # Ready once a seed answers; the routing table fills in the
                # background (the first searches walk the network through the
                # seed anyway), so start-up does not wait for two lookups.
                reached = await dht.connect_seeds(list(config.bootstrap_peers))
                spawn(nursery, "routing table fill", node.fill_routing_table, reached)
            await node.emit(events.Ready(node.peer_id, tuple(node.addrs),
                                         config.identity_file is not None))
            node.nat.node_ready.set()
            if config.bootstrap_peers and not reached:
                where = ("the default public bootstrap peers" if config.uses_default_bootstrap
                         else "the --bootstrap peers")
                hint = " on the local network (mDNS)" if config.mdns else ""
                await node.emit(events.Warning(
                    f"none of {where} answered; looking for strangers{hint} only"
                    if config.mdns else f"none of {where} answered; nobody can be found until one does"))
            if config.chat:  # trusted lists: from the cache, then the DHT (bounded wait)
                await node.lists.first_refresh(dht)
                spawn(nursery, "trusted lists", node.lists.serve, dht)
            if config.chat:
                if not config.reachable_unknown:  # announce a relayed address from the start
                    with trio.move_on_after(FIRST_RESERVATION_WAIT):
                        await node.nat.addresses_known.wait()
                node.start_search()
            try:
                yield node
            finally:
                node.search.stopping = True
                session = node.chats.session
                if session is not None:
                    with trio.CancelScope(shield=True):
                        await session.close("quit")
                if node.question_watch is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await node.question_watch.close("quit")
                nursery.cancel_scope.cancel()
