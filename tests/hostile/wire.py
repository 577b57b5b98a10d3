"""Framing and msgpack rules of docs/protocol.md §5.1 and §6.1, as a stranger would code them.

Written from the document, not from the project's modules: nothing here imports ``strangers``.
The decoder is strict enough for a hostile peer that reads an honest victim; it is not a
reference decoder.
"""

from __future__ import annotations

import struct

import msgpack

MAX_FRAME = 65536
"""Largest chat frame body (§6.1)."""

MAX_PROPOSAL_FRAME = 8192
"""Largest match frame body (§5.1)."""


class WireError(Exception):
    """The victim sent something the documents say it never sends."""


def pack(obj: object) -> bytes:
    """msgpack with ``str`` for text and ``bin`` for bytes (§ intro of protocol.md)."""
    return msgpack.packb(obj, use_bin_type=True)


def frame(body: bytes) -> bytes:
    """A 4-byte big-endian length prefix, then the body (no check: the hostile peer may lie)."""
    return struct.pack(">I", len(body)) + body


def frame_obj(obj: object) -> bytes:
    return frame(pack(obj))


def unpack_map(body: bytes) -> dict:
    """One msgpack map with str keys and nothing after it."""
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=MAX_FRAME,
                              max_str_len=MAX_FRAME, max_array_len=64, max_map_len=16,
                              max_ext_len=0)
    except Exception as exc:  # msgpack raises many types; this is a test tool
        raise WireError(f"undecodable body: {exc!r}"[:200]) from None
    if not isinstance(obj, dict) or not all(isinstance(key, str) for key in obj):
        raise WireError(f"not a map with str keys: {type(obj).__name__}")
    return obj


def nested_array(depth: int) -> bytes:
    """msgpack bytes of ``depth`` one-element arrays around a nil (``[[[...nil...]]]``)."""
    return b"\x91" * depth + b"\xc0"


def nested_map_body(depth: int, key: str = "t") -> bytes:
    """A map ``{key: [[[...]]]}`` whose nesting, the map included, is ``depth`` levels."""
    return b"\x81" + pack(key) + nested_array(depth - 1)


class FrameBuffer:
    """Bytes in, whole frame bodies out (a bounded buffer, for reading the victim)."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        bodies = []
        while len(self._buffer) >= 4:
            (size,) = struct.unpack(">I", self._buffer[:4])
            if not 1 <= size <= self._limit:
                raise WireError(f"frame length {size} outside 1..{self._limit}")
            if len(self._buffer) < 4 + size:
                break
            bodies.append(bytes(self._buffer[4:4 + size]))
            del self._buffer[:4 + size]
        return bodies
