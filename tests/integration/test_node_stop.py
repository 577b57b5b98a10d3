"""Integration: ``Node.stop`` (Omegle's Stop, the page's Stop button and the terminal's /stop):
leave the stranger, both strangers of a question, or the search, and look for nobody until
``next``, even on a node that goes on to the next stranger by itself (``auto_next``)."""

from __future__ import annotations

import trio
from test_node_pair import _network

from strangers.discovery.matcher import MatchState
from strangers.node import events

from dhtnet import next_event


async def test_stop_leaves_the_stranger_and_does_not_look_again_until_next():
    async with _network({"interests": ("cinema",)}, {"interests": ("cinema",)}) as (_s, (a, b)):
        assert a.config.auto_next and b.config.auto_next
        await next_event(a, events.Matched, timeout=30)
        await next_event(b, events.Matched, timeout=30)
        assert await a.stop() == "chat"
        assert (await next_event(a, events.StrangerLeft)).by_us
        assert not (await next_event(b, events.StrangerLeft)).by_us
        # the chat's end has been handled (stop waits for it): b looks again by itself, a does not
        assert a.statistics().state == "idle"
        assert await a.stop() == ""  # nothing is going on
        assert a.statistics().state == "idle"

        await a.next()  # New
        await next_event(a, events.Searching)
        assert a.statistics().state in ("searching", "proposing", "matched")
        assert await a.stop() in ("search", "chat")
        assert a.statistics().state == "idle"


async def test_stop_ends_a_question_for_both_strangers_and_asks_nobody_else():
    async with _network(
        {"question": "Tea or coffee?", "interests": ("books", "films"), "interests_only": True},
        {"interests": ("books",), "interests_only": True, "questions": True},
        {"interests": ("films",), "interests_only": True, "questions": True},
    ) as (_s, (watcher, a, b)):
        joined = {}
        while len(joined) < 2:
            event = await next_event(watcher, events.QuestionJoined, timeout=30)
            joined[event.stranger] = event
        assert await watcher.stop() == "chat"
        left = [await next_event(watcher, events.QuestionLeft) for _ in range(2)]
        assert {event.stranger for event in left} == {1, 2}
        for node in (a, b):
            while (await next_event(node, events.StrangerLeft)).by_us:
                pass  # an earlier try of the question
        slots = watcher.question_watch.slots
        assert not any(slot.active for slot in slots)
        assert all(slot.matcher.state is MatchState.IDLE for slot in slots)

        await watcher.next()  # New: two new strangers are looked for
        assert all(slot.active for slot in slots)
        assert await watcher.stop() in ("question", "chat")
        assert not any(slot.active for slot in slots)


async def test_stop_between_the_match_and_the_chat_leaves_as_soon_as_the_chat_opens():
    async with _network({"interests": ("chess",)}, {"interests": ("chess",)}) as (_s, (a, b)):
        with trio.fail_after(30):  # the moment the match is agreed, before any chat is open
            while not (a.matcher.state is MatchState.MATCHED and a.chats.session is None):
                await trio.sleep(0)
        assert await a.stop() == ""  # nothing to leave yet
        assert (await next_event(a, events.Matched)).peer_id == b.peer_id
        assert (await next_event(a, events.StrangerLeft)).by_us  # left at once
        assert not (await next_event(b, events.StrangerLeft)).by_us
        with trio.fail_after(5):
            while a.chats.session is not None:
                await trio.sleep(0.01)
        assert a.statistics().state == "idle"
