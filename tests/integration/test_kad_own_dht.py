"""Integration: our own DHT id, servers and clients, admission, load shedding, big replies.

Real py-libp2p hosts on loopback (docs/protocol.md §4.1, §4.7, §4.8).
"""

from __future__ import annotations

import functools
import hashlib
import os

import trio
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

import strangers.node.libp2p.kad as kad
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.libp2p.streamio import read_uvarint_frame, uvarint

from dhtnet import serve_peer


def _key() -> bytes:
    return b"\x12\x20" + os.urandom(32)


async def _start(nursery, mode=None):
    return await nursery.start(functools.partial(serve_peer, mode=mode))


async def _connect(a, b) -> None:
    await a.host.connect(info_from_p2p_addr(b.host.get_addrs()[0]))


async def _identified(dht, peer: ID) -> None:
    while dht.advertises(peer) is None:
        await trio.sleep(0.01)


async def test_a_client_is_answered_but_never_listed_and_a_server_is():
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        server = await _start(nursery)
        client = await _start(nursery, DHTMode.CLIENT)
        other = await _start(nursery)
        with trio.fail_after(20):
            await _connect(client, server)
            await _connect(other, server)
            # both ask the server something: both are answered
            for asker in (client, other):
                result = await asker.dht.lookup(_key(), providers=True)
                assert server.id in result.closest
            await _identified(server.dht, client.id)
            await _identified(server.dht, other.id)
            while not server.dht.routing_table.peer_in_table(other.id):
                await trio.sleep(0.01)
        assert server.dht.advertises(client.id) is False
        assert not server.dht.routing_table.peer_in_table(client.id)
        # the client does not serve: a request to it is refused
        assert client.dht.advertises(server.id) is True
        assert kad.KAD_PROTOCOL not in client.host.get_mux().handlers
        nursery.cancel_scope.cancel()


async def test_switching_to_server_mode_is_pushed_and_the_peer_lists_us():
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        server = await _start(nursery)
        late = await _start(nursery, DHTMode.CLIENT)
        with trio.fail_after(20):
            await _connect(late, server)
            await late.dht.lookup(_key())  # the server now knows us, as a client
            await _identified(server.dht, late.id)
            assert server.dht.advertises(late.id) is False
            await late.dht.follow_reachability(True)  # AutoNAT: reachable
            assert kad.KAD_PROTOCOL in late.host.get_mux().handlers
            while server.dht.advertises(late.id) is not True:  # identify push
                await trio.sleep(0.01)
            await server.dht.lookup(_key())  # it asks us, we answer: listed
            while not server.dht.routing_table.peer_in_table(late.id):
                await trio.sleep(0.01)
            await late.dht.follow_reachability(False)
            assert kad.KAD_PROTOCOL not in late.host.get_mux().handlers
            assert late.dht.routing_table.size() >= 1  # a client keeps its table
            while server.dht.advertises(late.id) is not False:
                await trio.sleep(0.01)
            # the maintenance round takes the former server out of the table
            assert server.dht.routing_table.peer_in_table(late.id)
            assert server.dht.drop_former_servers() == [late.id]
            assert not server.dht.routing_table.peer_in_table(late.id)
        nursery.cancel_scope.cancel()


async def test_a_server_sheds_a_flooding_peer_and_still_answers_the_others(monkeypatch):
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        server = await _start(nursery)
        flooder = await _start(nursery)
        polite = await _start(nursery)
        server.dht.limits = kad.ServerLimits(trio.current_time(), peer_rate=1.0, peer_burst=10.0)
        with trio.fail_after(30):
            await _connect(flooder, server)
            await _connect(polite, server)
            request = Message()
            request.type = Message.MessageType.GET_PROVIDERS
            answered = failed = 0
            for _ in range(30):
                request.key = _key()
                try:
                    await flooder.dht._rpc(server.id, request, "GET_PROVIDERS")
                    answered += 1
                except Exception:
                    failed += 1
            request.key = _key()
            assert await polite.dht._rpc(server.id, request, "GET_PROVIDERS") is not None
        assert 10 <= answered <= 12 and failed >= 18, (answered, failed)
        assert server.dht.limits.stats.shed_peer_rate >= 18
        nursery.cancel_scope.cancel()


async def test_a_reply_over_256_kib_is_read_and_its_dialable_addresses_kept():
    """A popular key's answer from a foreign server: 20 providers with 61 addresses
    each, the TCP one last, big signed records, and 300 closer peers in no order
    (docs/protocol.md §4.1)."""
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        asker = await _start(nursery)
        foreign = await _start(nursery)
        key = _key()
        providers = [ID(b"\x00\x24\x08\x01\x12\x20" + hashlib.sha256(bytes([n])).digest())
                     for n in range(20)]
        closer = [ID(b"\x00\x24\x08\x01\x12\x20" + hashlib.sha256(b"c" + n.to_bytes(2, "big")).digest())
                  for n in range(300)]

        async def big_answer(stream) -> None:
            request = Message()
            request.ParseFromString(await read_uvarint_frame(stream, 1 << 20))
            reply = Message()
            reply.type = Message.MessageType.GET_PROVIDERS
            reply.key = request.key
            for index, peer in enumerate(providers):
                entry = reply.providerPeers.add()
                entry.id = peer.to_bytes()
                entry.addrs.extend(Multiaddr(f"/ip6/fd00::{index}:{n}/udp/{4000 + n}/quic-v1").to_bytes()
                                   for n in range(60))
                entry.addrs.append(Multiaddr(f"/ip4/127.0.0.1/tcp/{5000 + index}").to_bytes())
                entry.signedRecord = os.urandom(12_000)  # kubo sends one; we do not read it
            for index, peer in enumerate(closer):
                entry = reply.closerPeers.add()
                entry.id = peer.to_bytes()
                entry.addrs.append(Multiaddr(f"/ip4/127.0.0.2/tcp/{6000 + index}").to_bytes())
            data = reply.SerializeToString()
            assert len(data) > 256 * 1024
            await stream.write(uvarint(len(data)) + data)
            await stream.close()

        foreign.host.set_stream_handler(TProtocol("/test/bigkad/1.0.0"), big_answer)
        request = Message()
        request.type = Message.MessageType.GET_PROVIDERS
        request.key = key
        pool = kad.StreamPool(asker.host, "/test/bigkad/1.0.0", spawn=nursery.start_soon)
        with trio.fail_after(20):
            await _connect(asker, foreign)
            raw = await pool.request(foreign.id, request.SerializeToString(), kad.MAX_KAD_MESSAGE)
        reply = Message()
        reply.ParseFromString(raw)
        found = asker.dht._learn_peers(reply.providerPeers, limit=kad.MAX_PROVIDERS_PER_REPLY)
        assert {info.peer_id for info in found} == set(providers)
        assert all([str(a) for a in info.addrs] == [f"/ip4/127.0.0.1/tcp/{5000 + providers.index(info.peer_id)}"]
                   for info in found)  # the TCP address, not crowded out by 60 QUIC ones
        near = asker.dht._learn_peers(reply.closerPeers, key=key)
        expected = sorted(closer, key=lambda p: kad.kad_distance(p.to_bytes(), key))[:kad.MAX_CLOSER_PEERS]
        assert [info.peer_id for info in near] == expected  # the closest of all 300, not the first 40
        nursery.cancel_scope.cancel()


async def test_when_every_bootstrap_peer_died_walks_go_on_through_the_table_and_drop_the_dead():
    from dhtnet import dht_network

    async with dht_network(6) as peers:
        seed, announcer, searcher = peers[0], peers[1], peers[2]
        for peer in peers[1:]:
            assert peer.dht.routing_table.peer_in_table(seed.id) or peer.dht.routing_table.size() >= 2
        await seed.stop()  # the only bootstrap peer of everyone
        key = _key()
        with trio.fail_after(30):
            assert await announcer.dht.provide(key) >= 3
            started = trio.current_time()
            found = await searcher.dht.find_providers(key)
            took = trio.current_time() - started
        assert announcer.id in {info.peer_id for info in found}
        # the dead seed failed at once (its connection is gone): no 2 s timeout waited out
        assert took < 2.0, took
        # the announcer's walk to the key asked every peer it knew, the seed too:
        # the seed leaves its table (at once, or after one look DEAD_RECHECK later)
        with trio.fail_after(kad.DEAD_RECHECK + 5):
            while announcer.dht.routing_table.peer_in_table(seed.id):
                await trio.sleep(0.05)


async def test_a_busy_server_that_times_out_stays_listed_until_it_times_out_three_times_in_a_row():
    """A timeout on a live connection is a busy server, not a dead one: it stays in
    the table (its next deadline doubled) until TIMEOUT_STRIKES timeouts in a row;
    an answer in between starts the count again. A peer whose connection is
    gone leaves at its first failure (test above)."""
    from dhtnet import connected_pair

    async with connected_pair() as (asker, server):
        with trio.fail_after(10):
            while not await asker.dht.add_peer(server.id):  # once identify has told
                await trio.sleep(0.05)
        table = asker.dht.routing_table
        first = asker.dht.rpc_timeout_for(server.id)
        for strike in range(1, kad.TIMEOUT_STRIKES):
            asker.dht._failed(server.id, trio.TooSlowError())
            assert table.peer_in_table(server.id), strike
            assert asker.dht.rpc_timeout_for(server.id) == min(first * 2**strike,
                                                               kad.RPC_CONNECTED.ceiling)
        asker.dht._answered(server.id)  # it answered: the count starts again
        assert asker.dht.rpc_timeout_for(server.id) == first
        for _ in range(kad.TIMEOUT_STRIKES - 1):
            asker.dht._failed(server.id, trio.TooSlowError())
        assert table.peer_in_table(server.id)
        asker.dht._failed(server.id, trio.TooSlowError())
        assert not table.peer_in_table(server.id)
