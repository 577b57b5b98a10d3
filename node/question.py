"""Question mode (Omegle's "spy"): ask a question, watch two strangers discuss it.

The watcher (``strangers ask "QUESTION"``) runs two *slots*. Each slot is an
ordinary search (:class:`~strangers.node.searching.SearchService` over its own
:class:`~strangers.discovery.matcher.Matcher`) on the **question lane**
(``discovery/topics.py``: strangers who opted in with ``--questions`` list
themselves there), whose proposals carry the question (``"q"``, protocol
§5.11), and an ordinary chat (:class:`~strangers.node.conversation.Conversations`)
in which the watcher is the initiator. So each stranger's chat is a normal
end-to-end encrypted one-to-one session, with the watcher.

The watcher relays: what Stranger 1 says is sent, re-encrypted, to Stranger 2
and shown to the watcher labelled "Stranger 1" (``question_message``), and the
other way round; typing too. Both slots look at once, each with its own
proposer whose refusal gate (:meth:`QuestionWatch.claim`) keeps them from
proposing to the same stranger (two proposals of one watcher to one stranger
would be taken for one, repeated). What one stranger says before the other
arrives waits (at most :data:`MAX_WAITING` messages). When one stranger leaves,
the other is told (its chat ends with a goodbye) and the watcher sees both go;
``next`` asks again, with two new strangers. A stranger who leaves before the
other arrives is replaced.

The watcher never types: nothing but the strangers' own words goes through.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

from strangers.crypto.peerid import peer_id_to_text
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.search import SearchPlanner
from strangers.errors import LocalProtocolError

from . import events
from .conversation import Conversations
from .matching import MatchService, PendingMatch
from .searching import SearchService
from .supervision import spawn

logger = logging.getLogger(__name__)

MAX_WAITING = 32
"""Messages of the first stranger kept until the second one arrives (the oldest dropped)."""


def _nobody(_pending: PendingMatch) -> None:
    """A slot never accepts proposals (its proposer serves no stream)."""


class _Slot:
    """One of the two strangers: its search and its chat."""

    def __init__(self, number: int, watch: QuestionWatch) -> None:
        node = watch.node
        self.number = number
        self.matcher = Matcher(local_id=node.identity.peer_id.to_bytes(),
                               interests=node.config.interests,
                               random_after=node.config.random_after,
                               interests_only=node.config.interests_only)
        planner = SearchPlanner(self.matcher, random.Random(), lane=node.config.lane)
        planner.asking = True
        # This slot's own proposer: the question, and a gate that keeps the two slots
        # from ever proposing to the same stranger (node.matching answers incoming ones).
        self.matching = MatchService(node.host, self.matcher, on_accepted=_nobody,
                                     rtt=node.dht.rtt, safety=node.safety)
        self.matching.question = watch.question
        self.matching.refuse_peer = functools.partial(watch.claim, self)
        self.chats = Conversations(node.host, node.identity, self.matcher, self.matching,
                                   # after each chat: search again if the slot is still wanted
                                   emit=self._emit, start_search=self.start, auto_next=True,
                                   nursery=node._nursery)
        self.search = SearchService(planner, node.dht, self.matching, emit=self._emit,
                                    on_matched=self.chats.start_initiator, nursery=node._nursery)
        self.watch = watch
        self.joined = False
        self.active = False
        """The slot may search (False once the question is over, until ``next``)."""

    def start(self) -> None:
        if self.active and self.matcher.state is MatchState.IDLE:
            self.search.start()

    def stop(self) -> None:
        self.active = False
        self.search.stop()
        if self.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING):
            self.matcher.stop()

    def holds(self, peer_id: str) -> bool:
        """Whether this slot is proposing to, or matched with, ``peer_id``."""
        peer = self.matcher.peer
        return (self.matcher.state in (MatchState.PROPOSING, MatchState.MATCHED)
                and peer is not None and peer_id_to_text(peer) == peer_id)

    @property
    def session(self):
        session = self.chats.session
        return session if session is not None and session.established.is_set() else None

    async def _emit(self, event: events.Event) -> None:
        await self.watch.on_slot_event(self, event)


class QuestionWatch:
    """The watcher's two slots and the relay between them."""

    def __init__(self, node, question: str) -> None:
        self.node = node
        self.question = question
        self._claims: dict[str, _Slot] = {}
        self.slots = (_Slot(1, self), _Slot(2, self))
        self._waiting: deque[str] = deque(maxlen=MAX_WAITING)
        self._emit: Callable[[events.Event], Awaitable[None]] = node.emit
        self.over = False

    def claim(self, slot: _Slot, peer_id: str) -> str | None:
        """The gate of ``slot``'s proposals: a stranger the other slot is proposing to or
        talking with is refused (two proposals of one watcher to the same stranger would
        be taken for one, repeated). Checked and claimed at once, without a pause."""
        refusal = self.node.lists.refuses(peer_id)
        if refusal is not None:
            return refusal
        holder = self._claims.get(peer_id)
        if holder is not None and holder is not slot and holder.holds(peer_id):
            return "already in this question"
        self._claims = {peer: owner for peer, owner in self._claims.items() if owner.holds(peer)}
        self._claims[peer_id] = slot
        return None

    def start(self) -> None:
        """Look for the first stranger (the second follows once it is here)."""
        if any(slot.chats.session is not None for slot in self.slots):
            return  # a question is going on
        self.over = False
        self._waiting.clear()
        for slot in self.slots:
            slot.joined = False
            slot.active = True
            slot.start()

    async def next(self) -> None:
        """End the question going on (both strangers are told), then ask again."""
        await self.close("next")
        self.start()

    async def close(self, reason: str) -> None:
        for slot in self.slots:
            slot.stop()
        for slot in self.slots:
            await slot.chats.close(reason)

    async def on_slot_event(self, slot: _Slot, event: events.Event) -> None:
        other = self.slots[2 - slot.number]
        match event:
            case events.Matched() if not slot.active:  # matched just before Stop (or the end)
                spawn(self.node._nursery, "chat after the question", slot.chats.close, "next")
            case events.Matched(peer_id, common, safety_code, _initiator, _path, lang):
                slot.joined = True
                await self._emit(events.QuestionJoined(slot.number, peer_id, common,
                                                       safety_code, lang))
                await self._flush(slot)  # what the other said before this one came
            case events.MessageReceived(_id, text):
                await self._emit(events.QuestionMessage(slot.number, text))
                if other.session is None:
                    self._waiting.append(text)  # for whichever stranger comes next
                else:
                    await self._relay(other, text)
            case events.Typing(active):
                await self._emit(events.QuestionTyping(slot.number, active))
                if other.session is not None:
                    await other.session.send_typing(active)
            case events.StrangerLeft(reason, by_us):
                slot.joined = False
                await self._emit(events.QuestionLeft(slot.number, reason, by_us))
                if not by_us and not other.joined and not self.over:
                    # This stranger went before the other came: nobody else heard it;
                    # look for another one (its chat's end starts the search again).
                    self._waiting.clear()
                    return
                if not self.over:
                    self.over = True  # the other is told: its chat ends too
                    other.stop()
                    slot.active = False
                    await other.chats.close("next")
            case events.Searching(interests, random, _lang):
                await self._emit(events.Searching(interests, random))
            case events.Warning() | events.Error():
                await self._emit(event)
            case _:
                pass  # delivery receipts, paths: the watcher's own business

    async def _relay(self, to: _Slot, text: str) -> None:
        session = to.session
        if session is None:
            return
        try:
            await session.send_text(text)
        except LocalProtocolError as exc:  # that chat is ending: its stranger_left follows
            logger.info("could not relay to stranger %d: %s", to.number, exc)

    async def _flush(self, to: _Slot) -> None:
        while self._waiting:
            await self._relay(to, self._waiting.popleft())
