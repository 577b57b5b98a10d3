"""A stranger's message budget (node/chat.py, safety/limits.py MESSAGES), under MockClock."""

from __future__ import annotations

import trio
from test_chat_session import open_chat

from strangers.crypto.handshake import Role
from strangers.node import events
from strangers.node.chat import ChatEnd
from strangers.safety.limits import MESSAGES


async def test_a_person_typing_fast_is_never_limited(autojump_clock):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        me, other = sides[Role.INITIATOR], sides[Role.RESPONDER]
        for index in range(int(MESSAGES.burst)):  # a paste of lines at once
            await me.session.send_text(f"line {index}")
        await trio.sleep(2)  # a breath after the paste
        for index in range(120):  # then two messages a second for a minute, typing notices too
            await me.session.send_typing(True)
            await me.session.send_text(f"message {index}")
            await trio.sleep(0.5)
        await trio.sleep(0.1)
        assert len(other.of(events.MessageReceived)) == MESSAGES.burst + 120
        await me.session.close("quit")
    assert other.end == ChatEnd("quit", False)


async def test_a_flooding_stranger_is_cut_off_and_the_excess_dropped(autojump_clock):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        flooder, victim = sides[Role.RESPONDER], sides[Role.INITIATOR]
        for index in range(200):
            try:
                await flooder.session.send_text(f"spam {index}")
            except Exception:  # the victim ended the chat under us
                break
        with trio.fail_after(5):
            await victim.done.wait()
    received = victim.of(events.MessageReceived)
    assert len(received) == MESSAGES.burst  # the rest was dropped, then the chat ended
    assert victim.end == ChatEnd("error", False)
    assert any("faster than anyone types" in e.message for e in victim.of(events.Error))
