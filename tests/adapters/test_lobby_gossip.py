"""node/libp2p/gossip.py: which peers a lobby message goes to, and copies dropped early.

The lobby's cost is the number of copies of each message (every copy is a
Noise frame, a Yamux frame, a protobuf parse and, in the library, a task):
our own messages are flood-published only until our mesh of the topic is
formed, and a copy already seen is dropped in the read loop.
"""

from __future__ import annotations

from types import SimpleNamespace

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
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


# -- fewer bytes and fewer copies on the wire ---------------------------------------------

class _Stream:
    """A pubsub stream to ``peer`` that keeps what is written to it."""

    def __init__(self, peer: ID) -> None:
        self.muxed_conn = SimpleNamespace(peer_id=peer)
        self.written: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    def rpcs(self) -> list[rpc_pb2.RPC]:
        out = []
        for raw in self.written:
            length, used = _uvarint(raw)
            rpc = rpc_pb2.RPC()
            rpc.ParseFromString(raw[used:used + length])
            out.append(rpc)
        return out


def _uvarint(raw: bytes) -> tuple[int, int]:
    value = shift = used = 0
    while True:
        byte = raw[used]
        used += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, used


def _reader():
    pubsub = object.__new__(gossip.LobbyPubsub)
    seen: set[bytes] = set()
    pubsub._msg_id_constructor = lambda msg: bytes(msg.from_id) + bytes(msg.seqno)
    pubsub.seen_messages = SimpleNamespace(has=lambda ident: ident in seen)
    pubsub.subscribed_topics_receive = {TOPIC: None}
    return pubsub


async def test_rpcs_go_out_without_the_signed_peer_record():
    pubsub, stream = _reader(), _Stream(_peer())
    rpc = rpc_pb2.RPC(publish=[_message(_peer(), 1)], senderRecord=b"\x0a" * 160)
    assert await pubsub.write_msg(stream, rpc)
    [sent] = stream.rpcs()
    assert not sent.HasField("senderRecord")
    assert list(sent.publish) == list(rpc.publish)


def test_the_library_takes_an_rpc_without_a_signed_peer_record():
    from libp2p.pubsub.utils import maybe_consume_signed_record

    assert maybe_consume_signed_record(rpc_pb2.RPC(publish=[_message(_peer(), 1)]),
                                       host=None, peer_id=_peer()), changed(
        "LobbyPubsub.write_msg", "an RPC without senderRecord is refused")


async def test_our_messages_go_out_without_the_key_our_peer_id_carries(monkeypatch):
    from libp2p.pubsub.pubsub import PUBSUB_SIGNING_PREFIX
    from libp2p.pubsub.validators import signature_validator

    from strangers.node.libp2p.pubsub_guard import GuardedPubsub

    keys = create_new_key_pair()
    me = ID.from_pubkey(keys.public_key)
    pushed = []

    async def push(self, forwarder, msg):
        pushed.append(msg)

    monkeypatch.setattr(GuardedPubsub, "push_msg", push)
    pubsub = object.__new__(gossip.LobbyPubsub)
    pubsub.host = SimpleNamespace(get_id=lambda: me)
    msg = _message(me, 1)
    msg.signature = keys.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = keys.public_key.serialize()
    relayed = _message(_peer(), 2)
    relayed.key = b"kept"
    await pubsub.push_msg(me, msg)
    await pubsub.push_msg(_peer(), relayed)
    assert pushed[0].key == b"" and pushed[0].signature
    assert pushed[1].key == b"kept"  # another's message is forwarded as it came
    # every receiver (the library here) takes the key from an Ed25519 peer id
    assert signature_validator(pushed[0]), changed(
        "LobbyPubsub.push_msg", "a message without key from an Ed25519 peer id is refused")


async def test_a_message_is_not_sent_back_to_a_peer_that_sent_it_to_us():
    pubsub, neighbour = _reader(), _peer()
    pubsub._reader_peers = {trio.lowlevel.current_task(): neighbour}  # reading its RPC
    theirs, other = _message(_peer(), 1), _message(_peer(), 2)
    assert pubsub._is_subscribed_to_msg(theirs)
    stream = _Stream(neighbour)
    assert await pubsub.write_msg(stream, rpc_pb2.RPC(publish=[theirs]))
    assert stream.written == []  # nothing left to send: no write at all
    both = rpc_pb2.RPC(publish=[theirs, other])
    assert await pubsub.write_msg(stream, both)
    [sent] = stream.rpcs()
    assert [m.seqno for m in sent.publish] == [other.seqno]
    assert len(both.publish) == 2  # the queued RPC itself is left alone (others may get it)
    assert pubsub.copies_skipped == 2
    elsewhere = _Stream(_peer())  # another peer still gets it
    assert await pubsub.write_msg(elsewhere, rpc_pb2.RPC(publish=[theirs]))
    assert [m.seqno for r in elsewhere.rpcs() for m in r.publish] == [theirs.seqno]


def test_the_peers_we_remember_messages_of_are_bounded():
    pubsub, neighbour = _reader(), _peer()

    async def read_many():
        pubsub._reader_peers = {trio.lowlevel.current_task(): neighbour}
        for seqno in range(gossip.HELD_IDS_PER_PEER + 10):
            pubsub._is_subscribed_to_msg(_message(neighbour, seqno))

    trio.run(read_many)
    assert len(pubsub._holders[neighbour]) == gossip.HELD_IDS_PER_PEER


def test_the_read_loop_is_entered_through_continuously_read_stream_and_writes_through_write_msg():
    handler = source_of(Pubsub.stream_handler)
    sender = source_of(Pubsub.handle_sending_messages)
    assert "self.continuously_read_stream(stream)" in handler, changed(
        "LobbyPubsub.continuously_read_stream", "the stream handler reads another way")
    assert "self.write_msg(stream, rpc)" in sender, changed(
        "LobbyPubsub.write_msg", "the sending loop writes another way")


async def test_the_rpcs_waiting_for_a_peer_go_out_in_one_write_in_order():
    from libp2p.pubsub.rpc_queue import RpcQueue

    pubsub, neighbour = _reader(), _peer()
    pubsub._reader_peers = {trio.lowlevel.current_task(): neighbour}
    held = _message(_peer(), 9)
    assert pubsub._is_subscribed_to_msg(held)  # the neighbour sent us this one
    queue = RpcQueue()
    waiting = [_message(_peer(), seqno) for seqno in range(3)]
    for msg in waiting[:2]:
        queue.push(rpc_pb2.RPC(publish=[msg]))
    queue.push(rpc_pb2.RPC(publish=[held]))
    queue.push(rpc_pb2.RPC(publish=[waiting[2]], senderRecord=b"\x0a" * 100))
    queue.close()
    stream = _Stream(neighbour)
    await pubsub.handle_sending_messages(neighbour, stream, queue)
    assert len(stream.written) == 1
    sent = _split(stream.written[0])
    assert [m.seqno for r in sent for m in r.publish] == [m.seqno for m in waiting]
    assert not any(r.HasField("senderRecord") for r in sent)
    assert pubsub.rpcs_batched == 4 and pubsub.copies_skipped == 1


async def test_a_batch_is_bounded_and_the_rest_follows_in_the_next_write(monkeypatch):
    from libp2p.pubsub.rpc_queue import RpcQueue

    monkeypatch.setattr(gossip, "BATCH_BYTES", 300)
    pubsub, queue, stream = _reader(), RpcQueue(), _Stream(_peer())
    for seqno in range(6):  # ~110 bytes each: 3 fill a write past 300
        queue.push(rpc_pb2.RPC(publish=[_message(_peer(), seqno)]))
    queue.close()
    await pubsub.handle_sending_messages(stream.muxed_conn.peer_id, stream, queue)
    assert [len(_split(w)) for w in stream.written] == [3, 3]


def _split(raw: bytes) -> list[rpc_pb2.RPC]:
    out = []
    while raw:
        length, used = _uvarint(raw)
        rpc = rpc_pb2.RPC()
        rpc.ParseFromString(raw[used:used + length])
        out.append(rpc)
        raw = raw[used + length:]
    return out


def test_the_outbound_queue_still_has_the_pop_that_does_not_wait():
    from libp2p.pubsub.rpc_queue import RpcQueue

    queue = RpcQueue()
    assert queue._queue.pop() is None, changed(
        "LobbyPubsub.handle_sending_messages", "RpcQueue._queue.pop() no longer returns None when empty")
    queue.push(rpc_pb2.RPC(publish=[_message(_peer(), 1)]))
    assert queue._queue.pop() is not None


def test_a_topic_peer_in_prune_back_off_still_gets_ihave_gossip():
    me, members = _peer(), [_peer() for _ in range(5)]
    router = _router(me, members, mesh=members[:3])
    pruned = members[4]
    router._add_back_off(pruned, TOPIC, False)  # we pruned it: no GRAFT for 5 s, gossip still
    router.mcache.put(_message(members[0], 1))
    gossip_to = router.gossip_heartbeat()
    assert TOPIC in gossip_to[pruned]
    assert TOPIC in gossip_to[members[3]]
    assert not any(TOPIC in gossip_to.get(peer, {}) for peer in members[:3])  # the mesh has them


def test_the_library_still_leaves_peers_in_back_off_out_of_its_gossip():
    me, members = _peer(), [_peer() for _ in range(5)]
    router = _router(me, members, mesh=members[:3])
    router._add_back_off(members[4], TOPIC, False)
    router.mcache.put(_message(members[0], 1))
    library = GossipSub.gossip_heartbeat(router)
    assert TOPIC not in library.get(members[4], {}), changed(
        "LobbyGossipSub.gossip_heartbeat", "peers in back-off get IHAVE now: the override can go")
