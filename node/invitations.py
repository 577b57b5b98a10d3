"""From a lobby to a private chat: invitations over the match protocol (protocol §10.7).

``/chat NICK`` in a lobby sends the member a proposal flagged as an
invitation (``"inv": true``); its node asks its user (``chat_invited``) and
answers Accept or Refuse within a minute. On Accept both matchers go to
MATCHED and the normal chat starts: the same end-to-end encrypted session,
with its safety code, as with a stranger found by interests. The lobby
stays joined meanwhile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from strangers.discovery.lobby import nickname
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.proposal import Accept
from strangers.errors import LocalProtocolError

from . import events
from .matching import MatchService

logger = logging.getLogger(__name__)

MAX_PENDING = 8
"""Invitations waiting for our user's answer at once (more are refused)."""


class Invitations:
    """Invitations we send and the ones waiting for our user's answer."""

    def __init__(self, host, matcher: Matcher, matching: MatchService, *,
                 emit: Callable[[events.Event], Awaitable[None]],
                 on_matched: Callable[[ID, bytes, tuple[str, ...]], None]) -> None:
        self.host = host
        self.matcher = matcher
        self.matching = matching
        self._emit = emit
        self._on_matched = on_matched
        self._waiting: dict[ID, tuple[trio.Event, list[bool]]] = {}
        matching.on_invited = self.ask

    # -- invitations to us ----------------------------------------------------------

    async def ask(self, peer_id: ID, _interests: tuple[str, ...]) -> bool:
        """The match service got an invitation: ask our user (cancelled after a minute)."""
        if peer_id in self._waiting or len(self._waiting) >= MAX_PENDING:
            return False
        decided: tuple[trio.Event, list[bool]] = (trio.Event(), [])
        self._waiting[peer_id] = decided
        try:
            await self._emit(events.ChatInvited(peer_id.to_base58(), nickname(peer_id.to_bytes())))
            await decided[0].wait()
            return bool(decided[1] and decided[1][0])
        finally:
            self._waiting.pop(peer_id, None)

    def answer(self, peer_id: ID, accept: bool) -> None:
        """Our user's answer to ``peer_id``'s invitation."""
        waiting = self._waiting.get(peer_id)
        if waiting is None:
            raise LocalProtocolError(f"{nickname(peer_id.to_bytes())} has not invited you (or gave up)")
        waiting[1].append(accept)
        waiting[0].set()

    @property
    def waiting(self) -> list[ID]:
        return list(self._waiting)

    # -- invitations from us -------------------------------------------------------

    async def invite(self, peer_id: ID, interest: str) -> None:
        """Invite ``peer_id``; on Accept the chat starts (we open it)."""
        nick = nickname(peer_id.to_bytes())
        if self.matcher.state is not MatchState.IDLE:
            await self._emit(events.Error("you are in a chat already: /next first"))
            return
        info = PeerInfo(peer_id, self.host.get_peerstore().addrs(peer_id))
        match_id = os.urandom(16)
        await self._emit(events.Warning(f"asking {nick} for a private chat..."))
        answer = await self.matching.invite(info, match_id, (interest,))
        if not isinstance(answer, Accept):
            reason = getattr(getattr(answer, "reason", None), "value", "no answer")
            await self._emit(events.Warning(f"{nick} did not accept the chat ({reason})"))
            return
        if self.matcher.state is not MatchState.IDLE:  # we accepted someone else meanwhile
            logger.info("invitation accepted by %s too late", peer_id)
            return
        peer = peer_id.to_bytes()
        self.matcher.start_search(trio.current_time())
        self.matcher.propose(peer)
        self.matcher.proposal_accepted(peer)
        self._on_matched(peer_id, match_id, answer.interests)
