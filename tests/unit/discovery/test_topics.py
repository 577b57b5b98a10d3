"""Topic keys: known answers computed here from hashlib and base32, epochs, key sets."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.discovery.topics import (
    EPOCH_SECONDS,
    HOME_SHARD,
    PREVIOUS_EPOCH_WINDOW,
    READVERTISE_SPREAD,
    SHARDS,
    TopicKey,
    advertise_keys,
    draw_shard,
    epoch_at,
    lookup_epochs,
    search_rounds,
    seconds_to_next_epoch,
)


def expected_multihash(name: str) -> bytes:
    """sha2-256 multihash, built by hand: code 0x12, length 32, digest."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return bytes([0x12, 32]) + digest


def expected_cid(name: str) -> str:
    """CIDv1 (version 0x01), raw codec (0x55), multibase 'b' = lowercase base32, no padding."""
    raw = bytes([0x01, 0x55]) + expected_multihash(name)
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


# --- known answers -----------------------------------------------------------------


def test_interest_key_known_answer() -> None:
    key = TopicKey("jazz", 5_000_000, 0)
    name = "strangers/v1/interest/jazz/5000000/0"
    assert key.name == name
    assert key.multihash == expected_multihash(name)
    assert len(key.multihash) == 34
    assert key.multihash.hex() == (
        "1220" + hashlib.sha256(b"strangers/v1/interest/jazz/5000000/0").hexdigest()
    )
    assert key.cid == expected_cid(name)
    # every sha2-256 raw CIDv1 in base32 starts like this
    assert key.cid.startswith("bafkrei")
    assert len(key.cid) == 59


def test_anyone_key_known_answer() -> None:
    key = TopicKey(None, 7, 0)
    assert key.name == "strangers/v1/anyone/7/0"
    assert key.multihash == expected_multihash("strangers/v1/anyone/7/0")
    assert key.cid == expected_cid("strangers/v1/anyone/7/0")


def test_non_ascii_interest_is_hashed_as_utf8() -> None:
    key = TopicKey("cinéma club", 1, 0)
    assert key.name == "strangers/v1/interest/cinéma club/1/0"
    assert key.multihash[2:] == hashlib.sha256("strangers/v1/interest/cinéma club/1/0".encode()).digest()
    assert key.cid == expected_cid(key.name)


def test_cid_decodes_back_to_the_multihash() -> None:
    key = TopicKey("chess", 123, 0)
    body = key.cid[1:].upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    assert raw == b"\x01\x55" + key.multihash


def test_keys_differ_by_interest_epoch_and_kind() -> None:
    keys = [TopicKey("jazz", 1, 0), TopicKey("jazz", 2, 0), TopicKey("chess", 1, 0), TopicKey(None, 1, 0)]
    assert len({key.multihash for key in keys}) == len(keys)
    assert len({key.cid for key in keys}) == len(keys)


def test_an_interest_named_anyone_is_not_the_anyone_key() -> None:
    assert TopicKey("anyone", 1, 0).multihash != TopicKey(None, 1, 0).multihash


# --- invalid keys ----------------------------------------------------------------------


@pytest.mark.parametrize("epoch", [-1, -300, 1.0, 5.5, True, "3", None])
def test_bad_epoch_is_refused(epoch: object) -> None:
    with pytest.raises(ValueError, match="epoch") as info:
        TopicKey("jazz", epoch, 0)  # type: ignore[arg-type]
    assert repr(epoch) in str(info.value)


@pytest.mark.parametrize("shard", [-1, SHARDS, SHARDS + 7, 0.0, False, "0", None])
def test_bad_shard_is_refused(shard: object) -> None:
    with pytest.raises(ValueError, match="shard") as info:
        TopicKey("jazz", 0, shard)  # type: ignore[arg-type]
    assert repr(shard) in str(info.value)


@pytest.mark.parametrize("interest", ["Jazz", " jazz", "rock  roll", "", "a\x1bb", "x" * 65, b"jazz", 3])
def test_non_canonical_interest_is_refused(interest: object) -> None:
    # such a key would be one nobody else ever looks up
    with pytest.raises(ValueError, match="canonical") as info:
        TopicKey(interest, 0, 0)  # type: ignore[arg-type]
    assert repr(interest) in str(info.value)


def test_every_shard_in_range_is_accepted() -> None:
    assert [TopicKey("jazz", 0, shard).shard for shard in range(SHARDS)] == list(range(SHARDS))


def test_keys_are_frozen_values() -> None:
    key = TopicKey("jazz", 1, 0)
    assert key == TopicKey("jazz", 1, 0)
    assert hash(key) == hash(TopicKey("jazz", 1, 0))
    with pytest.raises(AttributeError):
        key.epoch = 2  # type: ignore[misc]


# --- epochs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "epoch"),
    [
        (0, 0),
        (0.0, 0),
        (EPOCH_SECONDS - 0.001, 0),
        (EPOCH_SECONDS, 1),
        (EPOCH_SECONDS + 0.001, 1),
        (2 * EPOCH_SECONDS - 1e-6, 1),
        (1_700_000_000, 1_700_000_000 // EPOCH_SECONDS),
    ],
)
def test_epoch_boundaries(now: float, epoch: int) -> None:
    assert epoch_at(now) == epoch
    assert isinstance(epoch_at(now), int)


@pytest.mark.parametrize(
    ("now", "left"),
    [
        (0, EPOCH_SECONDS),
        (EPOCH_SECONDS, EPOCH_SECONDS),  # a new epoch just started
        (EPOCH_SECONDS - 1, 1),
        (EPOCH_SECONDS + 0.5, EPOCH_SECONDS - 0.5),
        (1_700_000_000, EPOCH_SECONDS - 1_700_000_000 % EPOCH_SECONDS),
    ],
)
def test_seconds_to_next_epoch(now: float, left: float) -> None:
    assert seconds_to_next_epoch(now) == pytest.approx(left)


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_next_epoch_is_where_the_timer_says(now: float) -> None:
    left = seconds_to_next_epoch(now)
    assert 0 < left <= EPOCH_SECONDS
    assert epoch_at(now + left) == epoch_at(now) + 1


# --- which keys to advertise and to look up ------------------------------------------


NOW = 1_700_000_123.5
EPOCH = int(NOW // EPOCH_SECONDS)


def test_advertise_keys_cover_the_current_epoch_only() -> None:
    keys = advertise_keys(("jazz", "chess"), anyone=True, now=NOW)
    assert keys == [TopicKey("jazz", EPOCH, 0), TopicKey("chess", EPOCH, 0), TopicKey(None, EPOCH, 0)]


def test_advertise_keys_without_anyone() -> None:
    assert advertise_keys(("jazz",), anyone=False, now=NOW) == [TopicKey("jazz", EPOCH, 0)]


def test_advertise_keys_without_interests() -> None:
    assert advertise_keys((), anyone=True, now=NOW) == [TopicKey(None, EPOCH, 0)]
    assert advertise_keys((), anyone=False, now=NOW) == []


def test_advertise_keys_list_us_at_home_and_on_the_shard_given() -> None:
    keys = advertise_keys(("jazz",), anyone=True, now=NOW, shard=SHARDS - 1)
    assert keys == [TopicKey("jazz", EPOCH, HOME_SHARD), TopicKey("jazz", EPOCH, SHARDS - 1),
                    TopicKey(None, EPOCH, HOME_SHARD), TopicKey(None, EPOCH, SHARDS - 1)]
    assert advertise_keys(("jazz",), anyone=False, now=NOW, shard=HOME_SHARD) == [
        TopicKey("jazz", EPOCH, HOME_SHARD)]
    with pytest.raises(ValueError, match="shard"):
        advertise_keys(("jazz",), anyone=True, now=NOW, shard=SHARDS)


def lookup_keys(interests, *, anyone, now, shards=range(SHARDS)):
    """Every key a search may walk at ``now`` (by topic, then epoch, then shard)."""
    topics = [*interests, None] if anyone else list(interests)
    return [TopicKey(topic, epoch, shard)
            for topic in topics for epoch in lookup_epochs(now) for shard in shards]


def test_lookup_in_epoch_zero_has_no_previous_epoch() -> None:
    assert lookup_epochs(EPOCH_SECONDS - 1) == [0]
    assert lookup_epochs(EPOCH_SECONDS) == [1, 0]


def test_the_previous_epoch_is_looked_up_only_early_in_an_epoch() -> None:
    start = EPOCH * EPOCH_SECONDS
    assert lookup_epochs(start) == [EPOCH, EPOCH - 1]
    assert lookup_epochs(start + PREVIOUS_EPOCH_WINDOW - 0.001) == [EPOCH, EPOCH - 1]
    assert lookup_epochs(start + PREVIOUS_EPOCH_WINDOW) == [EPOCH]
    assert lookup_epochs(start + EPOCH_SECONDS - 0.001) == [EPOCH]
    assert {key.epoch for key in lookup_keys(("jazz",), anyone=False,
                                             now=start + PREVIOUS_EPOCH_WINDOW)} == {EPOCH}
    # re-advertising is spread, and clocks differ: the window covers both
    assert PREVIOUS_EPOCH_WINDOW >= READVERTISE_SPREAD + 60


def test_there_are_shards_to_spread_a_hot_interest() -> None:
    # docs/scale.md sized it: a hot interest's hottest node at 1/8 of the load
    assert SHARDS == 8


def _keys(topic, shard, now=NOW):
    return lookup_keys(() if topic is None else (topic,), anyone=topic is None, now=now,
                       shards=(shard,))


def test_search_rounds_of_a_hot_topic_probe_first_then_home() -> None:
    rounds = search_rounds(("jazz",), anyone=False, now=NOW, probe=3, hot={"jazz": True})
    assert rounds == [_keys("jazz", 3), _keys("jazz", HOME_SHARD)]


def test_search_rounds_of_a_rare_topic_go_home_at_once() -> None:
    rounds = search_rounds(("jazz",), anyone=False, now=NOW, probe=3, hot={"jazz": False})
    assert rounds == [_keys("jazz", HOME_SHARD)]


def test_search_rounds_of_an_unknown_topic_walk_probe_and_home_together() -> None:
    assert search_rounds(("jazz",), anyone=False, now=NOW, probe=3) == [
        _keys("jazz", 3) + _keys("jazz", HOME_SHARD)]


def test_search_rounds_treat_each_topic_on_its_own() -> None:
    rounds = search_rounds(("jazz", "chess"), anyone=True, now=NOW, probe=5,
                           hot={"jazz": True, "chess": False, None: True})
    assert rounds == [_keys("jazz", 5) + _keys("chess", HOME_SHARD) + _keys(None, 5),
                      _keys("jazz", HOME_SHARD) + _keys(None, HOME_SHARD)]


@given(probe=st.integers(min_value=1, max_value=SHARDS - 1),
       now=st.floats(min_value=0, max_value=4e9, allow_nan=False),
       hot=st.dictionaries(st.sampled_from(["jazz", "chess", None]), st.booleans()),
       anyone=st.booleans())
def test_search_rounds_cover_home_and_never_more_than_probe_and_home(
        probe: int, now: float, hot: dict, anyone: bool) -> None:
    rounds = search_rounds(("jazz", "chess"), anyone=anyone, now=now, probe=probe, hot=hot)
    walked = [key for round_ in rounds for key in round_]
    assert len(walked) == len(set(walked))
    home = lookup_keys(("jazz", "chess"), anyone=anyone, now=now, shards=(HOME_SHARD,))
    assert set(home) <= set(walked)  # every announcer is found by the end
    assert {key.shard for key in walked} <= {HOME_SHARD, probe}
    assert 1 <= len(rounds) <= 2 and all(rounds)


def test_search_rounds_on_a_small_network_look_at_home_only() -> None:
    assert search_rounds(("jazz",), anyone=True, now=NOW, probe=None) == [
        lookup_keys(("jazz",), anyone=True, now=NOW, shards=(HOME_SHARD,))]


@given(advertised_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
       shard=st.integers(min_value=0, max_value=SHARDS - 1),
       probe=st.one_of(st.none(), st.integers(min_value=1, max_value=SHARDS - 1)),
       later=st.floats(min_value=0, max_value=PREVIOUS_EPOCH_WINDOW, exclude_max=True))
def test_whatever_the_shards_the_last_round_finds_every_announcer(
        advertised_at: float, shard: int, probe: int | None, later: float) -> None:
    written = set(advertise_keys(("jazz",), anyone=False, now=advertised_at, shard=shard))
    rounds = search_rounds(("jazz",), anyone=False, now=advertised_at + later, probe=probe)
    assert written & set(rounds[-1])


@pytest.mark.parametrize("probe", [-1, HOME_SHARD, SHARDS, 1.0, True])
def test_search_rounds_refuse_a_bad_probe_shard(probe: object) -> None:
    with pytest.raises(ValueError, match="probe shard"):
        search_rounds(("jazz",), anyone=True, now=NOW, probe=probe)  # type: ignore[arg-type]


def test_drawn_shards_are_every_shard_but_home() -> None:
    rng = random.Random(1)
    assert {draw_shard(rng) for _ in range(1000)} == set(range(SHARDS)) - {HOME_SHARD}


@given(
    advertised_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    later=st.floats(min_value=0, max_value=PREVIOUS_EPOCH_WINDOW, allow_nan=False, exclude_max=True),
    shard=st.integers(min_value=0, max_value=SHARDS - 1),
)
def test_a_record_written_now_is_found_for_the_previous_epoch_window(
        advertised_at: float, later: float, shard: int) -> None:
    """What advertise writes, lookup reads: now and for at least the window after."""
    written = set(advertise_keys(("jazz",), anyone=True, now=advertised_at, shard=shard))
    looked_up = set(lookup_keys(("jazz",), anyone=True, now=advertised_at + later))
    assert written <= looked_up


@given(
    epoch=st.integers(min_value=1, max_value=10_000_000),
    delay=st.floats(min_value=0, max_value=READVERTISE_SPREAD, allow_nan=False),
    offset=st.floats(min_value=0, max_value=EPOCH_SECONDS, allow_nan=False, exclude_max=True),
)
def test_a_node_that_readvertises_in_the_spread_is_never_lost(epoch: int, delay: float,
                                                               offset: float) -> None:
    """A searcher that was advertised in epoch - 1 and re-advertises ``delay`` s
    into ``epoch`` is under a looked-up key at every moment of ``epoch``."""
    start = epoch * EPOCH_SECONDS
    now = start + offset
    records = set(advertise_keys(("jazz",), anyone=False, now=start - 1))
    if offset >= delay:
        records |= set(advertise_keys(("jazz",), anyone=False, now=start + delay))
    assert records & set(lookup_keys(("jazz",), anyone=False, now=now))
