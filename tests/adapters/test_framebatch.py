"""``framebatch``'s own rules, on a stand-in connection: batches, order, bounds, close, errors."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing
from libp2p.io.exceptions import IOException
from libp2p.stream_muxer.yamux.yamux import TYPE_DATA, TYPE_GO_AWAY, YAMUX_HEADER_FORMAT

from strangers.node.libp2p import framebatch

write = framebatch._write_frame


def frame(stream_id: int, payload: bytes = b"x", kind: int = TYPE_DATA) -> bytes:
    return struct.pack(YAMUX_HEADER_FORMAT, 0, kind, 0, stream_id, len(payload)) + payload


GO_AWAY = struct.pack(YAMUX_HEADER_FORMAT, 0, TYPE_GO_AWAY, 0, 0, 0)


class Secured:
    """The secured connection under Yamux: records each write (one Noise message, one send)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.gate: trio.Event | None = None
        self.failure: Exception | None = None

    async def write(self, data: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        if self.failure is not None:
            raise self.failure
        self.writes.append(data)


class Conn:
    """What ``_write_frame`` uses of a ``Yamux``: its nursery and its secured connection."""

    def __init__(self, nursery: trio.Nursery | None) -> None:
        self._nursery = nursery
        self.secured_conn = Secured()


async def test_frames_written_at_the_same_moment_leave_in_one_write_in_call_order(mock_clock) -> None:
    # the mock clock stands still: only the scheduler decides (no 2 ms deadline on a busy machine)
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        order: list[bytes] = []

        async def writer(stream_id: int, count: int) -> None:
            for index in range(count):
                data = frame(stream_id, b"%d" % index)
                order.append(data)
                await write(conn, data)  # type: ignore[arg-type]

        for stream_id in range(1, 6):
            nursery.start_soon(writer, stream_id, 3)
        await trio.testing.wait_all_tasks_blocked()
        assert conn.secured_conn.writes == [b"".join(order)]  # 15 frames, one segment


async def test_a_frame_alone_leaves_without_waiting_for_the_clock(mock_clock) -> None:
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        started = trio.current_time()
        await write(conn, frame(1))  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert conn.secured_conn.writes == [frame(1)]
        assert trio.current_time() == started


async def test_a_busy_process_still_sends_within_the_bound() -> None:
    spins = 0
    sent_after: list[int] = []

    async def busy() -> None:
        nonlocal spins
        while True:
            spins += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy)
        await trio.lowlevel.checkpoint()
        conn = Conn(nursery)
        start = spins
        await write(conn, frame(1))  # type: ignore[arg-type]
        while not conn.secured_conn.writes:
            await trio.lowlevel.checkpoint()
        sent_after.append(spins - start)
        nursery.cancel_scope.cancel()
    # never held for ever by a process that always has work: MAX_YIELDS passes at most
    assert sent_after[0] <= framebatch.MAX_YIELDS + 4


async def test_without_a_nursery_the_writer_sends_before_it_returns() -> None:
    conn = Conn(None)
    await write(conn, frame(1))  # type: ignore[arg-type]
    assert conn.secured_conn.writes == [frame(1)]


async def test_a_go_away_waits_for_every_frame_before_it() -> None:
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        conn.secured_conn.gate = trio.Event()
        await write(conn, frame(1, b"last words"))  # type: ignore[arg-type]  # returns at once
        closed = trio.Event()

        async def close() -> None:
            await write(conn, GO_AWAY)  # type: ignore[arg-type]
            closed.set()

        nursery.start_soon(close)
        await trio.testing.wait_all_tasks_blocked()
        assert not closed.is_set() and conn.secured_conn.writes == []
        conn.secured_conn.gate.set()
        await closed.wait()
        assert b"".join(conn.secured_conn.writes) == frame(1, b"last words") + GO_AWAY


async def test_a_failed_send_fails_every_later_write_and_the_close() -> None:
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        conn.secured_conn.failure = IOException("connection reset")
        await write(conn, frame(1))  # type: ignore[arg-type]  # handed in; the send fails later
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(IOException, match="connection reset"):
            await write(conn, frame(2))  # type: ignore[arg-type]
        with pytest.raises(IOException, match="connection reset"):
            await write(conn, GO_AWAY)  # type: ignore[arg-type]
    assert conn.secured_conn.writes == []


async def test_a_writer_cancelled_before_handing_in_sends_nothing() -> None:
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        with trio.CancelScope() as scope:
            scope.cancel()
            await write(conn, frame(1))  # type: ignore[arg-type]
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert conn.secured_conn.writes == []


async def test_a_full_outbox_makes_writers_wait_and_a_frame_handed_in_is_sent_whole() -> None:
    async with trio.open_nursery() as nursery:
        conn = Conn(nursery)
        conn.secured_conn.gate = trio.Event()
        big = frame(1, bytes(framebatch.HIGH_WATER))
        returned = trio.Event()

        async def writer() -> None:
            with trio.CancelScope() as scope:
                nursery.start_soon(cancel_later, scope)
                await write(conn, big)  # type: ignore[arg-type]
            returned.set()

        async def cancel_later(scope: trio.CancelScope) -> None:
            await trio.testing.wait_all_tasks_blocked()
            assert not returned.is_set()  # waiting for the flusher: the outbox is full
            scope.cancel()

        nursery.start_soon(writer)
        await returned.wait()  # the wait was cancelled...
        conn.secured_conn.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert conn.secured_conn.writes == [big]  # ...and the frame handed in still went out whole


def test_install_replaces_the_library_write_and_uninstall_restores_it() -> None:
    from libp2p.stream_muxer.yamux.yamux import Yamux

    framebatch.install()
    assert framebatch.installed() and Yamux._write_frame is framebatch._write_frame
    framebatch.uninstall()
    try:
        assert not framebatch.installed()
        assert Yamux._write_frame is framebatch._write_frame.original  # type: ignore[attr-defined]
    finally:
        framebatch.install()
