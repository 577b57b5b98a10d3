"""The match protocol adapter (``/strangers/match/1.0.0``).

The decisions are the pure :class:`~strangers.discovery.matcher.Matcher`'s;
the wire format is :mod:`strangers.discovery.proposal`. This module dials,
reads one frame with a deadline, and answers.

What each side reveals (docs/protocol.md §5.2): a proposal carries only the
interests under which the proposer found the candidate (none for the
"anyone" key), an acceptance only the interests both share.

The chat handshake's first two frames ride here (docs/protocol.md §5.2,
§6.2): a proposal carries our chat commit, an acceptance of such a proposal
the responder's hello. The :class:`~strangers.crypto.session.ChatConnection`
that made or took them is kept as a :class:`PreparedChat` until the chat
stream opens (:meth:`MatchService.take_prepared`); the chat then begins one
round trip further on. A proposal without a commit, or an accept without a
hello (an older or foreign peer), leaves the whole handshake to the chat
stream.

Supervision: neither :meth:`MatchService.propose` nor
:meth:`MatchService.handle_stream` ever raises (only ``trio.Cancelled``): a
proposal that fails in any way is ``None`` to the proposer, and a bad,
slow or broken incoming proposal resets its stream, with a logged reason.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyType
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from strangers.crypto.handshake import Role
from strangers.crypto.session import NEED_DATA, ChatConnection
from strangers.discovery.interests import common_interests
from strangers.discovery.matcher import Matcher, MatchState, Refusal
from strangers.discovery.proposal import Accept, Propose, Refuse, decode, encode, frame_length
from strangers.discovery.rtt import (
    ANSWER,
    DIAL,
    REQUEST_ROUND_TRIPS,
    STREAM_OPEN_ROUND_TRIPS,
    RttEstimator,
    dial_bounds,
    is_relayed,
)
from strangers.errors import LocalProtocolError, RemoteProtocolError, StrangersError
from strangers.node.libp2p.identifydefer import inbound_direct
from strangers.node.libp2p.kadpool import has_open_connection
from strangers.node.libp2p.streamio import (
    StreamEnded,
    allow_redial,
    forget_closed_connections,
    read_exactly,
)
from strangers.node.safety import Safety

logger = logging.getLogger(__name__)

MATCH_PROTOCOL = "/strangers/match/1.0.0"
DIAL_TIMEOUT = DIAL.floor
"""A candidate that cannot be reached within this is skipped (a stale record).
The floor: the proposer allows more on a slow path, from measured round trips
(:mod:`strangers.discovery.rtt`, up to ``DIAL.ceiling``)."""
ANSWER_TIMEOUT = ANSWER.floor
"""A proposer waits this long for the answer (longer on a slow path, up to
``ANSWER.ceiling``); a candidate as long to write it."""
PROPOSAL_TIMEOUT = 2 * ANSWER_TIMEOUT
"""A candidate waits this long for the proposal on a stream opened to it."""
CHAT_OPEN_TIMEOUT = 5.0
"""After accepting, how long we wait for the proposer to open the chat."""
ADDR_TTL = 600
INVITE_TIMEOUT = 60.0
"""An invitation from a lobby (``"inv": true``) waits this long for the invitee's user."""
LANGS_KEPT = 64
"""How many strangers' told languages are remembered (for the ``matched`` event)."""
PROPOSAL_ATTEMPTS = 2
PREPARED_CHATS = 16
"""Chat handshakes begun in proposals and kept for their chat stream (oldest dropped first)."""
IDENTIFY_LATER = 0.5
"""Seconds identify waits on a proposal's connection (it ran inside the match exchange)."""
FIXED_TIMEOUTS_ENV = "STRANGERS_FIXED_TIMEOUTS"
"""Set to 1, every timeout derived from round trips keeps its floor (the fixed
loopback-era constants): how tests and ``bench/wan.py`` show what adapting buys."""


def node_rtt_estimator(environ: Mapping[str, str] | None = None) -> RttEstimator:
    """The estimator a node shares between its DHT and its match service."""
    environ = os.environ if environ is None else environ
    return RttEstimator(adaptive=environ.get(FIXED_TIMEOUTS_ENV, "") != "1")


@dataclass(frozen=True)
class PendingMatch:
    """We accepted a proposal and wait for the chat stream."""

    peer_id: ID
    match_id: bytes
    common: tuple[str, ...]
    timeout: float = CHAT_OPEN_TIMEOUT


@dataclass(frozen=True)
class PreparedChat:
    """A chat handshake begun on the match stream, waiting for the chat stream."""

    role: Role
    connection: ChatConnection
    """Started: its first frames went (and came) with the proposal and its answer."""
    opening: bytes
    """What the chat stream starts with: our hello and finished (initiator), or nothing."""


ChatFactory = Callable[[Role, ID, bytes], ChatConnection]
"""Builds the chat connection for (our role, the stranger, the match id)."""


def host_chat_factory(host) -> ChatFactory:
    """Chat connections signed with ``host``'s Ed25519 identity key."""

    def make(role: Role, peer_id: ID, match_id: bytes) -> ChatConnection:
        private = host.get_private_key()
        if private.get_type() != KeyType.Ed25519:
            raise RemoteProtocolError("our identity is not an Ed25519 key")
        remote = peer_id.extract_public_key()
        if remote is None or remote.get_type() != KeyType.Ed25519:
            raise RemoteProtocolError(f"stranger {peer_id} has no Ed25519 identity")
        return ChatConnection(role=role, match_id=match_id,
                              local_identity=Ed25519PrivateKey.from_private_bytes(private.to_bytes()),
                              remote_identity=remote.to_bytes(), rng=os.urandom)

    return make


def _take_in(connection: ChatConnection, frames: bytes) -> bytes:
    """Feed the stranger's handshake frames; what we answer. Bad frames raise (CryptoError...)."""
    connection.receive_data(frames)
    event = connection.next_event()
    if event is not NEED_DATA:
        raise RemoteProtocolError(f"handshake frames ended in {type(event).__name__}, not a wait")
    return connection.data_to_send()


async def _read_frame(stream) -> object:
    prefix = await read_exactly(stream, 4)
    return decode(await read_exactly(stream, frame_length(prefix)))


async def _close(stream, *, reset: bool = False) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(0.5):
        try:
            await (stream.reset() if reset else stream.close())
        except Exception:  # the peer may be gone
            pass


class _Proposal:
    """Our proposal to one candidate, made beside its first dial."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.frame: bytes | None = None
        """The encoded proposal (None until made, or if making it failed)."""
        self.chat: ChatConnection | None = None
        self.commit = b""


class MatchService:
    """Proposes to candidates and answers proposals."""

    def __init__(self, host, matcher: Matcher, *,
                 on_accepted: Callable[[PendingMatch], None],
                 rtt: RttEstimator | None = None,
                 chat_factory: ChatFactory | None = None, safety: Safety | None = None) -> None:
        self.host = host
        self.chat_factory = chat_factory if chat_factory is not None else host_chat_factory(host)
        """Makes the chat connections whose first frames ride in proposals."""
        self._prepared: OrderedDict[tuple[ID, bytes], PreparedChat] = OrderedDict()
        self.safety = safety
        """Blocks, trusted lists, proofs, stamps, lanes and flood limits (node/safety.py); None: none."""
        self.rtt = rtt if rtt is not None else RttEstimator()
        """Round trips measured here and elsewhere (the DHT's): our timeouts."""
        self.matcher = matcher
        self.on_accepted = on_accepted
        self.proposals_sent = 0
        self.proposals_received = 0
        self.accepted: PendingMatch | None = None
        """The proposal we accepted last (answered again if repeated)."""
        self.refuse_peer: Callable[[str], str | None] | None = None
        """One more refusal for our own proposals only (question mode: a stranger the
        other slot is proposing to or chatting with), asked before the safety gate."""
        self.on_invited: Callable[[ID, tuple[str, ...]], Awaitable[bool]] | None = None
        """A lobby node's user decides on invitations (None: refused, "not-looking")."""
        self.lang = ""
        """Our language (ISO 639-1), told in our proposals and acceptances ("" : not told)."""
        self._langs: dict[ID, str] = {}
        """The languages recent strangers told us (bounded: LANGS_KEPT)."""
        self.question = ""
        """Asking (``strangers ask``): the question our proposals carry (protocol §5.11)."""
        self.discusses_questions = False
        """``--questions``: accept proposals that carry a question (someone will watch)."""
        self._questions: dict[ID, str] = {}
        self.proposing: set[ID] = set()
        """Peers a proposal of ours is on its way to (their identify waits: :meth:`identify_delay`)."""

    def identify_delay(self, peer_id: ID) -> float | None:
        """How long identify waits on a new connection to ``peer_id`` (node/libp2p/identifydefer.py):
        :data:`IDENTIFY_LATER` for a proposal's connection, ours or maybe a stranger's, else None."""
        if peer_id in self.proposing:
            return IDENTIFY_LATER
        if self.matcher.state is not MatchState.IDLE and inbound_direct(self.host, peer_id):
            return IDENTIFY_LATER  # we wait for proposals: this may be one
        return None

    def lang_of(self, peer_id: ID) -> str:
        """The language ``peer_id`` told in its last proposal or acceptance ("" if none)."""
        return self._langs.get(peer_id, "")

    def question_of(self, peer_id: ID) -> str:
        """The question ``peer_id`` asked in its last proposal ("" if none)."""
        return self._questions.get(peer_id, "")

    def _note_lang(self, peer_id: ID, lang: str, question: str = "") -> None:
        self._questions.pop(peer_id, None)
        self._questions[peer_id] = question
        while len(self._questions) > LANGS_KEPT:
            del self._questions[next(iter(self._questions))]
        self._langs.pop(peer_id, None)
        self._langs[peer_id] = lang
        while len(self._langs) > LANGS_KEPT:
            del self._langs[next(iter(self._langs))]

    # -- proposing -----------------------------------------------------------------------

    async def propose(self, info: PeerInfo, match_id: bytes,
                      interests: tuple[str, ...]) -> Accept | Refuse | None:
        """Ask ``info`` for a chat: its Accept or Refuse, or None if it failed in any way.

        ``interests`` are the ones to reveal to this candidate: those under
        which it was found (empty for the "anyone" key).  The Accept returned
        carries at most those.  Never raises (but ``trio.Cancelled``).
        """
        return await self._checked_propose(info, match_id, interests, invite=False)

    async def invite(self, info: PeerInfo, match_id: bytes,
                     interests: tuple[str, ...]) -> Accept | Refuse | None:
        """Invite a lobby member to a chat; its user has :data:`INVITE_TIMEOUT` to answer."""
        return await self._checked_propose(info, match_id, interests, invite=True)

    async def _checked_propose(self, info: PeerInfo, match_id: bytes, interests: tuple[str, ...],
                               *, invite: bool) -> Accept | Refuse | None:
        """A proposal or an invitation, after the refusal gate; the answer's proof checked."""
        self.proposals_sent += 1
        if self.refuse_peer is not None:
            refusal = self.refuse_peer(info.peer_id.to_base58())
            if refusal is not None:  # before any other work: no dial
                logger.info("candidate %s not asked (%s)", info.peer_id, refusal)
                return None
        safety = self.safety
        if safety is not None:
            reason = safety.refuses(info.peer_id)
            if reason is not None:  # before any other work: no dial
                logger.info("candidate %s not asked (%s)", info.peer_id, reason)
                return None
            await safety.proof_ready.wait()
        try:
            answer = await self._propose(info, match_id, interests, invite=invite)
        except Exception:  # a bug of ours or of the library: this proposal only
            logger.debug("proposal to %s failed unexpectedly", info.peer_id, exc_info=True)
            return None
        if isinstance(answer, Accept) and safety is not None and not safety.accept_valid(
                info.peer_id, answer):
            logger.info("candidate %s accepted without a valid identity proof", info.peer_id)
            return None
        if isinstance(answer, Accept):
            self._note_lang(info.peer_id, answer.lang)
            # An older peer answers with all its interests: keep only what we asked about.
            return Accept(answer.match_id, common_interests(answer.interests, interests),
                          lang=answer.lang)
        return answer

    def take_prepared(self, peer_id: ID, match_id: bytes, role: Role) -> PreparedChat | None:
        """The chat begun with ``peer_id`` under ``match_id`` in our ``role``, once; None if none."""
        prepared = self._prepared.pop((peer_id, match_id), None)
        if prepared is None or prepared.role is not role:
            return None
        return prepared

    def _keep(self, peer_id: ID, match_id: bytes, prepared: PreparedChat) -> None:
        self._prepared[(peer_id, match_id)] = prepared
        while len(self._prepared) > PREPARED_CHATS:
            self._prepared.popitem(last=False)

    def _begin_chat(self, role: Role, peer_id: ID, match_id: bytes) -> ChatConnection | None:
        try:
            connection = self.chat_factory(role, peer_id, match_id)
            return connection
        except Exception as exc:  # no chat can start with this peer: the proposal says nothing
            logger.info("no chat handshake in the proposal with %s: %r", peer_id, exc)
            return None

    async def _propose(self, info: PeerInfo, match_id: bytes,
                       interests: tuple[str, ...], *, invite: bool = False
                       ) -> Accept | Refuse | None:
        """A stream that breaks before the answer is retried once with the same
        match id (the candidate answers a repeated proposal the same way).
        This happens when both nodes dial each other at the same moment and
        the swarm keeps only one of the two connections.
        """
        if info.addrs:
            self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, ADDR_TTL)
        # The proposal (chat commit, stamp) is made while the first dial runs:
        # the stamp's work fills the dial's waits instead of preceding them.
        built = _Proposal()
        self.proposing.add(info.peer_id)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._build, built, info.peer_id, match_id, interests, invite)
                return await self._attempts(info, match_id, built, invite)
        finally:
            self.proposing.discard(info.peer_id)

    async def _build(self, built: _Proposal, peer_id: ID, match_id: bytes,
                     interests: tuple[str, ...], invite: bool) -> None:
        """Make our proposal to ``peer_id`` (in ``built``): chat commit, proof, stamp."""
        try:
            chat = self._begin_chat(Role.INITIATOR, peer_id, match_id)
            commit = chat.start() if chat is not None else b""
            base = (Propose(match_id, interests) if self.safety is None
                    else await self.safety.proposal(peer_id, match_id, interests))
            built.chat, built.commit = chat, commit
            built.frame = encode(replace(base, handshake=commit, invite=invite, lang=self.lang,
                                         question=self.question))
        except Exception as exc:  # e.g. a peer id no stamp can name: no proposal to this one
            logger.info("no proposal for %s: %r", peer_id, exc)
        finally:
            built.done.set()

    async def _attempts(self, info: PeerInfo, match_id: bytes, built: _Proposal,
                        invite: bool) -> Accept | Refuse | None:
        for attempt in range(PROPOSAL_ATTEMPTS):
            if not has_open_connection(self.host, info.peer_id):
                allow_redial(self.host, info.peer_id)  # an earlier failed dial must not refuse this one
            try:
                answer = await self._ask(info, built, INVITE_TIMEOUT + ANSWER_TIMEOUT
                                         if invite else None)
            except trio.TooSlowError:
                logger.info("candidate %s too slow, skipped", info.peer_id)
                return None
            except StrangersError as exc:
                if built.done.is_set() and built.frame is None:
                    return None  # we could not make the proposal (logged)
                if not isinstance(exc, StreamEnded):
                    logger.info("candidate %s answered badly: %s", info.peer_id, exc)
                    return None
                failure: Exception = exc
            except Exception as exc:  # dial and stream failures of every kind
                failure = exc
            else:
                if isinstance(answer, (Accept, Refuse)) and answer.match_id == match_id:
                    if isinstance(answer, Refuse):
                        logger.info("candidate %s refused: %s", info.peer_id, answer.reason.value)
                    elif built.chat is not None and not self._prepare_initiator(
                            info.peer_id, answer, built.chat, built.commit):
                        return None
                    return answer
                logger.info("candidate %s sent an unexpected answer %.200r", info.peer_id, answer)
                return None
            # A broken stream, or a connection the swarm was just replacing
            # ("no valid connections"), deserves one more try; a refused dial
            # fails again at once, a silent one is caught by the timeout above.
            logger.info("proposal to %s failed (%r)%s", info.peer_id, failure,
                        ", retrying" if attempt + 1 < PROPOSAL_ATTEMPTS else "")
            await trio.sleep(0.02)
        return None

    def _prepare_initiator(self, peer_id: ID, answer: Accept, chat: ChatConnection, commit: bytes) -> bool:
        """Keep the chat begun in our proposal; False if the stranger's hello is bad."""
        opening = commit  # an accept without a hello: the commit goes on the chat stream
        if answer.handshake:
            try:
                opening = _take_in(chat, answer.handshake)
            except StrangersError as exc:
                logger.info("candidate %s accepted with a bad chat hello: %s", peer_id, exc)
                return False
        self._keep(peer_id, answer.match_id, PreparedChat(Role.INITIATOR, chat, opening))
        return True

    async def _ask(self, info: PeerInfo, built: _Proposal,
                   answer_timeout: float | None = None) -> object:
        """One proposal (written once ``built``); its dial and its answer time
        feed the RTT estimate, which sets both deadlines."""
        stream = None
        peer = info.peer_id.to_bytes()
        try:
            forget_closed_connections(self.host, info.peer_id)
            connected = has_open_connection(self.host, info.peer_id)
            # a stranger behind a NAT, reached through its relay: a longer dial (rtt.py)
            dial = dial_bounds(not connected and is_relayed(str(addr) for addr in info.addrs))
            started = trio.current_time()
            with trio.fail_after(self.rtt.timeout(peer, started, dial)):
                stream = await self.host.new_stream(info.peer_id, [TProtocol(MATCH_PROTOCOL)])
            opened = trio.current_time()
            self.rtt.observe(peer, opened - started, opened, round_trips=(
                STREAM_OPEN_ROUND_TRIPS if connected else dial.round_trips))
            await built.done.wait()
            if built.frame is None:  # making it failed (logged)
                raise LocalProtocolError("no proposal to send")
            opened = trio.current_time()  # the answer's time starts when the proposal goes
            with trio.fail_after(answer_timeout or self.rtt.timeout(peer, opened, ANSWER)):
                await stream.write(built.frame)
                answer = await _read_frame(stream)
            now = trio.current_time()
            self.rtt.observe(peer, now - opened, now, round_trips=REQUEST_ROUND_TRIPS)
            return answer
        finally:
            if stream is not None:
                await _close(stream)

    # -- answering ---------------------------------------------------------------------

    async def handle_stream(self, stream) -> None:
        """Answer one proposal.  Never raises: a bad, slow or broken one resets the stream."""
        self.proposals_received += 1
        peer_id = getattr(getattr(stream, "muxed_conn", None), "peer_id", None)
        safety = self.safety
        if safety is not None and isinstance(peer_id, ID):
            # refused, flooding or too many at once: reset before reading a byte
            if not safety.admit(peer_id, proposal=True) or not safety.open_slot(peer_id):
                await _close(stream, reset=True)
                return
            try:
                await self._handle(stream, peer_id)
            finally:
                safety.close_slot(peer_id)
            return
        await self._handle(stream, peer_id)

    async def _handle(self, stream, peer_id) -> None:
        try:
            if not isinstance(peer_id, ID):
                raise RemoteProtocolError("match stream without a peer id")
            with trio.fail_after(PROPOSAL_TIMEOUT):
                proposal = await _read_frame(stream)
            if not isinstance(proposal, Propose):
                raise RemoteProtocolError(f"expected a proposal, got {type(proposal).__name__}")
            refusal = None if self.safety is None else self.safety.check_proposal(peer_id, proposal)
            if refusal is not None:  # lane, identity proof, stamp: before any other work
                logger.info("proposal from %s refused: %s", peer_id, refusal.value)
                answer: Accept | Refuse = Refuse(proposal.match_id, refusal)
            elif proposal.invite:
                answer = await self._answer_invitation(peer_id, proposal)
            else:
                answer = self._answer(peer_id, proposal)
            with trio.fail_after(ANSWER_TIMEOUT):
                await stream.write(encode(answer))
        except trio.TooSlowError:
            logger.info("proposal from %s too slow, stream reset", peer_id)
        except StrangersError as exc:
            logger.info("bad proposal from %s (%s), stream reset", peer_id, exc)
        except Exception as exc:  # the proposer vanished mid-way, or a bug: this stream only
            logger.info("proposal from %s broke off (%s), stream reset", peer_id, type(exc).__name__)
            logger.debug("proposal from %s broke off", peer_id, exc_info=True)
        else:
            await _close(stream)
            return
        await _close(stream, reset=True)

    async def _answer_invitation(self, peer_id: ID, proposal: Propose) -> Accept | Refuse:
        """A lobby member invites us: our user decides (not the matcher), if we are free."""
        if self.on_invited is None:
            return Refuse(proposal.match_id, Refusal.NOT_LOOKING)
        if self.matcher.state is not MatchState.IDLE:
            return Refuse(proposal.match_id, Refusal.BUSY)
        with trio.move_on_after(INVITE_TIMEOUT):
            if await self.on_invited(peer_id, proposal.interests):
                if self.matcher.state is not MatchState.IDLE:  # something else began meanwhile
                    return Refuse(proposal.match_id, Refusal.BUSY)
                now = trio.current_time()
                peer = peer_id.to_bytes()
                self.matcher.start_search(now)
                self.matcher.propose(peer)
                self.matcher.proposal_accepted(peer)
                pending = PendingMatch(peer_id, proposal.match_id, proposal.interests)
                self.accepted = pending
                self.on_accepted(pending)
                return Accept(proposal.match_id, proposal.interests, lang=self.lang,
                              proof=self._proof())
        return Refuse(proposal.match_id, Refusal.NOT_LOOKING)

    def _answer(self, peer_id: ID, proposal: Propose) -> Accept | Refuse:
        """The matcher's answer to ``proposal``; an Accept reveals only the common interests.

        A proposal with a chat commit gets our chat hello in the Accept; a bad
        commit makes the whole proposal bad (RemoteProtocolError or CryptoError).
        """
        chat: PreparedChat | None = None
        if proposal.handshake:
            connection = self.chat_factory(Role.RESPONDER, peer_id, proposal.match_id)
            connection.start()
            chat = PreparedChat(Role.RESPONDER, connection, b"")
            hello = _take_in(connection, proposal.handshake)
        answer = self._decide(peer_id, proposal)
        if isinstance(answer, Accept) and chat is not None:
            self._keep(peer_id, proposal.match_id, chat)
            return replace(answer, handshake=hello)
        return answer

    def _decide(self, peer_id: ID, proposal: Propose) -> Accept | Refuse:
        peer = peer_id.to_bytes()
        self._note_lang(peer_id, proposal.lang, proposal.question)
        if proposal.question and not self.discusses_questions:
            return Refuse(proposal.match_id, Refusal.NOT_LOOKING)  # we do not want to be watched
        accepted = self.accepted
        if (accepted is not None and accepted.peer_id == peer_id
                and self.matcher.state is MatchState.MATCHED and self.matcher.peer == peer):
            # The peer we accepted proposes again before opening the chat:
            # its stream or connection broke (crossed dials). Same answer,
            # under the match id it uses now.
            if accepted.match_id != proposal.match_id:
                accepted = PendingMatch(peer_id, proposal.match_id, accepted.common)
                self.accepted = accepted
                self.on_accepted(accepted)
            return Accept(proposal.match_id,
                          common_interests(self.matcher.interests, proposal.interests),
                          lang=self.lang, proof=self._proof())
        decision = self.matcher.on_proposal(peer, proposal.interests, trio.current_time())
        if not decision.accept:
            return Refuse(proposal.match_id, decision.refusal or Refusal.BUSY)
        pending = PendingMatch(peer_id, proposal.match_id, decision.common)
        self.accepted = pending
        self.on_accepted(pending)
        return Accept(proposal.match_id, decision.common, lang=self.lang, proof=self._proof())

    def _proof(self) -> bytes | None:
        return None if self.safety is None else self.safety.proof
