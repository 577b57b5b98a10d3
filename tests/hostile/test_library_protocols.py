"""Junk on every libp2p protocol a strangers node serves through py-libp2p (issue 9 audit).

The audit after 0566912 (one inbound stream's exception stopped the whole host) went through
py-libp2p 0.8.1's connection handling, identify and identify push, the circuit relay (HOP,
STOP), AutoNAT, DCUtR and Kademlia: each handles its stream inside the stream's own task, so
``guard_inbound_streams`` ends a failing stream alone. This test holds the node to it from the
outside: for each protocol the victim accepts, a hostile peer writes bytes shaped by the libp2p
specs (a uvarint length prefix, then a protobuf that lies: a length past the end, a wrong wire
type, a 4 GiB length) and the victim must still match afterwards. (GossipSub publications run
outside the stream: tests/hostile/test_pubsub_crash.py.)
"""

from __future__ import annotations

import trio
from libp2p.custom_types import TProtocol

from hostile.peer import open_hostile_peer
from strangers.node import NodeConfig, open_node
from strangers.node.libp2p.host import quiet_library_logs

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
PROTOCOLS = (
    "/ipfs/id/push/1.0.0",  # identify push
    "/ipfs/id/1.0.0",
    "/libp2p/autonat/1.0.0",
    "/libp2p/dcutr",
    "/libp2p/circuit/relay/0.2.0/hop",
    "/libp2p/circuit/relay/0.2.0/stop",
    "/strangers/kad/1.0.0",
    "/ipfs/ping/1.0.0",
)


def _uvarint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


JUNK = (
    _uvarint(6) + b"\x0a\x7f" + b"abcd",  # field 1, length 127 past the end of a 6-byte message
    _uvarint(4) + b"\x0f\xff\xff\xff",  # wire type 7 (there is none)
    _uvarint(1 << 32) + b"\x08\x01",  # a 4 GiB message
    _uvarint(3) + b"\x08\x80\x80",  # a varint cut in the middle
    b"\xff" * 64,  # a length prefix that never ends
)


async def _still_matches(victim) -> None:
    async with open_hostile_peer() as honest:
        victim_id = await honest.connect(victim.addrs[0])
        await honest.match(victim_id, ["cinema"])


async def _attack_all(victim) -> list[str]:
    """Junk on every protocol of :data:`PROTOCOLS` the victim accepts; the ones it accepted."""
    accepted: list[str] = []
    async with open_hostile_peer() as mallory:
        victim_id = await mallory.connect(victim.addrs[0])
        for protocol in PROTOCOLS:
            for junk in JUNK:
                try:
                    with trio.fail_after(5):
                        stream = await mallory.host.new_stream(victim_id, [TProtocol(protocol)])
                except Exception:  # not served by this node (refused in negotiation)
                    break
                accepted.append(protocol)
                with trio.move_on_after(0.5):  # the victim answers, resets or waits: all fine
                    try:
                        await stream.write(junk)
                        while await stream.read(1024):
                            pass
                    except Exception:  # reset by the victim: that is the point
                        pass
                try:
                    await stream.reset()
                except Exception:
                    pass
    return sorted(set(accepted))


async def test_junk_on_each_library_protocol_of_a_chat_node_ends_only_its_stream():
    quiet_library_logs()
    config = NodeConfig(listen=LOOPBACK, mdns=False, bootstrap=(), interests=("cinema",))
    async with open_node(config) as victim:
        accepted = await _attack_all(victim)
        print("protocols attacked:", accepted)
        assert {"/ipfs/id/push/1.0.0", "/libp2p/autonat/1.0.0", "/libp2p/dcutr",
                "/libp2p/circuit/relay/0.2.0/stop"} <= set(accepted), accepted
        await _still_matches(victim)


async def test_junk_on_each_library_protocol_of_a_serve_node_ends_only_its_stream():
    quiet_library_logs()
    config = NodeConfig(listen=LOOPBACK, mdns=False, chat=False, bootstrap=())
    async with open_node(config) as victim:
        accepted = await _attack_all(victim)
        print("protocols attacked:", accepted)
        assert {"/strangers/kad/1.0.0", "/libp2p/circuit/relay/0.2.0/hop"} <= set(accepted), accepted
        async with open_hostile_peer() as honest:  # the host still takes connections and streams
            victim_id = await honest.connect(victim.addrs[0])
            with trio.fail_after(10):
                stream = await honest.host.new_stream(victim_id, [TProtocol("/strangers/kad/1.0.0")])
            await stream.reset()
