"""Yamux window updates batched as go-yamux does (one per half window read, not one per read).

py-libp2p 0.8.1's ``YamuxStream._auto_tune_and_send_window_update`` has a
"partial slack" branch: whenever the bytes read since the last update are
above zero and below the threshold (half the window), it sends them back at
once, so ``PY_YAMUX_RELEASE_ON_READ=0`` (:mod:`.host`) does not stop the
update per read after all. Measured in a lobby of 6 (``bench/lobby_copies.py``):
2,346 window-update frames for 2,096 data frames, each a Noise-encrypted
write, a socket send, a receive and a parse on the other side.

:func:`install` makes a read whose bytes stay below the threshold only add
them to the stream's pending release (the library's own counter); the
library's branch that flushes the pending bytes once they reach half the
window sends them. The sender can still have a whole window in flight, and
gets credit back as soon as half of it was read: flow control is
unchanged, only the chatter goes.
"""

from __future__ import annotations

from libp2p.stream_muxer.yamux import yamux as _yamux

_installed = False


def _batched(original):
    async def _auto_tune_and_send_window_update(self, *, bytes_read: int = 0) -> None:
        if bytes_read > 0 and not _yamux._yamux_release_on_read():
            buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
            owed = self.target_recv_window - (self.recv_window + buffered)
            threshold = self._grow_threshold()
            if owed < threshold and self._pending_recv_release + bytes_read < threshold:
                # no await before this: the library's computation under window_lock
                # is synchronous, so nothing interleaves with this update of its counter
                self._pending_recv_release += bytes_read
                return
        await original(self, bytes_read=bytes_read)

    _auto_tune_and_send_window_update.wrapped = original
    return _auto_tune_and_send_window_update


def install() -> None:
    """Patch ``YamuxStream`` (process-wide, once)."""
    global _installed
    if _installed:
        return
    stream = _yamux.YamuxStream
    stream._auto_tune_and_send_window_update = _batched(  # type: ignore[method-assign]
        stream._auto_tune_and_send_window_update)
    _installed = True
