"""ChatSession over fake libp2p streams, under MockClock: supervision, liveness, hostile bytes.

Both ends of an honest chat are real ChatConnections (so these tests do not
depend on the handshake's frames); the hostile tests send bytes that are bad
whatever the handshake is.  The one rule every test here checks in passing:
``ChatSession.run()`` returns a ChatEnd and never raises.
"""

from __future__ import annotations

import random
import struct

import pytest
import trio
from libp2p_fakes import FakeStream, make_peer, stream_pair

from strangers.crypto.frames import MAX_FRAME
from strangers.crypto.handshake import Role
from strangers.crypto.session import ChatConnection
from strangers.discovery.rtt import CHAT_HANDSHAKE, RttEstimator
from strangers.errors import LocalProtocolError
from strangers.node import events
from strangers.node.chat import (
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    LIVENESS_BOUND,
    PING_INTERVAL,
    WRITE_TIMEOUT,
    ChatEnd,
    ChatSession,
)

MATCH_ID = bytes(range(16))
PEERS = {Role.INITIATOR: make_peer("initiator"), Role.RESPONDER: make_peer("responder")}


class Side:
    """One end of a chat: a ChatSession on a fake stream, recording what it reports."""

    def __init__(self, role: Role, stream: FakeStream) -> None:
        me, other = PEERS[role], PEERS[role.peer]
        self.role = role
        self.stream = stream
        self.connection = ChatConnection(
            role=role, match_id=MATCH_ID, local_identity=me.signing_key,
            remote_identity=other.public_bytes, rng=random.Random(role.value).randbytes,
        )
        self.events: list[events.Event] = []
        self.codes: list[str] = []
        self.session = ChatSession(stream, self.connection, on_event=self._event,
                                   on_established=self._established)
        self.end: ChatEnd | None = None
        self.ended_at: float | None = None
        self.done = trio.Event()

    async def _event(self, event: events.Event) -> None:
        self.events.append(event)

    async def _established(self, code: str) -> None:
        self.codes.append(code)

    async def run(self) -> None:
        self.end = await self.session.run()  # a raise here fails the test
        self.ended_at = trio.current_time()
        self.done.set()

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]


def streams(window: int | None = None) -> dict[Role, FakeStream]:
    ours, theirs = stream_pair(PEERS[Role.INITIATOR].peer_id, PEERS[Role.RESPONDER].peer_id,
                               window=window)
    return {Role.INITIATOR: ours, Role.RESPONDER: theirs}


async def open_chat(nursery: trio.Nursery, window: int | None = None) -> dict[Role, Side]:
    """Two honest sessions, handshake done (both established, the ready delivered)."""
    ends = streams(window)
    sides = {role: Side(role, ends[role]) for role in Role}
    for side in sides.values():
        nursery.start_soon(side.run)
    with trio.fail_after(1):
        for side in sides.values():
            await side.session.established.wait()
        await sides[Role.RESPONDER].session._can_encrypt.wait()
    return sides


@pytest.fixture(params=list(Role), ids=lambda role: f"victim-{role.value}")
def victim(request: pytest.FixtureRequest) -> Role:
    """The side whose behaviour a test checks; every such test runs for both roles."""
    return request.param


# -- honest chats ------------------------------------------------------------------------


async def test_a_chat_relays_texts_receipts_typing_and_ends_with_a_bye(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        me, other = sides[victim], sides[victim.peer]
        assert me.codes == other.codes and len(me.codes) == 1
        message_id = await me.session.send_text("hello stranger")
        await other.session.send_typing(True)
        await trio.sleep(0.1)
        assert [(e.id, e.text) for e in other.of(events.MessageReceived)] == [(message_id, "hello stranger")]
        assert [e.id for e in me.of(events.Delivered)] == [message_id]
        assert [e.active for e in me.of(events.Typing)] == [True]
        await me.session.close("next")
    assert me.end == ChatEnd("next", True)
    assert other.end == ChatEnd("next", False)
    assert not me.stream.was_reset  # a clean end closes, it does not reset


async def test_pings_keep_a_quiet_chat_open(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        await trio.sleep(10 * IDLE_TIMEOUT)  # nobody types for minutes
        assert not sides[victim].done.is_set() and not sides[victim.peer].done.is_set()
        received = sides[victim].connection.statistics().messages_received
        assert received >= 10 * IDLE_TIMEOUT / PING_INTERVAL - 2  # the pongs and pings
        nursery.cancel_scope.cancel()


# -- liveness: a stranger that freezes or vanishes -------------------------------------------


async def test_a_frozen_stranger_is_reported_within_the_liveness_bound(autojump_clock, victim):
    assert WRITE_TIMEOUT <= IDLE_TIMEOUT and LIVENESS_BOUND <= 20.0
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        await trio.sleep(3 * PING_INTERVAL + 1.3)
        frozen_at = trio.current_time()
        sides[victim.peer].stream.freeze()  # SIGSTOP: it neither reads, writes nor closes
        await sides[victim].done.wait()
        nursery.cancel_scope.cancel()
    me = sides[victim]
    assert me.end == ChatEnd("timeout", False)
    assert IDLE_TIMEOUT - PING_INTERVAL <= me.ended_at - frozen_at <= LIVENESS_BOUND
    assert me.stream.was_reset
    assert me.of(events.Error) == []  # a timeout is told by stranger_left, not as an error


async def test_a_stranger_that_stops_reading_cannot_hold_the_chat_with_blocked_writes(autojump_clock, victim):
    """The window fills (the frozen stranger reads nothing): our writes block, the chat still ends in time."""
    failures: list[str] = []
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery, window=4096)
        me = sides[victim]
        sides[victim.peer].stream.freeze()
        frozen_at = trio.current_time()
        await me.session.send_text("x" * 8000)  # fills the window

        async def user_sends() -> None:
            try:
                await me.session.send_text("are you there?")
            except LocalProtocolError as exc:
                failures.append(str(exc))

        nursery.start_soon(user_sends)  # blocks: the window is full
        await me.done.wait()
        await trio.sleep(0)
        nursery.cancel_scope.cancel()
    assert me.end.reason == "timeout" and not me.end.by_us
    assert me.ended_at - frozen_at <= LIVENESS_BOUND
    # the message that could not go out is not lost silently
    assert len(failures) == 1 and "message 2 was not sent" in failures[0]


async def test_a_stranger_that_vanishes_without_a_word_is_disconnected(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        await sides[victim.peer].stream.reset()  # its process was killed: the connection dies
        await sides[victim].done.wait()
        nursery.cancel_scope.cancel()
    assert sides[victim].end == ChatEnd("disconnected", False)
    with pytest.raises(LocalProtocolError):
        await sides[victim].session.send_text("too late")


async def test_a_closed_stream_without_a_bye_is_disconnected(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        await sides[victim.peer].stream.close()
        await sides[victim].done.wait()
        nursery.cancel_scope.cancel()
    assert sides[victim].end == ChatEnd("disconnected", False)


async def test_a_message_sent_as_the_stream_breaks_is_reported_not_lost(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        await sides[victim.peer].stream.reset()
        with pytest.raises(LocalProtocolError, match="not sent|not chatting"):
            await sides[victim].session.send_text("hello?")
        await sides[victim].done.wait()
        nursery.cancel_scope.cancel()
    assert sides[victim].end == ChatEnd("disconnected", False)


# -- the handshake ------------------------------------------------------------------------


async def _victim_against_raw(victim: Role, script, window: int | None = None):
    """Run the victim's session against a raw stream end played by ``script(raw)``."""
    ends = streams(window)
    side = Side(victim, ends[victim])
    raw = ends[victim.peer]
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(side.run)
        await script(raw)
        with trio.fail_after(60):
            await side.done.wait()
        nursery.cancel_scope.cancel()
    return side, raw, side.ended_at - started


async def test_a_silent_stranger_stalls_the_handshake_into_a_timeout(autojump_clock, victim):
    async def silence(raw: FakeStream) -> None:
        pass

    side, raw, took = await _victim_against_raw(victim, silence)
    assert side.end == ChatEnd("timeout", False)
    assert took == pytest.approx(HANDSHAKE_TIMEOUT, abs=1.5)
    assert not side.session.established.is_set() and side.events == []
    assert raw.was_reset


async def test_a_stranger_that_never_reads_stalls_the_handshake_into_a_timeout(autojump_clock, victim):
    async def frozen(raw: FakeStream) -> None:
        raw.freeze()

    side, _raw, took = await _victim_against_raw(victim, frozen, window=1)
    assert side.end == ChatEnd("timeout", False)
    assert took <= HANDSHAKE_TIMEOUT + 1.5


HOSTILE_FIRST_FRAMES = {
    "msgpack-never-used-byte": b"\x00\x00\x00\x01\xc1",
    "garbage": b"\x00\x00\x00\x05hello",
    "zero-length": b"\x00\x00\x00\x00",
    "length-above-max-frame": struct.pack(">I", MAX_FRAME + 1) + b"\x80",
    "length-2**32-1": b"\xff\xff\xff\xff\x00",
    "not-a-map": b"\x00\x00\x00\x01\x01",
    "unknown-type": b"\x00\x00\x00\x0a\x81\xa1t\xa6hacker",
}


@pytest.mark.parametrize("frame", list(HOSTILE_FIRST_FRAMES.values()), ids=list(HOSTILE_FIRST_FRAMES))
async def test_hostile_bytes_end_only_the_chat_with_a_reset(autojump_clock, victim, frame):
    async def hostile(raw: FakeStream) -> None:
        await raw.write(frame)

    side, raw, took = await _victim_against_raw(victim, hostile)
    assert side.end == ChatEnd("error", False)
    assert took < 1.5
    assert raw.was_reset
    assert [type(e) for e in side.events] == [events.Error]  # the one thing the user hears
    assert side.events[0].message.startswith("chat closed: ")


@pytest.mark.parametrize("how", ["reset", "close"])
async def test_a_stranger_leaving_mid_handshake_is_disconnected(autojump_clock, victim, how):
    async def leave(raw: FakeStream) -> None:
        await (raw.reset() if how == "reset" else raw.close())

    side, _raw, took = await _victim_against_raw(victim, leave)
    assert side.end == ChatEnd("disconnected", False)
    assert took < 1.5


# -- hostile bytes after the handshake -------------------------------------------------------


async def _inject(victim: Role, make_bytes) -> Side:
    """An open chat; then bytes chosen by ``make_bytes(stranger_side)`` arrive at the victim as
    if its stranger sent them (written on the stranger's stream, past its session)."""
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        stranger = sides[victim.peer]
        await stranger.stream.write(make_bytes(stranger))
        with trio.fail_after(5):
            await sides[victim].done.wait()
        nursery.cancel_scope.cancel()
    return sides[victim]


def _last_frame(side: Side) -> bytes:
    """The last complete frame ``side`` wrote."""
    data, frames = bytes(side.stream.written), []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        frames.append(data[: 4 + length])
        data = data[4 + length:]
    return frames[-1]


async def _sent_text(side: Side) -> None:
    await side.session.send_text("a text worth replaying")


@pytest.mark.parametrize("attack", ["replay", "forge", "c1", "truncated-then-garbage"])
async def test_a_bad_frame_in_an_open_chat_ends_it_with_an_error_event(autojump_clock, victim, attack):
    replayed: list[bytes] = []

    def make(stranger: Side) -> bytes:
        if attack == "c1":
            return b"\x00\x00\x00\x01\xc1"
        if attack == "truncated-then-garbage":
            return b"\x00\x00\x00\x10" + b"\xff" * 16
        frame = replayed[0]
        if attack == "forge":
            frame = frame[:-1] + bytes([frame[-1] ^ 1])
        return frame

    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        stranger, me = sides[victim.peer], sides[victim]
        await _sent_text(stranger)
        await trio.sleep(0.1)
        assert len(me.of(events.MessageReceived)) == 1
        replayed.append(_last_frame(stranger))
        await stranger.stream.write(make(stranger))
        with trio.fail_after(5):
            await me.done.wait()
        nursery.cancel_scope.cancel()
    assert me.end == ChatEnd("error", False)
    errors = me.of(events.Error)
    assert len(errors) == 1 and errors[0].message.startswith("chat closed")
    assert me.stream.was_reset
    assert len(me.of(events.MessageReceived)) == 1  # the replay was not shown twice


async def test_an_unexpected_exception_inside_the_protocol_ends_only_the_chat(
        autojump_clock, victim, monkeypatch):
    """A bug of ours or of a library (say an AssertionError, a RecursionError) becomes an error end."""
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        me = sides[victim]

        def broken_next_event():
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(me.connection, "next_event", broken_next_event)
        await sides[victim.peer].session.send_text("anything")
        with trio.fail_after(5):
            await me.done.wait()
        nursery.cancel_scope.cancel()
    assert me.end == ChatEnd("error", False)
    assert [e.message for e in me.of(events.Error)] == [
        "chat closed after an internal error (RecursionError)"]


async def test_a_failing_event_consumer_ends_only_the_chat(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        me = sides[victim]

        async def broken(event: events.Event) -> None:
            raise trio.BrokenResourceError("the UI went away")

        me.session._on_event = broken
        await sides[victim.peer].session.send_text("anything")
        with trio.fail_after(5):
            await me.done.wait()
        nursery.cancel_scope.cancel()
    assert me.end.reason == "error"


async def test_run_cancelled_from_outside_raises_cancelled_and_resets(autojump_clock, victim):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        nursery.cancel_scope.cancel()
    assert sides[victim].end is None  # cancelled: no end reported, the caller owns that
    assert sides[victim].stream.was_reset


async def test_a_bug_while_encrypting_is_an_error_not_a_disconnection(autojump_clock, victim, monkeypatch):
    async with trio.open_nursery() as nursery:
        sides = await open_chat(nursery)
        me = sides[victim]

        def broken_send(message):
            raise AssertionError("ratchet invariant")

        monkeypatch.setattr(me.connection, "send", broken_send)
        with trio.fail_after(2 * PING_INTERVAL):
            await me.done.wait()  # the next ping hits the bug
        nursery.cancel_scope.cancel()
    assert me.end == ChatEnd("error", False)
    assert [e.message for e in me.of(events.Error)] == [
        "chat closed after an internal error (AssertionError)"]


# -- round trips: the handshake's timeout from the stranger's, pongs and receipts feed it -----


class _SlowWrites:
    """A stream whose writes each take ``delay`` seconds to leave (a slow uplink)."""

    def __init__(self, inner: FakeStream, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def write(self, data: bytes) -> None:
        await trio.sleep(self._delay)
        await self._inner.write(data)


def _with_rtt(side: Side, rtt: RttEstimator, stream=None) -> None:
    side.session = ChatSession(stream or side.stream, side.connection, on_event=side._event,
                               on_established=side._established, rtt=rtt,
                               rtt_peer=PEERS[side.role.peer].peer_id.to_bytes())


async def test_a_slow_strangers_handshake_gets_the_time_its_round_trips_need(autojump_clock, victim):
    rtt = RttEstimator()
    stranger = PEERS[victim.peer].peer_id.to_bytes()
    for _ in range(8):
        rtt.observe(stranger, 1.5, now=trio.current_time())  # 1.5 s round trips
    expected = rtt.timeout(stranger, trio.current_time(), CHAT_HANDSHAKE)
    assert expected > HANDSHAKE_TIMEOUT + 2
    ends = streams()
    side = Side(victim, ends[victim])
    _with_rtt(side, rtt)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(side.run)
        with trio.fail_after(60):
            await side.done.wait()
    assert side.end == ChatEnd("timeout", False)
    assert side.ended_at - started == pytest.approx(expected, abs=1.5)


async def test_pongs_and_receipts_feed_the_strangers_round_trip_estimate(autojump_clock, victim):
    rtt = RttEstimator()
    stranger = PEERS[victim.peer].peer_id.to_bytes()
    ends = streams()
    sides = {role: Side(role, ends[role]) for role in Role}
    _with_rtt(sides[victim], rtt, _SlowWrites(ends[victim], 0.1))
    async with trio.open_nursery() as nursery:
        for side in sides.values():
            nursery.start_soon(side.run)
        with trio.fail_after(5):
            for side in sides.values():
                await side.session.established.wait()
        assert rtt.estimate(stranger, trio.current_time()) is None  # the handshake is no sample
        message_id = await sides[victim].session.send_text("hello")
        with trio.fail_after(5):
            while not sides[victim].of(events.Delivered):
                await trio.sleep(0.01)
        assert [e.id for e in sides[victim].of(events.Delivered)] == [message_id]
        state = rtt.estimate(stranger, trio.current_time())
        assert state is not None and state.samples == 1
        await trio.sleep(PING_INTERVAL + 1)  # one ping, its pong
        state = rtt.estimate(stranger, trio.current_time())
        assert state is not None and state.samples == 2
        assert state.srtt == pytest.approx(0.1, abs=0.03)
        nursery.cancel_scope.cancel()
