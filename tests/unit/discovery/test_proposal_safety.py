"""Proposals carry an identity proof, a stamp and a lane (docs/protocol.md §5.9, §3)."""

from __future__ import annotations

import msgpack
import pytest

from strangers.crypto.pow import Stamp
from strangers.discovery.proposal import Accept, Propose, decode, encode
from strangers.discovery.topics import ADULT_LANE, GENERAL_LANE, TopicKey, advertise_keys, search_rounds
from strangers.errors import LocalProtocolError, RemoteProtocolError

MID = bytes(range(16))
PROOF = (21628).to_bytes(8, "big")


def body(frame: bytes) -> dict:
    return msgpack.unpackb(frame[4:], raw=False)


def test_a_full_proposal_round_trips() -> None:
    message = Propose(MID, ("cinema",), PROOF, Stamp(1764500000, 3857), ADULT_LANE)
    frame = encode(message)
    assert body(frame) == {"t": "propose", "v": 1, "m": MID, "i": ["cinema"], "p": PROOF,
                           "s": [1764500000, (3857).to_bytes(8, "big")], "l": "adult"}
    assert decode(frame[4:]) == message


def test_the_general_lane_and_missing_proofs_are_left_out() -> None:
    frame = encode(Propose(MID, ()))
    assert body(frame) == {"t": "propose", "v": 1, "m": MID, "i": []}
    assert decode(frame[4:]) == Propose(MID, (), None, None, GENERAL_LANE)


def test_an_accept_carries_the_candidates_proof() -> None:
    frame = encode(Accept(MID, ("chess",), PROOF))
    assert body(frame)["p"] == PROOF
    assert decode(frame[4:]) == Accept(MID, ("chess",), PROOF)
    assert decode(encode(Accept(MID, ()))[4:]).proof is None


@pytest.mark.parametrize("extra", [{"p": b"short"}, {"p": "0" * 16}, {"s": [1, b"x"]},
                                   {"s": "stamp"}, {"l": "kids"}, {"l": 1}, {"x": 1}])
def test_bad_fields_are_remote_errors(extra: dict) -> None:
    frame = msgpack.packb({"t": "propose", "v": 1, "m": MID, "i": [], **extra}, use_bin_type=True)
    with pytest.raises(RemoteProtocolError):
        decode(frame)


def test_an_accept_with_a_bad_proof_or_a_lane_is_refused() -> None:
    for extra in ({"p": b"1"}, {"l": "adult"}):
        frame = msgpack.packb({"t": "accept", "m": MID, "i": [], **extra}, use_bin_type=True)
        with pytest.raises(RemoteProtocolError):
            decode(frame)


def test_local_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Propose(MID, (), b"x")
    with pytest.raises(LocalProtocolError):
        Propose(MID, (), None, "stamp")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Propose(MID, (), lane="kids")
    with pytest.raises(LocalProtocolError):
        Accept(MID, (), b"x")


def test_lanes_never_share_a_key() -> None:
    general = TopicKey("cinema", 5000, 0)
    adult = TopicKey("cinema", 5000, 0, ADULT_LANE)
    assert general.name == "strangers/v1/interest/cinema/5000/0"  # unchanged by lanes
    assert adult.name == "strangers/v1/lane/adult/interest/cinema/5000/0"
    assert TopicKey(None, 5000, 3, ADULT_LANE).name == "strangers/v1/lane/adult/anyone/5000/3"
    assert general.multihash != adult.multihash
    now = 5000 * 300.0 + 10
    for lane in (GENERAL_LANE, ADULT_LANE):
        keys = advertise_keys(("cinema",), anyone=True, now=now, shard=2, lane=lane)
        keys += [k for r in search_rounds(("cinema",), anyone=True, now=now, probe=3, lane=lane)
                 for k in r]
        assert {k.lane for k in keys} == {lane}
    general_keys = {k.multihash for k in advertise_keys(("cinema",), anyone=True, now=now)}
    adult_keys = {k.multihash for k in advertise_keys(("cinema",), anyone=True, now=now,
                                                      lane=ADULT_LANE)}
    assert not general_keys & adult_keys
    with pytest.raises(ValueError):
        TopicKey("cinema", 1, 0, "kids")


def test_a_planner_in_the_adult_lane_walks_and_announces_only_adult_keys() -> None:
    import random

    from strangers.discovery.matcher import Matcher
    from strangers.discovery.search import Announce, SearchPlanner, Walk

    planner = SearchPlanner(Matcher(local_id=b"\x50" * 8, interests=("jazz",), random_after=0),
                            random.Random(1), lane=ADULT_LANE)
    now, wall = 100.0, 6_000_000 * 300 + 200.0
    planner.start(now)
    keys = []
    for _ in range(20):
        action = planner.next(now, wall, 10)
        if isinstance(action, Walk):
            keys += action.keys
            for key in action.keys:
                planner.on_walk_result(key, (), (), now, wall)
            planner.on_round_done()
        elif isinstance(action, Announce):
            keys += action.keys
            planner.on_announced([20] * len(action.keys), now, wall)
        now += 3.0
        wall += 3.0
    assert any(k.interest is None for k in keys) and any(k.interest == "jazz" for k in keys)
    assert {k.lane for k in keys} == {ADULT_LANE}
    assert all(k.name.startswith("strangers/v1/lane/adult/") for k in keys)
