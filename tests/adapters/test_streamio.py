"""Adapter helpers for libp2p streams, over fakes."""

from __future__ import annotations

import pytest
from libp2p.network.stream.exceptions import StreamEOF, StreamReset

from strangers.discovery.streamio import (
    StreamEnded,
    StreamFailed,
    forget_closed_connections,
    read_exactly,
    read_uvarint_frame,
    uvarint,
)
from strangers.errors import RemoteProtocolError


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
