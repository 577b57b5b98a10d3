"""Hostile GossipSub publications (the libp2p pubsub spec's RPC, written as raw protobuf bytes).

A ``Message`` whose ``key`` is not a serialized ``PublicKey`` and whose ``from``
is a sha256 (not identity) peer id made py-libp2p 0.8.1's strict-signing check
raise ``DecodeError`` in a task of the pubsub service, which stopped the service
(the lobby of a node). :class:`~strangers.node.libp2p.pubsub_guard.GuardedPubsub`
drops such a message and keeps serving.
"""

from __future__ import annotations

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from hostile.peer import open_hostile_peer
from strangers.node.identity import fresh_identity
from strangers.node.libp2p import gossip
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host
from strangers.node.libp2p.pubsub_guard import GuardedPubsub

TOPIC = "strangers/lobby/test"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def _field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def hostile_rpc(topic: str) -> bytes:
    """RPC{subscriptions: [{subscribe, topicid}], publish: [Message{from, data, seqno, topicIDs,
    signature, key}]}, the key two bytes that are no PublicKey; length-prefixed as on the wire."""
    sha256_peer_id = b"\x12\x20" + b"a" * 32
    message = (_field(1, sha256_peer_id) + _field(2, b"hello") + _field(3, b"\x00" * 7 + b"\x01")
               + _field(4, topic.encode()) + _field(5, b"not a signature") + _field(6, b"\x01\x02"))
    subscription = b"\x08\x01" + _field(2, topic.encode())
    rpc = _field(1, subscription) + _field(2, message)
    return _varint(len(rpc)) + rpc


async def _attack(build) -> bool:
    """Whether the victim's pubsub service (``build(host, router)``) still runs after the RPC."""
    quiet_library_logs()
    host = build_host(fresh_identity())
    async with running_host(host, [Multiaddr(LOOPBACK)]):
        router = gossip.build_gossipsub()
        pubsub = build(host, router)
        async with background_trio_service(pubsub), background_trio_service(router), \
                open_hostile_peer() as mallory:
            await pubsub.wait_until_ready()
            subscription = await pubsub.subscribe(TOPIC)
            await mallory.host.connect(info_from_p2p_addr(host.get_addrs()[0]))
            stream = await mallory.host.new_stream(host.get_id(), [TProtocol(str(gossip.PROTOCOLS[0]))])
            await stream.write(hostile_rpc(TOPIC))
            with trio.move_on_after(3):  # the crash, when there is one, comes within milliseconds
                while pubsub.manager.is_running:
                    await trio.sleep(0.05)
            with trio.move_on_after(0.2):
                await subscription.get()
                raise AssertionError("a message with a bad key was delivered")
            return pubsub.manager.is_running


def _guarded(host, router):
    pubsub = GuardedPubsub(host, router, strict_signing=True)
    for protocol in router.get_protocols():
        host.set_stream_handler(protocol, gossip.guarded_stream_handler(pubsub))
    return pubsub


async def test_a_message_with_a_key_that_is_no_public_key_is_dropped_and_pubsub_serves_on():
    assert await _attack(_guarded)


async def test_the_lobby_pubsub_survives_it():
    assert await _attack(gossip.build_pubsub)
