"""Language lanes: codes, the locale default, lane keys, the search order, and the proposal field."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from strangers.discovery.language import is_lang, lang_of_locale, normalize_lang
from strangers.discovery.proposal import Accept, Propose, decode, encode
from strangers.discovery.topics import HOME_SHARD, TopicKey, advertise_keys, search_rounds
from strangers.errors import ConfigError, LocalProtocolError, RemoteProtocolError

MATCH_ID = bytes(range(16))
NOW = 1_700_000_350.0  # 250 s into its epoch: one epoch looked up


@pytest.mark.parametrize(("text", "code"), [("fr", "fr"), (" FR ", "fr"), ("", ""), ("En", "en")])
def test_codes_are_two_lower_case_letters(text: str, code: str) -> None:
    assert normalize_lang(text) == code


@pytest.mark.parametrize("text", ["fra", "f", "fr_FR", "é1", "12", None, 3, "f r"])
def test_anything_else_is_refused_with_the_value(text: object) -> None:
    with pytest.raises(ConfigError, match="ISO 639-1"):
        normalize_lang(text)
    assert not is_lang(text)


@pytest.mark.parametrize(("locale", "code"), [
    ("fr_FR.UTF-8", "fr"), ("de_DE@euro", "de"), ("pt-BR", "pt"), ("en", "en"),
    ("C.UTF-8", ""), ("POSIX", ""), ("C", ""), ("", ""), (None, ""), ("ast_ES", ""),
])
def test_the_default_comes_from_the_locale(locale: str | None, code: str) -> None:
    assert lang_of_locale(locale) == code


def test_a_lane_key_is_its_own_name_and_the_plain_keys_do_not_change() -> None:
    plain = TopicKey("jazz", 5, 0)
    lane = TopicKey("jazz", 5, 0, lang="fr")
    assert plain.name == "strangers/v1/interest/jazz/5/0"  # unchanged for nodes without a lane
    assert lane.name == "strangers/v1/lang/fr/interest/jazz/5/0"
    assert TopicKey(None, 5, 3, lang="fr").name == "strangers/v1/lang/fr/anyone/5/3"
    assert lane.multihash == b"\x12\x20" + hashlib.sha256(lane.name.encode()).digest()
    assert len({plain.multihash, lane.multihash, TopicKey("jazz", 5, 0, lang="de").multihash}) == 3
    with pytest.raises(ValueError, match="lang"):
        TopicKey("jazz", 5, 0, lang="french")


def test_a_lane_node_advertises_in_its_lane_and_on_the_plain_keys_when_anyone_may_find_it() -> None:
    keys = advertise_keys(("jazz",), anyone=True, now=NOW, lang="fr")
    assert [(key.lang, key.interest) for key in keys] == [
        ("fr", "jazz"), ("fr", None), ("", "jazz"), ("", None)]
    only = advertise_keys(("jazz",), anyone=False, now=NOW, lang="fr")
    assert [(key.lang, key.interest) for key in only] == [("fr", "jazz")]
    assert advertise_keys(("jazz",), anyone=True, now=NOW) == advertise_keys(
        ("jazz",), anyone=True, now=NOW, lang="")


def test_the_lane_is_searched_first_and_the_plain_keys_only_after_the_random_fallback() -> None:
    interests_phase = search_rounds(("jazz",), anyone=False, now=NOW, probe=None, lang="fr")
    assert [[(k.lang, k.interest) for k in round_] for round_ in interests_phase] == [
        [("fr", "jazz")]]
    random_phase = search_rounds(("jazz",), anyone=True, now=NOW, probe=None, lang="fr")
    assert [[(k.lang, k.interest) for k in round_] for round_ in random_phase] == [
        [("fr", "jazz"), ("fr", None)], [("", "jazz"), ("", None)]]
    # without a lane, nothing changes
    assert search_rounds(("jazz",), anyone=True, now=NOW, probe=None) == [
        [TopicKey("jazz", key.epoch, HOME_SHARD), TopicKey(None, key.epoch, HOME_SHARD)]
        for key in [random_phase[1][0]]]


def test_a_large_network_keeps_the_shard_rounds_inside_each_lane() -> None:
    rounds = search_rounds(("jazz",), anyone=True, now=NOW, probe=3, hot={"jazz": True}, lang="fr")
    lanes = [{key.lang for key in round_} for round_ in rounds]
    assert lanes[0] == {"fr"} and lanes[-1] == {""}
    assert all(len(lane) == 1 for lane in lanes)


def test_the_proposal_and_the_acceptance_tell_the_language_only_when_there_is_one() -> None:
    for message in (Propose(MATCH_ID, ("jazz",), lang="fr"), Accept(MATCH_ID, (), lang="de")):
        assert decode(encode(message)[4:]) == message
    body = msgpack.unpackb(encode(Propose(MATCH_ID, ("jazz",)))[4:])
    assert "lang" not in body  # a node without a language sends exactly what version 1 sent
    assert decode(encode(Propose(MATCH_ID, ()))[4:]).lang == ""
    with pytest.raises(LocalProtocolError):
        Propose(MATCH_ID, (), lang="french")


@pytest.mark.parametrize("lang", ["", "FR", "fra", 7, None, b"fr", True])
def test_a_bad_language_from_the_network_is_refused(lang: object) -> None:
    body = msgpack.packb({"t": "accept", "m": MATCH_ID, "i": [], "lang": lang}, use_bin_type=True)
    with pytest.raises(RemoteProtocolError, match="language"):
        decode(body)


def test_a_refusal_carries_no_language() -> None:
    body = msgpack.packb({"t": "refuse", "m": MATCH_ID, "r": "busy", "lang": "fr"}, use_bin_type=True)
    with pytest.raises(RemoteProtocolError, match="keys"):
        decode(body)
