"""node/libp2p/gossip.py: which peers a lobby message goes to, and copies dropped early.

The lobby's cost is the number of copies of each message (every copy is a
Noise frame, a Yamux frame, a protobuf parse and, in the library, a task):
our own messages are flood-published only until our mesh of the topic is
formed, and a copy already seen is dropped in the read loop.
"""

from __future__ import annotations

from types import SimpleNamespace

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub

from strangers.node.libp2p import gossip

from canary import changed, source_of

TOPIC = "strangers/v1/lobby/general/chess"


def _peer() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


def _router(me: ID, in_topic: list[ID], mesh: list[ID]):
    router = gossip.build_gossipsub()
    router.pubsub = SimpleNamespace(my_id=me, peer_topics={TOPIC: set(in_topic)},
                                    peers=dict.fromkeys(in_topic))
    router.mesh = {TOPIC: set(mesh)}
    for peer in in_topic:
        router.peer_protocol[peer] = PROTOCOL_ID_V11
    return router


def test_our_message_goes_to_every_member_until_our_mesh_forms():
    me, members = _peer(), [_peer() for _ in range(5)]
    router = _router(me, members, mesh=members[:1])  # below D_low: not formed
    assert set(router._get_peers_to_send([TOPIC], me, me)) == set(members)


def test_once_the_mesh_is_formed_our_message_goes_to_the_mesh_only():
    me, members = _peer(), [_peer() for _ in range(5)]
    router = _router(me, members, mesh=members[:gossip.DEGREE])
    assert set(router._get_peers_to_send([TOPIC], me, me)) == set(members[:gossip.DEGREE])


def test_a_forwarded_message_goes_to_the_mesh_minus_its_forwarder_and_origin():
    me, members = _peer(), [_peer() for _ in range(5)]
    router = _router(me, members, mesh=members[:3])
    peers = set(router._get_peers_to_send([TOPIC], members[0], members[1]))
    assert peers == {members[2]}


def _message(origin: ID, seqno: int) -> rpc_pb2.Message:
    return rpc_pb2.Message(from_id=origin.to_bytes(), seqno=seqno.to_bytes(8, "big"),
                           data=b'{"v":1,"text":"hi"}', topicIDs=[TOPIC])


def test_a_copy_already_seen_is_dropped_before_any_task():
    pubsub = object.__new__(gossip.LobbyPubsub)  # only the parts the read loop's check uses
    origin = _peer()
    seen: set[bytes] = set()
    pubsub._msg_id_constructor = lambda msg: bytes(msg.from_id) + bytes(msg.seqno)
    pubsub.seen_messages = SimpleNamespace(has=lambda ident: ident in seen)
    pubsub.subscribed_topics_receive = {TOPIC: None}
    first = _message(origin, 1)
    assert pubsub._is_subscribed_to_msg(first)
    seen.add(pubsub._msg_id_constructor(first))
    assert not pubsub._is_subscribed_to_msg(first)
    assert pubsub.duplicates_dropped == 1
    elsewhere = _message(origin, 2)
    elsewhere.topicIDs[:] = ["another topic"]
    assert not pubsub._is_subscribed_to_msg(elsewhere)
    assert pubsub.duplicates_dropped == 1  # another topic is "not subscribed", not a duplicate


def test_the_read_loop_still_asks_is_subscribed_before_it_schedules_a_task():
    source = source_of(Pubsub.continuously_read_stream)
    check = source.index("self._is_subscribed_to_msg(msg)")
    task = source.index("self.manager.run_task(self.push_msg")
    assert check < task, changed("LobbyPubsub._is_subscribed_to_msg",
                                 "the read loop no longer checks the topic before its task")
