"""MatchService over fake hosts and streams, under MockClock.

``propose`` never raises and returns the answer, or None on any failure;
``handle_stream`` never raises and resets the stream on bad, slow or broken
input.  An acceptance reveals only the interests both sides share.
"""

from __future__ import annotations

import struct

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from libp2p_fakes import FakeHost, FakeStream, make_peer, stream_pair
from multiaddr import Multiaddr

from strangers.discovery.matcher import Matcher, MatchState, Refusal
from strangers.discovery.proposal import (
    MAX_PROPOSAL_FRAME,
    Accept,
    Propose,
    Refuse,
    decode,
    encode,
    frame_length,
)
from strangers.discovery.rtt import RELAYED_DIAL
from strangers.node.matching import (
    ANSWER_TIMEOUT,
    DIAL_TIMEOUT,
    MATCH_PROTOCOL,
    PROPOSAL_TIMEOUT,
    MatchService,
    PendingMatch,
)

ALICE, BOB = make_peer("alice"), make_peer("bob")
MATCH_ID = b"\x01" * 16
OTHER_ID = b"\x02" * 16


class Node:
    """A fake host with a real Matcher and MatchService."""

    def __init__(self, peer, nursery: trio.Nursery, interests: tuple[str, ...],
                 random_after: float = 10.0, searching: bool = True) -> None:
        self.peer = peer
        self.host = FakeHost(peer.peer_id, nursery)
        self.matcher = Matcher(local_id=peer.peer_id.to_bytes(), interests=interests,
                               random_after=random_after)
        self.accepted: list[PendingMatch] = []
        self.addrs: list[Multiaddr] = []
        """What the node announces (its ``info``)."""
        self.service = MatchService(self.host, self.matcher, on_accepted=self.accepted.append)
        self.host.set_stream_handler(MATCH_PROTOCOL, self.service.handle_stream)
        if searching:
            self.matcher.start_search(trio.current_time())

    @property
    def info(self) -> PeerInfo:
        return PeerInfo(self.peer.peer_id, self.addrs)

    async def propose_to(self, other: Node, interests: tuple[str, ...],
                         match_id: bytes = MATCH_ID):
        self.matcher.propose(other.peer.peer_id.to_bytes())
        return await self.service.propose(other.info, match_id, interests)


async def pair(nursery: trio.Nursery, alice_interests=("jazz",), bob_interests=("jazz",),
               **bob_options) -> tuple[Node, Node]:
    alice = Node(ALICE, nursery, alice_interests)
    bob = Node(BOB, nursery, bob_interests, **bob_options)
    alice.host.connect(bob.host)
    return alice, bob


# -- honest proposals and what they reveal ---------------------------------------------------


async def test_an_accept_reveals_only_the_guessed_interest_never_the_full_list(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery, alice_interests=("cinema",),
                                bob_interests=("secret one", "cinema", "secret two"))
        answer = await alice.propose_to(bob, ("cinema",))
    assert answer == Accept(MATCH_ID, ("cinema",))
    assert bob.accepted == [PendingMatch(ALICE.peer_id, MATCH_ID, ("cinema",))]
    assert bob.matcher.state is MatchState.MATCHED


async def test_the_wire_answer_itself_carries_only_the_intersection(autojump_clock):
    """Read Bob's raw answer (not the filtered one propose returns)."""
    async with trio.open_nursery() as nursery:
        _alice, bob = await pair(nursery, bob_interests=("tea", "jazz", "go"))
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        nursery.start_soon(bob.service.handle_stream, theirs)
        await ours.write(encode(Propose(MATCH_ID, ("go", "chess", "jazz"))))
        answer = decode(await ours.read(frame_length(await ours.read(4))))
    assert answer == Accept(MATCH_ID, ("jazz", "go"))  # Bob's order, nothing more


async def test_a_proposal_found_under_the_anyone_key_carries_no_interest(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery, bob_interests=("jazz", "go"), random_after=0.0)
        assert await alice.propose_to(bob, ()) == Accept(MATCH_ID, ())
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery, bob_interests=("jazz", "go"), random_after=10.0)
        answer = await alice.propose_to(bob, ())
    assert answer == Refuse(MATCH_ID, Refusal.NO_COMMON_INTERESTS)


async def test_an_old_peer_answering_with_all_its_interests_is_cut_to_what_we_asked(autojump_clock):
    async def old_peer(stream: FakeStream) -> None:
        proposal = decode(await stream.read(frame_length(await stream.read(4))))
        await stream.write(encode(Accept(proposal.match_id, ("a", "jazz", "z"))))
        await stream.close()

    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)
        bob.host.set_stream_handler(MATCH_PROTOCOL, old_peer)
        assert await alice.propose_to(bob, ("jazz",)) == Accept(MATCH_ID, ("jazz",))


async def test_a_repeated_proposal_is_accepted_again_under_its_new_match_id(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery, bob_interests=("jazz", "go"))
        assert await alice.propose_to(bob, ("jazz",)) == Accept(MATCH_ID, ("jazz",))
        alice.matcher.stop()
        alice.matcher.start_search(trio.current_time())
        again = await alice.propose_to(bob, ("jazz", "go"), match_id=OTHER_ID)
    assert again == Accept(OTHER_ID, ("jazz", "go"))
    assert bob.accepted == [PendingMatch(ALICE.peer_id, MATCH_ID, ("jazz",)),
                            PendingMatch(ALICE.peer_id, OTHER_ID, ("jazz",))]
    assert bob.service.accepted == bob.accepted[-1]


async def test_a_busy_candidate_refuses(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)
        carol = Node(make_peer("carol"), nursery, ("jazz",))
        carol.host.connect(bob.host)
        assert await alice.propose_to(bob, ("jazz",)) == Accept(MATCH_ID, ("jazz",))
        assert await carol.propose_to(bob, ("jazz",)) == Refuse(MATCH_ID, Refusal.BUSY)


# -- the proposer's side: every failure is None, in bounded time ---------------------------


async def _propose_against(handler, *, dial_delay: float = 0.0, fail_dials: int = 0,
                           bob_addrs: tuple[str, ...] = ()):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)
        bob.addrs = [Multiaddr(addr) for addr in bob_addrs]
        if handler is not None:
            bob.host.set_stream_handler(MATCH_PROTOCOL, handler)
        alice.host.dial_delay = dial_delay
        alice.host.fail_dials = fail_dials
        started = trio.current_time()
        answer = await alice.propose_to(bob, ("jazz",))
        took = trio.current_time() - started
        nursery.cancel_scope.cancel()
    return answer, took, alice


async def _read_proposal(stream: FakeStream) -> None:
    await stream.read(frame_length(await stream.read(4)))


async def test_a_candidate_that_never_answers_is_skipped_after_the_answer_timeout(autojump_clock):
    async def mute(stream: FakeStream) -> None:
        await _read_proposal(stream)
        await trio.sleep_forever()

    answer, took, _ = await _propose_against(mute)
    assert answer is None
    assert took == pytest.approx(ANSWER_TIMEOUT, abs=0.5)


async def test_a_candidate_that_cannot_be_dialled_in_time_is_skipped(autojump_clock):
    answer, took, _ = await _propose_against(None, dial_delay=60.0)
    assert answer is None and took == pytest.approx(DIAL_TIMEOUT, abs=0.1)


RELAY = make_peer("relay").peer_id
BEHIND_A_RELAY = (f"/ip4/203.0.113.9/tcp/4001/p2p/{RELAY}/p2p-circuit",)
DIRECT = ("/ip4/198.51.100.4/tcp/4001",)


async def test_a_candidate_behind_a_relay_gets_a_relayed_dials_time(autojump_clock):
    # a dial through a relay costs ~8 round trips of a direct path (rtt.RELAYED_DIAL):
    # 1.5 s is past a direct dial's deadline and within a relayed one's
    answer, took, _ = await _propose_against(None, dial_delay=1.5, bob_addrs=BEHIND_A_RELAY)
    assert answer == Accept(MATCH_ID, ("jazz",))
    assert took == pytest.approx(1.5, abs=0.1)
    answer, took, _ = await _propose_against(None, dial_delay=1.5, bob_addrs=DIRECT)
    assert answer is None and took == pytest.approx(DIAL_TIMEOUT, abs=0.1)


async def test_a_relayed_candidate_that_cannot_be_dialled_in_time_is_skipped(autojump_clock):
    answer, took, _ = await _propose_against(None, dial_delay=60.0,
                                             bob_addrs=DIRECT + BEHIND_A_RELAY)
    assert answer is None and took == pytest.approx(RELAYED_DIAL.floor, abs=0.1)
    assert RELAYED_DIAL.floor > DIAL_TIMEOUT


async def test_a_refused_dial_is_retried_once_then_skipped(autojump_clock):
    async def unused(stream: FakeStream) -> None:  # pragma: no cover - never dialled
        raise AssertionError("dialled")

    answer, took, alice = await _propose_against(unused, fail_dials=5)
    assert answer is None and took < 1.0
    assert alice.host.fail_dials == 3  # two attempts


HOSTILE_ANSWERS = {
    "never-used-byte": b"\x00\x00\x00\x01\xc1",
    "zero-length": b"\x00\x00\x00\x00",
    "too-long": struct.pack(">I", MAX_PROPOSAL_FRAME + 1) + b"\x80",
    "a-proposal-back": encode(Propose(MATCH_ID, ("jazz",))),
    "wrong-match-id": encode(Accept(OTHER_ID, ("jazz",))),
    "deeply-nested": struct.pack(">I", 1002) + b"\x91" * 1000 + b"\xc0\xc0",
}


@pytest.mark.parametrize("raw", list(HOSTILE_ANSWERS.values()), ids=list(HOSTILE_ANSWERS))
async def test_a_hostile_answer_is_none_not_a_crash(autojump_clock, raw):
    async def hostile(stream: FakeStream) -> None:
        await _read_proposal(stream)
        await stream.write(raw)
        await stream.close()

    answer, took, _ = await _propose_against(hostile)
    assert answer is None and took < 1.0


async def test_a_candidate_that_resets_is_retried_once_then_none(autojump_clock):
    calls: list[int] = []

    async def resetting(stream: FakeStream) -> None:
        calls.append(1)
        await stream.reset()

    answer, _took, _ = await _propose_against(resetting)
    assert answer is None and len(calls) == 2


async def test_a_bug_under_propose_is_none_not_a_crash(autojump_clock, monkeypatch):
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)

        async def broken_new_stream(peer_id, protocols):
            raise KeyError("something deep in the library")

        monkeypatch.setattr(alice.host, "get_peerstore", lambda: 1 / 0)
        assert await alice.service.propose(PeerInfo(BOB.peer_id, ["/ip4/1.2.3.4/tcp/1"]),
                                           MATCH_ID, ("jazz",)) is None
        monkeypatch.setattr(alice.host, "new_stream", broken_new_stream)
        assert await alice.propose_to(bob, ("jazz",)) is None


# -- the candidate's side: handle_stream never raises, bad input resets ----------------------


async def _serve_raw(bob_options: dict, script) -> tuple[FakeStream, Node, float]:
    """Bob's handle_stream against a raw stream from Alice played by ``script``; returns
    Alice's end, Bob and how long handle_stream took."""
    async with trio.open_nursery() as nursery:
        _alice, bob = await pair(nursery, **bob_options)
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        done = trio.Event()
        took: list[float] = []

        async def serve() -> None:
            started = trio.current_time()
            await bob.service.handle_stream(theirs)  # a raise here fails the test
            took.append(trio.current_time() - started)
            done.set()

        nursery.start_soon(serve)
        await script(ours)
        with trio.fail_after(60):
            await done.wait()
    return ours, bob, took[0]


BAD_PROPOSALS = {
    "never-used-byte": b"\x00\x00\x00\x01\xc1",
    "zero-length": b"\x00\x00\x00\x00",
    "length-above-max": struct.pack(">I", MAX_PROPOSAL_FRAME + 1) + b"\x80",
    "an-accept": encode(Accept(MATCH_ID, ("jazz",))),
    "a-refuse": encode(Refuse(MATCH_ID, Refusal.BUSY)),
    "deeply-nested": struct.pack(">I", 1002) + b"\x91" * 1000 + b"\xc0\xc0",
    "nested-in-interests": (lambda body: struct.pack(">I", len(body)) + body)(
        b"\x84\xa1t\xa7propose\xa1v\x01\xa1m\xc4\x10" + MATCH_ID + b"\xa1i" + b"\x91" * 900 + b"\xc0"),
    "truncated": encode(Propose(MATCH_ID, ("jazz",)))[:-3],
}


@pytest.mark.parametrize("raw", list(BAD_PROPOSALS.values()), ids=list(BAD_PROPOSALS))
async def test_a_bad_proposal_resets_the_stream_and_changes_nothing(autojump_clock, raw):
    async def hostile(stream: FakeStream) -> None:
        await stream.write(raw)
        if raw is BAD_PROPOSALS["truncated"]:
            await stream.close()

    ours, bob, took = await _serve_raw({}, hostile)
    assert ours.was_reset
    assert took < 1.0
    assert bob.matcher.state is MatchState.SEARCHING and bob.accepted == []


async def test_a_silent_proposer_is_reset_after_the_proposal_timeout(autojump_clock):
    async def silent(stream: FakeStream) -> None:
        await stream.write(b"\x00\x00")  # half a length prefix, then nothing

    ours, bob, took = await _serve_raw({}, silent)
    assert ours.was_reset
    assert took == pytest.approx(PROPOSAL_TIMEOUT, abs=0.1)
    assert bob.matcher.state is MatchState.SEARCHING


async def test_a_proposer_that_never_reads_the_answer_cannot_hold_the_handler(autojump_clock):
    async def frozen(stream: FakeStream) -> None:
        await stream.write(encode(Propose(MATCH_ID, ("jazz",))))
        stream.freeze()

    # a window of 1 byte: Bob's answer blocks once the proposer stops reading
    async with trio.open_nursery() as nursery:
        _alice, bob = await pair(nursery)
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id, window=1)
        await ours.write(b"")  # nothing: the window starts empty
        await theirs.write(b"x")  # Bob's direction is now full
        nursery.start_soon(frozen, ours)
        started = trio.current_time()
        await bob.service.handle_stream(theirs)
        took = trio.current_time() - started
    assert took == pytest.approx(ANSWER_TIMEOUT, abs=0.1)
    assert theirs.was_reset


async def test_a_bug_while_answering_resets_only_that_stream(autojump_clock):
    def broken(pending: PendingMatch) -> None:
        raise RuntimeError("a bug in the node")

    async def propose(stream: FakeStream) -> None:
        await stream.write(encode(Propose(MATCH_ID, ("jazz",))))

    async with trio.open_nursery() as nursery:
        _alice, bob = await pair(nursery)
        bob.service.on_accepted = broken
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        nursery.start_soon(propose, ours)
        await bob.service.handle_stream(theirs)
    assert ours.was_reset


async def test_a_stream_without_a_peer_id_is_reset(autojump_clock):
    async with trio.open_nursery() as nursery:
        _alice, bob = await pair(nursery)
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        theirs.muxed_conn = None
        await bob.service.handle_stream(theirs)
    assert ours.was_reset


# -- the proposal is made beside the dial ------------------------------------------------------


class _SlowStamp:
    """Safety whose stamp takes ``stamp`` seconds (checkpoints inside, as node/stamping.py)."""

    def __init__(self, stamp: float) -> None:
        self.stamp = stamp
        self.proof_ready = trio.Event()
        self.proof_ready.set()
        self.minted_at: float | None = None

    def refuses(self, _peer) -> None:
        return None

    def accept_valid(self, _peer, _accept) -> bool:
        return True

    async def proposal(self, _candidate, match_id: bytes, interests) -> Propose:
        await trio.sleep(self.stamp)
        self.minted_at = trio.current_time()
        return Propose(match_id, interests)


async def test_the_stamp_is_minted_while_the_dial_runs(autojump_clock):
    """Dial 0.3 s, stamp 0.2 s: the answer comes after ~0.3 s, not 0.5 s (docs/performance.md)."""
    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)
        alice.service.safety = _SlowStamp(0.2)
        alice.host.dial_delay = 0.3
        started = trio.current_time()
        answer = await alice.propose_to(bob, ("jazz",))
        took = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert isinstance(answer, Accept)
    assert alice.service.safety.minted_at - started == pytest.approx(0.2)
    assert took < 0.3 + 0.2  # one after the other would take 0.5 s
    assert alice.service.proposing == set()  # identify waits no longer for bob


async def test_a_proposal_that_cannot_be_made_is_none_and_not_dialled_twice(autojump_clock):
    class Broken(_SlowStamp):
        async def proposal(self, *_args) -> Propose:
            raise ValueError("no stamp for this one")

    async with trio.open_nursery() as nursery:
        alice, bob = await pair(nursery)
        alice.service.safety = Broken(0.0)
        answer = await alice.propose_to(bob, ("jazz",))
        nursery.cancel_scope.cancel()
    assert answer is None
    assert bob.service.proposals_received <= 1
    assert bob.accepted == []
