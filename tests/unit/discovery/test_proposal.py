"""The match protocol codec: round trips, the frame bound, and every way a frame can be bad."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from strangers.discovery.interests import MAX_INTEREST_CHARS, MAX_INTERESTS, normalize_interest
from strangers.discovery.matcher import Refusal
from strangers.discovery.proposal import (
    MATCH_ID_BYTES,
    MAX_HANDSHAKE_BYTES,
    MAX_PROPOSAL_FRAME,
    PROTOCOL_VERSION,
    Accept,
    Propose,
    Refuse,
    decode,
    encode,
    frame_length,
)
from strangers.errors import ConfigError, LocalProtocolError, RemoteProtocolError

MATCH_ID = bytes(range(16))


def canonical(raw: str) -> str | None:
    try:
        return normalize_interest(raw)
    except ConfigError:
        return None


interest = st.text(min_size=1, max_size=MAX_INTEREST_CHARS).map(canonical).filter(bool)
interest_lists = st.lists(interest, max_size=MAX_INTERESTS).map(tuple)
match_ids = st.binary(min_size=MATCH_ID_BYTES, max_size=MATCH_ID_BYTES)
messages = st.one_of(
    st.builds(Propose, match_ids, interest_lists, st.binary(max_size=MAX_HANDSHAKE_BYTES)),
    st.builds(Accept, match_ids, interest_lists, st.binary(max_size=MAX_HANDSHAKE_BYTES)),
    st.builds(Refuse, match_ids, st.sampled_from(Refusal)),
)


def body(frame: bytes) -> bytes:
    """The body of one encoded frame, after checking its prefix."""
    assert frame_length(frame[:4]) == len(frame) - 4
    return frame[4:]


def packed(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# --- round trips -----------------------------------------------------------------------


@given(messages)
def test_every_message_round_trips(message: Propose | Accept | Refuse) -> None:
    assert decode(body(encode(message))) == message


def test_the_wire_format_is_the_documented_one() -> None:
    assert msgpack.unpackb(body(encode(Propose(MATCH_ID, ("jazz", "cinéma"))))) == {
        "t": "propose", "v": 1, "m": MATCH_ID, "i": ["jazz", "cinéma"],
    }
    assert msgpack.unpackb(body(encode(Propose(MATCH_ID, ("jazz",), b"commit")))) == {
        "t": "propose", "v": PROTOCOL_VERSION, "m": MATCH_ID, "i": ["jazz"], "h": b"commit",
    }
    assert msgpack.unpackb(body(encode(Accept(MATCH_ID, (), b"hello")))) == {
        "t": "accept", "m": MATCH_ID, "i": [], "h": b"hello"}
    assert msgpack.unpackb(body(encode(Accept(MATCH_ID, ())))) == {"t": "accept", "m": MATCH_ID, "i": []}
    assert msgpack.unpackb(body(encode(Refuse(MATCH_ID, Refusal.NOT_LOOKING)))) == {
        "t": "refuse", "m": MATCH_ID, "r": "not-looking",
    }
    frame = encode(Refuse(MATCH_ID, Refusal.BUSY))
    assert frame[:4] == struct.pack(">I", len(frame) - 4)


@pytest.mark.parametrize("kind", [Propose, Accept])
def test_the_largest_valid_message_fits_in_a_frame(kind: type[Propose] | type[Accept]) -> None:
    # MAX_INTERESTS interests of MAX_INTEREST_CHARS characters of 4 UTF-8 bytes each
    widest = tuple(chr(0x1F300 + n) * MAX_INTEREST_CHARS for n in range(MAX_INTERESTS))
    assert all(normalize_interest(item) == item for item in widest)
    message = kind(MATCH_ID, widest)
    frame = encode(message)
    assert len(frame) - 4 <= MAX_PROPOSAL_FRAME
    assert decode(body(frame)) == message


# --- building messages: our own mistakes are LocalProtocolError ---------------------------


@pytest.mark.parametrize("match_id", [b"", b"x" * 15, b"x" * 17, "x" * 16, bytearray(16), None])
@pytest.mark.parametrize("build", [
    lambda match_id: Propose(match_id, ()),
    lambda match_id: Accept(match_id, ()),
    lambda match_id: Refuse(match_id, Refusal.BUSY),
], ids=["propose", "accept", "refuse"])
def test_bad_match_id_is_our_bug(build, match_id: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LocalProtocolError, match="match id must be 16 bytes") as info:
        build(match_id)
    assert repr(match_id) in str(info.value)


@pytest.mark.parametrize(
    "interests",
    [
        ("Jazz",),  # not canonical
        ("jazz ",),
        ("",),
        ("a\x1bb",),
        (3,),
        ["jazz"],  # a list, not a tuple
        "jazz",
        tuple(f"t{n}" for n in range(MAX_INTERESTS + 1)),
    ],
)
@pytest.mark.parametrize("kind", [Propose, Accept])
def test_bad_interests_are_our_bug(kind: type[Propose] | type[Accept], interests: object) -> None:
    with pytest.raises(LocalProtocolError, match="interest"):
        kind(MATCH_ID, interests)  # type: ignore[arg-type]


@pytest.mark.parametrize("reason", ["busy", None, 1])
def test_refuse_needs_a_refusal(reason: object) -> None:
    with pytest.raises(LocalProtocolError, match="bad refusal reason") as info:
        Refuse(MATCH_ID, reason)  # type: ignore[arg-type]
    assert repr(reason) in str(info.value)


def test_encode_refuses_other_objects() -> None:
    with pytest.raises(LocalProtocolError, match="not a proposal message"):
        encode({"t": "propose"})  # type: ignore[arg-type]


# --- frame length prefix ---------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 100, MAX_PROPOSAL_FRAME])
def test_frame_length_in_bounds(length: int) -> None:
    assert frame_length(struct.pack(">I", length)) == length


@pytest.mark.parametrize("length", [0, MAX_PROPOSAL_FRAME + 1, 2**31, 2**32 - 1])
def test_frame_length_out_of_bounds(length: int) -> None:
    with pytest.raises(RemoteProtocolError, match=f"proposal frame of {length} bytes"):
        frame_length(struct.pack(">I", length))


@pytest.mark.parametrize("prefix", [b"", b"\x00", b"\x00\x00\x01", b"\x00\x00\x00\x01\x00"])
def test_truncated_or_long_prefix(prefix: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="truncated length prefix") as info:
        frame_length(prefix)
    assert repr(prefix) in str(info.value)


# --- decoding: the peer's mistakes are RemoteProtocolError, and only that --------------------


PROPOSE = {"t": "propose", "v": 1, "m": MATCH_ID, "i": ["jazz"]}
ACCEPT = {"t": "accept", "m": MATCH_ID, "i": ["jazz"]}
REFUSE = {"t": "refuse", "m": MATCH_ID, "r": "busy"}
VALID = {"propose": PROPOSE, "accept": ACCEPT, "refuse": REFUSE}


def test_the_valid_frames_used_below_do_decode() -> None:
    assert decode(packed(PROPOSE)) == Propose(MATCH_ID, ("jazz",))
    assert decode(packed(ACCEPT)) == Accept(MATCH_ID, ("jazz",))
    assert decode(packed(REFUSE)) == Refuse(MATCH_ID, Refusal.BUSY)


def rejected(obj_or_bytes: object, match: str) -> None:
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else packed(obj_or_bytes)
    with pytest.raises(RemoteProtocolError, match=match):
        decode(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x81", b"\x92\x01", packed(REFUSE) + b"\x00", b"\xd9\x02\xff\xfe",
     b"\xc7\x01\x05x"],  # empty, reserved byte, truncated map/array, trailing data, bad UTF-8, ext
    ids=["empty", "reserved", "truncated-map", "truncated-array", "trailing", "bad-utf8", "ext"],
)
def test_undecodable_bytes(data: bytes) -> None:
    rejected(data, "proposal frame that is not valid msgpack")


def test_too_deep_nesting() -> None:
    rejected(b"\x91" * 100_000 + b"\x00", "proposal frame that is not valid msgpack")


def test_duplicate_keys_are_rejected() -> None:
    body = b"\x84\xa1t\xa6refuse\xa1m\xc4\x10" + MATCH_ID + b"\xa1r\xa4busy\xa1r\xa4busy"
    rejected(body, "duplicate key")


DEEP = b"\x91" * 1000 + b"\xc0"  # [[[...[nil]...]]], 1000 levels (msgpack allows 1024)
_MID = b"\xc4\x10" + MATCH_ID


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b"\x81\xa1t" + DEEP,
        b"\x84\xa1t\xa7propose\xa1v\x01\xa1m" + _MID + b"\xa1i" + DEEP,
        b"\x84\xa1t\xa7propose\xa1v" + DEEP + b"\xa1m" + _MID + b"\xa1i\x90",
        b"\x83\xa1t\xa6accept\xa1m" + _MID + b"\xa1i" + DEEP,
        b"\x83\xa1t\xa6refuse\xa1m" + _MID + b"\xa1r" + DEEP,
        b"\x83\xa1t\xa6refuse\xa1m" + DEEP + b"\xa1r\xa4busy",
    ],
    ids=["top", "type", "propose-interests", "propose-version", "accept-interests",
         "refuse-reason", "match-id"],
)
def test_deeply_nested_values_are_rejected_without_recursion_error(body: bytes) -> None:
    """Issue 7, fault 3: ``repr`` of a value 1000 levels deep raised RecursionError."""
    rejected(body, "nested more than 2 levels deep|not a map")


@pytest.mark.parametrize(
    "obj",
    [[], 1, "propose", None, {}, {"t": "hello"}, {"t": None}, {"t": b"propose"},
     {"t": ["propose"]}, {"t": {"x": 1}}, {"m": MATCH_ID}],
)
def test_unknown_frames(obj: object) -> None:
    rejected(obj, "unknown proposal frame|proposal frame that is not a map")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_missing_and_extra_keys(kind: str) -> None:
    frame = VALID[kind]
    for key in frame:
        if key != "t":
            rejected({k: v for k, v in frame.items() if k != key}, f"proposal frame '{kind}' has keys")
    rejected({**frame, "x": 1}, f"proposal frame '{kind}' has keys")
    rejected({**frame, b"m": MATCH_ID}, f"proposal frame '{kind}' has keys")  # bytes key


def test_keys_of_another_kind() -> None:
    rejected({**ACCEPT, "t": "refuse"}, "proposal frame 'refuse' has keys")
    rejected({**REFUSE, "t": "propose"}, "proposal frame 'propose' has keys")


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize("match_id", [b"x" * 15, b"x" * 17, b"", "x" * 16, 16, None])
def test_bad_match_id_from_the_peer(kind: str, match_id: object) -> None:
    rejected({**VALID[kind], "m": match_id}, "match id must be 16 bytes")


@pytest.mark.parametrize("version", [True, False, 0, 3, -1, 1.0, 2.0, "1", None, [1]])
def test_unsupported_version(version: object) -> None:
    rejected({**PROPOSE, "v": version}, "unsupported proposal version")


def test_handshake_frames_ride_in_version_2_only() -> None:
    assert decode(packed({**PROPOSE, "v": 2, "h": b"c"})) == Propose(MATCH_ID, ("jazz",), b"c")
    assert decode(packed({**ACCEPT, "h": b"h"})) == Accept(MATCH_ID, ("jazz",), b"h")
    rejected({**PROPOSE, "v": 2}, "a version 2 proposal without h")
    rejected({**PROPOSE, "h": b"c"}, "a version 1 proposal with h")
    rejected({**PROPOSE, "v": 2, "h": "c"}, "handshake frames must be at most")
    rejected({**PROPOSE, "v": 2, "h": b"x" * (MAX_HANDSHAKE_BYTES + 1)}, "handshake frames must be at most")
    rejected({**ACCEPT, "h": b""}, "empty handshake frames")
    rejected({**REFUSE, "h": b"h"}, "proposal frame 'refuse' has keys")
    with pytest.raises(LocalProtocolError, match="handshake frames"):
        Propose(MATCH_ID, (), "commit")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["propose", "accept"])
@pytest.mark.parametrize(
    "interests",
    [
        ["Jazz"], [" jazz"], ["rock  roll"], ["cafe\u0301"], [""], ["a\x1bb"], ["\u200b"],
        ["x" * (MAX_INTEREST_CHARS + 1)],
    ],
)
def test_non_canonical_interests_from_the_peer(kind: str, interests: list[str]) -> None:
    rejected({**VALID[kind], "i": interests}, "interest")


@pytest.mark.parametrize("kind", ["propose", "accept"])
@pytest.mark.parametrize(
    "interests",
    ["jazz", None, {"jazz": 1}, [1], [b"jazz"], ["jazz", None], [f"t{n}" for n in range(MAX_INTERESTS + 1)]],
)
def test_malformed_interest_lists_from_the_peer(kind: str, interests: object) -> None:
    rejected({**VALID[kind], "i": interests}, "bad interest list")


@pytest.mark.parametrize("reason", ["nope", "BUSY", "", b"busy", 1, None, ["busy"], {"busy": 1}])
def test_unknown_refusal(reason: object) -> None:
    rejected({**REFUSE, "r": reason}, "unknown refusal reason")


def test_error_messages_echo_the_bad_value() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(packed({**REFUSE, "r": "nope"}))
    assert "'nope'" in str(info.value)
    with pytest.raises(RemoteProtocolError) as info:
        decode(packed({**PROPOSE, "v": 7}))
    assert "7" in str(info.value)


@given(st.binary(max_size=200))
@example(packed({"t": ["x"]}))
@example(packed({"t": "accept", "m": MATCH_ID, b"i": []}))
def test_garbage_bytes_only_ever_raise_remote_protocol_error(data: bytes) -> None:
    try:
        message = decode(data)
    except RemoteProtocolError:
        return
    assert isinstance(message, (Propose, Accept, Refuse))


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20)
    | st.sampled_from(["propose", "accept", "refuse", "busy", "jazz", MATCH_ID, 1]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=3) | st.binary(max_size=3), children, max_size=4),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {},
    optional={key: msgpack_values for key in ("t", "v", "m", "i", "r")},
)


@given(st.one_of(msgpack_values, frame_like, st.sampled_from(list(VALID.values())).flatmap(
    lambda frame: st.fixed_dictionaries({k: st.just(v) | msgpack_values for k, v in frame.items()})
)))
def test_structured_garbage_only_ever_raises_remote_protocol_error(obj: object) -> None:
    data = packed(obj)
    try:
        message = decode(data)
    except RemoteProtocolError:
        return
    assert decode(body(encode(message))) == message


def test_an_invitation_flag_round_trips_and_is_strict() -> None:
    from strangers.discovery.proposal import Propose, decode, encode

    invite = Propose(MATCH_ID, ("chess",), invite=True)
    assert decode(encode(invite)[4:]) == invite
    assert decode(encode(Propose(MATCH_ID, ("chess",)))[4:]).invite is False
    rejected({**VALID["propose"], "inv": 1}, "bad invitation flag")
    rejected({**VALID["accept"], "inv": True}, "proposal frame 'accept' has keys")
