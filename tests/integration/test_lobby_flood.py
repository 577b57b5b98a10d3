"""A lobby member floods: it is throttled, then dropped, and the others still talk.

The flooder is written from docs/protocol.md §10 and the GossipSub RPC
format (py-libp2p's protobuf classes, not its router, whose send queues
would throttle it): valid signed messages on the lobby topic, ~1000 a
second, on a meshsub stream to every member.
"""

from __future__ import annotations

import json
import os
import time

import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as new_noise_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.utils import encode_varint_prefixed
from lobbynet import lobby_network, meshed, send_at
from multiaddr import Multiaddr

from strangers.discovery import lobby as rules
from strangers.discovery.lobby import lobby_topic

FLOOD = 1500


def payload(text: str) -> bytes:
    """§10: UTF-8 JSON {"v": 1, "text": ...}."""
    return json.dumps({"v": 1, "text": text}).encode()


async def flood(addrs: list[str], topic: str, stop: trio.Event, counts: dict) -> None:
    """Open a meshsub stream to every member and pour signed messages into it (§10, GossipSub RPC)."""
    key_pair = create_new_key_pair(os.urandom(32))
    noise = NoiseTransport(key_pair, noise_privkey=new_noise_key_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={NOISE_PROTOCOL_ID: noise},
                    muxer_preference="YAMUX",
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    connector = getattr(host.get_network(), "auto_connector", None)
    if connector is not None:  # dial only the members given
        connector.maybe_connect = _never
    me = host.get_id().to_bytes()
    public = key_pair.public_key.serialize()

    def message(k: int) -> rpc_pb2.Message:
        msg = rpc_pb2.Message(data=payload(f"spam {k}"), topicIDs=[topic], from_id=me,
                              seqno=k.to_bytes(8, "big"))
        msg.signature = key_pair.private_key.sign(b"libp2p-pubsub:" + msg.SerializeToString())
        msg.key = public
        return msg

    def frame(rpc: rpc_pb2.RPC) -> bytes:
        return encode_varint_prefixed(rpc.SerializeToString())

    async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        streams = []
        for addr in addrs:
            info = info_from_p2p_addr(Multiaddr(addr))
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [PROTOCOL_ID_V11])
            hello = rpc_pb2.RPC(subscriptions=[rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic)])
            await stream.write(frame(hello))
            streams.append(stream)
        k = 0
        while k < FLOOD and not stop.is_set():
            batch = rpc_pb2.RPC(publish=[message(k + i) for i in range(10)])
            k += 10
            for stream in streams:
                try:
                    await stream.write(frame(batch))
                except Exception:  # reset: this member dropped us
                    pass
            counts["sent"] = k
            await trio.sleep(0.01)  # ~1000 msg/s
        counts["connected_after"] = len(host.get_connected_peers())
        await stop.wait()


async def _never(*_args, **_kwargs) -> None:
    return None


async def test_a_flooding_member_is_throttled_and_dropped_and_the_others_still_deliver():
    topic = lobby_topic("chess")
    async with lobby_network("chess", "chess", "chess") as watches:
        await meshed(watches, topic)
        stop = trio.Event()
        counts: dict = {}
        async with trio.open_nursery() as nursery:
            addrs = [w.node.addrs[0] for w in watches]
            nursery.start_soon(flood, addrs, topic, stop, counts)
            with trio.fail_after(30):
                while counts.get("sent", 0) < 200:
                    await trio.sleep(0.05)
            started = time.perf_counter()
            sent: dict[int, list[str]] = {}

            async def member(index: int) -> None:
                sent[index] = await send_at(watches[index].node, f"w{index}", 20, 10.0)

            async with trio.open_nursery() as members:
                for index in range(len(watches)):
                    members.start_soon(member, index)
            expected = 2 * 20
            for watch in watches:
                try:
                    await watch.until(lambda w=watch: sum(
                        not e.text.startswith("spam") for _t, e in w.received) >= expected,
                        timeout=30)
                except trio.TooSlowError:
                    pass  # counted below
            elapsed = time.perf_counter() - started
            stop.set()
        for index, watch in enumerate(watches):
            honest = [e.text for _t, e in watch.received if not e.text.startswith("spam")]
            spam = [e.text for _t, e in watch.received if e.text.startswith("spam")]
            others = {t for i in sent if i != index for t in sent[i]}
            assert len(set(honest) & others) >= 0.99 * expected, (index, len(honest))
            # throttled: at most a burst (with relay slack) plus the rate, over the flood
            assert len(spam) <= rules.SEND_BURST * rules.RELAY_SLACK + rules.SEND_RATE * (
                elapsed + 30), len(spam)
            assert len(spam) < counts["sent"] / 2, (len(spam), counts["sent"])
        print("flood:", counts, "per member (accepted, rejected, dropped, spam shown):",
              [(w.node.lobby.rules.accepted, w.node.lobby.rules.rejected, w.node.lobby.dropped_peers,
                sum(e.text.startswith("spam") for _t, e in w.received)) for w in watches])
        # dropped: every member it reached directly cut it off
        assert sum(w.node.lobby.dropped_peers for w in watches) >= 1
        assert counts.get("connected_after", 0) < len(watches)
