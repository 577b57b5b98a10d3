"""Integration: question mode (Omegle's "spy"): a watcher relays two strangers' chats."""

from __future__ import annotations

import os

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from test_node_pair import _network

from strangers.discovery.matcher import Refusal
from strangers.discovery.proposal import Refuse
from strangers.errors import LocalProtocolError
from strangers.node import events
from strangers.node.libp2p.addresses import dialable_addrs

from dhtnet import next_event

QUESTION = "Is a hot dog a sandwich?"


async def test_two_strangers_discuss_the_question_and_the_watcher_only_watches():
    async with _network(
        {"question": QUESTION, "interests": ("books", "films"), "interests_only": True},
        {"interests": ("books",), "interests_only": True, "questions": True},
        {"interests": ("films",), "interests_only": True, "questions": True},
        {"interests": ("chess",), "interests_only": True},  # never asked: did not opt in
    ) as (_s, (watcher, a, b, shy)):
        joined = {}  # the latest stranger of each slot: a stranger who leaves before
        while len(joined) < 2:  # the other comes is replaced (node/question.py)
            event = await next_event(watcher, events.QuestionJoined, timeout=30)
            joined[event.stranger] = event
        assert {joined[1].peer_id, joined[2].peer_id} == {a.peer_id, b.peer_id}
        slot = {node: 1 if joined[1].peer_id == node.peer_id else 2 for node in (a, b)}
        joined = {e.peer_id: e for e in joined.values()}
        for node in (a, b):
            matched = await next_event(node, events.Matched)
            while matched.safety_code != joined[node.peer_id].safety_code:  # an earlier try
                matched = await next_event(node, events.Matched)
            assert matched.question == QUESTION and matched.peer_id == watcher.peer_id
            assert matched.safety_code == joined[node.peer_id].safety_code
        await a.send_text("hello, b")
        said = await next_event(watcher, events.QuestionMessage)
        assert (said.stranger, said.text) == (slot[a], "hello, b")
        assert (await next_event(b, events.MessageReceived)).text == "hello, b"
        await b.send_text("hi a")
        assert (await next_event(a, events.MessageReceived)).text == "hi a"
        with pytest.raises(LocalProtocolError, match="watching"):
            await watcher.send_text("psst")
        with pytest.raises(LocalProtocolError, match="watching"):
            await a.keep()
        # the shy node was never asked, and refuses a question outright
        assert shy.chats.chats == 0
        info = PeerInfo(shy.identity.peer_id, dialable_addrs(shy.host))
        shy.stop_search()
        with trio.fail_after(10):
            answer = await watcher.matching.propose(info, os.urandom(16), ("chess",))
        assert isinstance(answer, Refuse) and answer.reason is Refusal.NOT_LOOKING
        # one leaves: the other is told, and the watcher sees both go
        await a.next()
        left = [await next_event(watcher, events.QuestionLeft) for _ in range(2)]
        assert {(e.stranger, e.by_us) for e in left} == {(slot[a], False), (slot[b], True)}
        assert not (await next_event(b, events.StrangerLeft)).by_us
