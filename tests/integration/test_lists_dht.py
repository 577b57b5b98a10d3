"""Integration: shared blocklist records on a network of real DHT nodes (127.0.0.1)."""

from __future__ import annotations

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.kad_dht.pb.kademlia_pb2 import Message

from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.discovery.listrecord import ListEntry, decode_record, dht_key, sign_record
from strangers.node.lists import ListSubscriptions, fetch, install_validator, publish
from strangers.node.store import DataDir

from dhtnet import dht_network

CURATOR = Ed25519PrivateKey.generate()
KEY = CURATOR.public_key().public_bytes_raw()
BAD = peer_id_to_text(ed25519_peer_id(bytes([7]) * 32))


async def put(dht, peer, record: bytes) -> bool:
    """A raw PUT_VALUE, as any peer could send it; True when the server kept it."""
    key = dht_key(KEY).encode()
    request = Message()
    request.type = Message.MessageType.PUT_VALUE
    request.key = key
    request.record.key = key
    request.record.value = record
    try:
        await dht._rpc(peer, request, "PUT_VALUE")
    except Exception:  # the server resets the stream of a record it refuses
        pass
    stored = peer_dht(peer).value_store.get(key)
    return stored is not None and stored.value == record


PEERS: dict = {}


def peer_dht(peer_id):
    return PEERS[peer_id]


async def test_newer_versions_replace_older_ones_and_stale_or_forged_ones_are_refused(tmp_path):
    async with dht_network(6) as peers:
        for peer in peers:
            install_validator(peer.dht)
            PEERS[peer.id] = peer.dht
        publisher, reader = peers[1], peers[4]
        v1 = sign_record(CURATOR, 1, "school", [ListEntry(BAD, "spam")])
        v2 = sign_record(CURATOR, 2, "school", [])
        with trio.fail_after(30):
            assert await publish(publisher.dht, v1) >= 3
            assert decode_record(await fetch(reader.dht, KEY)).version == 1

            subscriptions = ListSubscriptions((KEY,), DataDir(tmp_path))
            assert await subscriptions.refresh(reader.dht) == 1
            assert subscriptions.refuses(BAD) is not None

            assert await publish(publisher.dht, v2) >= 3
            assert await subscriptions.refresh(reader.dht) == 1
            assert subscriptions.refuses(BAD) is None  # removed in version 2

            # servers keep version 2: a replayed version 1 and a forgery are refused
            server = next(peer for peer in peers if peer not in (publisher, reader)
                          and peer.dht.value_store.get(dht_key(KEY).encode()) is not None
                          and peer.dht.value_store.get(dht_key(KEY).encode()).value == v2)
            assert not await put(reader.dht, server.id, v1)
            forged = sign_record(Ed25519PrivateKey.generate(), 3, "school", [ListEntry(BAD)])
            assert not await put(reader.dht, server.id, forged)
            assert decode_record(server.dht.value_store.get(dht_key(KEY).encode()).value).version == 2
            assert await subscriptions.refresh(reader.dht) == 0

        # the next run starts from the cache, before any refresh
        again = ListSubscriptions((KEY,), DataDir(tmp_path))
        assert again.trusted.state(KEY).version == 2
        # a list nobody chose has no effect
        assert ListSubscriptions((), DataDir(tmp_path)).refuses(BAD) is None
