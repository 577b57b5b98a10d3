"""Streams of several protocols at once on one connection, with optimistic multistream-select.

Each listener handler answers frames tagged with its own protocol, so a byte
of one stream that reached another (or a pooled stream reused before its echo
was read, or with another protocol's data left in it) shows up as a wrong
answer, a parse failure on the listener, or a reset. Streams are opened
together, some through the Kademlia stream pool, writes and first reads
interleaved, and some while the connection's own optimistic security/muxer
echo is still unread (opened right after the dial returns).

The bug these found: a pooled request cancelled while it opened or wrote its
stream cancelled a Noise write after its nonce was used, and the peer dropped
the whole connection (``node/libp2p/securewrite.py``: every write is atomic under cancellation).
"""

from __future__ import annotations

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import multistream
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host
from strangers.node.libp2p.kadpool import StreamPool
from strangers.node.libp2p.streamio import StreamEnded, read_uvarint_frame, uvarint

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
PROTOCOLS = [TProtocol(f"/strangers/mix-{name}/1.0.0") for name in ("chat", "kad", "match")]
MAX_FRAME = 4096


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


def _tagged_handler(protocol: str, mixed: list[str]):
    tag = protocol.encode()

    async def handler(stream) -> None:
        try:
            while True:
                frame = await read_uvarint_frame(stream, MAX_FRAME)
                if not frame.startswith(tag + b"|"):
                    mixed.append(f"{protocol} got {frame[:80]!r}")
                    await stream.reset()
                    return
                await stream.write(uvarint(len(frame)) + frame.replace(b"|", b"=", 1))
        except StreamEnded:
            pass
        except Exception as exc:  # a reset from the dialer, a broken connection
            if "reset" not in repr(exc).lower():  # StreamReset() has no message
                mixed.append(f"{protocol} handler failed: {exc!r}")

    return handler


async def _exchange(stream, protocol: str, serial: int, size: int) -> None:
    body = f"{protocol}|{serial}|".encode() + bytes(size)
    await stream.write(uvarint(len(body)) + body)
    reply = await read_uvarint_frame(stream, MAX_FRAME)
    assert reply == body.replace(b"|", b"=", 1), (protocol, serial, reply[:80])


async def _mixed_traffic(dialer, peer, pool: StreamPool, rounds: int) -> int:
    """Open streams of every protocol at once, some through the pool; returns exchanges done."""
    done = 0

    async def direct(protocol: str, serial: int) -> None:
        nonlocal done
        stream = await dialer.new_stream(peer, [protocol])
        for turn in range(3):  # several requests on one stream, first read interleaved with others
            await _exchange(stream, protocol, serial * 10 + turn, (serial * 37 + turn * 101) % 900)
            done += 1
            await trio.lowlevel.checkpoint()
        await stream.close()

    async def pooled(serial: int) -> None:
        nonlocal done
        body = f"{PROTOCOLS[1]}|{serial}|".encode() + bytes((serial * 53) % 700)
        reply = await pool.request(peer, body, MAX_FRAME)
        assert reply == body.replace(b"|", b"=", 1), (serial, reply[:80])
        done += 1

    for round_ in range(rounds):
        async with trio.open_nursery() as nursery:
            for index in range(6):
                serial = round_ * 100 + index
                nursery.start_soon(direct, PROTOCOLS[index % len(PROTOCOLS)], serial)
                nursery.start_soon(pooled, serial)
                nursery.start_soon(pooled, serial + 50)
    return done


@pytest.mark.parametrize("optimistic", [True, False], ids=["optimistic", "negotiated"])
async def test_streams_of_several_protocols_at_once_never_mix(optimistic: bool):
    dialer = build_host(fresh_identity(), optimistic=optimistic)
    listener = build_host(fresh_identity(), optimistic=optimistic)
    mixed: list[str] = []
    for protocol in PROTOCOLS:
        listener.set_stream_handler(protocol, _tagged_handler(protocol, mixed))
    async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]), \
            trio.open_nursery() as owner:
        pool = StreamPool(dialer, PROTOCOLS[1], owner.start_soon)
        info = PeerInfo(listener.get_id(), listener.get_transport_addrs())
        with trio.fail_after(60):
            await dialer.connect(info)
            done = await _mixed_traffic(dialer, info.peer_id, pool, rounds=4)
        assert not mixed
        assert done == 4 * 6 * 5
        assert pool.reused > 0 and pool.opened > 0
        assert len(dialer.get_network().get_connections(info.peer_id)) == 1
        owner.cancel_scope.cancel()


async def test_streams_opened_while_the_connection_echo_is_unread():
    """The first streams ride on a connection whose muxer echo no read has checked yet."""
    dialer, listener = build_host(fresh_identity()), build_host(fresh_identity())
    mixed: list[str] = []
    for protocol in PROTOCOLS:
        listener.set_stream_handler(protocol, _tagged_handler(protocol, mixed))
    async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]), \
            trio.open_nursery() as owner:
        pool = StreamPool(dialer, PROTOCOLS[1], owner.start_soon)
        info = PeerInfo(listener.get_id(), listener.get_transport_addrs())
        dialer.get_peerstore().add_addrs(info.peer_id, info.addrs, 600)
        with trio.fail_after(60):
            # No connect first: the dial happens inside new_stream, and every stream below is
            # opened before anything has read the connection's optimistic echoes.
            streams = []
            for protocol in PROTOCOLS:
                streams.append(await dialer.new_stream(info.peer_id, [protocol]))
                assert multistream.echo_pending(streams[-1])
            async with trio.open_nursery() as nursery:
                for serial, (protocol, stream) in enumerate(zip(PROTOCOLS, streams)):
                    nursery.start_soon(_exchange, stream, protocol, serial, 500)
                for serial in range(8):
                    nursery.start_soon(pool.request, info.peer_id,
                                       f"{PROTOCOLS[1]}|{serial}|".encode(), MAX_FRAME)
            await _mixed_traffic(dialer, info.peer_id, pool, rounds=2)
        assert not mixed
        owner.cancel_scope.cancel()


@pytest.mark.parametrize("optimistic", [True, False], ids=["optimistic", "negotiated"])
async def test_cancelled_pooled_requests_leave_other_streams_alone(optimistic: bool):
    """Walks that end early reset their pooled streams mid-exchange (before or after the echo
    came back); a long-lived stream of another protocol on the same connection carries on."""
    dialer = build_host(fresh_identity(), optimistic=optimistic)
    listener = build_host(fresh_identity(), optimistic=optimistic)
    mixed: list[str] = []
    for protocol in PROTOCOLS:
        listener.set_stream_handler(protocol, _tagged_handler(protocol, mixed))
    async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]), \
            trio.open_nursery() as owner:
        pool = StreamPool(dialer, PROTOCOLS[1], owner.start_soon)
        info = PeerInfo(listener.get_id(), listener.get_transport_addrs())
        dialer.get_peerstore().add_addrs(info.peer_id, info.addrs, 600)
        cancelled = 0
        with trio.fail_after(60):
            chat = await dialer.new_stream(info.peer_id, [PROTOCOLS[0]])

            async def walk(serial: int) -> None:
                nonlocal cancelled
                for step in range(6):
                    with trio.CancelScope() as scope:
                        if (serial + step) % 3 == 0:
                            scope.cancel()  # cancelled at its first checkpoint, before any echo
                        elif (serial + step) % 3 == 1:
                            scope.deadline = trio.current_time() + 0.0005 * step
                        await pool.request(info.peer_id, f"{PROTOCOLS[1]}|{serial}|".encode() + bytes(300),
                                           MAX_FRAME)
                    cancelled += scope.cancelled_caught

            for turn in range(30):
                async with trio.open_nursery() as nursery:
                    for serial in range(4):
                        nursery.start_soon(walk, turn * 10 + serial)
                    nursery.start_soon(_exchange, chat, PROTOCOLS[0], turn, 200 + turn)
        assert not mixed
        assert cancelled > 0
        assert len(dialer.get_network().get_connections(info.peer_id)) == 1
        owner.cancel_scope.cancel()


class _Session:
    """A secure session whose write takes ``delay`` seconds (the peer reads slowly or not at all)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.written: list[bytes] = []
        self.closed = False

    async def write(self, data: bytes) -> None:
        await trio.sleep(self.delay)
        self.written.append(data)

    async def close(self) -> None:
        self.closed = True
