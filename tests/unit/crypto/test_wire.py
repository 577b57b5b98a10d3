"""crypto/wire.py: the one strict msgpack decoder of peer input, and short echoes."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.crypto.wire import MAX_DEPTH, brief, nesting_depth, unpack_map
from strangers.errors import RemoteProtocolError


def unpack(data: bytes, **limits: int) -> dict[object, object]:
    return unpack_map(data, what="thing", **{"max_bytes": 100, "max_container": 8, **limits})


def test_a_valid_map_decodes() -> None:
    assert unpack(msgpack.packb({"t": "x", "i": ["a", "b"], "b": b"\x00"})) == {
        "t": "x", "i": ["a", "b"], "b": b"\x00"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "thing that is not valid msgpack"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1]), "thing that is not a map: \\[1\\]"),
        (msgpack.packb({"a": 1}) + b"\x00", "not valid msgpack"),  # trailing data
        (b"\x82\xa1a\x01\xa1a\x02", "duplicate key"),
        (msgpack.packb({1: 1}), "not valid msgpack"),  # not a str key
        (msgpack.packb({"a": msgpack.ExtType(1, b"")}), "not valid msgpack"),
        (msgpack.packb({"a": "x" * 101}), "not valid msgpack"),  # str too long
        (msgpack.packb({"a": b"x" * 101}), "not valid msgpack"),  # bin too long
        (msgpack.packb({"a": list(range(9))}), "not valid msgpack"),
        (msgpack.packb({str(i): 0 for i in range(9)}), "not valid msgpack"),
        (b"\x81\xa1a\xa2\xff\xfe", "not valid msgpack"),  # bad UTF-8
        (msgpack.packb({"a": [[1]]}), "nested more than 2 levels deep"),
        (msgpack.packb({"a": {"b": {}}}), "nested more than 2 levels deep"),
        (b"\x81\xa1a" + b"\x91" * 1000 + b"\xc0", "nested more than 2 levels deep"),
        (b"\x91" * 5000 + b"\xc0", "not valid msgpack"),  # past msgpack's own 1024 limit
    ],
)
def test_bad_input_is_a_remote_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        unpack(data)


def test_limits_are_the_callers() -> None:
    assert unpack(msgpack.packb({"a": [[1]]}), max_depth=3) == {"a": [[1]]}
    with pytest.raises(RemoteProtocolError):
        unpack(msgpack.packb({str(i): 0 for i in range(5)}), max_map=4)
    assert unpack(msgpack.packb({"a": list(range(20))}), max_container=20, max_map=2)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_map_or_a_remote_protocol_error(data: bytes) -> None:
    try:
        assert isinstance(unpack(data), dict)
    except RemoteProtocolError:
        pass


def test_nesting_depth_is_iterative_and_stops_early() -> None:
    assert nesting_depth(1, MAX_DEPTH) == 0
    assert nesting_depth({}, MAX_DEPTH) == 1
    assert nesting_depth({"a": [1, {"b": 2}]}, 5) == 3
    deep: list[object] = []
    for _ in range(100_000):  # far past the recursion limit
        deep = [deep]
    assert nesting_depth(deep, 10) == 11  # counted up to limit + 1 only


def test_brief_echoes_short_values_and_cuts_long_ones() -> None:
    assert brief(5) == "5"
    assert brief(b"ab") == "b'ab'"
    assert brief("x" * 100) == "'" + "x" * 59 + "... of length 100"
    assert brief(b"\x00" * 100).endswith("... of length 100")
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    assert brief(deep) == "[[[...]]]"
    assert brief({"a": {"b": {"c": 1}}}) == "{'a': {'b': {...}}}"
    assert len(brief(list(range(1000)))) < 80
