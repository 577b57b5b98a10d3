"""Small helpers to read libp2p streams safely (bounded, EOF-aware).

py-libp2p's ``INetStream.read(n)`` may return fewer bytes than asked, and
signals the end of the stream by raising ``StreamEOF`` (or returning b"" on
some paths). These helpers hide both and never buffer more than asked.
"""

from __future__ import annotations

import trio
from libp2p.network.stream.exceptions import StreamEOF, StreamError

from strangers.errors import RemoteProtocolError


class StreamEnded(RemoteProtocolError):
    """The peer closed or reset the stream before the expected data arrived."""


class StreamFailed(StreamEnded):
    """The stream was reset or broke (not a clean end)."""


async def read_exactly(stream: object, count: int) -> bytes:
    """Read exactly ``count`` bytes or raise StreamEnded."""
    chunks: list[bytes] = []
    missing = count
    while missing > 0:
        try:
            chunk = await stream.read(missing)  # type: ignore[attr-defined]
        except StreamEOF:
            chunk = b""
        except StreamError as exc:
            raise StreamFailed(f"stream failed: {exc or type(exc).__name__}") from None
        if not chunk:
            raise StreamEnded(f"stream ended {missing} bytes short of {count}")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


async def read_some(stream: object, max_bytes: int) -> bytes:
    """Read up to ``max_bytes``; b"" at the end of the stream."""
    try:
        return await stream.read(max_bytes)  # type: ignore[attr-defined]
    except StreamEOF:
        return b""
    except StreamError as exc:
        raise StreamFailed(f"stream failed: {exc or type(exc).__name__}") from None


async def read_uvarint_frame(stream: object, max_length: int) -> bytes:
    """Read one unsigned-varint length-prefixed frame of at most ``max_length`` bytes."""
    length = 0
    for shift in range(0, 63, 7):
        byte = (await read_exactly(stream, 1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise RemoteProtocolError("varint length prefix too long")
    if length > max_length:
        raise RemoteProtocolError(f"frame of {length} bytes exceeds {max_length}")
    return await read_exactly(stream, length)


def uvarint(value: int) -> bytes:
    """Encode an unsigned varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def forget_closed_connections(host, peer_id) -> int:
    """Drop the swarm's records of closed connections to ``peer_id``.

    py-libp2p sometimes keeps a closed connection on its books (when two
    nodes dial each other at once and one connection is torn down). Its
    ``new_stream`` then neither uses it nor dials again, and fails with "No
    valid connections available". Forgetting the dead record makes the next
    stream dial afresh. Returns how many records were dropped.
    """
    swarm = host.get_network()
    dropped = 0
    for conn in swarm.get_connections(peer_id):
        if getattr(conn, "is_closed", False):
            swarm.remove_conn(conn)
            dropped += 1
    return dropped


async def reset_quietly(stream: object, timeout: float = 0.5) -> None:
    """Reset ``stream`` (shielded from cancellation, at most ``timeout`` s); errors ignored."""
    with trio.move_on_after(timeout) as scope:
        scope.shield = True
        try:
            await stream.reset()  # type: ignore[attr-defined]
        except Exception:  # already gone
            pass
