"""Adapter helpers for libp2p streams, over fakes."""

from __future__ import annotations

import pytest
import trio
from libp2p.network.stream.exceptions import StreamEOF, StreamReset

from strangers.errors import RemoteProtocolError
from strangers.node.libp2p.streamio import (
    StreamEnded,
    StreamFailed,
    forget_closed_connections,
    read_exactly,
    read_some,
    read_uvarint_frame,
    reset_quietly,
    uvarint,
)


class FakeStream:
    def __init__(self, chunks: list[bytes], end: Exception | None = None) -> None:
        self.chunks = list(chunks)
        self.end = end or StreamEOF()

    async def read(self, n: int) -> bytes:
        if not self.chunks:
            raise self.end
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            self.chunks.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk


async def test_read_exactly_joins_short_reads():
    assert await read_exactly(FakeStream([b"ab", b"c", b"def"]), 5) == b"abcde"


async def test_a_clean_end_and_a_reset_are_told_apart():
    with pytest.raises(StreamEnded) as ended:
        await read_exactly(FakeStream([b"ab"]), 3)
    assert not isinstance(ended.value, StreamFailed)
    with pytest.raises(StreamFailed):
        await read_exactly(FakeStream([b"ab"], StreamReset()), 3)


class ResetMarkedStream(FakeStream):
    """py-libp2p's way: the reset reaches read() as StreamEOF, the muxed stream knows."""

    def __init__(self, chunks: list[bytes], reset: bool) -> None:
        super().__init__(chunks)
        self.muxed_stream = type("Muxed", (), {"reset_received": reset})()


async def test_a_reset_reported_as_eof_is_still_a_failure():
    with pytest.raises(StreamFailed, match="reset 1 bytes short of 3"):
        await read_exactly(ResetMarkedStream([b"ab"], reset=True), 3)
    with pytest.raises(StreamFailed):
        await read_some(ResetMarkedStream([], reset=True), 10)
    assert await read_some(ResetMarkedStream([b"ab"], reset=True), 10) == b"ab"  # data first
    assert await read_some(ResetMarkedStream([], reset=False), 10) == b""
    with pytest.raises(StreamEnded) as ended:
        await read_exactly(ResetMarkedStream([b"ab"], reset=False), 3)
    assert not isinstance(ended.value, StreamFailed)


async def test_uvarint_frames_round_trip_and_are_bounded():
    body = b"x" * 300
    assert await read_uvarint_frame(FakeStream([uvarint(len(body)) + body]), 1000) == body
    with pytest.raises(RemoteProtocolError):
        await read_uvarint_frame(FakeStream([uvarint(2000)]), 1000)
    with pytest.raises(RemoteProtocolError):
        await read_uvarint_frame(FakeStream([b"\xff" * 10]), 1000)


class FakeConn:
    def __init__(self, closed: bool) -> None:
        self.is_closed = closed


class FakeSwarm:
    def __init__(self, conns: list[FakeConn]) -> None:
        self.conns = conns

    def get_connections(self, peer_id):
        return list(self.conns)

    def remove_conn(self, conn) -> None:
        self.conns.remove(conn)


class FakeHost:
    def __init__(self, swarm: FakeSwarm) -> None:
        self.swarm = swarm

    def get_network(self) -> FakeSwarm:
        return self.swarm


def test_closed_connection_records_are_forgotten_open_ones_kept():
    alive = FakeConn(closed=False)
    swarm = FakeSwarm([FakeConn(closed=True), alive, FakeConn(closed=True)])
    assert forget_closed_connections(FakeHost(swarm), "peer") == 2
    assert swarm.conns == [alive]


class ResettingStream:
    def __init__(self, error: Exception | None = None, hang: bool = False) -> None:
        self.error, self.hang, self.resets = error, hang, 0

    async def reset(self) -> None:
        self.resets += 1
        if self.hang:
            await trio.sleep_forever()
        if self.error is not None:
            raise self.error


async def test_reset_quietly_ignores_a_stream_that_is_already_gone():
    stream = ResettingStream(StreamReset("gone"))
    await reset_quietly(stream)
    assert stream.resets == 1


async def test_reset_quietly_finishes_even_when_its_caller_is_cancelled(autojump_clock):
    stream = ResettingStream(hang=True)
    with trio.CancelScope() as scope:
        scope.cancel()  # already cancelled: the reset still runs (shielded) ...
        started = trio.current_time()
        await reset_quietly(stream, 0.5)
    assert stream.resets == 1
    assert trio.current_time() - started == pytest.approx(0.5)  # ... for at most its timeout
