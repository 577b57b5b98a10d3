"""Moving a chat from a relayed stream to a direct one (ChatSession, docs/protocol.md §6.9).

Fake streams under MockClock: the "relayed" pair carries the chat until the
initiator's mover gets a "direct" pair; the responder's end of it goes to
``adopt_move_stream`` as the stream handler would.  Both sides send numbered
texts all through the move: every text must arrive once, in order.
"""

from __future__ import annotations

import random

import trio
from libp2p_fakes import FakeStream, stream_pair
from test_chat_session import MATCH_ID, PEERS

from strangers.crypto.frames import FrameDecoder, Move, encode_frame
from strangers.crypto.handshake import Role
from strangers.crypto.session import ChatConnection
from strangers.node import events
from strangers.node.chat import MOVE_TIMEOUT, ChatEnd, ChatSession

INI, RES = Role.INITIATOR, Role.RESPONDER


class MoveSide:
    def __init__(self, role: Role, stream: FakeStream, **kwargs) -> None:
        me, other = PEERS[role], PEERS[role.peer]
        self.connection = ChatConnection(
            role=role, match_id=MATCH_ID, local_identity=me.signing_key,
            remote_identity=other.public_bytes, rng=random.Random(role.value).randbytes,
        )
        self.events: list[events.Event] = []
        self.stream = stream
        self.session = ChatSession(stream, self.connection, on_event=self._event,
                                   on_established=self._established, path="relayed",
                                   path_of=lambda s: getattr(s, "path", "relayed"), **kwargs)
        self.end: ChatEnd | None = None
        self.done = trio.Event()

    async def _event(self, event: events.Event) -> None:
        self.events.append(event)

    async def _established(self, _code: str) -> None:
        pass

    async def run(self) -> None:
        self.end = await self.session.run()
        self.done.set()

    def texts(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, events.MessageReceived)]

    def paths(self) -> list[str]:
        return [e.path for e in self.events if isinstance(e, events.PathChanged)]


class Lab:
    """A relayed chat whose direct path appears when ``direct_up`` is set."""

    def __init__(self, nursery: trio.Nursery, *, deliver_move_stream: bool = True,
                 opening: bytes | None = None) -> None:
        self.nursery = nursery
        self.direct_up = trio.Event()
        self.deliver = deliver_move_stream
        self.opening = opening
        self.direct: dict[Role, FakeStream] = {}
        self.hole_punches = 0
        old = stream_pair(PEERS[INI].peer_id, PEERS[RES].peer_id)
        self.old = {INI: old[0], RES: old[1]}
        self.sides = {
            INI: MoveSide(INI, self.old[INI], open_move_stream=self._open, while_relayed=self._punch),
            RES: MoveSide(RES, self.old[RES], while_relayed=self._punch),
        }

    async def _punch(self) -> None:
        self.hole_punches += 1

    async def _open(self) -> FakeStream | None:
        await self.direct_up.wait()
        ours, theirs = stream_pair(PEERS[INI].peer_id, PEERS[RES].peer_id)
        ours.path = theirs.path = "direct"  # type: ignore[attr-defined]
        self.direct = {INI: ours, RES: theirs}
        if self.opening is not None:  # a hostile opener: it writes its own first frame
            await ours.write(self.opening)
        if self.deliver:
            self.nursery.start_soon(self.sides[RES].session.adopt_move_stream, theirs)
        return ours

    async def start(self) -> None:
        for side in self.sides.values():
            self.nursery.start_soon(side.run)
        with trio.fail_after(1):
            for side in self.sides.values():
                await side.session.established.wait()
            await self.sides[RES].session._can_encrypt.wait()


async def _talk(side: MoveSide, label: str, count: int, started: trio.Event | None = None) -> None:
    for n in range(1, count + 1):
        await side.session.send_text(f"{label} {n}")
        if n == 10 and started is not None:
            started.set()
        await trio.sleep(0.01)


async def test_a_chat_moves_to_the_direct_stream_while_both_sides_talk(autojump_clock):
    async with trio.open_nursery() as nursery:
        lab = Lab(nursery)
        await lab.start()
        i, r = lab.sides[INI], lab.sides[RES]
        halfway = trio.Event()
        async with trio.open_nursery() as talkers:
            talkers.start_soon(_talk, i, "i", 60, halfway)
            talkers.start_soon(_talk, r, "r", 60)
            await halfway.wait()
            lab.direct_up.set()  # the hole punch succeeded mid-conversation
        await trio.sleep(1)
        assert r.texts() == [f"i {n}" for n in range(1, 61)]
        assert i.texts() == [f"r {n}" for n in range(1, 61)]
        assert i.paths() == r.paths() == ["direct"]
        assert i.session.path == r.session.path == "direct"
        # the move happened mid-stream: texts on both old and new streams, both ways
        for role in Role:
            old_text, new_text = lab.old[role].written, lab.direct[role].written
            assert len(old_text) > 2000 and len(new_text) > 2000, (len(old_text), len(new_text))
        assert lab.old[INI].write_closed and lab.old[RES].write_closed  # the relayed stream closed
        assert not lab.old[INI].was_reset
        # every receipt came (the ratchet and the receipts span both streams)
        for side in (i, r):
            assert sorted(e.id for e in side.events if isinstance(e, events.Delivered)) == list(range(1, 61))
        await i.session.close("quit")
    assert r.end == ChatEnd("quit", False)
    assert lab.hole_punches == 2  # each side ran its relayed-path task once


async def test_a_chat_with_no_direct_path_stays_on_the_relay(autojump_clock):
    async with trio.open_nursery() as nursery:
        lab = Lab(nursery)
        await lab.start()
        i, r = lab.sides[INI], lab.sides[RES]
        await _talk(i, "i", 5)
        await trio.sleep(30)
        assert r.texts() == [f"i {n}" for n in range(1, 6)]
        assert i.paths() == r.paths() == [] and i.session.path == "relayed"
        nursery.cancel_scope.cancel()


async def test_an_opening_for_another_match_is_refused_and_the_chat_goes_on(autojump_clock):
    async with trio.open_nursery() as nursery:
        lab = Lab(nursery, opening=encode_frame(Move(bytes(16))))
        await lab.start()
        i, r = lab.sides[INI], lab.sides[RES]
        lab.direct_up.set()
        await trio.sleep(1)
        assert lab.direct[RES].was_reset  # the responder refused the forged opening
        await r.session.send_text("still here")
        await trio.sleep(1)
        assert i.texts() == ["still here"] and r.paths() == []
        assert not r.done.is_set()
        nursery.cancel_scope.cancel()


async def test_a_move_stream_that_never_comes_ends_the_chat(autojump_clock):
    """The initiator moved (its Moved is out) but the stream never reached the responder."""
    async with trio.open_nursery() as nursery:
        lab = Lab(nursery, deliver_move_stream=False)
        await lab.start()
        r = lab.sides[RES]
        lab.direct_up.set()
        with trio.fail_after(MOVE_TIMEOUT + 2):
            await r.done.wait()
        nursery.cancel_scope.cancel()
    assert r.end == ChatEnd("disconnected", False)


async def test_the_opening_on_the_wire(autojump_clock):
    async with trio.open_nursery() as nursery:
        lab = Lab(nursery)
        await lab.start()
        lab.direct_up.set()
        await trio.sleep(1)
        decoder = FrameDecoder()
        decoder.feed(bytes(lab.direct[INI].written[:32]))
        assert decoder.next_frame() == Move(MATCH_ID)
        nursery.cancel_scope.cancel()


class _Session:
    def __init__(self) -> None:
        self.adopted: list[FakeStream] = []

    async def adopt_move_stream(self, stream: FakeStream) -> None:
        self.adopted.append(stream)


async def test_conversations_route_a_move_stream_only_from_the_chats_stranger(autojump_clock):
    """A chat stream from the stranger of the running chat is its move stream; from anyone
    else, or when this node does not hole-punch (--hide-ip), it is reset."""
    from strangers.node.conversation import Conversations

    async with trio.open_nursery() as nursery:
        chats = Conversations(None, None, None, None, emit=None, start_search=lambda: None,
                              auto_next=True, nursery=nursery)
        session = _Session()
        chats.session = session  # type: ignore[assignment]
        chats._session_peer = PEERS[INI].peer_id
        stranger, _ = stream_pair(PEERS[RES].peer_id, PEERS[INI].peer_id)
        chats.holepunch = object()  # type: ignore[assignment]
        await chats.handle_chat_stream(stranger)
        assert session.adopted == [stranger]
        other, _ = stream_pair(PEERS[INI].peer_id, PEERS[RES].peer_id)  # from someone else
        await chats.handle_chat_stream(other)
        assert session.adopted == [stranger] and other.was_reset
        chats.holepunch = None
        again, _ = stream_pair(PEERS[RES].peer_id, PEERS[INI].peer_id)
        await chats.handle_chat_stream(again)
        assert session.adopted == [stranger] and again.was_reset
