"""The chat lifecycle: from an accepted match to the chat's end, and the search after it.

Two ways into a chat (``docs/protocol.md`` §5.3):

* we proposed and were accepted: :meth:`Conversations.start_initiator` opens
  ``/strangers/chat/3.0.0`` to the stranger (retrying for
  ``CHAT_OPEN_TIMEOUT`` while the connection settles);
* we accepted a proposal: :meth:`Conversations.expect` waits for the
  proposer's chat stream (:meth:`handle_chat_stream`) until the pending
  match expires; a stream from anyone else is reset.

Each chat runs in its own supervised task. However it ends (a goodbye, a
timeout, a broken stream, a bad frame, or a failure nobody expected), the end
is reported as one ``stranger_left`` (once the chat was established), the
matcher is told, and the search starts again when the user wants it
(auto-next), or always when the match never became a chat.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable

import trio
from libp2p.crypto.keys import KeyType
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from strangers.crypto.handshake import Role
from strangers.crypto.session import ChatConnection
from strangers.discovery.contact import AgreedContact
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.search import SKIP_UNREACHABLE
from strangers.errors import RemoteProtocolError
from strangers.node.libp2p.holepunch import (
    RELAYED,
    HolePunch,
    new_stream_on,
    stream_path,
    wait_for_direct,
)
from strangers.node.libp2p.streamio import StreamEnded, forget_closed_connections, reset_quietly

from . import events
from .chat import CHAT_PROTOCOL, ChatSession
from .identity import Identity
from .matching import CHAT_OPEN_TIMEOUT, MatchService, PendingMatch
from .supervision import describe, leaves, spawn, supervised

logger = logging.getLogger(__name__)

REFUSE_AFTER_NO_SHOW = 20.0
"""Seconds we refuse a proposer that was accepted and never opened the chat."""

CLOSE_WAIT = 1.0
"""Seconds :meth:`Conversations.close` waits for the chat to report its end."""

DIRECT_WAIT = 60.0
"""How long a relayed chat's initiator waits for a direct connection to move the chat to."""


def end_reason(exc: BaseException) -> str:
    """The ``stranger_left`` reason for a chat that failed with ``exc``."""
    kinds = leaves(exc)
    if all(isinstance(e, trio.TooSlowError) for e in kinds):
        return "timeout"
    if all(isinstance(e, (StreamEnded, trio.BrokenResourceError, trio.ClosedResourceError))
           for e in kinds):
        return "disconnected"
    return "error"


class Conversations:
    """Chats of one node, one at a time, in tasks of ``nursery``."""

    def __init__(self, host, identity: Identity, matcher: Matcher, matching: MatchService, *,
                 emit: Callable[[events.Event], Awaitable[None]],
                 start_search: Callable[[], None], auto_next: bool,
                 nursery: trio.Nursery) -> None:
        self.host = host
        self.identity = identity
        self.matcher = matcher
        self.matching = matching
        self._emit = emit
        self._start_search = start_search
        self._auto_next = auto_next
        self._nursery = nursery
        self.session: ChatSession | None = None
        self.last_connection: ChatConnection | None = None
        """The latest established chat's connection: its evidence is what /report saves."""
        """The chat running now, if any."""
        self._session_peer: ID | None = None
        self.on_contact: Callable[[AgreedContact], Awaitable[None]] | None = None
        """Called when both kept in touch (node/contacts.py saves it); None: no offers
        (a chat with a kept contact)."""
        self.holepunch: HolePunch | None = None
        """Hole punching (DCUtR), when this node may use it: relayed chats then try
        to move to a direct connection (``docs/protocol.md`` §6.9)."""
        self.chats = 0
        """Chats established since the node started."""
        self._pending: PendingMatch | None = None
        self._pending_round = 0
        self._established = False
        self._chat_over = trio.Event()
        self._chat_over.set()
        self.first_settled = trio.Event()
        """Set once a first chat was established or ended (the routing table's fill waits for it)."""

    # -- the way in --------------------------------------------------------------

    def expect(self, pending: PendingMatch) -> None:
        """We accepted ``pending``'s proposal: await its chat stream until it expires."""
        renewed = self._pending is not None and self._pending.peer_id == pending.peer_id
        self._pending = pending
        if not renewed:
            # A repeated proposal (new match id) keeps the first deadline, so
            # re-proposing cannot hold us matched with nobody for ever.
            self._pending_round += 1
            spawn(self._nursery, "pending match expiry", self._expire_pending,
                  self._pending_round, pending.timeout)

    async def _expire_pending(self, round_: int, timeout: float) -> None:
        await trio.sleep(timeout)
        pending = self._pending
        if pending is None or self._pending_round != round_:
            return
        logger.info("proposer %s never opened the chat", pending.peer_id)
        self._pending = None
        self.matching.accepted = None
        now = trio.current_time()
        if self.matcher.state is MatchState.MATCHED:
            self.matcher.end_chat(now, SKIP_UNREACHABLE)
        # A peer that makes us wait for nothing does not get to do it again
        # at once (otherwise it could keep us matched with nobody).
        self.matcher.refuse_for(pending.peer_id.to_bytes(), now, REFUSE_AFTER_NO_SHOW)
        self._start_search()

    async def handle_chat_stream(self, stream) -> None:
        """Incoming ``/strangers/chat/3.0.0``: only from the peer we accepted."""
        peer_id = stream.muxed_conn.peer_id
        pending = self._pending
        if (pending is None and self.session is not None and self._session_peer == peer_id
                and self.holepunch is not None):  # no moves to a direct path with --hide-ip
            await self.session.adopt_move_stream(stream)  # the stranger moves our chat
            return
        if pending is None or pending.peer_id != peer_id:
            logger.info("unexpected chat stream from %s refused", peer_id)
            await reset_quietly(stream, 1.0)
            return
        self._pending = None
        self.matching.accepted = None
        done = trio.Event()
        spawn(self._nursery, "chat", self.run_chat, stream, Role.RESPONDER, peer_id,
              pending.match_id, pending.common, done)
        await done.wait()  # the stream handler owns the stream while the chat runs

    def start_initiator(self, peer_id: ID, match_id: bytes, common: tuple[str, ...]) -> None:
        """Our proposal was accepted: open the chat."""
        spawn(self._nursery, "opening a chat", self._run_initiator, peer_id, match_id, common,
              on_crash=self._after_failed_open)

    async def _after_failed_open(self, _exc: BaseException) -> None:
        if self.session is None and self.matcher.state is MatchState.MATCHED:
            self.matcher.end_chat(trio.current_time(), SKIP_UNREACHABLE)
            self._start_search()

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
            await self._after_failed_open(trio.TooSlowError())
            return
        await self.run_chat(stream, Role.INITIATOR, peer_id, match_id, common, trio.Event())

    # -- the chat ----------------------------------------------------------------

    async def run_chat(self, stream, role: Role, peer_id: ID, match_id: bytes,
                       common: tuple[str, ...], done: trio.Event) -> None:
        """Run one chat on ``stream`` to its end, whatever happens in it; then
        tell the matcher, and search again (auto-next, or a chat that never began)."""
        self._established = False
        self._chat_over = trio.Event()

        async def crashed(exc: BaseException) -> None:
            await self._chat_crashed(stream, exc)

        try:
            # begun in the proposal (docs/protocol.md §6.2), or from the start here
            prepared = self.matching.take_prepared(peer_id, match_id, role)
            connection = prepared.connection if prepared else self._connection(peer_id, role, match_id)
            if connection is None:
                await reset_quietly(stream, 1.0)
            else:
                await supervised(f"chat with {peer_id}", self._chat_session, stream,
                                 connection, role, peer_id, common,
                                 prepared.opening if prepared else None, on_crash=crashed)
        finally:
            self.session = None
            self._chat_over.set()
            self.first_settled.set()
            done.set()
            established = self._established
            if self.matcher.state is MatchState.MATCHED:
                now = trio.current_time()
                if established:
                    self.matcher.end_chat(now)
                else:
                    # matched, then no working chat: a stall, a bad key, or a
                    # vanished peer; do not let it hold us again at once
                    self.matcher.end_chat(now, SKIP_UNREACHABLE)
                    self.matcher.refuse_for(peer_id.to_bytes(), now, REFUSE_AFTER_NO_SHOW)
        if self._auto_next or not established:
            # a match that never became a chat: the user is still searching
            self._start_search()

    def _connection(self, peer_id: ID, role: Role, match_id: bytes) -> ChatConnection | None:
        try:
            remote_key = peer_id.extract_public_key()
            if remote_key is None or remote_key.get_type() != KeyType.Ed25519:
                raise RemoteProtocolError(f"stranger {peer_id} has no Ed25519 identity")
            return ChatConnection(
                role=role,
                match_id=match_id,
                local_identity=self.identity.signing_key,
                remote_identity=remote_key.to_bytes(),
                rng=os.urandom,
            )
        except Exception as exc:  # a peer id we cannot build a chat with
            logger.info("chat with %s refused: %r", peer_id, exc)
            return None

    async def _chat_session(self, stream, connection: ChatConnection, role: Role,
                            peer_id: ID, common: tuple[str, ...], opening: bytes | None = None) -> None:
        async def established(safety_code: str) -> None:
            logger.info("chat with %s established (%s)", peer_id, session.path)
            self.chats += 1
            self._established = True
            self.first_settled.set()
            self.last_connection = connection
            await self._emit(events.Matched(peer_id.to_base58(), common, safety_code,
                                            role is Role.INITIATOR, session.path,
                                            self.matching.lang_of(peer_id),
                                            question=(self.matching.question_of(peer_id)
                                                      if role is Role.RESPONDER else "")))

        path = stream_path(stream)
        holepunch = self.holepunch if path == RELAYED else None
        session = ChatSession(
            stream, connection, on_event=self._emit, on_established=established, path=path,
            opening=opening,
            path_of=stream_path, rtt=self.matching.rtt, rtt_peer=peer_id.to_bytes(),
            # DCUtR from the side that accepted the relayed connection; the move from the other
            while_relayed=(functools.partial(holepunch.upgrade, peer_id)
                           if holepunch is not None and role is Role.RESPONDER else None),
            open_move_stream=(functools.partial(self._open_direct_stream, peer_id)
                              if holepunch is not None and role is Role.INITIATOR else None),
            on_contact=self.on_contact)
        self.session = session
        self._session_peer = peer_id
        if holepunch is not None:
            with holepunch.relayed_chat():  # room for a direct connection beside the relayed one
                end = await session.run()
        else:
            end = await session.run()
        self.session = None
        if self._established:
            await self._emit(events.StrangerLeft(end.reason, end.by_us))

    async def _open_direct_stream(self, peer_id: ID):
        """A new chat stream on a direct connection to ``peer_id``, once there is one."""
        conn = await wait_for_direct(self.host, peer_id, DIRECT_WAIT)
        if conn is None:
            logger.info("no direct connection to %s: the chat stays on the relay", peer_id)
            return None
        return await new_stream_on(self.host, conn, CHAT_PROTOCOL)

    async def _chat_crashed(self, stream, exc: BaseException) -> None:
        """The chat failed in a way its session did not handle: end it alone."""
        self.session = None
        await reset_quietly(stream, 1.0)
        reason = end_reason(exc)
        if reason == "error":
            await self._emit(events.Error(f"chat closed: {describe(exc)}"))
        if self._established:
            await self._emit(events.StrangerLeft(reason, False))

    # -- the way out -------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """Say goodbye (``reason``: "next" or "quit") and wait briefly for the chat's end."""
        session = self.session
        if session is None:
            return
        await session.close(reason)
        with trio.move_on_after(CLOSE_WAIT):  # let it report stranger_left
            await self._chat_over.wait()
