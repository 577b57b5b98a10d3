"""When to walk, whom to propose to, when to announce: the search policy, as a pure planner.

The planner decides; the adapter (``strangers.node.searching``) walks the DHT,
proposes and announces. It never sees a socket or a clock, in the style of
rust-libp2p's query iterators and :mod:`strangers.discovery.lookup`: the
adapter asks :meth:`SearchPlanner.next` what to do *now*, runs it, and reports
each outcome with an ``on_*`` method. Time comes in as two arguments, both in
seconds: ``now`` (a monotonic clock: delays, the matcher's skip lists) and
``wall`` (Unix time: topic-key epochs). Randomness comes in as a
``random.Random``. So the same policy runs on the network, in unit tests, and
in the simulation (``bench/simulate.py``).

One search (from :meth:`SearchPlanner.start` until :class:`Done`) runs two
loops side by side, as ``docs/protocol.md`` §3.4 describes:

* **looking up**: a search walks its keys round by round
  (:func:`~strangers.discovery.topics.search_rounds`), proposes to the round's
  candidates one at a time as the matcher picks them, then pauses
  (:data:`POLL_DELAYS`) before the next search;
* **advertising**: announce ourselves on this epoch's keys
  (:func:`~strangers.discovery.topics.advertise_keys`), retry if nobody took
  a record, and again at each new epoch.

Several actions may be in flight at once (a walk round or a proposal, and an
announcement): call :meth:`~SearchPlanner.next` until it answers
:class:`Wait`, run what it gave, and call it again after each outcome or when
the wait is over.

The planner also holds what a node learns across searches: which topics are
hot, which keys it announced in this epoch, whether the first search's head
start is over, and the node's request budget (:mod:`.budget`): every DHT
request the node sends is charged to it (:meth:`SearchPlanner.on_requests`),
and a new search starts only once the budget holds what the last one cost,
so a searching user costs the network about :data:`~.budget.SEARCH_RATE`
requests a second once its first burst is spent. Announcements are never
held back (others find us through our records); they run the budget into
debt, which the searches then wait out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random

from .budget import TokenBucket, search_budget
from .lookup import K_VALUE, SEARCH_CLOSEST
from .matcher import Matcher, MatchState, Phase, Refusal
from .topics import (
    GENERAL_LANE,
    HOME_SHARD,
    READVERTISE_SPREAD,
    TopicKey,
    advertise_keys,
    draw_shard,
    epoch_at,
    search_rounds,
    seconds_to_next_epoch,
)

POLL_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Pause between two searches of the DHT while nobody fits (then the last value)."""

READVERTISE_RETRY = 3.0
"""Seconds before announcing again when some key was taken by no DHT node."""

LARGE_NETWORK_TABLE = 100
"""A routing table this big means a network of several hundred nodes or more
(tables hold ~130 peers at 1k nodes, ~200 at 10k, docs/scale.md): searches of
a hot interest then probe a random shard before the home shard, and a node
announces on its shard besides home."""

THOROUGH_SOURCES = 5
"""A thorough walk (after a search that found only busy strangers) stops once
this many record holders have answered, or at 20 providers: each holder may
know only some announcers, and a few of them know nearly all."""

HOT_PROVIDERS = K_VALUE
"""A home key whose walk returned this many providers (a full answer) is hot."""

CANDIDATE_GRACE = 0.0
"""Once a walk found a stranger, how long the other walks of its round may still run."""

FIRST_SEARCH_HEAD_START = 2.0
"""Seconds the first search of a process runs alone before announcing and
filling the routing table."""

SKIP_UNREACHABLE = 5.0
"""Seconds before proposing again to a candidate that did not answer in time."""

SKIP_AFTER_REFUSAL = {
    Refusal.BUSY: 2.0,  # proposing to someone else, or chatting: may be free soon
    Refusal.CROSSED: 2.0,
    Refusal.NOT_LOOKING: 30.0,
    Refusal.NO_COMMON_INTERESTS: 10.0,  # until one of us falls back to random
    Refusal.OTHER_LANE: 3600.0,  # its lane will not change while it runs
    Refusal.NO_PROOF: 30.0,  # our proof or stamp was not good enough for it
}
"""Seconds before proposing again to a candidate that refused, per reason."""

READVERTISE_DELAY = (1.0, READVERTISE_SPREAD)
"""Records are renewed this many seconds into a new epoch (uniform): spread
over the epoch's first two minutes instead of a burst."""

STARVED_TABLE = SEARCH_CLOSEST
"""A round walked on a routing table smaller than this had too few peers to
find anyone (a LAN with no bootstrap, a node whose seeds are still
answering): a peer added to the table (mDNS, identify) ends the pause
after such a round at once (:meth:`SearchPlanner.on_peers_added`)."""

FAST_WALK = (1, SEARCH_CLOSEST)
"""``(enough_sources, num_results)`` of a fast walk: stop at the first record holder."""
THOROUGH_WALK = (THOROUGH_SOURCES, K_VALUE)
"""``(enough_sources, num_results)`` of a thorough walk."""


# -- actions -------------------------------------------------------------------


@dataclass(frozen=True)
class Searching:
    """Tell the user a search runs; ``random``: strangers without common interests are welcome."""

    random: bool


@dataclass(frozen=True)
class Walk:
    """Walk these keys at once (GET_PROVIDERS), report each with ``on_walk_result``,
    then the end of the round with ``on_round_done``."""

    keys: tuple[TopicKey, ...]
    thorough: bool
    enough_sources: int
    num_results: int
    attempt: int
    """Which search of this search session (0 first), for logs."""
    round: int
    """Which round of the search (0 first)."""


@dataclass(frozen=True)
class Propose:
    """Propose a chat to ``peer``, revealing ``interests`` only; report with ``on_proposal_result``."""

    peer: bytes
    interests: tuple[str, ...]
    """The interests it was found under: the only ones it learns from us (none if it
    was found under the anyone key only)."""


@dataclass(frozen=True)
class Announce:
    """Provide these keys at once; report with ``on_announced``."""

    keys: tuple[TopicKey, ...]
    closest: Mapping[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    """Per key (multihash), the closest peers a thorough walk found: announce to
    them without walking again."""


@dataclass(frozen=True)
class Wait:
    """Nothing to start now: call ``next`` again at ``until`` (None: after the next outcome)."""

    until: float | None


@dataclass(frozen=True)
class Done:
    """The search is over: we are matched, or no longer searching."""


Action = Searching | Walk | Propose | Announce | Wait | Done


class LookingUp(enum.Enum):
    """Where the looking-up loop stands."""

    IDLE = "idle"
    """No search started (or it is over)."""
    READY = "ready"
    """A new search (walk round 0) starts at the next call of ``next``."""
    WALKING = "walking"
    """A round's walks are in flight."""
    CHOOSING = "choosing"
    """The round's walks are over: propose to its candidates, or go on."""
    PROPOSING = "proposing"
    """A proposal is in flight."""
    PAUSED = "paused"
    """Between two searches, until ``pause_until`` or our records land."""


class Advertising(enum.Enum):
    """Where the advertising loop stands."""

    IDLE = "idle"
    """No search started (or it is over)."""
    HEAD_START = "head-start"
    """The first search of the process runs alone for a while."""
    DUE = "due"
    """Announce at the next call of ``next``."""
    ANNOUNCING = "announcing"
    """Provider records are on their way."""
    SLEEPING = "sleeping"
    """Until a retry or the next epoch."""


class SearchPlanner:
    """The search and advertising policy of one node (docs/protocol.md §3.4)."""

    def __init__(self, matcher: Matcher, rng: Random, *, lane: str = GENERAL_LANE) -> None:
        self.matcher = matcher
        self.lane = lane
        """The lane whose keys this search walks and announces (topics.LANES)."""
        self._rng = rng
        self.looking_up = LookingUp.IDLE
        self.advertising = Advertising.IDLE
        self.shard = HOME_SHARD + 1
        """The shard this search announces on besides home, and probes first."""
        self.lang = ""
        """The language lane searched first and advertised on (``discovery/language.py``)."""
        self.discusses_questions = False
        """Also listed on the question lane (``--questions``: watched strangers are asked there)."""
        self.asking = False
        """Asking a question: search the question lane only, and announce nothing."""
        self.hot: dict[str | None, bool] = {}
        """Per topic (None: anyone), whether its home key was hot when last walked."""
        self.advertised: frozenset[bytes] = frozenset()
        """The keys (multihashes) announced in the current epoch."""
        self.head_start_over = False
        """The first search has ended a round without a match, or has ended."""
        self._advertised_once = False
        self._searches = 0
        # looking up
        self._told_random = False
        self._attempt = 0
        self._thorough = False
        self._rounds: list[list[TopicKey]] = []
        self._round = 0
        self._found: dict[bytes, tuple[str, ...]] = {}
        self._found_any = False
        self._pause_until = 0.0
        self._woken = False
        self._walk_table = 0
        self._peers_added = False
        self._closest: dict[bytes, tuple[bytes, ...]] = {}
        self._proposed: bytes | None = None
        self._pending_searching = False
        # advertising
        self._advertise_at = 0.0
        self._announcing: list[TopicKey] = []
        # the load budget
        self.budget: TokenBucket | None = None
        """DHT requests this node may still send (created at the first search)."""
        self.search_cost = 0.0
        """Requests the last complete search cost (what the next one waits for)."""
        self._cost_so_far = 0.0

    # -- the search ------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin a search (the matcher must be IDLE); the first action tells the user."""
        self.matcher.start_search(now)
        if self.budget is None:
            self.budget = search_budget(now)
        self._searches += 1
        self.shard = draw_shard(self._rng)
        self._told_random = self.matcher.phase(now) is Phase.RANDOM
        self._attempt = 0
        self._thorough = False
        self._woken = False
        self._peers_added = False
        self._proposed = None
        self.looking_up = LookingUp.READY
        self._pending_searching = True
        if self.head_start_over:
            self.advertising = Advertising.DUE
        else:
            self.advertising = Advertising.HEAD_START
            self._advertise_at = now + FIRST_SEARCH_HEAD_START

    @property
    def searching(self) -> bool:
        """Whether a search runs (the matcher is SEARCHING or PROPOSING)."""
        return self.looking_up is not LookingUp.IDLE and self.matcher.state in (
            MatchState.SEARCHING, MatchState.PROPOSING)

    def large_network(self, table_size: int) -> bool:
        """Whether a routing table of ``table_size`` peers means a large network."""
        return table_size >= LARGE_NETWORK_TABLE

    def next(self, now: float, wall: float, table_size: int) -> Action:
        """What to do now; ``table_size`` is the size of our routing table."""
        if not self.searching:
            self._end()
            return Done()
        if self._pending_searching:
            self._pending_searching = False
            return Searching(self._told_random)
        action = self._next_lookup(now, wall, table_size)
        if action is not None:
            return action
        action = self._next_advertising(now, wall, table_size)
        if action is not None:
            return action
        deadlines = []
        if self.looking_up is LookingUp.PAUSED:
            deadlines.append(max(self._pause_until, self.budget_ready_at(now)))
        if self.advertising in (Advertising.HEAD_START, Advertising.SLEEPING):
            deadlines.append(self._advertise_at)
        return Wait(min(deadlines) if deadlines else None)

    def stop(self) -> None:
        """The adapter ended the search (cancelled it): forget what was in flight."""
        self._end()

    def on_requests(self, count: float, now: float) -> None:
        """The node sent ``count`` more DHT requests (walks, announcements, anything)."""
        if count <= 0:
            return
        if self.budget is None:
            self.budget = search_budget(now)
        self.budget.spend(now, count)
        if self.looking_up in (LookingUp.WALKING, LookingUp.CHOOSING, LookingUp.PROPOSING):
            self._cost_so_far += count

    def budget_ready_at(self, now: float) -> float:
        """When the budget will hold what the last search cost (``now`` if it does)."""
        if self.budget is None:
            return now
        return self.budget.ready_at(now, self.search_cost)

    def _end(self) -> None:
        if self.looking_up is not LookingUp.IDLE:
            self.head_start_over = True  # only the first search of a process runs alone
        self.looking_up = LookingUp.IDLE
        self.advertising = Advertising.IDLE

    # -- looking up ------------------------------------------------------------

    def _next_lookup(self, now: float, wall: float, table_size: int) -> Action | None:
        if self.looking_up is LookingUp.PAUSED:
            ready = self.budget_ready_at(now)
            if self._woken and now >= ready:
                # Our records just landed on the DHT: a stranger who joined at
                # the same moment and looked before may be listed by now too.
                self._woken = False
                self._attempt = 0
            elif self._peers_added and self._walk_table < STARVED_TABLE and now >= ready:
                # The last search had (almost) nobody to ask, and somebody
                # new is here: ask now rather than at the end of the pause.
                pass
            elif now < max(self._pause_until, ready):
                return None
            self.looking_up = LookingUp.READY
        if self.looking_up is LookingUp.READY:
            phase = self.matcher.phase(now)
            if phase is Phase.RANDOM and not self._told_random:
                self._told_random = True
                return Searching(True)
            # On a small network, home only (it lists everyone); on a large
            # one, hot topics probe our random shard first (search_rounds).
            self._rounds = search_rounds(
                self.matcher.interests, anyone=phase is Phase.RANDOM, now=wall,
                probe=self.shard if self.large_network(table_size) else None, hot=self.hot,
                lane=self.lane, lang=self.lang, questions=self.asking)
            self._cost_so_far = 0.0
            self._closest.clear()
            self._found_any = False
            self._round = 0
            self._walk_table = table_size
            self._peers_added = False
            return self._walk()
        if self.looking_up is LookingUp.CHOOSING:
            return self._choose(now)
        return None  # WALKING or PROPOSING: wait for the outcome

    def _walk(self) -> Walk:
        self.looking_up = LookingUp.WALKING
        self._found = {}
        enough_sources, num_results = THOROUGH_WALK if self._thorough else FAST_WALK
        return Walk(tuple(self._rounds[self._round]), self._thorough, enough_sources,
                    num_results, self._attempt, self._round)

    def on_walk_result(self, key: TopicKey, providers: Iterable[bytes],
                       closest: Sequence[bytes], now: float, wall: float) -> bool:
        """One walk of the round ended with ``providers`` (peer ids) and its
        ``closest`` peers; True if the round's other walks should now end
        (after :data:`CANDIDATE_GRACE`): a stranger we may propose to was found
        under an interest key."""
        if self.looking_up is not LookingUp.WALKING:
            return False  # a late result of a search that is over
        listed = list(dict.fromkeys(providers))
        if key.shard == HOME_SHARD and key.epoch == epoch_at(wall):
            # what this topic's next searches probe first (search_rounds)
            self.hot[key.interest] = len(listed) >= HOT_PROVIDERS
        providers = [peer for peer in listed if peer != self.matcher.local_id]
        if self._thorough and not listed and closest:
            # A complete walk: its closest peers are where to announce
            # ourselves on this key, without walking again.
            self._closest[key.multihash] = tuple(closest)
        for peer in providers:
            interests = self._found.get(peer, ())
            if key.interest is not None and key.interest not in interests:
                interests = (*interests, key.interest)
            self._found[peer] = interests
        return key.interest is not None and any(
            not self.matcher.is_skipped(peer, now) for peer in providers)

    def on_peers_added(self) -> bool:
        """Peers joined our routing table (mDNS, identify); True if the
        search should look again now (call :meth:`next`): it is paused after
        a search whose table was smaller than :data:`STARVED_TABLE`. Peers
        that come while a round walks count too, once that round pauses."""
        self._peers_added = True
        return self.looking_up is LookingUp.PAUSED and self._walk_table < STARVED_TABLE

    def on_round_done(self) -> None:
        """Every walk of the round has ended (reported, failed, or cut short)."""
        if self.looking_up is LookingUp.WALKING:
            self._found_any = self._found_any or bool(self._found)
            self.looking_up = LookingUp.CHOOSING

    def _choose(self, now: float) -> Action | None:
        peer = self.matcher.choose_candidate(self._found, now, self._rng)
        if peer is not None:
            self.matcher.propose(peer)
            self._proposed = peer
            self.looking_up = LookingUp.PROPOSING
            return Propose(peer, self._found[peer])
        last = self._round == len(self._rounds) - 1
        if self._found or last:
            self.head_start_over = True  # nobody free: announce ourselves
        if not last:
            self._round += 1
            return self._walk()
        # Everyone we found was busy or skipped: others may be listed on
        # peers the fast walk did not reach.
        self._thorough = self._found_any
        delay = POLL_DELAYS[min(self._attempt, len(POLL_DELAYS) - 1)]
        self._attempt += 1
        left = self.matcher.seconds_to_random(now)  # None once random
        if left is not None:
            delay = min(delay, left + 0.01)
        # the load budget: the next search waits until it can pay what this one cost
        self.search_cost = self._cost_so_far
        self._pause_until = now + delay
        self.looking_up = LookingUp.PAUSED
        return None

    def on_proposal_result(self, peer: bytes, now: float, *, accepted: bool,
                           refusal: Refusal | None = None) -> bool:
        """The proposal to ``peer`` was accepted, refused (``refusal``), or
        went unanswered (neither); True if we are now matched with ``peer``."""
        if self.looking_up is not LookingUp.PROPOSING or peer != self._proposed:
            return False  # a late answer of a search that is over
        self._proposed = None
        self.looking_up = LookingUp.CHOOSING
        if self.matcher.state is not MatchState.PROPOSING or self.matcher.peer != peer:
            # Meanwhile we accepted this peer's own proposal (or another's):
            # that match stands; this late answer is ignored.
            return False
        if accepted:
            self.matcher.proposal_accepted(peer)
            return True
        skip = SKIP_UNREACHABLE if refusal is None else SKIP_AFTER_REFUSAL[refusal]
        self.matcher.proposal_failed(peer, now, skip)
        return False

    # -- advertising -----------------------------------------------------------

    def _next_advertising(self, now: float, wall: float, table_size: int) -> Action | None:
        if self.advertising is Advertising.HEAD_START and (
                self.head_start_over or now >= self._advertise_at):
            self.advertising = Advertising.DUE
        if self.advertising is Advertising.SLEEPING and now >= self._advertise_at:
            self.advertising = Advertising.DUE
        if self.advertising is not Advertising.DUE or self.asking:
            return None
        # The other shards are only searched on a large network: on a small
        # one, home is enough (a node whose table has grown by its next
        # announcement lists itself on its shard too).
        shard = self.shard if self.large_network(table_size) else HOME_SHARD
        self._announcing = advertise_keys(self.matcher.interests,
                                          anyone=self.matcher.advertises_anyone,
                                          now=wall, shard=shard, lane=self.lane, lang=self.lang,
                                          questions=self.discusses_questions)
        fresh = tuple(key for key in self._announcing if key.multihash not in self.advertised)
        if not fresh:
            self._sleep_to_next_epoch(now, wall)
            return None
        self.advertising = Advertising.ANNOUNCING
        closest = {key.multihash: self._closest.pop(key.multihash)
                   for key in fresh if key.multihash in self._closest}
        return Announce(fresh, closest)

    def on_announced(self, stored: Sequence[int], now: float, wall: float) -> int | None:
        """The announcement ended; ``stored``: how many DHT nodes took each key
        (0 for a key that failed). Returns, the first time records were stored
        in this process, the smallest count (to tell the user), else None."""
        if self.advertising is not Advertising.ANNOUNCING:
            return None  # a late outcome of a search that is over
        if not stored or min(stored) == 0:
            # nobody took it: no DHT peers yet
            self.advertising = Advertising.SLEEPING
            self._advertise_at = now + READVERTISE_RETRY
            return None
        self.advertised = frozenset(key.multihash for key in self._announcing)
        self._woken = True
        self._sleep_to_next_epoch(now, wall)
        if self._advertised_once:
            return None
        self._advertised_once = True
        return min(stored)

    def _sleep_to_next_epoch(self, now: float, wall: float) -> None:
        # Searches cover the previous epoch too, so re-announcing can be
        # spread over the new epoch's first minutes instead of a burst.
        self.advertising = Advertising.SLEEPING
        self._advertise_at = (now + seconds_to_next_epoch(wall)
                              + self._rng.uniform(*READVERTISE_DELAY))
