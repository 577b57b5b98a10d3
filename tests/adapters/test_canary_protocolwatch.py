"""``strangers.node.libp2p.protocolwatch``: a task hears when identify tells a peer's protocols.

The canaries run real hosts on loopback: identify and identify push must still
write protocols through the peerstore method we wrap, or mDNS admission and
AutoNAT fall back to their once-a-second looks.
"""

from __future__ import annotations

import trio
from libp2p.identity.identify_push.identify_push import push_identify_to_peers
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.protocolwatch import protocol_changes

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
NEW_PROTOCOL = "/strangers/test-served-later/1.0.0"


async def test_identify_wakes_a_subscriber_with_the_peer() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    changes = protocol_changes(client).subscribe()
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(PeerInfo(server.get_id(), server.get_addrs()))
        with trio.fail_after(10):  # a hang guard: identify is a loopback round trip
            peers: set = set()
            while server.get_id() not in peers:
                peers, _overflow = await changes.wait(10)
        assert protocol_changes(client) is protocol_changes(client)  # one per host


async def test_an_identify_push_wakes_a_subscriber() -> None:
    """A peer that starts serving a protocol later (our DHT once AutoNAT says reachable)."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(PeerInfo(server.get_id(), server.get_addrs()))
        store = client.get_peerstore()
        with trio.fail_after(10):
            while not store.get_protocols(server.get_id()):
                await trio.sleep(0.01)
        changes = protocol_changes(client).subscribe()

        async def handler(stream) -> None:
            await stream.close()

        server.set_stream_handler(NEW_PROTOCOL, handler)
        await push_identify_to_peers(server)
        with trio.fail_after(10):
            peers, _overflow = await changes.wait(10)
            while server.get_id() not in peers:
                peers, _overflow = await changes.wait(10)
        assert NEW_PROTOCOL in store.get_protocols(server.get_id())
