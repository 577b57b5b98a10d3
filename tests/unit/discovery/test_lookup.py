"""The closest-peers lookup, driven over a simulated in-memory network with a fake clock."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import pytest

from strangers.discovery.lookup import (
    ALPHA,
    K_VALUE,
    ClosestPeersQuery,
    LookupStatistics,
    kad_distance,
)


def sha_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


class Network:
    """``size`` random peers; each knows its ``neighbours`` closest peers and ``shortcuts`` random ones.

    A peer asked about a key answers the K_VALUE peers it knows closest to that
    key, as a Kademlia node answers FIND_NODE from its routing table.
    Distances are computed here from hashlib, independently of ``kad_distance``.
    """

    def __init__(self, rng: random.Random, size: int = 500, neighbours: int = 20, shortcuts: int = 10) -> None:
        self.peers = [rng.randbytes(34) for _ in range(size)]
        self.hashes = {peer: sha_int(peer) for peer in self.peers}
        self.known: dict[bytes, list[bytes]] = {}
        for peer in self.peers:
            others = [other for other in self.peers if other != peer]
            others.sort(key=lambda other: self.hashes[other] ^ self.hashes[peer])
            far = others[neighbours:]
            self.known[peer] = others[:neighbours] + rng.sample(far, shortcuts)

    def answer(self, peer: bytes, key: bytes) -> list[bytes]:
        target = sha_int(key)
        return sorted(self.known[peer], key=lambda other: self.hashes[other] ^ target)[:K_VALUE]

    def closest(self, key: bytes, count: int, among: set[bytes] | None = None) -> list[bytes]:
        target = sha_int(key)
        pool = self.peers if among is None else [peer for peer in self.peers if peer in among]
        return sorted(pool, key=lambda peer: self.hashes[peer] ^ target)[:count]


@dataclass
class Run:
    """What the driver saw during one lookup."""

    max_in_flight: int = 0
    late_answers: int = 0
    rounds: int = 0
    asked: list[bytes] = field(default_factory=list)


def drive(
    query: ClosestPeersQuery,
    network: Network,
    rng: random.Random,
    *,
    peer_timeout: float,
    parallelism: int,
    silent: frozenset[bytes] = frozenset(),
    refusing: frozenset[bytes] = frozenset(),
    slow: frozenset[bytes] = frozenset(),
) -> Run:
    """Run ``query`` to the end on a fake clock.

    ``silent`` peers never answer, ``refusing`` ones fail at once (connection
    refused), ``slow`` ones answer after their deadline; the rest answer within
    a random latency below ``peer_timeout``.
    """
    run = Run()
    now = 0.0
    arrivals: list[tuple[float, bytes]] = []  # (time, peer)
    outstanding: dict[bytes, float] = {}  # asked, neither answered nor past its deadline
    asked_time: dict[bytes, float] = {}
    while not query.finished:
        run.rounds += 1
        assert run.rounds < 10_000, "the lookup does not end"
        for peer, asked_at in list(outstanding.items()):
            if now >= asked_at + peer_timeout:
                del outstanding[peer]
        for peer in query.next(now):
            assert peer not in run.asked, "a peer was asked twice"
            run.asked.append(peer)
            asked_time[peer] = now
            if peer in refusing:
                query.on_failure(peer)
                continue
            outstanding[peer] = now
            if peer in slow:
                arrivals.append((now + peer_timeout * 1.5, peer))
            elif peer not in silent:
                arrivals.append((now + rng.uniform(0.01, peer_timeout * 0.9), peer))
        run.max_in_flight = max(run.max_in_flight, len(outstanding))
        assert len(outstanding) <= parallelism
        if query.finished:
            break
        # advance the clock to the next answer or deadline
        deadline = query.next_deadline()
        times = [time for time, _ in arrivals] + ([deadline] if deadline is not None else [])
        if not times:
            # nothing in flight and nothing to ask: next() must now say finished
            query.next(now)
            assert query.finished
            break
        now = min(times)
        for time, peer in sorted(arrivals):
            if time <= now:
                arrivals.remove((time, peer))
                if peer in outstanding:
                    del outstanding[peer]
                else:
                    run.late_answers += 1
                query.on_success(peer, network.answer(peer, query.key))
    assert query.next(now) == []
    # answers still on their way once the lookup ended do not change its result
    result = query.result()
    for time, peer in sorted(arrivals):
        if time >= asked_time[peer] + peer_timeout:
            run.late_answers += 1
        query.on_success(peer, network.answer(peer, query.key))
    assert query.result() == result
    return run


SEEDS = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def network() -> Network:
    return Network(random.Random(20240601))


# --- convergence -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_converges_to_the_true_closest_peers(network: Network, seed: int) -> None:
    rng = random.Random(seed)
    key = rng.randbytes(34)
    seeds = rng.sample(network.peers, 3)
    query = ClosestPeersQuery(key, seeds)
    run = drive(query, network, rng, peer_timeout=2.0, parallelism=ALPHA)
    assert query.finished
    assert query.result() == network.closest(key, K_VALUE)
    # it did not simply ask everybody
    assert len(run.asked) < len(network.peers) // 3
    assert run.max_in_flight == ALPHA  # every slot was used, none more


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("parallelism", [1, 2, 5, 10])
def test_parallelism_is_respected(network: Network, seed: int, parallelism: int) -> None:
    rng = random.Random(seed)
    key = rng.randbytes(34)
    query = ClosestPeersQuery(key, rng.sample(network.peers, 15), parallelism=parallelism)
    run = drive(query, network, rng, peer_timeout=2.0, parallelism=parallelism)
    assert run.max_in_flight == parallelism
    assert query.result() == network.closest(key, K_VALUE)


@pytest.mark.parametrize("seed", SEEDS)
def test_converges_to_the_closest_live_peers_despite_dead_and_slow_ones(network: Network, seed: int) -> None:
    rng = random.Random(seed)
    key = rng.randbytes(34)
    near = network.closest(key, 24)
    # half of the peers closest to the key misbehave, in three ways
    silent = frozenset(near[0::6])
    refusing = frozenset(near[1::6])
    slow = frozenset(near[2::6])
    bad = silent | refusing | slow
    live = {peer for peer in network.peers if peer not in bad}
    seeds = rng.sample(sorted(live), 3)
    query = ClosestPeersQuery(key, seeds, peer_timeout=1.0)
    run = drive(query, network, rng, peer_timeout=1.0, parallelism=ALPHA,
                silent=silent, refusing=refusing, slow=slow)
    assert query.result() == network.closest(key, K_VALUE, among=live)
    assert not bad & set(query.result())
    asked_bad = bad & set(run.asked)
    assert asked_bad == bad  # all tried: each is closer than the 20th live peer
    assert run.late_answers == len(slow)  # slow ones did answer, too late
    stats = query.statistics()
    assert stats.failed == len(bad)
    assert stats.succeeded == len(run.asked) - len(bad)


def test_num_results_bounds_the_result_and_the_work(network: Network) -> None:
    rng = random.Random(99)
    key = rng.randbytes(34)
    query = ClosestPeersQuery(key, rng.sample(network.peers, 3), num_results=5)
    run = drive(query, network, rng, peer_timeout=2.0, parallelism=ALPHA)
    assert query.result() == network.closest(key, 5)
    full = ClosestPeersQuery(key, run.asked[:3])
    full_run = drive(full, network, random.Random(99), peer_timeout=2.0, parallelism=ALPHA)
    assert len(run.asked) < len(full_run.asked)


# --- timeouts and late answers, step by step -----------------------------------------


def ranked(key: bytes, peers: list[bytes]) -> list[bytes]:
    return sorted(peers, key=lambda peer: sha_int(peer) ^ sha_int(key))


KEY = b"\x12\x20" + bytes(32)
PEERS = ranked(KEY, [bytes([n]) * 8 for n in range(1, 9)])


def test_a_silent_peer_fails_after_its_timeout_and_frees_its_slot() -> None:
    first, second, third = PEERS[:3]
    query = ClosestPeersQuery(KEY, [third, first, second], parallelism=2, peer_timeout=2.0)
    assert query.next(now=10.0) == [first, second]
    assert query.next_deadline() == 12.0
    query.on_success(second, [])
    assert query.next(now=10.5) == [third]  # second's slot is free
    assert query.next_deadline() == 12.0
    assert query.next(now=11.999) == []  # first has not timed out yet
    assert query.statistics() == LookupStatistics(queried=3, succeeded=1, failed=0, known=3)
    assert query.next(now=12.0) == []  # first fails now; nobody left to ask
    assert query.statistics() == LookupStatistics(queried=3, succeeded=1, failed=1, known=3)
    assert query.next_deadline() == 12.5
    assert not query.finished  # third is still due
    query.on_success(third, [])
    assert query.finished
    assert query.result() == [second, third]


def test_a_timed_out_slot_goes_to_the_next_peer() -> None:
    first, second = PEERS[:2]
    query = ClosestPeersQuery(KEY, [first, second], parallelism=1, peer_timeout=3.0)
    assert query.next(now=0.0) == [first]
    assert query.next(now=2.9) == []
    assert query.next(now=3.0) == [second]
    assert query.next_deadline() == 6.0


def test_a_late_answer_is_ignored() -> None:
    first, second, named = PEERS[:3]
    query = ClosestPeersQuery(KEY, [first, second], parallelism=1, peer_timeout=1.0)
    assert query.next(now=0.0) == [first]
    assert query.next(now=1.0) == [second]  # first timed out
    query.on_success(first, [named])  # ...and answers after all
    assert query.statistics() == LookupStatistics(queried=2, succeeded=0, failed=1, known=2)
    query.on_success(second, [])
    assert query.finished
    assert query.result() == [second]  # first counts as failed, its peers unheard of


def test_answers_from_peers_never_asked_are_ignored() -> None:
    first, stranger, named = PEERS[:3]
    query = ClosestPeersQuery(KEY, [first])
    query.on_success(stranger, [named])  # unknown peer
    query.on_success(first, [named])  # known, but not asked yet
    query.on_failure(stranger)
    query.on_failure(first)  # not asked: nothing to fail
    assert query.statistics() == LookupStatistics(queried=0, succeeded=0, failed=0, known=1)
    assert query.next(now=0.0) == [first]


def test_an_answer_after_a_failure_is_ignored_and_the_reverse() -> None:
    first, second, named = PEERS[:3]
    query = ClosestPeersQuery(KEY, [first, second])
    assert query.next(now=0.0) == [first, second]
    query.on_failure(first)
    query.on_success(first, [named])
    query.on_success(second, [])
    query.on_failure(second)
    assert query.statistics() == LookupStatistics(queried=2, succeeded=1, failed=1, known=2)
    assert query.result() == [second]


def test_closer_peers_from_an_answer_are_asked_next() -> None:
    first, second, third, fourth = PEERS[:4]
    query = ClosestPeersQuery(KEY, [fourth], parallelism=1)
    assert query.next(now=0.0) == [fourth]
    query.on_success(fourth, [second, third, first])
    assert query.next(now=0.1) == [first]
    query.on_success(first, [])
    assert query.next(now=0.2) == [second]


def test_finished_when_nobody_is_left() -> None:
    query = ClosestPeersQuery(KEY, PEERS[:3])
    assert not query.finished
    asked = query.next(now=0.0)
    assert sorted(asked) == sorted(PEERS[:3])
    for peer in asked:
        query.on_failure(peer)
    assert query.finished
    assert query.result() == []
    assert query.next(now=1.0) == []
    assert query.next_deadline() is None


def test_without_seeds_it_is_finished_at_once() -> None:
    query = ClosestPeersQuery(KEY, [])
    assert query.finished
    assert query.next(now=0.0) == []
    assert query.result() == []
    assert query.statistics() == LookupStatistics(queried=0, succeeded=0, failed=0, known=0)


def test_finished_once_the_closest_answered_even_if_others_are_pending() -> None:
    query = ClosestPeersQuery(KEY, PEERS, num_results=2, parallelism=8)
    asked = query.next(now=0.0)
    assert asked == PEERS[:2]  # only as many as could be in the result
    query.on_success(PEERS[0], [])
    assert not query.finished
    query.on_success(PEERS[1], [])
    assert query.finished
    assert query.result() == PEERS[:2]
    assert query.next(now=0.1) == []


def test_only_the_num_results_closest_live_peers_are_asked() -> None:
    query = ClosestPeersQuery(KEY, PEERS, num_results=3, parallelism=8)
    assert query.next(now=0.0) == PEERS[:3]
    query.on_failure(PEERS[1])
    assert query.next(now=0.1) == [PEERS[3]]  # the failed one is replaced by the next


def test_local_peer_and_duplicates_are_not_added() -> None:
    me, other = PEERS[:2]
    query = ClosestPeersQuery(KEY, [me, other, other], local_id=me)
    assert query.statistics().known == 1
    assert query.next(now=0.0) == [other]
    query.on_success(other, [me, other])
    assert query.statistics().known == 1
    assert query.result() == [other]


def test_add_peers_later() -> None:
    query = ClosestPeersQuery(KEY, [])
    query.add_peers(iter(PEERS[:2]))
    assert query.statistics().known == 2
    assert not query.finished


# --- settings and distance ---------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"num_results": 0},
        {"num_results": -1},
        {"parallelism": 0},
        {"peer_timeout": 0},
        {"peer_timeout": -1.0},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="bad lookup settings") as info:
        ClosestPeersQuery(KEY, PEERS, **settings)  # type: ignore[arg-type]
    name, value = next(iter(settings.items()))
    assert f"{name}={value!r}" in str(info.value)


def test_kad_distance_is_the_xor_of_sha256() -> None:
    a, b = b"alice", b"bob"
    assert kad_distance(a, b) == sha_int(a) ^ sha_int(b)
    assert kad_distance(a, b) == kad_distance(b, a)
    assert kad_distance(a, a) == 0
    assert 0 < kad_distance(a, b) < 2**256


def test_statistics_count_what_happened() -> None:
    query = ClosestPeersQuery(KEY, PEERS[:4], parallelism=3, peer_timeout=1.0)
    asked = query.next(now=0.0)
    query.on_success(asked[0], [PEERS[5]])
    query.on_failure(asked[1])
    stats = query.statistics()
    assert stats == LookupStatistics(queried=3, succeeded=1, failed=1, known=5)
    assert query.next_deadline() == 1.0
