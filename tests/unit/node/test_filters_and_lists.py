"""node/filters.py and the file side of node/lists.py (data dir, config file)."""

from __future__ import annotations

import stat

import pytest

from strangers.discovery.listrecord import decode_record
from strangers.errors import ConfigError, DiscoveryError
from strangers.node import events
from strangers.node.filters import DEFAULT_WORDS_FILE, load_word_filter, mark_message
from strangers.node.lists import (
    CURATED_FILE,
    CuratedLists,
    ListSubscriptions,
    ListValidator,
    config_file,
    parse_trusted,
    trusted_keys_from_config,
)
from strangers.node.store import DataDir

PEER = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"


def test_word_filter_files_and_marked_messages(tmp_path) -> None:
    data = DataDir(tmp_path)
    assert not load_word_filter(None, data)  # no default file: nothing hidden
    (tmp_path / DEFAULT_WORDS_FILE).write_text("idiot\n")
    words = load_word_filter(None, data)
    marked = mark_message(events.MessageReceived(1, "you IDIOT, t.me/x"), words)
    assert marked == events.MessageReceived(1, "you IDIOT, t.me/x", True, ("link",))
    assert mark_message(events.MessageReceived(2, "hello"), words).hidden is False
    explicit = tmp_path / "mine.txt"
    explicit.write_text("other\n")
    assert load_word_filter(explicit, data).words == ("other",)
    with pytest.raises(ConfigError, match="no such file"):
        load_word_filter(tmp_path / "missing.txt", data)


def test_curated_lists_keep_key_version_and_entries_privately(tmp_path) -> None:
    data = DataDir(tmp_path)
    lists = CuratedLists(data)
    key = lists.create("school")
    assert len(key) == 64 and lists.version("school") == 1
    with pytest.raises(ConfigError, match="already"):
        lists.create("school")
    assert lists.add("school", PEER, "spam") and not lists.add("school", PEER, "spam")
    assert lists.version("school") == 2
    record = decode_record(CuratedLists(data).record("school"), bytes.fromhex(key))
    assert record.version == 2 and record.peer_ids() == {PEER}
    assert lists.remove("school", PEER) and not lists.remove("school", PEER)
    assert decode_record(lists.record("school")).version == 3
    assert stat.S_IMODE((tmp_path / CURATED_FILE).stat().st_mode) == 0o600
    for bad in [lambda: lists.add("school", "bogus"), lambda: lists.add("nope", PEER),
                lambda: lists.create(""), lambda: lists.record("nope")]:
        with pytest.raises(ConfigError):
            bad()


def test_the_validator_keeps_only_genuine_newer_records(tmp_path) -> None:
    lists = CuratedLists(DataDir(tmp_path))
    key = lists.create("a")
    v1 = lists.record("a")
    lists.add("a", PEER)
    v2 = lists.record("a")
    other = CuratedLists(DataDir(tmp_path / "x"))
    other.create("a")
    validator = ListValidator()
    validator.validate(f"/slist/{key}", v2)
    with pytest.raises(DiscoveryError):
        validator.validate(f"/slist/{key}", other.record("a"))
    with pytest.raises(DiscoveryError):
        validator.validate("/slist/nothex", v2)
    assert validator.select(f"/slist/{key}", [v1, v2]) == 1
    assert validator.select(f"/slist/{key}", [v2, v1]) == 0
    with pytest.raises(DiscoveryError):
        validator.select(f"/slist/{key}", [other.record("a")])

    subscriptions = ListSubscriptions(parse_trusted((key,)), DataDir(tmp_path / "sub"))
    assert not subscriptions.offer_record(other.record("a"))  # not a list we chose
    assert subscriptions.offer_record(v2) and subscriptions.refuses(PEER)
    assert not subscriptions.offer_record(v1)  # stale
    assert ListSubscriptions(parse_trusted((key,)), DataDir(tmp_path / "sub")).refuses(PEER)


def test_the_config_file_lists_trusted_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STRANGERS_HOME", str(tmp_path))
    assert config_file() == tmp_path / "config.toml"
    assert trusted_keys_from_config() == ()
    key = "ab" * 32
    (tmp_path / "config.toml").write_text(f'trust_lists = ["{key}"]\n')
    assert trusted_keys_from_config() == (key,)
    (tmp_path / "config.toml").write_text("trust_lists = 5\n")
    with pytest.raises(ConfigError):
        trusted_keys_from_config()
    (tmp_path / "config.toml").write_text("not toml [\n")
    with pytest.raises(ConfigError):
        trusted_keys_from_config()
    with pytest.raises(ConfigError):
        parse_trusted(("zz",))
