"""A Yamux stream hands over the bytes its peer sent before a reset, then reports the reset.

py-libp2p 0.8.1's ``Yamux.read_stream`` (every sized ``read(n)``) raises
``MuxedStreamReset`` as soon as a stream's RST is in, even when the peer's
data frames before it are still in the stream's buffer, unread: they are
kept for 60 s and dropped. Whether a reader saw them depended on timing:
if the data and the RST arrived in one TCP read (two segments coalesced on
the path, or one batch of frames, :mod:`.framebatch`), the reader's wait
ended with both in, and it lost the data. Seen in our tests as a stranger's
last chat handshake message lost when its chat failed right after sending
it: the other side never saw ``matched``, and looked for someone else.
The library's own ``read()`` with no size already returns buffered data
first; only the sized read dropped it.

:func:`install` wraps ``read_stream``: while the stream has buffered data,
a read returns it (as much as was asked), whatever the stream's state;
once the buffer is empty the library's read runs and raises the reset as
before. Nothing changes on the wire, and a reset still ends the stream for
its reader: it only comes after the bytes that were sent before it, in the
order the peer wrote them. The buffer stays bounded by the receive window,
and the library's sweeper still reclaims an unread one after its grace period.

Canaries: ``tests/adapters/test_canary_yamuxreset.py``.
"""

from __future__ import annotations

from typing import Any

from libp2p.stream_muxer.exceptions import MuxedStreamReset
from libp2p.stream_muxer.yamux.yamux import Yamux


def _buffered(conn: Yamux, stream_id: int, n: int) -> bytes:
    """Take up to ``n`` (all if -1) buffered bytes of a stream (synchronous: nothing interleaves)."""
    buffer = conn.stream_buffers.get(stream_id)
    if not buffer or stream_id not in conn.streams:
        return b""
    take = len(buffer) if n < 0 else min(n, len(buffer))
    data = bytes(buffer[:take])
    del buffer[:take]
    return data


def _wrapped(original: Any) -> Any:
    async def read_stream(self: Yamux, stream_id: int, n: int = -1) -> bytes:
        if n is None:
            n = -1
        stream = self.streams.get(stream_id)
        if stream is not None and stream.reset_received:
            data = _buffered(self, stream_id, n)
            if data:
                return data
        try:
            return await original(self, stream_id, n)
        except MuxedStreamReset:
            stream = self.streams.get(stream_id)
            if stream is None or not stream.reset_received:
                raise
            data = _buffered(self, stream_id, n)  # the reset came with data before it
            if not data:
                raise
            return data

    read_stream.original = original  # type: ignore[attr-defined]
    return read_stream


def install() -> None:
    """Patch ``Yamux.read_stream`` (process-wide, once)."""
    if not hasattr(Yamux.read_stream, "original"):
        Yamux.read_stream = _wrapped(Yamux.read_stream)  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to the library's read (canaries compare the two)."""
    original = getattr(Yamux.read_stream, "original", None)
    if original is not None:
        Yamux.read_stream = original  # type: ignore[method-assign]


def installed() -> bool:
    return hasattr(Yamux.read_stream, "original")


__all__ = ["install", "installed", "uninstall"]
