"""node/libp2p/yamuxwindow.py: a Yamux window update per half window read, not per read."""

from __future__ import annotations

import trio
from libp2p.stream_muxer.yamux import yamux as yamux_module

from strangers.node.libp2p import yamuxwindow

from canary import changed, source_of

WINDOW = 256 * 1024


class _Conn:
    def __init__(self) -> None:
        self.stream_buffers: dict[int, bytearray] = {}
        self.frames: list[bytes] = []

    def rtt(self) -> float:
        return 0.001

    async def _write_frame(self, data: bytes) -> None:
        self.frames.append(data)


def _stream() -> yamux_module.YamuxStream:
    yamuxwindow.install()
    conn = _Conn()
    return yamux_module.YamuxStream(1, conn, is_initiator=True)  # type: ignore[arg-type]


async def _receive_and_read(stream, size: int) -> None:
    stream.recv_window -= size  # as the muxer's reader does for a data frame
    await stream._auto_tune_and_send_window_update(bytes_read=size)


async def test_small_reads_send_no_update_until_half_the_window_was_read(monkeypatch):
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "0")
    stream = _stream()
    for _ in range(200):  # 200 lobby-sized messages: 120,000 bytes, below half of 256 KiB
        await _receive_and_read(stream, 600)
    assert stream.conn.frames == []
    for _ in range(20):  # past half the window: the credit goes back, in one update
        await _receive_and_read(stream, 600)
    assert len(stream.conn.frames) == 1
    increment = int.from_bytes(stream.conn.frames[0][8:12], "big")
    assert increment >= 131_400 and stream.recv_window >= WINDOW  # (the library may grow it)


async def test_the_sender_is_never_left_without_window(monkeypatch):
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "0")
    stream = _stream()
    read = 0
    while read < 4 * WINDOW:  # the peer keeps sending as long as it has credit
        credit = stream.recv_window
        assert credit >= WINDOW // 2 - 600, (read, credit)
        await _receive_and_read(stream, 600)
        read += 600
        await trio.lowlevel.checkpoint()


def test_the_library_still_has_the_branch_and_counters_we_rely_on():
    source = source_of(yamux_module.YamuxStream._auto_tune_and_send_window_update.wrapped)
    for needle in ("self._pending_recv_release", "elif pending >= threshold:",
                   "self.target_recv_window - (self.recv_window + buffered)"):
        assert needle in source, changed("yamuxwindow.install", f"{needle!r} gone")
    assert hasattr(yamux_module, "_yamux_release_on_read")
