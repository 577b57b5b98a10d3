"""Who to chat with: the matching decisions, as a pure state machine.

The matcher decides; the adapter (``strangers.node.matching``) talks.  It
never sees a socket or a clock: every call takes ``now``, and randomness comes
in as an argument, so the same logic runs on the network, in unit tests with
a fake clock, and in the internet-scale simulation.

Rules (Omegle's, without its server):

* A node searches by interests first. If nobody sharing one is found within
  ``random_after`` seconds it also accepts, and looks for, random strangers
  (the "anyone" key), unless ``interests_only`` is set. A node without
  interests is random from the start.
* A node proposes to one candidate at a time. A node accepts a proposal only
  while SEARCHING; while PROPOSING it refuses everyone ("busy"), except the
  very peer it is proposing to: when two nodes propose to each other at the
  same moment, the one with the smaller peer id wins, i.e. its proposal is
  accepted and the other one's is refused ("crossed"). Both sides apply the
  same rule, so the pair ends in exactly one chat.
* Once MATCHED a node refuses everyone ("busy") until the chat ends.
* Peers that refused or could not be reached are skipped for a while, and so
  is the stranger we just left.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random

from strangers.errors import LocalProtocolError

from .interests import common_interests


class MatchState(enum.Enum):
    """Where this node stands."""

    IDLE = "idle"
    """Not looking for anyone (serving only, or between chats)."""
    SEARCHING = "searching"
    """Looking for a stranger; accepts proposals."""
    PROPOSING = "proposing"
    """Waiting for one candidate's answer; refuses others."""
    MATCHED = "matched"
    """In a chat; refuses everyone."""


class Phase(enum.Enum):
    """Which strangers a searching node wants."""

    INTERESTS = "interests"
    """Only strangers who share at least one interest."""
    RANDOM = "random"
    """Anyone (interests still preferred when known)."""


class Refusal(str, enum.Enum):
    """Why a proposal was refused (sent on the wire)."""

    BUSY = "busy"
    CROSSED = "crossed"
    NOT_LOOKING = "not-looking"
    NO_COMMON_INTERESTS = "no-common-interests"
    OTHER_LANE = "other-lane"
    """The proposal is for another lane (general or adult: docs/protocol.md §3)."""
    NO_PROOF = "no-proof"
    """The proposal lacks a valid identity proof or stamp (docs/protocol.md §5.9)."""


@dataclass(frozen=True)
class Decision:
    """The answer to an incoming proposal."""

    accept: bool
    refusal: Refusal | None = None
    common: tuple[str, ...] = ()
    """Our interests that the proposal named too, in our order: all that an
    Accept may reveal (never the rest of our list)."""


# (state, input) -> next state.  Inputs not listed are a LocalProtocolError.
_TRANSITIONS: dict[tuple[MatchState, str], MatchState] = {
    (MatchState.IDLE, "start_search"): MatchState.SEARCHING,
    (MatchState.SEARCHING, "propose"): MatchState.PROPOSING,
    (MatchState.PROPOSING, "accepted"): MatchState.MATCHED,
    (MatchState.PROPOSING, "refused"): MatchState.SEARCHING,
    (MatchState.SEARCHING, "incoming_accepted"): MatchState.MATCHED,
    (MatchState.PROPOSING, "incoming_accepted"): MatchState.MATCHED,
    (MatchState.MATCHED, "end_chat"): MatchState.IDLE,
    (MatchState.SEARCHING, "stop"): MatchState.IDLE,
    (MatchState.PROPOSING, "stop"): MatchState.IDLE,
    (MatchState.MATCHED, "stop"): MatchState.IDLE,
    (MatchState.IDLE, "stop"): MatchState.IDLE,
}

TRANSITIONS = dict(_TRANSITIONS)
"""The transition table, public so the docs can draw it."""


class Matcher:
    """Matching decisions for one node."""

    def __init__(
        self,
        *,
        local_id: bytes,
        interests: tuple[str, ...],
        random_after: float = 10.0,
        interests_only: bool = False,
        skip_for: float = 30.0,
    ) -> None:
        if random_after < 0:
            raise ValueError(f"random_after must be >= 0, got {random_after!r}")
        self.local_id = local_id
        self.interests = interests
        self.random_after = random_after
        self.interests_only = interests_only
        self.skip_for = skip_for
        self.state = MatchState.IDLE
        self.peer: bytes | None = None
        """The candidate we propose to, or the stranger we chat with."""
        self._search_started = 0.0
        self._skipped: dict[bytes, float] = {}
        self._left: dict[bytes, float] = {}
        """Strangers we chatted with, refused if they propose again too soon."""

    # -- transitions ---------------------------------------------------------

    def _go(self, event: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"matcher cannot {event!r} while {self.state.value!r}"
            ) from None

    def start_search(self, now: float) -> None:
        """Begin looking for a stranger."""
        self._go("start_search")
        self.peer = None
        self._search_started = now

    def propose(self, peer: bytes) -> None:
        """We are about to propose to ``peer``."""
        self._go("propose")
        self.peer = peer

    def proposal_accepted(self, peer: bytes) -> None:
        """``peer`` accepted our proposal: we are matched."""
        self._check_peer(peer)
        self._go("accepted")

    def proposal_failed(self, peer: bytes, now: float, skip_for: float | None = None) -> None:
        """``peer`` refused, was unreachable or too slow: skip it for a while.

        ``skip_for`` defaults to the matcher's; a peer that was only busy for
        a moment deserves a shorter pause than one that is not looking.
        """
        if self.state is MatchState.MATCHED:
            return  # our proposal crossed theirs, and theirs won
        self._check_peer(peer)
        self._go("refused")
        self.peer = None
        self._skipped[peer] = now + (self.skip_for if skip_for is None else skip_for)

    def end_chat(self, now: float, skip_for: float | None = None) -> None:
        """The chat is over; the stranger is skipped for a while (``skip_for``)."""
        self._go("end_chat")
        if self.peer is not None:
            self._skipped[self.peer] = now + (self.skip_for if skip_for is None else skip_for)
            if skip_for is None:  # a real chat ended: no instant rematch either way
                self._left = {p: t for p, t in self._left.items() if t > now}
                self._left[self.peer] = now + self.skip_for
        self.peer = None

    def refuse_for(self, peer: bytes, now: float, seconds: float) -> None:
        """Refuse ``peer``'s proposals for ``seconds`` (e.g. it accepted-then-vanished)."""
        self._left = {p: t for p, t in self._left.items() if t > now}
        self._left[peer] = max(self._left.get(peer, now), now + seconds)

    def stop(self) -> None:
        """Stop looking, whatever we were doing."""
        self._go("stop")
        self.peer = None

    def _check_peer(self, peer: bytes) -> None:
        if peer != self.peer:
            raise LocalProtocolError(
                f"matcher got an answer from {peer!r}, but proposed to {self.peer!r}"
            )

    # -- decisions -----------------------------------------------------------

    def phase(self, now: float) -> Phase:
        """Interests first; random after ``random_after`` seconds unless interests_only."""
        if not self.interests:
            return Phase.RANDOM
        if self.interests_only:
            return Phase.INTERESTS
        if self.state in (MatchState.SEARCHING, MatchState.PROPOSING) and (
            now - self._search_started >= self.random_after
        ):
            return Phase.RANDOM
        return Phase.INTERESTS

    def seconds_to_random(self, now: float) -> float | None:
        """Time left before the random phase starts, or None if it never will."""
        if self.phase(now) is Phase.RANDOM or self.interests_only:
            return None
        return max(0.0, self._search_started + self.random_after - now)

    @property
    def advertises_anyone(self) -> bool:
        """Whether we list ourselves under the general key (random strangers may find us)."""
        return not self.interests_only

    def is_skipped(self, peer: bytes, now: float) -> bool:
        until = self._skipped.get(peer)
        if until is None:
            return False
        if now >= until:
            del self._skipped[peer]
            return False
        return True

    def choose_candidate(
        self,
        candidates: Mapping[bytes, tuple[str, ...]],
        now: float,
        rng: Random,
    ) -> bytes | None:
        """Pick whom to propose to among ``candidates`` (peer -> interests it was found under).

        Strangers who share an interest come first; in the random phase,
        anyone else follows. Returns None when nobody fits.
        """
        if self.state is not MatchState.SEARCHING:
            return None
        fits = [
            peer
            for peer in candidates
            if peer != self.local_id and not self.is_skipped(peer, now)
        ]
        sharing = [peer for peer in fits if candidates[peer]]
        if sharing:
            return rng.choice(sorted(sharing))
        if fits and self.phase(now) is Phase.RANDOM:
            return rng.choice(sorted(fits))
        return None

    def on_proposal(
        self, peer: bytes, their_interests: tuple[str, ...], now: float
    ) -> Decision:
        """Answer a proposal from ``peer``; on acceptance we are MATCHED with it.

        ``their_interests`` are those the proposer reveals (the ones under
        which it found us; none if it found us under the "anyone" key).
        """
        if self.state is MatchState.IDLE:
            return Decision(False, Refusal.NOT_LOOKING)
        if self._left.get(peer, now) > now:
            return Decision(False, Refusal.BUSY)  # the stranger we just left
        if self.state is MatchState.MATCHED:
            return Decision(False, Refusal.BUSY)
        if self.state is MatchState.PROPOSING:
            if peer != self.peer:
                return Decision(False, Refusal.BUSY)
            if not peer < self.local_id:
                return Decision(False, Refusal.CROSSED)
        common = common_interests(self.interests, their_interests)
        if not common and self.phase(now) is not Phase.RANDOM:
            return Decision(False, Refusal.NO_COMMON_INTERESTS)
        self._go("incoming_accepted")
        self.peer = peer
        return Decision(True, None, common)
