"""Lobby rules (discovery/lobby.py): topics, payloads, limits, nicknames, the member estimate."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.discovery import lobby
from strangers.discovery.lobby import (
    DROP_AFTER_REJECTS,
    MAX_DATA_BYTES,
    MAX_TEXT_CHARS,
    SEND_BURST,
    SEND_RATE,
    LobbyRules,
    MemberEstimate,
    TokenBuckets,
    Verdict,
    decode_message,
    encode_message,
    lobby_topic,
    member_key,
    member_keys,
    nickname,
    parse_topic,
    resolve_nick,
)
from strangers.discovery.topics import EPOCH_SECONDS
from strangers.errors import ConfigError, RemoteProtocolError

TOPIC = lobby_topic("chess")


# -- topics and keys -----------------------------------------------------------------

def test_topics_are_normalised_and_lanes_are_separate():
    assert lobby_topic("  Chess ") == "strangers/v1/lobby/general/chess"
    assert lobby_topic("chess", "adult") == "strangers/v1/lobby/adult/chess"
    assert lobby_topic("chess", "adult") != lobby_topic("chess")
    with pytest.raises(ConfigError, match="unknown lane"):
        lobby_topic("chess", "nsfw")
    with pytest.raises(ConfigError):
        lobby_topic("")


def test_parse_topic_round_trips_and_refuses_others():
    assert parse_topic(lobby_topic("Cinéma Club", "adult")) == ("adult", "cinéma club")
    for bad in ("strangers/v1/interest/chess", "strangers/v1/lobby/general/Chess",
                "strangers/v1/lobby/other/chess", "strangers/v1/lobby/general/", 42):
        with pytest.raises(RemoteProtocolError):
            parse_topic(bad)


def test_member_keys_are_sha256_multihashes_per_epoch():
    key = member_key(TOPIC, 7)
    assert key == b"\x12\x20" + hashlib.sha256(f"{TOPIC}/7".encode()).digest()
    assert member_key(lobby_topic("chess", "adult"), 7) != key
    assert member_keys(TOPIC, 7 * EPOCH_SECONDS + 5) == [key, member_key(TOPIC, 6)]
    assert member_keys(TOPIC, 5.0) == [member_key(TOPIC, 0)]
    for epoch in (-1, 1.0, True):
        with pytest.raises(ValueError):
            member_key(TOPIC, epoch)


# -- payloads ------------------------------------------------------------------------

def test_payload_format_is_the_documented_json():
    data = encode_message("hi all")
    assert json.loads(data) == {"v": 1, "text": "hi all"}
    assert decode_message(data) == "hi all"
    assert decode_message(b'{"text": "x", "v": 1, "later": true}') == "x"


@given(st.text(min_size=1, max_size=MAX_TEXT_CHARS).filter(lambda t: t.strip()))
def test_payloads_round_trip(text):
    try:
        data = encode_message(text)
    except ConfigError:
        return  # surrogates, or too many bytes once encoded
    assert len(data) <= MAX_DATA_BYTES
    assert decode_message(data) == text


@pytest.mark.parametrize("text", ["", "   ", "x" * (MAX_TEXT_CHARS + 1), "\ud800", None, 5])
def test_we_refuse_to_send_bad_text(text):
    with pytest.raises(ConfigError):
        encode_message(text)


def test_encoded_size_is_bounded_even_for_short_text():
    with pytest.raises(ConfigError, match="bytes"):
        encode_message("\U0001f600" * 300)  # 300 characters, 1200 bytes


@pytest.mark.parametrize("data", [
    b"", b"not json", b"\xff\xfe", b"[1, 2]", b'{"v": 2, "text": "x"}', b'{"v": true, "text": "x"}',
    b'{"v": 1}', b'{"v": 1, "text": ""}', b'{"v": 1, "text": 5}', b"[" * 5000,
    json.dumps({"v": 1, "text": "x" * 600}).encode(), b" " * (MAX_DATA_BYTES + 1), "text",
])
def test_bad_payloads_raise_remote_protocol_errors(data):
    with pytest.raises(RemoteProtocolError):
        decode_message(data)


# -- nicknames -----------------------------------------------------------------------

def test_nicknames_are_short_readable_and_stable():
    peer = bytes(range(38))
    nick = nickname(peer)
    assert nick == nickname(peer)
    adjective, animal, number = nick.split("-")
    assert adjective.isalpha() and animal.isalpha() and len(number) == 2
    assert len(nick) <= 24
    names = {nickname(i.to_bytes(4, "big")) for i in range(2000)}
    assert len(names) > 1900  # 160,000 names: few collisions among 2,000 members


def test_resolve_nick_by_name_or_peer_id():
    members = {"12D3KooWAAAAAAAA": "brave-otter-01", "12D3KooWBBBBBBBB": "calm-yak-02",
               "12D3KooWCCCCCCCC": "calm-yak-02"}
    assert resolve_nick("Brave-Otter-01", members) == "12D3KooWAAAAAAAA"
    assert resolve_nick("@brave-otter-01", members) == "12D3KooWAAAAAAAA"
    assert resolve_nick("12D3KooWBBBBBBBB", members) == "12D3KooWBBBBBBBB"
    assert resolve_nick("CCCCCC", members) == "12D3KooWCCCCCCCC"
    with pytest.raises(ConfigError, match="2 members"):
        resolve_nick("calm-yak-02", members)
    with pytest.raises(ConfigError, match="nobody"):
        resolve_nick("sleepy-owl-99", members)
    with pytest.raises(ConfigError, match="name someone"):
        resolve_nick("  ", members)


# -- limits --------------------------------------------------------------------------

def test_token_buckets_allow_a_burst_then_the_rate():
    buckets = TokenBuckets(rate=2.0, burst=3.0, capacity=2)
    assert [buckets.take(b"a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take(b"a", 0.5) and not buckets.take(b"a", 0.5)
    assert buckets.take(b"a", 10.0)
    buckets.take(b"b", 10.0)
    buckets.take(b"c", 10.0)  # capacity 2: "a", the least recently used, is forgotten
    assert [buckets.take(b"a", 10.0) for _ in range(3)] == [True, True, True]
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)


def test_a_sender_at_ten_a_second_is_never_refused():
    rules = LobbyRules(TOPIC)
    data = encode_message("hello")
    verdicts = [rules.check(TOPIC, b"alice", b"alice", data, k / 10) for k in range(600)]
    assert set(verdicts) == {Verdict.ACCEPT}
    relayed = [rules.check(TOPIC, b"bob", b"carol", data, 0.001 * k) for k in range(int(SEND_BURST))]
    assert set(relayed) == {Verdict.ACCEPT}  # a bunched-up burst, passed on by a relay


def test_a_flooder_is_throttled_then_dropped():
    rules = LobbyRules(TOPIC)
    data = encode_message("spam")
    verdicts = [rules.check(TOPIC, b"mallory", b"mallory", data, k / 1000) for k in range(200)]
    assert verdicts[:int(SEND_BURST)] == [Verdict.ACCEPT] * int(SEND_BURST)
    first_drop = verdicts.index(Verdict.DROP_PEER)
    # (the bucket refills a little over the 0.07 s the flood takes)
    assert int(SEND_BURST) + DROP_AFTER_REJECTS - 1 <= first_drop <= int(SEND_BURST) + DROP_AFTER_REJECTS + 2
    assert set(verdicts[int(SEND_BURST):first_drop]) <= {Verdict.REJECT, Verdict.ACCEPT}
    assert rules.rejected >= DROP_AFTER_REJECTS
    # later, the rate again
    assert rules.check(TOPIC, b"mallory", b"mallory", data, 100.0) is Verdict.ACCEPT
    assert SEND_RATE >= 10  # the 10 msg/s must pass


def test_malformed_messages_and_other_topics_are_rejected():
    rules = LobbyRules(TOPIC)
    assert rules.check(TOPIC, b"a", b"a", b"junk", 0.0) is Verdict.REJECT
    assert rules.check(lobby_topic("go"), b"a", b"a", encode_message("x"), 0.0) is Verdict.REJECT
    assert rules.malformed == 2
    slow = [rules.check(TOPIC, b"b", b"b", b"junk", k * 2.0) for k in range(100)]
    assert Verdict.DROP_PEER not in slow  # rejects spread out over time never add up
    assert rules.check_own(b"me", 0.0)


def test_reject_bookkeeping_is_bounded(monkeypatch):
    monkeypatch.setattr(lobby, "MAX_TRACKED_SENDERS", 10)
    rules = LobbyRules(TOPIC)
    for k in range(50):
        rules.check(TOPIC, b"a", k.to_bytes(2, "big"), b"junk", 0.0)
    assert len(rules._rejects) == 10


# -- the member estimate -------------------------------------------------------------

def test_member_estimate_counts_every_sign_until_it_expires():
    estimate = MemberEstimate()
    assert estimate.count(0.0) == 1  # ourselves
    estimate.saw(b"a", 0.0)
    estimate.saw_record(b"b", 0.0)
    assert estimate.count(1.0, subscribed={b"a", b"c"}) == 4
    assert estimate.count(lobby.MEMBER_TTL + 1) == 2  # "a" expired, "b"'s record did not
    assert set(estimate.members(lobby.MEMBER_TTL + 1)) == {b"b"}
    estimate.left(b"b")
    assert estimate.count(lobby.MEMBER_TTL + 1) == 1
    assert MemberEstimate(joined=False).count(0.0) == 0


def test_member_estimate_is_bounded(monkeypatch):
    monkeypatch.setattr(lobby, "MAX_MEMBERS_TRACKED", 5)
    estimate = MemberEstimate()
    for k in range(20):
        estimate.saw(k.to_bytes(2, "big"), 0.0)
    assert estimate.count(0.0) == 6
