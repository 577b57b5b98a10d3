"""The chat state machine, driven through ConnectionPair (honest peers) and RawPeer (not)."""

from __future__ import annotations

import random
import struct
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from strangers.crypto.frames import MAX_FRAME, MAX_ID, Envelope, FrameDecoder, Ready, encode_frame
from strangers.crypto.handshake import Commit, Handshake, Hello, Role
from strangers.crypto.primitives import LABEL_COMMIT, LABEL_HELLO, sha256, x25519_keypair
from strangers.crypto.session import (
    CLOSED,
    MAX_QUEUED,
    MAX_UNDELIVERED,
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

from chat_helpers import ConnectionPair, RawPeer, drain, frames_in, public_bytes

#: Well-formed franking fields (§6.11) for hand-written text maps (the signature is checked later).
FRANK = {"k": bytes(32), "g": bytes(64)}

INITIATOR, RESPONDER = Role.INITIATOR, Role.RESPONDER


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
    assert pair.initiator.state is ConnectionState.HANDSHAKING
    assert pair.responder.state is ConnectionState.AWAITING_COMMIT
    code = pair.handshake()
    assert code == pair.responder.safety_code
    assert len(code) == 17
    assert pair.initiator.state is pair.responder.state is ConnectionState.OPEN


def test_the_handshake_flow_frame_by_frame(pair: ConnectionPair) -> None:
    """commit -> hello_R -> hello_I, finished_I, ready -> finished_R, and the states between."""
    pair.start()
    kinds = lambda data: [msgpack.unpackb(f[4:])["t"] for f in frames_in(data)]  # noqa: E731
    assert kinds(pair.first[INITIATOR]) == ["commit"]
    assert pair.responder.data_to_send() == b""  # nothing before the commit
    assert pair.deliver(INITIATOR, pair.first[INITIATOR]) == []
    assert pair.responder.state is ConnectionState.HANDSHAKING
    hello_r = pair.responder.data_to_send()
    assert kinds(hello_r) == ["hello"]
    assert pair.deliver(RESPONDER, hello_r) == []
    assert pair.initiator.state is ConnectionState.CONFIRMING
    assert pair.initiator.safety_code is None  # not before the peer's finished verified
    flight = pair.initiator.data_to_send()
    assert kinds(flight) == ["hello", "finished", "msg"]
    events = pair.deliver(INITIATOR, flight)
    assert events == [Established(pair.responder.safety_code or "")]
    assert pair.responder.state is ConnectionState.OPEN and pair.responder.can_encrypt
    finished_r = pair.responder.data_to_send()
    assert kinds(finished_r) == ["finished"]
    assert pair.initiator.state is ConnectionState.CONFIRMING
    assert pair.deliver(RESPONDER, finished_r) == [Established(pair.responder.safety_code or "")]
    assert pair.initiator.state is ConnectionState.OPEN


def test_different_pairs_get_different_safety_codes() -> None:
    assert ConnectionPair(1).open() != ConnectionPair(2).open()


def test_nothing_can_be_sent_before_the_handshake(pair: ConnectionPair) -> None:
    pair.start()
    for conn in pair.conn.values():
        assert conn.data_to_send() == b""
        with pytest.raises(LocalProtocolError, match="while the chat is"):
            conn.send(Text(1, "too early"))
    assert pair.deliver(INITIATOR, pair.first[INITIATOR][:10]) == []
    pair.deliver(INITIATOR, pair.first[INITIATOR][10:])
    pair.deliver(RESPONDER, pair.responder.data_to_send())
    with pytest.raises(LocalProtocolError, match="while the chat is confirming"):
        pair.initiator.send(Text(1, "still too early"))


def test_start_is_called_once_and_first(pair: ConnectionPair) -> None:
    with pytest.raises(LocalProtocolError, match="call start"):
        pair.initiator.next_event()
    pair.initiator.start()
    with pytest.raises(LocalProtocolError, match="already called"):
        pair.initiator.start()


def _fail_with(receiver: ChatConnection, data: bytes, error: type[Exception], match: str) -> None:
    receiver.receive_data(data)
    with pytest.raises(error, match=match):
        drain(receiver)
    assert_failed(receiver)


def test_a_hello_from_someone_else_is_a_crypto_error(sender: Role, pair: ConnectionPair) -> None:
    """An impostor that plays the whole handshake honestly but with another identity."""
    impostor = Handshake(
        role=sender,
        match_id=pair.match_id,
        local_identity=Ed25519PrivateKey.from_private_bytes(bytes(32)),
        remote_identity=public_bytes(pair.identities[sender.peer]),
        rng=random.Random("impostor").randbytes,
    )
    pair.start()
    receiver = pair.conn[sender.peer]
    if sender is INITIATOR:  # the responder sees a valid commit, then a hello signed by another key
        ephemeral = x25519_keypair(random.Random("impostor").randbytes)[1]
        commitment = sha256(LABEL_COMMIT + pair.match_id
                            + public_bytes(pair.identities[INITIATOR]) + ephemeral)
        receiver.receive_data(encode_frame(Commit(2, pair.match_id, commitment)))
        assert drain(receiver) == []
        signed = (LABEL_HELLO + b"I" + pair.match_id + commitment + ephemeral
                  + public_bytes(pair.identities[INITIATOR])
                  + public_bytes(pair.identities[RESPONDER]))
        impostor_key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        data = encode_frame(Hello(2, pair.match_id, ephemeral, impostor_key.sign(signed)))
    else:  # the initiator sees a hello signed by the wrong key
        impostor.receive_commit(Handshake(
            role=INITIATOR, match_id=pair.match_id, local_identity=pair.identities[INITIATOR],
            remote_identity=public_bytes(pair.identities[RESPONDER]),
            rng=random.Random("initiator-0").randbytes,
        ).commit())
        data = encode_frame(impostor.hello())
    _fail_with(receiver, data, CryptoError, f"not signed by the expected {sender.value}")


def test_a_commit_for_another_match_is_a_crypto_error(pair: ConnectionPair) -> None:
    pair.start()
    _fail_with(pair.responder, ConnectionPair(seed=99).initiator.start(), CryptoError,
               "not for this match")
    assert pair.responder.data_to_send() == b""  # no hello for a bad commit


def test_a_hello_for_another_match_is_a_crypto_error(pair: ConnectionPair) -> None:
    other = ConnectionPair(seed=99)
    other.start()
    other.deliver(INITIATOR, other.first[INITIATOR])
    pair.start()
    _fail_with(pair.initiator, other.responder.data_to_send(), CryptoError, "not for this match")


@pytest.mark.parametrize(
    ("victim", "step", "frame", "match"),
    [
        # the responder waits for the commit
        (RESPONDER, 0, "hello_I", "hello received while the chat was awaiting commit"),
        (RESPONDER, 0, "finished_I", "finished received while the chat was awaiting commit"),
        (RESPONDER, 0, "ready", "message received while the chat was awaiting commit"),
        # the responder has the commit and waits for the initiator's hello
        (RESPONDER, 1, "commit", "commit received while the chat was handshaking"),
        (RESPONDER, 1, "finished_I", "finished received while the chat was handshaking"),
        (RESPONDER, 1, "ready", "message received while the chat was handshaking"),
        # the responder has the initiator's hello and waits for its finished
        (RESPONDER, 2, "hello_I", "hello received while the chat was confirming"),
        (RESPONDER, 2, "ready", "message received while the chat was confirming"),
        (RESPONDER, 2, "commit", "commit received while the chat was confirming"),
        # the initiator waits for the responder's hello
        (INITIATOR, 0, "commit", "commit received while the chat was handshaking"),
        (INITIATOR, 0, "finished_R", "finished received while the chat was handshaking"),
        # the initiator has the responder's hello and waits for its finished
        (INITIATOR, 1, "hello_R", "hello received while the chat was confirming"),
        (INITIATOR, 1, "commit", "commit received while the chat was confirming"),
    ],
)
def test_a_frame_out_of_order_is_the_peers_fault(
    victim: Role, step: int, frame: str, match: str
) -> None:
    """Every handshake frame in every state where it does not belong."""
    recorded = ConnectionPair()
    recorded.handshake()
    frames = dict(recorded.frames, ready=recorded.ready)
    pair = ConnectionPair()  # same seed: the same frames are valid for it
    pair.start()
    receiver = pair.conn[victim]
    if victim is RESPONDER:
        for previous in ["commit", "hello_I"][:step]:
            receiver.receive_data(frames[previous])
            assert drain(receiver) == []
    elif step:
        receiver.receive_data(frames["hello_R"])
        assert drain(receiver) == []
    _fail_with(receiver, frames[frame], RemoteProtocolError, match)


def test_a_message_before_the_handshake_is_the_peers_fault(sender: Role) -> None:
    elsewhere = ConnectionPair(seed=5)
    elsewhere.open()
    message = elsewhere.conn[sender].send(Text(1, "hi"))
    pair = ConnectionPair()
    pair.start()
    _fail_with(pair.conn[sender.peer], message, RemoteProtocolError,
               "message received while the chat was (handshaking|awaiting commit)")


@pytest.mark.parametrize("frame", ["commit", "hello_R", "hello_I", "finished_I", "finished_R"])
def test_a_handshake_frame_once_open_is_the_peers_fault(frame: str, open_pair: ConnectionPair) -> None:
    victim = RESPONDER if frame in ("commit", "hello_I", "finished_I") else INITIATOR
    kind = frame.split("_")[0]
    _fail_with(open_pair.conn[victim], open_pair.frames[frame], RemoteProtocolError,
               f"{kind} received while the chat was open")


def _tampered(frame: bytes, key: str, flip: int = 0) -> bytes:
    obj = msgpack.unpackb(frame[4:])
    value = bytearray(obj[key])
    value[flip] ^= 0x01
    obj[key] = bytes(value)
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    ("frame", "key", "match"),
    [
        ("commit", "m", "not for this match"),
        ("commit", "c", "does not match its commitment"),
        ("hello_I", "m", "not for this match"),
        ("hello_I", "e", "does not match its commitment"),
        ("hello_I", "s", "not signed by the expected initiator"),
        ("finished_I", "f", "initiator's finished MAC is wrong"),
        ("hello_R", "m", "not for this match"),
        ("hello_R", "e", "not signed by the expected responder"),
        ("hello_R", "s", "not signed by the expected responder"),
        ("finished_R", "f", "responder's finished MAC is wrong"),
    ],
)
@pytest.mark.parametrize("flip", [0, -1])
def test_every_tampered_handshake_field_is_a_crypto_error(
    frame: str, key: str, match: str, flip: int
) -> None:
    """One bit flipped in any byte field of any handshake frame ends the chat, no Established."""
    recorded = ConnectionPair()
    recorded.handshake()
    frames = recorded.frames
    order = {
        RESPONDER: ["commit", "hello_I", "finished_I"],
        INITIATOR: ["hello_R", "finished_R"],
    }
    victim = RESPONDER if frame in order[RESPONDER] else INITIATOR
    pair = ConnectionPair()
    pair.start()
    receiver = pair.conn[victim]
    index = order[victim].index(frame)
    for name in order[victim][:index]:
        receiver.receive_data(frames[name])
        assert drain(receiver) == []
    later = b"".join(frames[name] for name in order[victim][index + 1 :])
    # a tampered commitment is found out when the hello it should match arrives
    _fail_with(receiver, _tampered(frames[frame], key, flip) + later, CryptoError, match)
    assert receiver.safety_code is None
    assert receiver.data_to_send() == b""


def test_a_finished_mac_from_another_chat_is_a_crypto_error() -> None:
    """Finished MACs bind the whole transcript: one from a chat with other keys fails."""
    other = ConnectionPair(seed=7)
    other.handshake()
    pair = ConnectionPair()
    pair.start()
    pair.deliver(INITIATOR, pair.first[INITIATOR])
    pair.deliver(RESPONDER, pair.responder.data_to_send())
    hello_i, _finished_i, _ready = frames_in(pair.initiator.data_to_send())
    _fail_with(pair.responder, hello_i + other.frames["finished_I"], CryptoError,
               "finished MAC is wrong")


def test_end_of_stream_in_every_handshake_state_closes_quietly() -> None:
    for steps in range(3):
        pair = ConnectionPair()
        pair.start()
        if steps >= 1:
            pair.deliver(INITIATOR, pair.first[INITIATOR])
        if steps >= 2:
            pair.deliver(RESPONDER, pair.responder.data_to_send())
        for conn in pair.conn.values():
            conn.receive_data(b"")
            assert drain(conn) == [CLOSED]
            assert conn.state is ConnectionState.CLOSED and conn.safety_code is None


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


# --- text ids and delivery receipts (issue 7, fault 6) -------------------------------


@pytest.mark.parametrize("forged", [1, 2, 99, MAX_ID])
def test_a_receipt_for_a_text_never_sent_is_the_peers_fault(
    sender: Role, open_pair: ConnectionPair, forged: int
) -> None:
    if forged == 2:  # text 1 was sent, text 2 was not
        open_pair.send(sender.peer, Text(1, "one"))
    receiver = open_pair.conn[sender.peer]
    _fail_with(receiver, open_pair.conn[sender].send(Delivered(forged)), RemoteProtocolError,
               f"acknowledged text {forged}, which we did not send or which was already")


def test_a_receipt_comes_once(sender: Role, open_pair: ConnectionPair) -> None:
    open_pair.send(sender.peer, Text(1, "one"))
    assert open_pair.conn[sender.peer].statistics().awaiting_delivery == 1
    assert open_pair.send(sender, Delivered(1)) == [Delivered(1)]
    assert open_pair.conn[sender.peer].statistics().awaiting_delivery == 0
    _fail_with(open_pair.conn[sender.peer], open_pair.conn[sender].send(Delivered(1)),
               RemoteProtocolError, "already acknowledged")


def test_receipts_may_come_in_any_order(sender: Role, open_pair: ConnectionPair) -> None:
    open_pair.send(sender.peer, Text(1, "one"), Text(2, "two"), Text(5, "five"))
    assert open_pair.send(sender, Delivered(5), Delivered(1), Delivered(2)) == [
        Delivered(5), Delivered(1), Delivered(2)]


def test_a_receipt_for_a_text_still_queued_is_the_peers_fault() -> None:
    """The responder's text waiting for the ready never left: no receipt can be genuine."""
    pair = ConnectionPair()
    peer = RawPeer(pair, RESPONDER)
    # the raw initiator runs the handshake by hand but holds its ready back
    pair.responder.start()
    pair.responder.receive_data(encode_frame(peer.handshake.commit()))
    drain(pair.responder)
    decoder = FrameDecoder()
    decoder.feed(pair.responder.data_to_send())
    keys = peer.handshake.receive_hello(decoder.next_frame())  # type: ignore[arg-type]
    peer.ratchet, peer.associated_data = keys.ratchet, keys.associated_data
    pair.responder.receive_data(
        encode_frame(peer.handshake.hello()) + encode_frame(peer.handshake.finished()))
    assert [type(event).__name__ for event in drain(pair.responder)] == ["Established"]
    assert pair.responder.data_to_send()  # its finished
    assert pair.responder.send(Text(1, "queued")) == b""
    _fail_with(pair.responder, peer.seal_message(Ready()) + peer.seal_message(Delivered(1)),
               RemoteProtocolError, "acknowledged text 1")


@pytest.mark.parametrize("victim", list(Role), ids=lambda role: f"victim-{role.value}")
@pytest.mark.parametrize("ids", [(1, 1), (2, 1), (5, 3)])
def test_received_text_ids_must_increase(victim: Role, ids: tuple[int, int]) -> None:
    peer = RawPeer(ConnectionPair(), victim)
    peer.open()
    if victim is RESPONDER:
        peer.victim.receive_data(peer.seal_message(Ready()))
    peer.victim.receive_data(peer.seal_message(Text(ids[0], "first")))
    assert drain(peer.victim) == [Text(ids[0], "first")]
    _fail_with(peer.victim, peer.seal_message(Text(ids[1], "again")), RemoteProtocolError,
               f"text {ids[1]} after text {ids[0]}: text ids must increase")


def test_received_text_ids_may_skip(open_pair: ConnectionPair) -> None:
    assert open_pair.send(INITIATOR, Text(3, "a"), Text(10, "b")) == [Text(3, "a"), Text(10, "b")]


def test_our_text_ids_must_increase(open_pair: ConnectionPair) -> None:
    open_pair.send(INITIATOR, Text(2, "two"))
    for bad in (1, 2):
        with pytest.raises(LocalProtocolError, match=f"text ids must increase: {bad} follows 2"):
            open_pair.initiator.send(Text(bad, "again"))
    assert open_pair.initiator.state is ConnectionState.OPEN
    assert open_pair.send(INITIATOR, Text(3, "three")) == [Text(3, "three")]


def test_texts_awaiting_their_receipt_are_bounded(open_pair: ConnectionPair) -> None:
    """The set of undelivered ids cannot grow without bound when the peer never answers."""
    sent = b"".join(
        open_pair.initiator.send(Text(number, "x")) for number in range(1, MAX_UNDELIVERED + 1)
    )
    assert open_pair.initiator.statistics().awaiting_delivery == MAX_UNDELIVERED
    with pytest.raises(LocalProtocolError, match=f"{MAX_UNDELIVERED} messages still wait"):
        open_pair.initiator.send(Text(MAX_UNDELIVERED + 1, "one too many"))
    assert open_pair.initiator.state is ConnectionState.OPEN
    assert len(open_pair.deliver(INITIATOR, sent)) == MAX_UNDELIVERED
    assert open_pair.send(RESPONDER, Delivered(7)) == [Delivered(7)]
    assert open_pair.send(INITIATOR, Text(MAX_UNDELIVERED + 1, "now")) == [
        Text(MAX_UNDELIVERED + 1, "now")]


def test_the_app_cannot_send_machine_messages(open_pair: ConnectionPair) -> None:
    for message in (Ready(), Pong(1), Established("x"), "hi", None):
        with pytest.raises(LocalProtocolError, match="the application cannot send"):
            open_pair.initiator.send(message)  # type: ignore[arg-type]


def test_established_validates_itself() -> None:
    with pytest.raises(LocalProtocolError, match="not ''"):
        Established("")


# --- the ready and the responder's queue ----------------------------------------------


def test_the_ready_leaves_in_the_initiators_handshake_flight(pair: ConnectionPair) -> None:
    pair.handshake()
    assert pair.ready  # hello, finished, then the ready, in one data_to_send()
    data = pair.initiator.send(Text(1, "me first"))
    assert len(frames_in(data)) == 1
    assert pair.deliver(INITIATOR, pair.ready + data) == [Text(1, "me first")]
    assert pair.initiator.data_to_send() == b""


def test_the_responder_queues_until_it_can_send(pair: ConnectionPair) -> None:
    pair.handshake()
    assert pair.responder.send(Text(1, "quick")) == b""
    assert pair.responder.send(Typing(False)) == b""
    assert pair.responder.statistics().queued_messages == 2
    assert pair.responder.data_to_send() == b""  # still cannot encrypt
    assert pair.deliver(INITIATOR, pair.ready) == []  # the ready arrives
    assert pair.flush(RESPONDER) == [Text(1, "quick"), Typing(False)]
    assert pair.responder.statistics().queued_messages == 0


def test_the_responder_queue_is_bounded(pair: ConnectionPair) -> None:
    pair.handshake()
    for number in range(1, MAX_QUEUED + 1):
        assert pair.responder.send(Text(number, "x")) == b""
    with pytest.raises(LocalProtocolError, match="64 messages already wait"):
        pair.responder.send(Text(99, "one too many"))
    assert pair.responder.state is ConnectionState.OPEN  # our misuse does not break the chat
    pair.deliver(INITIATOR, pair.ready)
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
        (padded({"t": "text", "id": True, "x": "hi", **FRANK}), "text id .* not True"),
        (padded({"t": "text", "id": 1, "x": "x" * 16385, **FRANK}), "at most 16384 bytes"),
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
    """All ``sender`` says in a short chat of ConnectionPair(7), and what its peer saw.

    The peer of a replay with the same seed answers byte for byte the same, so
    the recorded stream is valid for it too.
    """
    pair = ConnectionPair(7)
    stream = b""
    seen: list[Any] = []

    def say(data: bytes) -> None:
        nonlocal stream, seen
        if not data:
            return
        stream += data
        seen += pair.deliver(sender, data)

    pair.start()
    if sender is INITIATOR:
        say(pair.first[INITIATOR])
        pair.deliver(RESPONDER, pair.responder.data_to_send())  # hello_R
        say(pair.initiator.data_to_send())  # hello_I, finished_I, ready
        pair.deliver(RESPONDER, pair.responder.data_to_send())  # finished_R
    else:
        pair.deliver(INITIATOR, pair.first[INITIATOR])
        say(pair.responder.data_to_send())  # hello_R
        pair.deliver(INITIATOR, pair.initiator.data_to_send())
        say(pair.responder.data_to_send())  # finished_R
    messages = (Typing(True), Text(1, "one"), Ping(9), Text(2, "two" * 500))
    for message in messages:
        say(pair.conn[sender].send(message))
    pair.deliver(sender.peer, pair.conn[sender.peer].data_to_send())  # the pong, delivereds
    say(pair.conn[sender].send(Bye("quit")))
    say(pair.conn[sender].data_to_send())
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
    pair.deliver(Role.INITIATOR, pair.ready)
    assert pair.responder.can_encrypt


def test_the_known_answer_vector_on_the_wire() -> None:
    """protocol.md §6.2's vector, as frames: the initiator's commit, and its flight
    (hello, finished, Ready) in answer to the responder's hello."""
    sign_i = Ed25519PrivateKey.from_private_bytes(bytes(range(0, 32)))
    sign_r = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    match_id = bytes(range(64, 80))
    draws = {INITIATOR: [bytes(range(0x80, 0xA0)), bytes(range(0xA0, 0xC0))],
             RESPONDER: [bytes(range(0xC0, 0xE0)), bytes(range(0xE0, 0x100))]}
    conn = {
        role: ChatConnection(role=role, match_id=match_id, local_identity=key,
                             remote_identity=public_bytes(other),
                             rng=lambda n, role=role: draws[role].pop(0))
        for role, key, other in ((INITIATOR, sign_i, sign_r), (RESPONDER, sign_r, sign_i))
    }
    commit = conn[INITIATOR].start()
    assert commit == struct.pack(">I", 69) + msgpack.packb({
        "t": "commit", "v": 2, "m": match_id,
        "c": bytes.fromhex("97797c7c3429717ee8cd9d124f223b543b8dd81011bd7da0697b23dfe326bf39"),
    })
    conn[RESPONDER].start()
    conn[RESPONDER].receive_data(commit)
    assert drain(conn[RESPONDER]) == []
    conn[INITIATOR].receive_data(conn[RESPONDER].data_to_send())
    assert drain(conn[INITIATOR]) == []
    flight = frames_in(conn[INITIATOR].data_to_send())
    ready = msgpack.unpackb(flight[2][4:])
    assert ready == {"t": "msg", "h": bytes.fromhex(
        "605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c0000000000000000"),
        "c": bytes.fromhex(
        "795a46d4c0f3c18301d3532db91c02b2e35a34805b00d9c17f015f9213a6736c"
        "45c0cdf97368a9213446119bb60f88595a9ca1063e06438cda82230002d1dec1"
        "c6ced3b22770a2a5a7632d5954e5acad")}
    assert msgpack.unpackb(flight[1][4:])["f"].hex() == (
        "e29fd45a6960d9aeecf245d283c3818ab9c1c9bb117912fb7c93e5ea732f7f1d")
    conn[RESPONDER].receive_data(b"".join(flight))
    assert drain(conn[RESPONDER]) == [Established("60099 39027 03837")]
    conn[INITIATOR].receive_data(conn[RESPONDER].data_to_send())
    assert drain(conn[INITIATOR]) == [Established("60099 39027 03837")]
