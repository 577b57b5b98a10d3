"""Integration: language lanes and the saved log, with whole nodes on 127.0.0.1."""

from __future__ import annotations

import stat

import pytest
import trio
from test_node_pair import _network

from strangers.errors import LocalProtocolError
from strangers.node import events

from dhtnet import next_event


async def test_strangers_of_the_same_language_meet_in_their_lane_and_see_it():
    async with _network({"interests": ("jazz",), "lang": "fr", "interests_only": True},
                        {"interests": ("jazz",), "lang": "fr", "interests_only": True}) as (_s, (a, b)):
        first = await next_event(a, events.Searching)
        assert first.lang == "fr"
        match_a = await next_event(a, events.Matched)
        match_b = await next_event(b, events.Matched)
        assert match_a.lang == match_b.lang == "fr"


async def test_other_languages_are_not_met_in_a_lane_and_lang_changes_it():
    async with _network({"interests": ("jazz",), "lang": "fr", "interests_only": True},
                        {"interests": ("jazz",), "lang": "de", "interests_only": True}) as (_s, (a, b)):
        for node in (a, b):
            await next_event(node, events.Advertised)
        # Both are listed now; each keeps looking (in its own lane only) and finds nobody.
        lookups = a.dht.stats.lookups
        with trio.fail_after(20):
            while a.dht.stats.lookups < lookups + 4:
                await trio.sleep(0.05)
        assert a.chats.chats == b.chats.chats == 0
        await a.set_lang(" DE ")
        assert (await next_event(a, events.Language)).lang == "de"
        assert (await next_event(a, events.Searching)).lang == "de"  # the search restarted in it
        matched = await next_event(a, events.Matched)
        assert matched.lang == "de" and matched.common_interests == ("jazz",)
        assert (await next_event(b, events.Matched)).lang == "de"


async def test_save_writes_the_conversation_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("STRANGERS_SAVE_DIR", str(tmp_path / "docs"))
    async with _network({"interests": ("cinema",)}, {"interests": ("cinema",)}) as (_s, (a, b)):
        with pytest.raises(LocalProtocolError, match="no chat to save"):
            await a.save()
        matched = await next_event(a, events.Matched)
        await next_event(b, events.Matched)
        await a.send_text("hello there")
        assert (await next_event(b, events.MessageReceived)).text == "hello there"
        await b.send_text("hi\nsecond line \x1b[2J")
        await next_event(a, events.MessageReceived)
        path = await a.save()
        saved = await next_event(a, events.Saved)
        assert saved.path == path and path.startswith(str(tmp_path / "docs"))
        text = open(path, encoding="utf-8").read()
        assert "You both like cinema." in text
        assert f"Safety code: {matched.safety_code}" in text
        assert "] You: hello there" in text
        assert "] Stranger: hi\n" in text and "second line \\x1b[2J" in text
        assert "\x1b" not in text  # a stranger's escape sequences are shown, never kept raw
        assert stat.S_IMODE((tmp_path / "docs" / path.split("/")[-1]).stat().st_mode) == 0o600
        await b.next()
        await next_event(a, events.StrangerLeft)
        named = await a.save(str(tmp_path / "mine.txt"))  # after the chat: the last one
        assert named == str(tmp_path / "mine.txt")
        assert open(named, encoding="utf-8").read().rstrip().endswith(
            "Stranger left to meet someone else.")
