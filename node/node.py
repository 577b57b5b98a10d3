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
from typing import TYPE_CHECKING

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.peer.id import ID
from libp2p.tools.anyio_service import background_trio_service

from strangers import preconnect
from strangers.discovery.contact import AgreedContact
from strangers.discovery.language import normalize_lang
from strangers.discovery.lobby import lobby_topic, nickname, resolve_nick
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.search import FIRST_SEARCH_HEAD_START, SearchPlanner
from strangers.errors import ConfigError, LocalProtocolError

from . import events
from .chat import CHAT_PROTOCOL
from .config import NodeConfig
from .contacts import ContactBook, check_name
from .conversation import Conversations
from .events import Event
from .filters import load_word_filter, mark_message
from .frontdoor import Arrival, FrontDoor, KadDirectory
from .identity import (
    Identity,
    fresh_identity,
    load_or_create_identity,
    load_proof,
    take_next_identity,
)
from .invitations import Invitations
from .libp2p import identifydefer
from .libp2p.addresses import announcements, dialable_addrs
from .libp2p.holepunch import HolePunch
from .libp2p.host import build_host, ensure_port_free, running_host
from .libp2p.kad import PUBLIC_KAD_PROTOCOL, StrangersDHT, dht_mode
from .lists import ListSubscriptions, install_validator, parse_trusted
from .lobby import Lobby, serve_lobby_counts
from .matching import MATCH_PROTOCOL, MatchService, PendingMatch, node_rtt_estimator
from .nat import FIRST_RESERVATION_WAIT, NatService, serve_nat
from .question import QuestionWatch
from .reports import write_report
from .safety import Safety, difficulty_from, serve_proofs
from .searching import SearchService
from .store import DataDir
from .supervision import spawn, supervised, supervised_handler
from .transcript import Transcript, write_log

if TYPE_CHECKING:
    from .libp2p.mdns import LocalDiscovery

logger = logging.getLogger(__name__)

BOOTSTRAP_RETRIES = 3
"""Background attempts to reach the bootstrap peers after none answered at start-up."""
BOOTSTRAP_RETRY_PAUSE = 2.0
"""Seconds before each of them (a seed that refused at once is not dialled in a loop)."""

EVENT_QUEUE = 1024
FIRST_CHAT_SETTLE = 2.0
"""At most this long the routing table's fill waits for a chat the first search matched."""
FILL_AFTER_CHAT = 0.5
"""And this long after that chat is established."""


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
    front_door: FrontDoor
    """How this node found strangers servers, and announces itself as one (set by open_node)."""
    lobby: Lobby | None = None
    """The lobby joined (``open_node(config, lobby=...)``), if any."""
    local_discovery: LocalDiscovery | None = None
    """mDNS (set after ``ready`` unless ``--no-mdns``)."""
    invitations: Invitations | None = None
    """Private chats proposed from the lobby (set with the lobby)."""

    def __init__(self, config: NodeConfig, identity: Identity, host, dht: StrangersDHT,
                 nursery: trio.Nursery, safety: Safety | None = None) -> None:
        self.config = config
        self.identity = identity
        self.safety = safety if safety is not None else Safety(identity, lane=config.lane)
        """Blocks, identity proof, stamps, lanes and flood limits (node/safety.py)."""
        self._chatting: events.Matched | None = None
        self._blocking = False
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
                                     rtt=dht.rtt,  # WAN timing: one round-trip estimate per node
                                     safety=self.safety)
        self.search = SearchService(SearchPlanner(self.matcher, random.Random(),
                                                  lane=config.lane), dht,
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
        self.safety.gate.add(self._refuses)  # trusted lists; looking for a contact, all but it
        self.chats = Conversations(host, identity, self.matcher, self.matching, emit=self.emit,
                                   start_search=self._search_again, auto_next=config.auto_next,
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
        self._stopped = False
        """Stopped (:meth:`stop`): a chat's end searches again only after :meth:`next`."""
        self.question_watch = QuestionWatch(self, config.question) if config.question else None
        """Question mode (node/question.py): two strangers, relayed, watched; no typing."""

    # -- public ------------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    @property
    def nick(self) -> str:
        """Our nickname in lobbies (derived from the peer id)."""
        return nickname(self.identity.peer_id.to_bytes())

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
            self._chatting = event
            if self._stopped:  # matched a moment before Stop, the chat opened after it: leave
                spawn(self._nursery, "chat after stop", self.chats.close, "next")
        elif isinstance(event, events.StrangerLeft):
            self._chatting = None
            if self._blocking and event.by_us:  # the stranger heard an ordinary "next"
                event = events.StrangerLeft("blocked", True)
            self._blocking = False
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

    async def block(self) -> None:
        """End the chat and never match this stranger again (kept in the data directory).

        The stranger sees an ordinary leave; we see ``stranger_left`` with
        reason "blocked". Raises if we are not chatting.
        """
        chatting, session = self._chatting, self.chats.session
        if chatting is None or session is None:
            raise LocalProtocolError("you are not chatting with anyone right now")
        block, unsaved = self.safety.block(chatting.peer_id, chatting.common_interests)
        await self.emit(events.Blocked(block.peer_id, block.interests))
        if unsaved is not None:
            await self.emit(events.Warning(f"the block holds until you quit only: {unsaved}"))
        self._blocking = True
        await self.chats.close("next")

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
        self._stopped = False
        if self.question_watch is not None:
            await self.question_watch.next()
            return
        if self.chats.session is not None:
            await self.chats.session.close("next")
        elif self.matcher.state is MatchState.IDLE and self.config.chat:
            self.start_search()

    async def stop(self) -> str:
        """Stop (Omegle's Stop): leave the stranger, or both strangers of our question, or
        stop looking; then look for nobody until :meth:`next` (even with ``auto_next``).
        The node stays up. Returns what was stopped: "chat" (a ``stranger_left`` follows, or
        ``question_left`` for each stranger), "question" (asking, nobody was there yet),
        "search", or "" (nothing was going on)."""
        self._stopped = True
        if self.question_watch is not None:
            here = any(slot.joined for slot in self.question_watch.slots)
            searching = any(slot.active for slot in self.question_watch.slots)
            await self.question_watch.close("next")
            return "chat" if here else "question" if searching else ""
        searching = self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING)
        self.stop_search()
        if self.chats.session is not None:
            await self.chats.close("next")
            return "chat"
        return "search" if searching else ""

    def _search_again(self) -> None:
        """A chat ended (or never began): search again, unless the user pressed Stop."""
        if not self._stopped:
            self.start_search()

    async def quit(self) -> None:
        """Say goodbye to the stranger and stop the node."""
        self.search.stopping = True
        if self.question_watch is not None:
            await self.question_watch.close("quit")
        await self.chats.close("quit")
        self._nursery.cancel_scope.cancel()

    @property
    def in_chat(self) -> bool:
        """A one-to-one chat is running (from the lobby, or with a stranger)."""
        return self.chats.session is not None

    async def send_lobby(self, text: str) -> str:
        """Say ``text`` in the lobby (public, signed); returns its id. Raises if not in one."""
        if self.lobby is None:
            raise LocalProtocolError("you are not in a lobby")
        return await self.lobby.send(text)

    def _member(self, who: str) -> tuple[ID, Lobby, Invitations]:
        if self.lobby is None or self.invitations is None:
            raise LocalProtocolError("you are not in a lobby")
        members = dict(self.lobby.members)
        members.update({peer.to_base58(): nickname(peer.to_bytes())
                        for peer in self.invitations.waiting})
        try:
            peer = ID.from_base58(resolve_nick(who, members))
        except ConfigError as exc:
            raise LocalProtocolError(str(exc)) from None
        return peer, self.lobby, self.invitations

    async def invite(self, who: str) -> None:
        """Invite lobby member ``who`` (nickname or peer id) to a private chat (in the background)."""
        peer, lobby, invitations = self._member(who)
        if peer == self.identity.peer_id:
            raise LocalProtocolError("that is you")
        if self.chats.session is not None or self.matcher.state is not MatchState.IDLE:
            raise LocalProtocolError("you are in a chat already: /next first")
        spawn(self._nursery, "invitation", invitations.invite, peer, lobby.interest)

    def answer_invitation(self, who: str, accept: bool) -> None:
        """Accept or decline the private chat ``who`` invited us to."""
        peer, _lobby, invitations = self._member(who)
        invitations.answer(peer, accept)

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
        """Look for a stranger (unless already searching, matched, or stopping).

        Never on a node that does not chat with strangers (``serve``, ``lobby``:
        a lobby's private chat ends without a search).
        """
        self._stopped = False
        if self.question_watch is not None:
            if not self.search.stopping:
                self.question_watch.start()
            return
        if self.config.chat:
            self.search.start()

    def stop_search(self) -> None:
        """Stop looking for strangers; a chat in progress goes on."""
        self.search.stop()
        if self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING):
            self.matcher.stop()

    async def reach_seeds_later(self) -> None:
        """No bootstrap peer answered at start-up: dial them again in the
        background, each attempt with twice the time (10, 20, 30 s: a path
        slower than ~800 ms needs more than the first 5 s), then fill the
        table and let a waiting search look at once."""
        seeds = list(self.config.bootstrap_peers)
        for attempt in range(1, BOOTSTRAP_RETRIES + 1):
            await trio.sleep(BOOTSTRAP_RETRY_PAUSE)
            reached = await self.dht.connect_seeds(seeds, attempt=attempt)
            if reached:
                logger.info("bootstrap: %d seed(s) answered at attempt %d", reached, attempt + 1)
                if self.local_discovery is not None:
                    from .libp2p.mdns import DIAL_GRACE

                    self.local_discovery.dial_grace = DIAL_GRACE
                self.search.peers_added()
                await self.fill_routing_table(reached)
                return
        logger.info("bootstrap: no seed answered after %d attempts", BOOTSTRAP_RETRIES + 1)

    async def after_first_search(self) -> None:
        """Return once the first search has had the node to itself (a chat node's; at once
        for a serve node): its first round over (at most ``FIRST_SEARCH_HEAD_START``), and
        if it matched, the chat established and its first lines out."""
        if self.config.chat:
            with trio.move_on_after(FIRST_SEARCH_HEAD_START):
                await self.search.head_start_over.wait()
            if self.matcher.state is MatchState.MATCHED:
                # The first search just matched: the chat's handshake first (the
                # fill's dials took its CPU, docs/performance.md), then the fill.
                with trio.move_on_after(FIRST_CHAT_SETTLE):
                    await self.chats.first_settled.wait()
                # and the `matched` event out, and the first lines (the fill's dials
                # are CPU in bursts: they held the event back ~60 ms on loopback)
                await trio.sleep(FILL_AFTER_CHAT)

    async def fill_routing_table(self, reached: int) -> None:
        """Fill the routing table, after our first search had the network to itself.

        The first search walks the DHT through the bootstrap peer anyway; the
        self-lookup and random lookup dial many new peers, so running them at
        the same moment would slow down the search the user waits for.
        """
        await self.after_first_search()
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


async def _serve_local(node: Node, seeds_answered: bool) -> None:
    """Local discovery (mDNS), started once ``ready`` is out; if it fails, the node goes on.

    zeroconf (with asyncio, ~40 ms of CPU) is imported only then, and with
    seeds that answered only once the first search has had the node to itself
    (:meth:`Node.after_first_search`, as the routing-table fill): started 50 ms
    after ``ready``, its import, announcements and ten neighbours' answers fell
    inside a loopback match (95 ms against 50 ms with ``--no-mdns``). With seeds, a
    neighbour gets :data:`~.libp2p.mdns.DIAL_GRACE` to be met by our first
    search; with none, mDNS is the only way to meet anyone: it starts at once
    and dials neighbours at once.
    """
    if seeds_answered:
        await node.after_first_search()

    async def lost(_exc: BaseException) -> None:
        await node.emit(events.Warning("local network discovery (mDNS) stopped working"))

    async def run() -> None:
        from .libp2p.mdns import DIAL_GRACE, LocalDiscovery

        discovery = LocalDiscovery(node.host, node.dht, announcements(node.host),
                                   on_listed=node.search.peers_added,
                                   dial_grace=DIAL_GRACE if seeds_answered else 0.0)
        node.local_discovery = discovery
        await discovery.serve()

    await supervised("local discovery", run, on_crash=lost)


async def _serve_front_door(node: Node, arrival: Arrival | None) -> None:
    """After ``ready``: tell whether the ``--bootstrap`` peers are strangers nodes (a lookup
    on the public DHT if none is), say so if no server was found, then run the front door."""
    if arrival is not None:
        arrival = await node.front_door.settle(arrival)
    lonely = arrival is not None and arrival.looked_up and not arrival.servers
    if lonely:
        await node.nat.node_ready.wait()  # the warning comes after ready
        await node.emit(events.Warning(
            "no strangers server found through the public network (the network may be "
            "new): looking on the local network (mDNS) and asking again in a minute, "
            "then less and less often"))
    await node.front_door.serve(announce=functools.partial(_is_server, node), lonely=lonely,
                                recover=bool(node.config.bootstrap_peers))


def _is_server(node: Node) -> bool:
    """Whether this node serves strangers: a serve node, or a chat node AutoNAT found reachable."""
    if node.config.hide_ip:
        return False
    return not node.config.chat or node.nat.reachable is True


async def _serve_lobby(node: Node, lobby: Lobby, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """The lobby (GossipSub); if it fails, the node says so and goes on."""
    started = trio.Event()

    class Status:
        def started(self, value=None) -> None:
            started.set()
            task_status.started(value)

    async def lost(exc: BaseException) -> None:
        node.lobby = None
        await node.emit(events.Error(f"the lobby stopped working ({type(exc).__name__})"))

    await supervised("lobby", functools.partial(lobby.serve, task_status=Status()), on_crash=lost)
    if not started.is_set():
        task_status.started()


def _load_identity(config: NodeConfig, data: DataDir, bits: int) -> tuple[Identity, bytes | None]:
    """Our identity and its proof, if one is at hand (else it is minted while we search).

    Without ``--identity``, a chat node takes the identity the last run minted
    for it (proof included), so only the very first launch waits for a proof.
    A kept contact's own key (``strangers contact NAME``) mints its proof as it
    searches, like a first launch.
    """
    if config.identity_seed is not None:  # a kept contact's own key (node/contacts.py)
        return Identity(create_new_key_pair(config.identity_seed)), None
    if config.identity_file is None:
        taken = take_next_identity(data, bits) if config.chat else None
        return taken if taken is not None else (fresh_identity(), None)
    identity = load_or_create_identity(config.identity_file)
    return identity, load_proof(config.identity_file, identity, bits)


@asynccontextmanager
async def open_node(config: NodeConfig, *, lobby: tuple[str, str] | None = None
                    ) -> AsyncIterator[Node]:
    """Start a node (host, DHT, discovery, matching) and stop it cleanly on exit.

    ``lobby``: (interest, lane) of a lobby to join (``strangers lobby``).
    """
    if lobby is not None:
        lobby_topic(*lobby)  # a bad interest or lane: a ConfigError before anything starts
    data = DataDir()
    difficulty = difficulty_from()
    identity, proof = _load_identity(config, data, difficulty.identity)
    for addr in config.listen_addrs:
        ensure_port_free(addr)
    host = build_host(identity, mdns=False)  # our own mDNS (LocalDiscovery), not py-libp2p's
    book = announcements(host)  # what we announce, to whom, what we accept
    async with running_host(host, config.listen_addrs):
        # A DHT server from the start only when meant to be reachable (a serve
        # node); a chat node is a client until AutoNAT says otherwise (nat.py).
        dht = StrangersDHT(host, dht_mode(config),
                           rtt=node_rtt_estimator())  # WAN timing: timeouts from round trips
        install_validator(dht)  # shared blocklist records (node/lists.py)
        # The front door's own client of the public libp2p DHT (§4.9): never
        # serves nor advertises /ipfs/kad/1.0.0, keeps a routing table apart.
        public_dht = StrangersDHT(host, DHTMode.CLIENT, protocol=PUBLIC_KAD_PROTOCOL, rtt=dht.rtt)
        async with (background_trio_service(dht), background_trio_service(public_dht),
                    trio.open_nursery() as nursery):
            safety = Safety(identity, data=data, difficulty=difficulty, lane=config.lane,
                            proof=proof)
            safety.disconnect = host.disconnect
            node = Node(config, identity, host, dht, nursery, safety)
            if config.chat or lobby is not None:  # our proof (if not at hand), then the next run's identity
                await nursery.start(functools.partial(
                    serve_proofs, safety, premint_next=config.identity_file is None,
                    keep_in=config.identity_file))
            spawn(nursery, "address announcements", book.serve)
            if lobby is not None:  # before any dial: pubsub hooks on new connections
                node.lobby = Lobby(host, dht, lobby[0], lobby[1], node.emit)
                await nursery.start(_serve_lobby, node, node.lobby)
            if lobby is not None:  # private chats from the lobby: invitations only
                node.invitations = Invitations(host, node.matcher, node.matching, emit=node.emit,
                                               on_matched=node._on_accepted_outgoing)
            if config.chat or lobby is not None:
                identifydefer.install(host, node.matching.identify_delay)  # not inside a match
                host.set_stream_handler(TProtocol(MATCH_PROTOCOL), supervised_handler(
                    "match stream", node.matching.handle_stream))
                host.set_stream_handler(TProtocol(CHAT_PROTOCOL), supervised_handler(
                    "chat stream", safety.guarded(node.chats.handle_chat_stream)))
            # hole punching: relayed chats move to a direct path (DCUtR); never with
            # --hide-ip (H8-B's option: a direct path shows the stranger our address)
            if config.chat and not config.hide_ip:
                node.chats.holepunch = HolePunch(host)
                await nursery.start(node.chats.holepunch.serve)
            # Reachability (AutoNAT) and relays: see nat.py.
            node.nat = NatService(node)
            await nursery.start(serve_nat, node, node.nat)
            reached = 0
            # The front door (frontdoor.py): cached servers, the bootstrap peers
            # (/dnsaddr resolved), one rendezvous lookup on the public DHT.
            node.front_door = FrontDoor(host, own_connect=dht.connect_seeds,
                                        public=KadDirectory(public_dht), data=DataDir(),
                                        search_keys=config.first_search_keys(time.time()))
            async def join_found(found: int) -> None:  # a server found later: join through it
                node.search.peers_added()
                await dht.fill_table(found)

            node.front_door.on_found = join_found
            arrival = None
            if config.bootstrap_peers:
                # Ready once a seed answers; the routing table fills in the
                # background (the first searches walk the network through the
                # seed anyway), so start-up does not wait for two lookups.
                arrival = await node.front_door.arrive(config.bootstrap_addrs,
                                                       default_list=config.uses_default_bootstrap)
                reached = arrival.reached
                if not reached:  # no search of ours will meet LAN neighbours: AutoNAT asks them
                    node.nat.eager = True
                spawn(nursery, "routing table fill", node.fill_routing_table, reached)
                if not reached:  # a slow path, or the seeds are down: try again with longer dials
                    spawn(nursery, "bootstrap retry", node.reach_seeds_later)
            spawn(nursery, "front door", _serve_front_door, node, arrival)
            await node.emit(events.Ready(node.peer_id, tuple(node.addrs),
                                         config.identity_file is not None))
            preconnect.close_all()  # what the executable started and no dial took
            node.nat.node_ready.set()
            if config.mdns:
                nursery.start_soon(_serve_local, node, bool(reached), name="local discovery")
            if node.lobby is not None:
                node.lobby.node_ready.set()
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
            if config.chat and config.interests:  # "3 people are in the chess lobby"
                spawn(nursery, "lobby counts", serve_lobby_counts, dht, config.interests,
                      lambda: node.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING),
                      node.emit, config.lane)
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
