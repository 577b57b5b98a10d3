"""The chat wire format: frames, inner messages, padding, and every way to get them wrong."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.crypto.frames import (
    HEADER_SIZE,
    MAX_FRAME,
    MAX_ID,
    MAX_TEXT_BYTES,
    MIN_CIPHERTEXT,
    PAD_BLOCK,
    Bye,
    ByeReason,
    Delivered,
    Envelope,
    FrameDecoder,
    Ping,
    Pong,
    Ready,
    Text,
    Typing,
    decode_inner,
    encode_frame,
    encode_inner,
)
from strangers.crypto.franking import Franking
from strangers.crypto.handshake import Commit, Finished, Hello
from strangers.errors import LocalProtocolError, RemoteProtocolError

#: Well-formed franking fields (§6.11) for hand-written text maps.
FRANK = {"k": bytes(32), "g": bytes(64)}

# --- strategies -----------------------------------------------------------------------

commits = st.builds(
    Commit,
    version=st.just(2),
    match_id=st.binary(min_size=16, max_size=16),
    commitment=st.binary(min_size=32, max_size=32),
)
finisheds = st.builds(Finished, mac=st.binary(min_size=32, max_size=32))
hellos = st.builds(
    Hello,
    version=st.just(2),
    match_id=st.binary(min_size=16, max_size=16),
    ephemeral=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=64, max_size=64),
)
envelopes = st.builds(
    Envelope,
    header=st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE),
    ciphertext=st.binary(min_size=MIN_CIPHERTEXT, max_size=2000),
)
frames = commits | hellos | finisheds | envelopes
ids = st.integers(1, MAX_ID)
counters = st.integers(0, 2**32 - 1)
texts = st.text(min_size=1).filter(lambda text: len(text.encode()) <= MAX_TEXT_BYTES)
inner_messages = st.one_of(
    st.just(Ready()),
    st.builds(Text, id=ids, text=texts, franking=st.builds(
        Franking, key=st.binary(min_size=32, max_size=32),
        signature=st.binary(min_size=64, max_size=64))),
    st.builds(Typing, active=st.booleans()),
    st.builds(Delivered, id=ids),
    st.builds(Bye, reason=st.sampled_from(ByeReason)),
    st.builds(Ping, n=counters),
    st.builds(Pong, n=counters),
)


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def packed_frame(obj: Any) -> bytes:
    return raw_frame(msgpack.packb(obj, use_bin_type=True))


def decode_one(data: bytes) -> object:
    decoder = FrameDecoder()
    decoder.feed(data)
    frame = decoder.next_frame()
    assert decoder.buffered == 0
    return frame


def pad(content: bytes) -> bytes:
    """The padding rule, written out independently of the code under test."""
    size = PAD_BLOCK
    while size < 2 + len(content):
        size += PAD_BLOCK
    return struct.pack(">H", len(content)) + content + bytes(size - 2 - len(content))


def padded(obj: Any) -> bytes:
    return pad(msgpack.packb(obj, use_bin_type=True))


GOOD_HELLO = {"t": "hello", "v": 2, "m": bytes(16), "e": bytes(range(32)), "s": bytes(64)}
GOOD_COMMIT = {"t": "commit", "v": 2, "m": bytes(16), "c": bytes(range(32))}
GOOD_FINISHED = {"t": "finished", "f": bytes(range(32))}
GOOD_MSG = {"t": "msg", "h": bytes(HEADER_SIZE), "c": bytes(MIN_CIPHERTEXT)}


# --- round trips ----------------------------------------------------------------------


@given(frames)
def test_every_frame_round_trips(frame: Commit | Hello | Finished | Envelope) -> None:
    assert decode_one(encode_frame(frame)) == frame


@given(inner_messages)
def test_every_inner_message_round_trips(message: Any) -> None:
    plaintext = encode_inner(message)
    assert decode_inner(plaintext) == message
    assert len(plaintext) % PAD_BLOCK == 0


def documented_wire_form(message: Any) -> dict[str, Any]:
    """The inner map of ``message`` as the module docstring spells it."""
    match message:
        case Ready():
            return {"t": "ready"}
        case Text(id=id_, text=text, franking=franking):
            return {"t": "text", "id": id_, "x": text, "k": franking.key, "g": franking.signature}
        case Typing(active=active):
            return {"t": "typing", "a": active}
        case Delivered(id=id_):
            return {"t": "delivered", "id": id_}
        case Bye(reason=reason):
            return {"t": "bye", "r": reason.value}
        case Ping(n=n):
            return {"t": "ping", "n": n}
        case Pong(n=n):
            return {"t": "pong", "n": n}
    raise AssertionError(message)


@given(inner_messages)
def test_inner_messages_are_the_documented_map_padded_to_the_next_64_bytes(message: Any) -> None:
    assert encode_inner(message) == padded(documented_wire_form(message))


def test_documented_examples() -> None:
    franked = Franking(bytes(range(32)), bytes(range(64)))
    assert encode_inner(Text(7, "hé", franked)) == padded(
        {"t": "text", "id": 7, "x": "hé", "k": bytes(range(32)), "g": bytes(range(64))})
    assert encode_inner(Bye("next")) == padded({"t": "bye", "r": "next"})
    assert len(encode_inner(Ready())) == 64
    assert len(encode_inner(Text(1, "x" * 7, franked))) == 128  # 2 + 126 bytes of content
    assert len(encode_inner(Text(1, "x" * 8, franked))) == 192
    assert encode_frame(Envelope(bytes(40), bytes(16))) == packed_frame(GOOD_MSG)
    hello = Hello(version=2, match_id=bytes(16), ephemeral=bytes(range(32)), signature=bytes(64))
    assert encode_frame(hello) == packed_frame(GOOD_HELLO)
    commit = Commit(version=2, match_id=bytes(16), commitment=bytes(range(32)))
    assert encode_frame(commit) == packed_frame(GOOD_COMMIT)
    assert encode_frame(Finished(bytes(range(32)))) == packed_frame(GOOD_FINISHED)
    assert len(encode_frame(commit)) == 73 and len(encode_frame(hello)) == 140
    assert len(encode_frame(Finished(bytes(32)))) == 52


def test_largest_text_fits_in_a_frame_once_encrypted() -> None:
    plaintext = encode_inner(Text(MAX_ID, "\U0001f600" * (MAX_TEXT_BYTES // 4),
                                  Franking(bytes(32), bytes(64))))
    frame = encode_frame(Envelope(bytes(HEADER_SIZE), bytes(len(plaintext) + MIN_CIPHERTEXT)))
    assert len(frame) <= MAX_FRAME + 4


@given(st.lists(frames, min_size=1, max_size=5), st.data())
def test_any_chunking_of_a_stream_gives_the_same_frames(frame_list: list[Any], data: Any) -> None:
    stream = b"".join(encode_frame(frame) for frame in frame_list)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = FrameDecoder()
    decoded = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        decoder.feed(stream[start:end])
        while (frame := decoder.next_frame()) is not None:
            decoded.append(frame)
    assert decoded == frame_list
    assert decoder.buffered == 0


def test_one_byte_at_a_time() -> None:
    frame = Envelope(bytes(range(40)), b"c" * 300)
    decoder = FrameDecoder()
    stream = encode_frame(frame)
    for index, byte in enumerate(stream):
        assert decoder.next_frame() is None
        assert decoder.buffered == index
        decoder.feed(bytes([byte]))
    assert decoder.next_frame() == frame


# --- the length prefix and the buffer -------------------------------------------------


def test_a_frame_of_exactly_max_frame_bytes_is_accepted_and_one_more_is_not() -> None:
    overhead = len(encode_frame(Envelope(bytes(40), bytes(60000)))) - 4 - 60000
    biggest = Envelope(bytes(40), bytes(MAX_FRAME - overhead))
    data = encode_frame(biggest)
    assert len(data) == MAX_FRAME + 4
    assert decode_one(data) == biggest
    with pytest.raises(LocalProtocolError, match="at most 65536 bytes, not 65537"):
        encode_frame(Envelope(bytes(40), bytes(MAX_FRAME - overhead + 1)))


@pytest.mark.parametrize("size", [MAX_FRAME + 1, 2**32 - 1])
def test_oversize_length_prefix_is_refused_before_the_body_arrives(size: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">I", size))
    with pytest.raises(RemoteProtocolError, match=f"frame of {size} bytes"):
        decoder.next_frame()


def test_zero_length_frame_is_refused() -> None:
    decoder = FrameDecoder()
    decoder.feed(bytes(4) + packed_frame(GOOD_MSG))
    with pytest.raises(RemoteProtocolError, match="frame of 0 bytes"):
        decoder.next_frame()


def test_a_broken_decoder_stays_broken() -> None:
    decoder = FrameDecoder()
    decoder.feed(bytes(4))
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    decoder.feed(packed_frame(GOOD_MSG))
    with pytest.raises(RemoteProtocolError, match="already failed: .*frame of 0 bytes"):
        decoder.next_frame()


def test_feeding_without_draining_is_bounded() -> None:
    decoder = FrameDecoder()
    small = packed_frame(GOOD_MSG)
    decoder.feed(small * (MAX_FRAME // len(small) + 1))  # one chunk may be big
    assert decoder.buffered > MAX_FRAME + 4
    with pytest.raises(LocalProtocolError, match="call next_frame"):
        decoder.feed(small)
    while decoder.next_frame() is not None:
        pass
    decoder.feed(small)  # drained: fine again
    assert decoder.next_frame() is not None


# --- malformed outer frames -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb(5), "not a map"),
        (msgpack.packb("msg"), "not a map"),
        (msgpack.packb(None), "not a map"),
        (b"\xc1", "not valid msgpack"),  # the one never-used msgpack byte
        (b"\x82\xa1t", "not valid msgpack"),  # truncated
        (msgpack.packb(GOOD_MSG) + b"\xc0", "not valid msgpack"),  # trailing data
        (msgpack.packb({1: 2}), "not valid msgpack"),  # int key
        (msgpack.packb({"t": "msg", "h": msgpack.ExtType(1, b"x")}), "not valid msgpack"),
        (msgpack.packb({"t": msgpack.ExtType(1, b"")}), "not valid msgpack"),  # empty ext
        (msgpack.packb({"t": msgpack.Timestamp(0)}, datetime=False), "not valid msgpack"),
        (b"\x81\xa1t\xa3\xff\xfe\xfd", "not valid msgpack"),  # invalid UTF-8
        (b"\x81\xa1t\xa3\xed\xa0\x80", "not valid msgpack"),  # a UTF-8-encoded lone surrogate
        (b"\x82\xa1t\xa3msg\xa1t\xa3msg", "duplicate key"),
        (msgpack.packb({"t": "msg", "x": list(range(9))}), "not valid msgpack"),
        (msgpack.packb({str(key): 0 for key in range(9)}), "not valid msgpack"),
        (msgpack.packb({"h": bytes(40), "c": bytes(16)}), "unknown type None"),
        (msgpack.packb({"t": "goodbye"}), "unknown type 'goodbye'"),
        (msgpack.packb({"t": b"msg"}), "unknown type b'msg'"),
        (msgpack.packb({"t": "text", "id": 1, "x": "hi"}), "unknown type 'text'"),  # inner type
        (msgpack.packb(GOOD_MSG | {"z": 1}), "keys"),
        (msgpack.packb({"t": "msg", "h": bytes(40)}), "keys"),
        (msgpack.packb({b"t": "msg", "h": bytes(40), "c": bytes(16)}), "unknown type None"),
        (msgpack.packb(GOOD_MSG | {"h": bytes(39)}), "header must be 40 bytes"),
        (msgpack.packb(GOOD_MSG | {"h": "x" * 40}), "header must be 40 bytes"),
        (msgpack.packb(GOOD_MSG | {"c": bytes(15)}), "ciphertext must be 16 to 65536"),
        (msgpack.packb(GOOD_MSG | {"c": 16}), "ciphertext must be 16 to 65536"),
        (msgpack.packb(GOOD_HELLO | {"v": 1}), "version 1; we speak only version 2"),
        (msgpack.packb(GOOD_COMMIT | {"v": 1}), "version 1; we speak only version 2"),
        (msgpack.packb(GOOD_COMMIT | {"v": True}), "version True"),
        (msgpack.packb(GOOD_COMMIT | {"m": bytes(17)}), "commit whose match id is not 16 bytes"),
        (msgpack.packb(GOOD_COMMIT | {"c": bytes(31)}), "commit whose commitment is not 32"),
        (msgpack.packb(GOOD_COMMIT | {"c": "x" * 32}), "commitment is not 32 bytes"),
        (msgpack.packb(GOOD_COMMIT | {"e": bytes(32)}), "keys"),
        (msgpack.packb({"t": "commit", "v": 2, "m": bytes(16)}), "keys"),
        (msgpack.packb(GOOD_FINISHED | {"f": bytes(33)}), "finished MAC is not 32 bytes"),
        (msgpack.packb(GOOD_FINISHED | {"f": None}), "finished MAC is not 32 bytes: None"),
        (msgpack.packb(GOOD_FINISHED | {"v": 2}), "keys"),
        (msgpack.packb({"t": "finished"}), "keys"),
        (msgpack.packb(GOOD_HELLO | {"v": True}), "version True"),
        (msgpack.packb(GOOD_HELLO | {"v": 1.0}), "version 1.0"),
        (msgpack.packb(GOOD_HELLO | {"m": bytes(15)}), "match id is not 16 bytes"),
        (msgpack.packb(GOOD_HELLO | {"m": "a" * 16}), "match id is not 16 bytes"),
        (msgpack.packb(GOOD_HELLO | {"e": bytes(33)}), "ephemeral key is not 32 bytes"),
        (msgpack.packb(GOOD_HELLO | {"s": None}), "signature is not 64 bytes: None"),
        (msgpack.packb(GOOD_HELLO | {"x": 0}), "keys"),
        (msgpack.packb({key: GOOD_HELLO[key] for key in "tvme"}), "keys"),
    ],
)
def test_malformed_frames_are_the_peers_fault(body: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_one(raw_frame(body))


DEEP = b"\x91" * 1000 + b"\xc0"  # [[[...[nil]...]]], 1000 levels (msgpack allows 1024)


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b"\x81\xa1t" + DEEP,
        b"\x83\xa1t\xa3msg\xa1h" + DEEP + b"\xa1c\xc4\x10" + bytes(16),
        b"\x82\xa1t\xa3msg\xa1z" + b"\x81\xa1z" * 500 + b"\xc0",
    ],
    ids=["top", "type", "header", "maps"],
)
def test_deeply_nested_frames_are_the_peers_fault_not_a_recursion_error(body: bytes) -> None:
    """Issue 7, fault 3: echoing a value 1000 levels deep raised RecursionError."""
    with pytest.raises(RemoteProtocolError, match="nested more than 2 levels deep|not a map"):
        decode_one(raw_frame(body))


def test_deeply_nested_inner_messages_are_the_peers_fault() -> None:
    with pytest.raises(RemoteProtocolError, match="nested more than 2 levels deep"):
        decode_inner(pad(b"\x82\xa1t\xa4text\xa1x" + DEEP))


@given(st.binary())
def test_garbage_bytes_never_raise_anything_but_remote_protocol_error(garbage: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(garbage)
    try:
        while decoder.next_frame() is not None:
            pass
    except RemoteProtocolError:
        pass


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=70) | st.binary(max_size=70),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["t", "v", "m", "e", "s", "h", "c", "x"]) | st.text(max_size=3),
        children,
        max_size=6,
    ),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {"t": st.sampled_from(["commit", "hello", "finished", "msg", "text", ""]) | msgpack_values},
    optional={key: msgpack_values for key in ("v", "m", "e", "s", "h", "c", "f")},
)


@given(msgpack_values | frame_like)
def test_garbage_msgpack_in_a_frame_raises_only_remote_protocol_error(obj: Any) -> None:
    try:
        frame = decode_one(packed_frame(obj))
    except RemoteProtocolError:
        return
    assert isinstance(frame, Commit | Hello | Finished | Envelope)


# --- malformed inner messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [
        (b"", "0 bytes, too short"),
        (b"\x00", "1 bytes, too short"),
        (padded({"t": "ready"})[:-1], "padded to exactly 64"),  # not a multiple of 64
        (padded({"t": "ready"}) + bytes(64), "padded to exactly 64"),  # padding too long
        (b"\x00\x3f" + bytes(62), "declaring 63 bytes .* exactly 128"),  # length beyond the data
        (padded({"t": "ready"})[:-1] + b"\x01", "padding is not all zero"),
        (bytes(64), "not valid msgpack"),  # declared length 0
        (pad(msgpack.packb({"t": "ready"}) + b"\xc0"), "not valid msgpack"),
        (padded([1]), "not a map"),
        (padded({"t": "hello"}), "unknown type 'hello'"),
        (padded({"t": "msg", "h": bytes(40), "c": bytes(16)}), "unknown type 'msg'"),
        (padded({"t": "shout", "x": "hi"}), "unknown type 'shout'"),
        (padded({"t": "ready", "x": 1}), "keys"),
        (padded({"t": "text", "id": 1}), "keys"),
        (padded({"t": "text", "id": 1, "x": "hi", "y": 2}), "keys"),
        (padded({"t": "text", "id": True, "x": "hi", **FRANK}), "text id .* not True"),
        (padded({"t": "text", "id": 0, "x": "hi", **FRANK}), "text id .* not 0"),
        (padded({"t": "text", "id": -1, "x": "hi", **FRANK}), "text id .* not -1"),
        (padded({"t": "text", "id": MAX_ID + 1, "x": "hi", **FRANK}), "not 9007199254740993"),
        (padded({"t": "text", "id": 1.0, "x": "hi", **FRANK}), "not 1.0"),
        (padded({"t": "text", "id": 1, "x": "", **FRANK}), "non-empty string, not ''"),
        (padded({"t": "text", "id": 1, "x": b"hi", **FRANK}), "non-empty string, not b'hi'"),
        (padded({"t": "text", "id": 1, "x": "x" * (MAX_TEXT_BYTES + 1), **FRANK}), "16384 bytes"),
        (pad(b"\x83\xa1t\xa4text\xa2id\x01\xa1x\xa2\xc3\x28"), "not valid msgpack"),  # bad UTF-8
        (padded({"t": "typing", "a": 1}), "true or false, not 1"),
        (padded({"t": "typing", "a": None}), "true or false, not None"),
        (padded({"t": "delivered", "id": False}), "delivered id .* not False"),
        (
            padded({"t": "bye", "r": "rage"}),
            "one of 'quit', 'next', 'error', 'timeout', not 'rage'",
        ),
        (padded({"t": "bye", "r": 1}), "not 1"),
        (padded({"t": "ping", "n": -1}), "ping number .* not -1"),
        (padded({"t": "pong", "n": 2**32}), "pong number .* not 4294967296"),
    ],
)
def test_malformed_inner_messages_are_the_peers_fault(plaintext: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_inner(plaintext)


@given(st.binary(max_size=300))
def test_garbage_plaintext_never_raises_anything_but_remote_protocol_error(garbage: bytes) -> None:
    try:
        decode_inner(garbage)
    except RemoteProtocolError:
        pass


inner_like = st.fixed_dictionaries(
    {"t": st.sampled_from(["ready", "text", "typing", "delivered", "bye", "ping", "pong"])},
    optional={key: msgpack_values for key in ("id", "x", "a", "r", "n")},
)


@given(inner_like | msgpack_values)
def test_garbage_inner_msgpack_never_raises_anything_but_remote_protocol_error(obj: Any) -> None:
    try:
        decode_inner(padded(obj))
    except RemoteProtocolError:
        pass


# --- our own values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Text(0, "hi"), "text id must be an integer from 1 to 9007199254740992, not 0"),
        (lambda: Text(True, "hi"), "not True"),
        (lambda: Text(1, ""), "non-empty string"),
        (lambda: Text(1, None), "not None"),
        (lambda: Text(1, "a\ud800b"), r"valid Unicode \(no lone surrogates\), not 'a\\ud800b'"),
        (lambda: Text(1, "é" * (MAX_TEXT_BYTES // 2 + 1)), "16384 bytes of UTF-8, not 16386"),
        (lambda: Typing("yes"), "not 'yes'"),
        (lambda: Delivered(2**53 + 1), "not 9007199254740993"),
        (lambda: Bye("later"), "not 'later'"),
        (lambda: Bye(None), "not None"),
        (lambda: Ping(2**32), "not 4294967296"),
        (lambda: Pong(-5), "not -5"),
        (lambda: Envelope(bytes(39), bytes(16)), r"header must be 40 bytes, not b'\\x00"),
        (lambda: Envelope(bytearray(40), bytes(16)), "header must be 40 bytes, not bytearray"),
        (
            lambda: Envelope(bytes(40), bytes(MAX_FRAME + 1)),
            r"16 to 65536 bytes, not b'\\x00[^ ]*\.\.\. of length 65537$",  # cut short
        ),
        (
            lambda: encode_frame(Text(1, "x" * 100)),
            r"cannot encode Text\(id=1, text='x+\.\.\. as a frame$",
        ),
        (lambda: Envelope(bytes(40), "x" * 16), "not 'xxxxxxxxxxxxxxxx'"),
        (lambda: encode_frame(Text(1, "hi")), r"cannot encode Text\(id=1, text='hi'\) as a frame"),
        (lambda: encode_inner("hi"), "cannot encode 'hi' as a chat message"),
        (lambda: Text(1, 5), "non-empty string, not 5"),
        (lambda: encode_inner(GOOD_MSG), "cannot encode .* as a chat message"),
    ],
)
def test_our_own_bad_values_are_local_errors_that_echo_the_value(build: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        build()


def test_longest_text_is_allowed_and_counted_in_utf8_bytes() -> None:
    assert Text(MAX_ID, "x" * MAX_TEXT_BYTES).text == "x" * MAX_TEXT_BYTES
    assert len(Text(1, "é" * (MAX_TEXT_BYTES // 2)).text) == MAX_TEXT_BYTES // 2


def test_bye_reason_accepts_its_string_and_normalises_to_the_enum() -> None:
    assert Bye("quit") == Bye(ByeReason.QUIT)
    assert Bye("timeout").reason is ByeReason.TIMEOUT
    assert Bye("error").reason == "error"


def test_messages_are_frozen() -> None:
    text = Text(1, "hi")
    with pytest.raises(AttributeError):
        text.id = 2  # type: ignore[misc]
