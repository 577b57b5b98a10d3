"""The chat handshake's first frames ride in the match exchange (docs/protocol.md §5.2, §6.2).

A version-2 proposal carries the proposer's chat commit, the Accept the
responder's hello; each side keeps the started ChatConnection for its chat
stream. Peers that do not (a version-1 proposer, a responder that accepts
without a hello) get the whole handshake on the chat stream.
"""

from __future__ import annotations

import os

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from libp2p_fakes import FakeHost, make_peer, stream_pair

from strangers.crypto.frames import FrameDecoder
from strangers.crypto.handshake import Role
from strangers.crypto.session import NEED_DATA, ChatConnection, Established
from strangers.discovery.matcher import Matcher, MatchState
from strangers.discovery.proposal import Accept, Propose, decode, encode, frame_length
from strangers.node.libp2p.streamio import StreamEnded, read_exactly
from strangers.node.matching import MATCH_PROTOCOL, PREPARED_CHATS, MatchService, PreparedChat

ALICE, BOB = make_peer("alice"), make_peer("bob")
PEERS = {ALICE.peer_id: ALICE, BOB.peer_id: BOB}
MATCH_ID = b"\x01" * 16


def factory_for(me):
    def make(role: Role, peer_id, match_id: bytes) -> ChatConnection:
        return ChatConnection(role=role, match_id=match_id, local_identity=me.signing_key,
                              remote_identity=PEERS[peer_id].public_bytes, rng=os.urandom)
    return make


class Node:
    def __init__(self, peer, nursery: trio.Nursery) -> None:
        self.peer = peer
        self.host = FakeHost(peer.peer_id, nursery)
        self.matcher = Matcher(local_id=peer.peer_id.to_bytes(), interests=("jazz",), random_after=10.0)
        self.accepted: list = []
        self.service = MatchService(self.host, self.matcher, on_accepted=self.accepted.append,
                                    chat_factory=factory_for(peer))
        self.host.set_stream_handler(MATCH_PROTOCOL, self.service.handle_stream)
        self.matcher.start_search(trio.current_time())

    async def propose_to(self, other, match_id: bytes = MATCH_ID):
        self.matcher.propose(other.peer_id.to_bytes())
        return await self.service.propose(PeerInfo(other.peer_id, []), match_id, ("jazz",))


def _events(connection: ChatConnection) -> list:
    found = []
    while (event := connection.next_event()) is not NEED_DATA:
        found.append(event)
    return found


def _finish(initiator, responder) -> tuple[str, str]:
    """Run the chat stream's part: the initiator's opening, the responder's answer. Safety codes."""
    assert initiator.role is Role.INITIATOR and responder.role is Role.RESPONDER
    responder.connection.receive_data(initiator.opening)
    assert any(isinstance(event, Established) for event in _events(responder.connection))
    initiator.connection.receive_data(responder.connection.data_to_send())
    assert any(isinstance(event, Established) for event in _events(initiator.connection))
    return initiator.connection.safety_code, responder.connection.safety_code


def _frame_types(data: bytes) -> list[str]:
    decoder = FrameDecoder()
    decoder.feed(data)
    types = []
    while (frame := decoder.next_frame()) is not None:
        types.append(type(frame).__name__)
    return types


async def test_the_commit_rides_in_the_proposal_and_the_hello_in_the_accept(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = Node(ALICE, nursery), Node(BOB, nursery)
        alice.host.connect(bob.host)
        seen: list = []
        handler = bob.host.handlers[MATCH_PROTOCOL]

        async def spy(stream):
            original_read = stream.read

            async def read(n=None):
                data = await original_read(n)
                seen.append(data)
                return data
            stream.read = read
            await handler(stream)
        bob.host.handlers[MATCH_PROTOCOL] = spy

        answer = await alice.propose_to(bob.peer)
        assert answer == Accept(MATCH_ID, ("jazz",))  # the hello is kept, not handed out
        proposal = decode(b"".join(seen)[4:])
        assert isinstance(proposal, Propose) and _frame_types(proposal.handshake) == ["Commit"]
        initiator = alice.service.take_prepared(BOB.peer_id, MATCH_ID, Role.INITIATOR)
        responder = bob.service.take_prepared(ALICE.peer_id, MATCH_ID, Role.RESPONDER)
        assert initiator is not None and responder is not None
        assert _frame_types(initiator.opening)[:2] == ["Hello", "Finished"]  # no commit on the chat stream
        assert responder.opening == b""
        first, second = _finish(initiator, responder)
        assert first == second and first is not None
        assert alice.service.take_prepared(BOB.peer_id, MATCH_ID, Role.INITIATOR) is None  # once
        nursery.cancel_scope.cancel()


async def test_an_accept_without_a_hello_leaves_the_commit_to_the_chat_stream(autojump_clock):
    """A responder of an older version (or a foreign one) answers a plain Accept."""
    async with trio.open_nursery() as nursery:
        alice, bob = Node(ALICE, nursery), Node(BOB, nursery)
        alice.host.connect(bob.host)

        async def old_responder(stream):
            proposal = decode(await read_exactly(stream, frame_length(await read_exactly(stream, 4))))
            await stream.write(encode(Accept(proposal.match_id, ("jazz",))))
            await stream.close()
        bob.host.handlers[MATCH_PROTOCOL] = old_responder

        assert await alice.propose_to(bob.peer) == Accept(MATCH_ID, ("jazz",))
        initiator = alice.service.take_prepared(BOB.peer_id, MATCH_ID, Role.INITIATOR)
        assert initiator is not None and _frame_types(initiator.opening) == ["Commit"]
        fresh = ChatConnection(role=Role.RESPONDER, match_id=MATCH_ID, local_identity=BOB.signing_key,
                               remote_identity=ALICE.public_bytes, rng=os.urandom)
        assert fresh.start() == b""
        fresh.receive_data(initiator.opening)
        assert _events(fresh) == []
        initiator.connection.receive_data(fresh.data_to_send())  # hello_R, on the chat stream
        assert _events(initiator.connection) == []
        responder = PreparedChat(Role.RESPONDER, fresh, b"")
        initiator = PreparedChat(Role.INITIATOR, initiator.connection, initiator.connection.data_to_send())
        first, second = _finish(initiator, responder)
        assert first == second
        nursery.cancel_scope.cancel()


async def test_a_version_1_proposal_gets_a_plain_accept(autojump_clock):
    async with trio.open_nursery() as nursery:
        bob = Node(BOB, nursery)
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        nursery.start_soon(bob.service.handle_stream, theirs)
        await ours.write(encode(Propose(MATCH_ID, ("jazz",))))
        answer = decode(await read_exactly(ours, frame_length(await read_exactly(ours, 4))))
        assert answer == Accept(MATCH_ID, ("jazz",)) and answer.handshake == b""
        assert bob.service.take_prepared(ALICE.peer_id, MATCH_ID, Role.RESPONDER) is None
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("commit", [b"\x00\x00\x00\x01\xc0", b"garbage", b"\x00\x00\x00\x03abc"])
async def test_a_bad_commit_makes_the_proposal_bad(autojump_clock, commit):
    async with trio.open_nursery() as nursery:
        bob = Node(BOB, nursery)
        ours, theirs = stream_pair(ALICE.peer_id, BOB.peer_id)
        nursery.start_soon(bob.service.handle_stream, theirs)
        await ours.write(encode(Propose(MATCH_ID, ("jazz",), commit)))
        with pytest.raises(StreamEnded):  # reset, no answer
            await read_exactly(ours, 4)
        assert bob.matcher.state is MatchState.SEARCHING and bob.accepted == []
        assert bob.service.take_prepared(ALICE.peer_id, MATCH_ID, Role.RESPONDER) is None
        nursery.cancel_scope.cancel()


async def test_a_bad_hello_in_the_accept_fails_the_proposal(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = Node(ALICE, nursery), Node(BOB, nursery)
        alice.host.connect(bob.host)

        async def forger(stream):
            proposal = decode(await read_exactly(stream, frame_length(await read_exactly(stream, 4))))
            # a hello made for another match id: its signature does not verify here
            other = ChatConnection(role=Role.RESPONDER, match_id=b"\x09" * 16, local_identity=BOB.signing_key,
                                   remote_identity=ALICE.public_bytes, rng=os.urandom)
            other.start()
            helper = ChatConnection(role=Role.INITIATOR, match_id=b"\x09" * 16,
                                    local_identity=ALICE.signing_key, remote_identity=BOB.public_bytes,
                                    rng=os.urandom)
            other.receive_data(helper.start())
            _events(other)
            await stream.write(encode(Accept(proposal.match_id, ("jazz",), other.data_to_send())))
            await stream.close()
        bob.host.handlers[MATCH_PROTOCOL] = forger
        assert await alice.propose_to(bob.peer) is None
        assert alice.service.take_prepared(BOB.peer_id, MATCH_ID, Role.INITIATOR) is None
        nursery.cancel_scope.cancel()


async def test_prepared_chats_are_bounded_and_taken_by_role(autojump_clock):
    async with trio.open_nursery() as nursery:
        alice, bob = Node(ALICE, nursery), Node(BOB, nursery)
        alice.host.connect(bob.host)
        ids = [bytes([n + 1]) * 16 for n in range(PREPARED_CHATS + 2)]
        for match_id in ids:
            bob.matcher.stop()
            bob.matcher.start_search(trio.current_time())
            bob.service.accepted = None
            alice.matcher.stop()
            alice.matcher.start_search(trio.current_time())
            assert isinstance(await alice.propose_to(bob.peer, match_id), Accept)
        assert len(alice.service._prepared) == PREPARED_CHATS
        assert alice.service.take_prepared(BOB.peer_id, ids[0], Role.INITIATOR) is None  # the oldest went
        assert alice.service.take_prepared(BOB.peer_id, ids[-1], Role.RESPONDER) is None  # wrong role
        nursery.cancel_scope.cancel()
