"""The chat state machine, driven through ConnectionPair (honest peers) and RawPeer (not)."""

from __future__ import annotations

import random
import struct
from typing import Any

import msgpack
import pytest
from chat_helpers import ConnectionPair, RawPeer, drain, public_bytes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from strangers.crypto.frames import MAX_FRAME, Envelope, FrameDecoder, Ready, encode_frame
from strangers.crypto.handshake import Handshake, Role
from strangers.crypto.session import (
    CLOSED,
    MAX_QUEUED,
    NEED_DATA,
    TRANSITIONS,
    Bye,
    ChatConnection,
    ConnectionState,
    Delivered,
    Established,
    Ping,
    Pong,
    Text,
    Trigger,
    Typing,
)
from strangers.errors import CryptoError, LocalProtocolError, RemoteProtocolError

INITIATOR, RESPONDER = Role.INITIATOR, Role.RESPONDER


def frames_in(data: bytes) -> list[bytes]:
    """Split a stream into its frames, each with its length prefix."""
    out = []
    while data:
        (size,) = struct.unpack_from(">I", data)
        out.append(data[: 4 + size])
        data = data[4 + size :]
    return out


def padded(obj: Any) -> bytes:
    content = msgpack.packb(obj)
    size = -(-(2 + len(content)) // 64) * 64
    return struct.pack(">H", len(content)) + content + bytes(size - 2 - len(content))


def assert_failed(conn: ChatConnection) -> None:
    """``conn`` is in ERROR and stays there whatever we do."""
    assert conn.state is ConnectionState.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        conn.next_event()
    with pytest.raises(LocalProtocolError, match="while the chat is error"):
        conn.send(Text(1, "anyone?"))
    assert conn.data_to_send() == b""
    conn.receive_data(b"ignored")
    assert conn.state is ConnectionState.ERROR


# --- the handshake --------------------------------------------------------------------


def test_both_sides_establish_the_same_safety_code(pair: ConnectionPair) -> None:
    assert pair.initiator.safety_code is None
    assert pair.initiator.state is pair.responder.state is ConnectionState.HANDSHAKING
    code = pair.handshake()
    assert code == pair.responder.safety_code
    assert len(code) == 17
    assert pair.initiator.state is pair.responder.state is ConnectionState.OPEN


def test_hellos_may_cross_in_any_order(pair: ConnectionPair) -> None:
    pair.start()
    initiator_events = pair.deliver(RESPONDER, pair.hellos[RESPONDER])
    responder_events = pair.deliver(INITIATOR, pair.hellos[INITIATOR])
    assert initiator_events == responder_events
    assert isinstance(initiator_events[0], Established)


def test_different_pairs_get_different_safety_codes() -> None:
    assert ConnectionPair(1).open() != ConnectionPair(2).open()


def test_nothing_but_hellos_before_the_handshake(pair: ConnectionPair) -> None:
    pair.start()
    for conn in pair.conn.values():
        assert conn.data_to_send() == b""
        with pytest.raises(LocalProtocolError, match="while the chat is handshaking"):
            conn.send(Text(1, "too early"))
    assert pair.deliver(INITIATOR, pair.hellos[INITIATOR][:10]) == []


def test_start_is_called_once_and_first(pair: ConnectionPair) -> None:
    with pytest.raises(LocalProtocolError, match="call start"):
        pair.initiator.next_event()
    pair.initiator.start()
    with pytest.raises(LocalProtocolError, match="already called"):
        pair.initiator.start()


def test_a_hello_from_someone_else_is_a_crypto_error(sender: Role, pair: ConnectionPair) -> None:
    impostor = Handshake(
        role=sender,
        match_id=pair.match_id,
        local_identity=Ed25519PrivateKey.from_private_bytes(bytes(32)),
        remote_identity=public_bytes(pair.identities[sender.peer]),
        rng=random.Random("impostor").randbytes,
    )
    pair.start()
    receiver = pair.conn[sender.peer]
    receiver.receive_data(encode_frame(impostor.hello()))
    with pytest.raises(CryptoError, match=f"not signed by the expected {sender.value}"):
        receiver.next_event()
    assert_failed(receiver)


def test_a_hello_for_another_match_is_a_crypto_error(sender: Role, pair: ConnectionPair) -> None:
    pair.start()
    receiver = pair.conn[sender.peer]
    receiver.receive_data(ConnectionPair(seed=99).conn[sender].start())
    with pytest.raises(CryptoError, match="not for this match"):
        receiver.next_event()
    assert_failed(receiver)


def test_a_message_before_the_handshake_is_the_peers_fault(sender: Role) -> None:
    elsewhere = ConnectionPair(seed=5)
    elsewhere.open()
    message = elsewhere.conn[sender].send(Text(1, "hi"))
    pair = ConnectionPair()
    pair.start()
    pair.conn[sender.peer].receive_data(message)
    with pytest.raises(RemoteProtocolError, match="message received while the chat was handsh"):
        pair.conn[sender.peer].next_event()
    assert_failed(pair.conn[sender.peer])


def test_a_second_hello_is_the_peers_fault(sender: Role, open_pair: ConnectionPair) -> None:
    receiver = open_pair.conn[sender.peer]
    receiver.receive_data(open_pair.hellos[sender])
    with pytest.raises(RemoteProtocolError, match="hello received while the chat was open"):
        receiver.next_event()
    assert_failed(receiver)


# --- talking --------------------------------------------------------------------------


def test_text_typing_delivered(sender: Role, open_pair: ConnectionPair) -> None:
    receiver = sender.peer
    assert open_pair.send(sender, Typing(True)) == [Typing(True)]
    assert open_pair.send(sender, Typing(False), Text(1, "hello 👋")) == [
        Typing(False),
        Text(1, "hello 👋"),
    ]
    assert open_pair.send(receiver, Delivered(1)) == [Delivered(1)]
    stats = open_pair.conn[sender].statistics()
    assert (stats.messages_sent, stats.messages_received) == (
        3 + (sender is INITIATOR),
        1 + (sender is RESPONDER),
    )
    assert stats.state is ConnectionState.OPEN
    assert stats.role is open_pair.conn[sender].role is sender


def test_a_long_conversation_both_ways(open_pair: ConnectionPair) -> None:
    for number in range(1, 41):
        speaker = (INITIATOR, RESPONDER)[number % 3 == 0]
        text = Text(number, f"message {number} " * number)
        assert open_pair.send(speaker, text) == [text]
        assert open_pair.send(speaker.peer, Delivered(number)) == [Delivered(number)]
    assert open_pair.send(RESPONDER, Bye("quit")) == [Bye("quit"), CLOSED]


def test_the_peer_answers_pings_by_itself(sender: Role, open_pair: ConnectionPair) -> None:
    assert open_pair.send(sender, Ping(7)) == []  # not an event
    assert open_pair.conn[sender.peer].statistics().queued_messages == 1
    assert open_pair.flush(sender.peer) == [Pong(7)]
    assert open_pair.flush(sender.peer) == []


def test_unanswered_pings_get_one_pong_for_the_latest(
    sender: Role, open_pair: ConnectionPair
) -> None:
    assert open_pair.send(sender, Ping(1), Ping(2), Ping(3)) == []
    assert open_pair.flush(sender.peer) == [Pong(3)]


def test_a_pending_pong_goes_out_before_the_next_message(
    sender: Role, open_pair: ConnectionPair
) -> None:
    open_pair.send(sender, Ping(1))
    assert open_pair.send(sender.peer, Text(5, "pong first")) == [Pong(1), Text(5, "pong first")]


def test_the_app_cannot_send_machine_messages(open_pair: ConnectionPair) -> None:
    for message in (Ready(), Pong(1), Established("x"), "hi", None):
        with pytest.raises(LocalProtocolError, match="the application cannot send"):
            open_pair.initiator.send(message)  # type: ignore[arg-type]


def test_established_validates_itself() -> None:
    with pytest.raises(LocalProtocolError, match="not ''"):
        Established("")


# --- the ready and the responder's queue ----------------------------------------------


def test_the_initiator_sends_ready_first_even_if_it_speaks_at_once(pair: ConnectionPair) -> None:
    pair.handshake()
    data = pair.initiator.send(Text(1, "me first"))  # data_to_send() not called yet
    assert len(frames_in(data)) == 2
    assert pair.deliver(INITIATOR, data) == [Text(1, "me first")]
    assert pair.initiator.data_to_send() == b""


def test_the_responder_queues_until_it_can_send(pair: ConnectionPair) -> None:
    pair.handshake()
    assert pair.responder.send(Text(1, "quick")) == b""
    assert pair.responder.send(Typing(False)) == b""
    assert pair.responder.statistics().queued_messages == 2
    assert pair.responder.data_to_send() == b""  # still cannot encrypt
    assert pair.flush(INITIATOR) == []  # the ready arrives
    assert pair.flush(RESPONDER) == [Text(1, "quick"), Typing(False)]
    assert pair.responder.statistics().queued_messages == 0


def test_the_responder_queue_is_bounded(pair: ConnectionPair) -> None:
    pair.handshake()
    for number in range(1, MAX_QUEUED + 1):
        assert pair.responder.send(Text(number, "x")) == b""
    with pytest.raises(LocalProtocolError, match="64 messages already wait"):
        pair.responder.send(Text(99, "one too many"))
    assert pair.responder.state is ConnectionState.OPEN  # our misuse does not break the chat
    pair.flush(INITIATOR)
    assert pair.flush(RESPONDER) == [Text(number, "x") for number in range(1, MAX_QUEUED + 1)]


def test_a_responder_bye_before_the_ready_drops_the_queue(pair: ConnectionPair) -> None:
    pair.handshake()
    pair.responder.send(Text(1, "never mind"))
    assert pair.responder.send(Bye("next")) == b""
    assert pair.responder.state is ConnectionState.CLOSED
    assert pair.responder.statistics().queued_messages == 0
    pair.initiator.data_to_send()
    assert pair.end_stream(RESPONDER) == [CLOSED]  # the adapter closed the stream


# --- ending ---------------------------------------------------------------------------


def test_bye_closes_both_sides(sender: Role, open_pair: ConnectionPair) -> None:
    assert open_pair.send(sender, Bye("next")) == [Bye("next"), CLOSED]
    for conn in open_pair.conn.values():
        assert conn.state is ConnectionState.CLOSED
        assert conn.next_event() is CLOSED
        assert conn.data_to_send() == b""
        with pytest.raises(LocalProtocolError, match="while the chat is closed"):
            conn.send(Text(1, "hello?"))
    open_pair.conn[sender.peer].receive_data(b"late bytes are dropped")
    assert open_pair.conn[sender.peer].statistics().buffered_bytes == 0


def test_messages_after_a_bye_are_not_reported(sender: Role, open_pair: ConnectionPair) -> None:
    sending = open_pair.conn[sender]
    data = sending.send(Bye("quit"))
    elsewhere = ConnectionPair()
    elsewhere.open()
    trailing = elsewhere.conn[sender].send(Text(1, "ghost"))
    assert open_pair.deliver(sender, data + trailing) == [Bye("quit"), CLOSED]


@pytest.mark.parametrize("opened", [False, True], ids=["handshaking", "open"])
def test_end_of_stream_before_bye_closes(sender: Role, opened: bool) -> None:
    pair = ConnectionPair()
    if opened:
        pair.open()
    else:
        pair.start()
    assert pair.end_stream(sender) == [CLOSED]
    receiver = pair.conn[sender.peer]
    assert receiver.state is ConnectionState.CLOSED
    receiver.receive_data(b"")  # a second end of stream is harmless
    assert receiver.next_event() is CLOSED


def test_end_of_stream_in_the_middle_of_a_frame_is_the_peers_fault(
    open_pair: ConnectionPair,
) -> None:
    data = open_pair.initiator.send(Text(1, "cut"))
    open_pair.responder.receive_data(data[:-1])
    open_pair.responder.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="ended in the middle of a frame"):
        open_pair.responder.next_event()
    assert_failed(open_pair.responder)


def test_no_data_after_end_of_stream(pair: ConnectionPair) -> None:
    pair.start()
    pair.initiator.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="after the end of the stream"):
        pair.initiator.receive_data(b"more")


# --- attacks and garbage --------------------------------------------------------------


def test_a_replayed_message_is_a_crypto_error(sender: Role, open_pair: ConnectionPair) -> None:
    data = open_pair.conn[sender].send(Text(1, "once"))
    assert open_pair.deliver(sender, data) == [Text(1, "once")]
    receiver = open_pair.conn[sender.peer]
    receiver.receive_data(data)
    with pytest.raises(CryptoError, match="replayed"):
        receiver.next_event()
    assert_failed(receiver)


@pytest.mark.parametrize("target", ["header", "ciphertext"])
def test_a_tampered_message_is_a_crypto_error(
    sender: Role, open_pair: ConnectionPair, target: str
) -> None:
    decoder = FrameDecoder()
    decoder.feed(open_pair.conn[sender].send(Text(1, "secret")))
    envelope = decoder.next_frame()
    assert isinstance(envelope, Envelope)
    flipped = bytearray(getattr(envelope, target))
    flipped[-1] ^= 1
    forged = encode_frame(Envelope(**{**envelope.__dict__, target: bytes(flipped)}))
    receiver = open_pair.conn[sender.peer]
    receiver.receive_data(forged)
    with pytest.raises(CryptoError):
        receiver.next_event()
    assert_failed(receiver)


def test_an_oversize_frame_is_the_peers_fault(open_pair: ConnectionPair) -> None:
    open_pair.responder.receive_data(struct.pack(">I", MAX_FRAME + 1))
    with pytest.raises(RemoteProtocolError, match="frame of 65537 bytes"):
        open_pair.responder.next_event()
    assert_failed(open_pair.responder)


@pytest.mark.parametrize("victim", list(Role), ids=lambda role: f"victim-{role.value}")
@pytest.mark.parametrize(
    ("plaintext", "error"),
    [
        (msgpack.packb({"t": "text", "id": 1, "x": "hi"}), "must be padded to exactly"),
        (b"\x00\x01\xc1" + bytes(61), "not valid msgpack"),
        (b"", "too short"),
        (padded({"t": "text", "id": True, "x": "hi"}), "text id .* not True"),
        (padded({"t": "text", "id": 1, "x": "x" * 16385}), "at most 16384 bytes"),
        (padded({"t": "bye", "r": "gone"}), "bye reason .* not 'gone'"),
    ],
    ids=["unpadded", "bad-msgpack", "empty", "bool-id", "long-text", "unknown-bye"],
)
def test_bad_plaintexts_are_the_peers_fault(victim: Role, plaintext: bytes, error: str) -> None:
    peer = RawPeer(ConnectionPair(), victim)
    peer.open()
    peer.victim.receive_data(peer.seal(plaintext))
    with pytest.raises(RemoteProtocolError, match=error):
        peer.victim.next_event()
    assert_failed(peer.victim)


def test_the_responder_wants_ready_first() -> None:
    peer = RawPeer(ConnectionPair(), RESPONDER)
    peer.open()
    peer.victim.receive_data(peer.seal_message(Text(1, "skipping ready")))
    with pytest.raises(RemoteProtocolError, match=r"sent Text\(id=1, .*\) out of order"):
        peer.victim.next_event()
    assert_failed(peer.victim)


@pytest.mark.parametrize("victim", list(Role), ids=lambda role: f"victim-{role.value}")
def test_ready_comes_once_and_only_from_the_initiator(victim: Role) -> None:
    peer = RawPeer(ConnectionPair(), victim)
    peer.open()
    if victim is RESPONDER:
        peer.victim.receive_data(peer.seal_message(Ready()))
        assert drain(peer.victim) == []
    peer.victim.receive_data(peer.seal_message(Ready()))
    with pytest.raises(RemoteProtocolError, match=r"sent Ready\(\) out of order"):
        peer.victim.next_event()
    assert_failed(peer.victim)


@pytest.mark.parametrize("victim", list(Role), ids=lambda role: f"victim-{role.value}")
@settings(max_examples=50, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_garbage_plaintexts_raise_only_remote_protocol_errors(
    victim: Role, garbage: bytes
) -> None:
    peer = RawPeer(ConnectionPair(), victim)
    peer.open()
    if victim is RESPONDER:
        peer.victim.receive_data(peer.seal_message(Ready()))
    peer.victim.receive_data(peer.seal(garbage))
    try:
        drain(peer.victim)
    except RemoteProtocolError:
        assert peer.victim.state is ConnectionState.ERROR


@pytest.mark.parametrize("opened", [False, True], ids=["handshaking", "open"])
@pytest.mark.parametrize("victim", list(Role), ids=lambda role: f"victim-{role.value}")
@settings(max_examples=50, deadline=None)
@given(garbage=st.binary(min_size=1), chunked=st.booleans())
def test_garbage_bytes_raise_only_protocol_or_crypto_errors(
    opened: bool, victim: Role, garbage: bytes, chunked: bool
) -> None:
    pair = ConnectionPair()
    if opened:
        pair.open()
    else:
        pair.start()
    conn = pair.conn[victim]
    try:
        step = 7 if chunked else len(garbage)
        for chunk in [garbage[i : i + step] for i in range(0, len(garbage), step)]:
            conn.receive_data(chunk)
            drain(conn)
        conn.receive_data(b"")
        drain(conn)
    except (RemoteProtocolError, CryptoError):
        assert conn.state is ConnectionState.ERROR
    else:
        assert conn.state in (ConnectionState.OPEN, ConnectionState.CLOSED)


@settings(max_examples=50, deadline=None)
@given(
    header=st.binary(min_size=40, max_size=40),
    ciphertext=st.binary(min_size=16, max_size=300),
    receiver=st.sampled_from(Role),
)
def test_random_ciphertexts_are_crypto_errors(
    header: bytes, ciphertext: bytes, receiver: Role
) -> None:
    pair = ConnectionPair()
    pair.open()
    conn = pair.conn[receiver]
    conn.receive_data(encode_frame(Envelope(header, ciphertext)))
    with pytest.raises(CryptoError):
        conn.next_event()
    assert conn.state is ConnectionState.ERROR


@pytest.mark.parametrize("sender", list(Role), ids=lambda role: f"from-{role.value}")
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_corrupted_stream_fails_cleanly_after_a_prefix_of_the_events(
    sender: Role, data: Any
) -> None:
    stream, expected = recorded_stream(sender)
    position = data.draw(st.integers(0, len(stream) - 1))
    corrupted = bytearray(stream)
    corrupted[position] ^= data.draw(st.integers(1, 255))
    replay = ConnectionPair(7)
    receiver = replay.conn[sender.peer]
    receiver.start()
    receiver.receive_data(bytes(corrupted))
    receiver.receive_data(b"")
    seen: list[Any] = []
    try:
        while (event := receiver.next_event()) not in (NEED_DATA, CLOSED):
            seen.append(event)
    except (RemoteProtocolError, CryptoError):
        assert receiver.state is ConnectionState.ERROR
    else:  # every byte is checked: by the framing, the strict decoding, the signature or the AEAD
        raise AssertionError(f"corruption at byte {position} went unnoticed: {seen!r}")
    assert seen == expected[: len(seen)]


# --- the stream does not care how it is cut -------------------------------------------


def recorded_stream(sender: Role) -> tuple[bytes, list[Any]]:
    """All ``sender`` says in a short chat of ConnectionPair(7), and what its peer saw."""
    pair = ConnectionPair(7)
    pair.start()
    stream = pair.hellos[sender]
    seen = pair.deliver(sender, stream)
    pair.deliver(sender.peer, pair.hellos[sender.peer])
    if sender is RESPONDER:
        pair.flush(INITIATOR)
    messages = (Typing(True), Text(1, "one"), Ping(9), Text(2, "two" * 500), Delivered(1))
    for message in (*messages, Bye("quit")):
        data = pair.conn[sender].send(message)
        stream += data
        seen += pair.deliver(sender, data)
    stream += pair.conn[sender].data_to_send()
    return stream, seen


@pytest.mark.parametrize("sender", list(Role), ids=lambda role: f"from-{role.value}")
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_events(sender: Role, data: Any) -> None:
    stream, expected = recorded_stream(sender)
    assert expected[0].__class__ is Established and expected[-2:] == [Bye("quit"), CLOSED]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    replay = ConnectionPair(7)
    receiver = replay.conn[sender.peer]
    receiver.start()
    seen = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        if end > start:  # b"" would mean end of stream
            receiver.receive_data(stream[start:end])
        seen += drain(receiver)
        if seen and seen[-1] is CLOSED:
            break
    assert seen == expected


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    stream, expected = recorded_stream(INITIATOR)
    replay = ConnectionPair(7)
    replay.responder.start()
    seen = []
    for byte in stream:
        replay.responder.receive_data(bytes([byte]))
        seen += drain(replay.responder)
    assert seen == expected


# --- the transition table -------------------------------------------------------------


def test_error_is_never_a_target_and_closed_is_final() -> None:
    assert ConnectionState.ERROR not in TRANSITIONS.values()
    assert not any(state is ConnectionState.CLOSED for state, _ in TRANSITIONS)
    assert {trigger for _, trigger in TRANSITIONS} == set(Trigger)


def test_can_encrypt_only_once_the_ready_arrived() -> None:
    pair = ConnectionPair()
    assert not pair.initiator.can_encrypt and not pair.responder.can_encrypt
    pair.handshake()
    assert pair.initiator.can_encrypt  # the initiator's ratchet sends first
    assert not pair.responder.can_encrypt  # a bye now could not be encrypted
    pair.flush(Role.INITIATOR)  # the ready
    assert pair.responder.can_encrypt
