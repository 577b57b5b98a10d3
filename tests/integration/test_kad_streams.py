"""Integration: Kademlia requests over reused streams (node/libp2p/kadpool.py)."""

from __future__ import annotations

import os

import pytest
import trio
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.peerinfo import info_from_p2p_addr

import strangers.node.libp2p.kad as kad
import strangers.node.libp2p.kadpool as kadpool

from dhtnet import connected_pair, serve_peer


def _get_providers(key: bytes) -> Message:
    request = Message()
    request.type = Message.MessageType.GET_PROVIDERS
    request.key = key
    return request


def _random_key() -> bytes:
    return b"\x12\x20" + os.urandom(32)


async def test_requests_to_one_peer_share_one_stream():
    async with connected_pair() as (a, b):
        pool = a.dht.streams
        opened = pool.opened
        with trio.fail_after(10):
            for _ in range(20):
                await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert pool.opened - opened <= 1, (pool.opened, pool.reused)
        assert pool.reused >= 19
        assert pool.idle_count(b.id) == 1


async def test_a_stream_the_server_ended_while_idle_is_replaced(monkeypatch):
    monkeypatch.setattr(kad, "SERVER_STREAM_SECONDS", 0.3)
    async with connected_pair() as (a, b):
        with trio.fail_after(10):
            await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
            assert a.dht.streams.idle_count(b.id) == 1
            await trio.sleep(0.6)  # the server resets the idle stream
            opened = a.dht.streams.opened
            reply = await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert reply is not None and reply.type == Message.MessageType.GET_PROVIDERS
        assert a.dht.streams.opened == opened + 1
        assert a.dht.stats.rpc_failures == 0


async def test_a_cancelled_request_never_returns_its_stream_to_the_pool():
    async with connected_pair() as (a, b):
        with trio.fail_after(10):
            await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert a.dht.streams.idle_count(b.id) == 1
        with trio.move_on_after(0):  # cancelled before any reply
            await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert a.dht.streams.idle_count(b.id) == 0
        with trio.fail_after(10):  # and the next request still works
            reply = await a.dht._rpc(b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert reply.type == Message.MessageType.GET_PROVIDERS


async def test_idle_streams_are_bounded_and_expire(monkeypatch):
    async with connected_pair() as (a, b):
        async with trio.open_nursery() as nursery:
            for _ in range(3 * kadpool.IDLE_PER_PEER):
                nursery.start_soon(a.dht._rpc, b.id, _get_providers(_random_key()), "GET_PROVIDERS")
        assert a.dht.streams.idle_count(b.id) == kadpool.IDLE_PER_PEER
        monkeypatch.setattr(kadpool, "IDLE_SECONDS", 0.1)
        await trio.sleep(0.2)
        assert a.dht.streams.sweep() == kadpool.IDLE_PER_PEER
        assert a.dht.streams.idle_count() == 0


async def test_a_client_that_keeps_one_stream_is_listed_by_the_server():
    """py-libp2p lists a client only when a stream opens after identify; ours waits for it."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_peer)
        client = await nursery.start(serve_peer)
        await client.host.connect(info_from_p2p_addr(server.host.get_addrs()[0]))
        with trio.fail_after(10):
            # the first request may come before identify: not listed yet
            await client.dht._rpc(server.id, _get_providers(_random_key()), "GET_PROVIDERS")
            while not server.dht.routing_table.peer_in_table(client.id):
                await trio.sleep(0.02)
        assert client.dht.streams.opened == 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("idle", [True, False])
async def test_inbound_streams_end_after_their_lifetime(monkeypatch, idle):
    monkeypatch.setattr(kad, "SERVER_STREAM_SECONDS", 0.2)
    async with connected_pair() as (a, b):
        stream = await a.host.new_stream(b.id, [kad.KAD_PROTOCOL])
        if not idle:
            data = _get_providers(_random_key()).SerializeToString()
            await stream.write(kad.uvarint(len(data)) + data)
        with trio.fail_after(5):
            while True:  # read until the server ends the stream
                try:
                    if not await stream.read(65536):
                        break
                except Exception:
                    break


async def test_a_request_sent_with_the_clients_close_gets_its_answer_and_a_clean_end():
    """ADD_PROVIDER's way (request, then FIN, in one batch of frames): the server answers
    and closes. py-libp2p's handler took the FIN it had already received for an error and
    reset the stream, and the client's Yamux dropped the answer that came with the reset."""
    from libp2p.network.stream.exceptions import StreamEOF, StreamError

    from strangers.node.libp2p.streamio import read_exactly

    async with connected_pair() as (a, b):
        request = _get_providers(_random_key()).SerializeToString()
        for _ in range(5):
            with trio.fail_after(10):
                stream = await a.host.new_stream(b.id, [a.dht.protocol])
                await stream.write(bytes([len(request)]) + request)
                await stream.close_write()  # the FIN leaves with the request: one batch
                await trio.sleep(0.05)  # the server has read both before it answers
                length, shift = 0, 0
                while True:  # the answer's uvarint length
                    byte = (await read_exactly(stream, 1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                answer = Message()
                answer.ParseFromString(await read_exactly(stream, length))
                assert answer.type == Message.MessageType.GET_PROVIDERS
                try:
                    rest = await stream.read(1)
                except StreamEOF:
                    rest = b""
                except StreamError as exc:  # a reset: what the library did
                    raise AssertionError(f"the server reset the stream: {exc!r}") from exc
                assert rest == b""
                assert not stream.muxed_stream.reset_received
