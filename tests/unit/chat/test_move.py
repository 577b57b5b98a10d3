"""Moving a chat to a new stream (session rule 7, docs/protocol.md §6.9), sans IO.

The tests play the adapter: each side has an old and a new stream (byte
strings here); a side writes on the old stream up to its Moved and on the new
one after it, and reads the old stream up to the stranger's Moved before it
reads the new one.
"""

from __future__ import annotations

import msgpack
import pytest

from strangers.crypto.frames import (
    FrameDecoder,
    Move,
    Moved,
    Ready,
    Text,
    decode_inner,
    encode_frame,
    encode_inner,
)
from strangers.crypto.handshake import Role
from strangers.crypto.session import ConnectionState, Delivered, Ping, Pong
from strangers.errors import CryptoError, LocalProtocolError, RemoteProtocolError

from chat_helpers import ConnectionPair, RawPeer, drain

INITIATOR, RESPONDER = Role.INITIATOR, Role.RESPONDER


def first_frame(data: bytes) -> object:
    decoder = FrameDecoder()
    decoder.feed(data)
    return decoder.next_frame()


def texts(events: list[object]) -> list[int]:
    return [event.id for event in events if isinstance(event, Text)]


def test_frames_round_trip() -> None:
    move = Move(bytes(range(16)))
    assert first_frame(encode_frame(move)) == move
    assert decode_inner(encode_inner(Moved())) == Moved()
    with pytest.raises(LocalProtocolError, match="16 bytes"):
        Move(b"short")


def test_a_move_frame_with_a_bad_match_id_is_the_peers_fault() -> None:
    body = msgpack.packb({"t": "move", "m": b"x" * 15}, use_bin_type=True)
    with pytest.raises(RemoteProtocolError, match="bad move frame"):
        first_frame(len(body).to_bytes(4, "big") + body)


def test_a_move_with_messages_in_flight_both_ways_keeps_every_message_in_order(
    open_pair: ConnectionPair,
) -> None:
    """Both sides keep talking through the move; nothing is lost or reordered."""
    i, r = open_pair.initiator, open_pair.responder
    old = {INITIATOR: b"", RESPONDER: b""}
    new = {INITIATOR: b"", RESPONDER: b""}
    got: dict[Role, list[object]] = {INITIATOR: [], RESPONDER: []}

    assert i.can_move and not r.can_move
    # the initiator: text 1 on the old stream, opening on the new one, Moved, text 2 (new)
    old[INITIATOR] += i.send(Text(1, "one"))
    new[INITIATOR] += i.move_opening()
    old[INITIATOR] += i.send(Moved())
    assert i.moved_out and not i.can_move
    new[INITIATOR] += i.send(Text(2, "two"))
    # the responder sent texts 1 and 2 on the old stream meanwhile; 2 crosses the opening
    old[RESPONDER] += r.send(Text(1, "uno"))
    r.receive_data(old[INITIATOR][: len(old[INITIATOR]) // 2])  # half of the old stream
    got[RESPONDER] += drain(r)
    old[RESPONDER] += r.send(Text(2, "dos"))
    # the responder reads the opening first (a separate stream), accepts, moves
    opening = new[INITIATOR][:32]
    assert first_frame(opening) == Move(open_pair.match_id)
    r.accept_move(first_frame(opening))
    old[RESPONDER] += r.send(Moved())
    new[RESPONDER] += r.send(Text(3, "tres"))
    # the rest of the initiator's old stream: text 1 (already read) ... Moved
    r.receive_data(old[INITIATOR][len(old[INITIATOR]) // 2 :])
    events = drain(r)
    got[RESPONDER] += events
    assert isinstance(got[RESPONDER][-1], Moved) and r.moved_in
    # only now the new stream, after its opening
    r.receive_data(new[INITIATOR][32:])
    got[RESPONDER] += drain(r)
    # the initiator reads the responder's old stream to Moved, then its new stream
    i.receive_data(old[RESPONDER])
    got[INITIATOR] += drain(i)
    assert isinstance(got[INITIATOR][-1], Moved) and i.moved_in
    i.receive_data(new[RESPONDER])
    got[INITIATOR] += drain(i)

    assert texts(got[RESPONDER]) == [1, 2]
    assert texts(got[INITIATOR]) == [1, 2, 3]
    assert i.state is r.state is ConnectionState.OPEN
    # receipts flow on the new streams
    i.receive_data(r.send(Delivered(1)) + r.send(Delivered(2)))
    assert [e.id for e in drain(i) if isinstance(e, Delivered)] == [1, 2]
    r.receive_data(i.send(Ping(7)))
    assert drain(r) == []
    i.receive_data(r.data_to_send())
    assert drain(i) == [Pong(7)]


def test_the_opening_is_32_bytes(open_pair: ConnectionPair) -> None:
    """4-byte prefix + msgpack {"t": "move", "m": bin(16)} (the adapter reads it exactly)."""
    assert len(open_pair.initiator.move_opening()) == 32


def test_bytes_after_moved_on_the_old_stream_are_the_peers_fault(open_pair: ConnectionPair) -> None:
    i, r = open_pair.initiator, open_pair.responder
    i.move_opening()
    data = i.send(Moved()) + i.send(Text(1, "on the wrong stream"))
    r.receive_data(data)
    with pytest.raises(RemoteProtocolError, match="after Moved on the old stream"):
        drain(r)
    assert r.state is ConnectionState.ERROR


def test_moved_twice_is_the_peers_fault(pair: ConnectionPair) -> None:
    peer = RawPeer(pair, RESPONDER)  # plays the initiator
    peer.open()
    r = pair.responder
    r.receive_data(peer.seal_message(Ready()) + peer.seal_message(Moved()))
    assert drain(r) == [Moved()]
    r.receive_data(peer.seal_message(Moved()))
    with pytest.raises(RemoteProtocolError, match="Moved twice"):
        drain(r)


def test_moved_to_an_initiator_that_opened_no_move_is_the_peers_fault(pair: ConnectionPair) -> None:
    peer = RawPeer(pair, INITIATOR)  # plays the responder
    peer.open()
    i = pair.initiator
    i.receive_data(peer.seal_message(Moved()))
    with pytest.raises(RemoteProtocolError, match="opened no move"):
        drain(i)


def test_the_initiators_moved_may_overtake_the_opening(open_pair: ConnectionPair) -> None:
    """Two streams race: the responder may read Moved before its move stream arrives."""
    i, r = open_pair.initiator, open_pair.responder
    opening = i.move_opening()
    r.receive_data(i.send(Moved()))
    assert drain(r) == [Moved()]
    r.accept_move(first_frame(opening))
    assert r.send(Moved())


def test_who_may_move_and_when(pair: ConnectionPair) -> None:
    i, r = pair.initiator, pair.responder
    with pytest.raises(LocalProtocolError, match="cannot open a move"):
        i.move_opening()  # before the handshake
    pair.open()
    with pytest.raises(LocalProtocolError, match="cannot open a move"):
        r.move_opening()  # the responder never opens
    with pytest.raises(LocalProtocolError, match="follows the move stream's opening"):
        i.send(Moved())  # Moved before the opening
    with pytest.raises(LocalProtocolError, match="follows the move stream's opening"):
        r.send(Moved())  # nor before accepting one
    opening = first_frame(i.move_opening())
    with pytest.raises(LocalProtocolError, match="moved already"):
        i.move_opening()
    with pytest.raises(RemoteProtocolError, match="cannot accept"):
        i.accept_move(opening)  # the initiator accepts nothing
    r.accept_move(opening)
    with pytest.raises(RemoteProtocolError, match="moved already"):
        r.accept_move(opening)  # one move per chat
    i.send(Moved())
    with pytest.raises(LocalProtocolError, match="sent already"):
        i.send(Moved())


def test_an_opening_for_another_match_or_not_a_move_is_refused(open_pair: ConnectionPair) -> None:
    r = open_pair.responder
    with pytest.raises(RemoteProtocolError, match="another match"):
        r.accept_move(Move(bytes(16)))
    with pytest.raises(RemoteProtocolError, match="must open with a move frame"):
        r.accept_move(Text(1, "hi"))
    # a refused opening changes nothing: the chat goes on and a real one is accepted
    assert r.state is ConnectionState.OPEN
    r.accept_move(first_frame(open_pair.initiator.move_opening()))


def test_a_responder_that_cannot_encrypt_yet_refuses_a_move(pair: ConnectionPair) -> None:
    pair.handshake()  # the initiator's Ready has not arrived
    with pytest.raises(RemoteProtocolError, match="cannot accept"):
        pair.responder.accept_move(Move(pair.match_id))


def test_a_move_frame_inside_the_chat_stream_is_the_peers_fault(open_pair: ConnectionPair) -> None:
    r = open_pair.responder
    r.receive_data(open_pair.initiator.move_opening())
    with pytest.raises(RemoteProtocolError, match="move frame inside a chat stream"):
        drain(r)


def test_a_message_replayed_from_the_old_stream_onto_the_new_one_fails(
    open_pair: ConnectionPair,
) -> None:
    """The ratchet spans both streams: an old ciphertext copied onto the new stream is a replay."""
    i, r = open_pair.initiator, open_pair.responder
    hello = i.send(Text(1, "hello"))
    opening = i.move_opening()
    moved = i.send(Moved())
    r.receive_data(hello + moved)
    assert texts(drain(r)) == [1]
    r.accept_move(first_frame(opening))
    r.receive_data(hello)  # the attacker replays text 1 on the new stream
    with pytest.raises((CryptoError, RemoteProtocolError)):
        drain(r)
