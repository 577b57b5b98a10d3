"""Small helpers to read libp2p streams safely (bounded, EOF-aware).

py-libp2p's ``INetStream.read(n)`` may return fewer bytes than asked, and
signals the end of the stream by raising ``StreamEOF`` (or returning b"" on
some paths). These helpers hide both and never buffer more than asked.

A reset by the peer raises :class:`StreamFailed`, a clean end
:class:`StreamEnded`. py-libp2p 0.8.1 does not always tell them apart: once
we have written on a stream, the peer's reset reaches ``read`` as
``StreamEOF``. Its Yamux stream still knows (``reset_received``), so
:func:`_was_reset` asks it (canary: ``tests/adapters/test_canary_streams.py``).
"""

from __future__ import annotations

import trio
from libp2p.network.stream.exceptions import StreamEOF, StreamError

from strangers.errors import RemoteProtocolError


class StreamEnded(RemoteProtocolError):
    """The peer closed or reset the stream before the expected data arrived."""


class StreamFailed(StreamEnded):
    """The stream was reset or broke (not a clean end; see the module docstring)."""


def _was_reset(stream: object) -> bool:
    """Whether the end of ``stream`` was in fact the peer's reset (see the module docstring)."""
    muxed = getattr(stream, "muxed_stream", None)
    return getattr(muxed, "reset_received", False) is True


async def read_exactly(stream: object, count: int) -> bytes:
    """Read exactly ``count`` bytes or raise StreamEnded (StreamFailed on a reset)."""
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
            if _was_reset(stream):
                raise StreamFailed(f"stream reset {missing} bytes short of {count}")
            raise StreamEnded(f"stream ended {missing} bytes short of {count}")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


async def read_some(stream: object, max_bytes: int) -> bytes:
    """Read up to ``max_bytes``; b"" at a clean end of the stream, StreamFailed on a reset."""
    try:
        data: bytes = await stream.read(max_bytes)  # type: ignore[attr-defined]
    except StreamEOF:
        data = b""
    except StreamError as exc:
        raise StreamFailed(f"stream failed: {exc or type(exc).__name__}") from None
    if not data and _was_reset(stream):
        raise StreamFailed("stream reset")
    return data


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


def allow_redial(host, peer_id) -> None:
    """Take ``peer_id`` out of the swarm's negative cache ("recently failed all addresses").

    py-libp2p refuses every dial to a peer for a while after one dial to it
    failed, even one made by a DHT walk to an address the peer does not hold
    any more. A proposal is one deliberate dial, to addresses its provider
    record has just given: it deserves a try of its own.
    """
    unblock = getattr(host.get_network(), "unblock_peer", None)
    if unblock is not None:
        unblock(peer_id)


async def reset_quietly(stream: object, timeout: float = 0.5) -> None:
    """Reset ``stream`` (shielded from cancellation, at most ``timeout`` s); errors ignored."""
    with trio.move_on_after(timeout) as scope:
        scope.shield = True
        try:
            await stream.reset()  # type: ignore[attr-defined]
        except Exception:  # already gone
            pass
