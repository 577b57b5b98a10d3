"""Canaries for node/libp2p/gossip.py: what our GossipSub settings and patches rely on."""

from __future__ import annotations

import os

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.envelope import Envelope
from libp2p.peer.id import ID
from libp2p.peer.peer_record import PeerRecord
from libp2p.peer.peerstore import PeerStore
from libp2p.pubsub import gossipsub as gossipsub_module
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from multiaddr import Multiaddr

from strangers.node.libp2p import gossip

from canary import changed, parameters_of, source_of


def test_the_constructors_take_the_settings_we_pass():
    wanted = {"protocols", "degree", "degree_low", "degree_high", "heartbeat_interval",
              "prune_back_off", "score_params", "adaptive_gossip_enabled",
              "spam_protection_enabled", "eclipse_protection_enabled"}
    missing = wanted - set(parameters_of(GossipSub.__init__))
    assert not missing, changed("build_gossipsub", f"GossipSub() lost {sorted(missing)}")
    missing = {"strict_signing", "seen_ttl", "max_inbound_rpc_size"} - set(parameters_of(Pubsub.__init__))
    assert not missing, changed("build_pubsub", f"Pubsub() lost {sorted(missing)}")
    fields = set(ScoreParams.__dataclass_fields__)
    assert {"p4_invalid_messages", "publish_threshold", "graylist_threshold"} <= fields, changed(
        "score_params", "ScoreParams fields renamed")
    assert set(TopicScoreParams.__dataclass_fields__) == {"weight", "cap", "decay"}
    router = gossip.build_gossipsub()
    assert (router.degree, router.prune_back_off, router.heartbeat_interval) == (
        gossip.DEGREE, gossip.PRUNE_BACK_OFF, gossip.HEARTBEAT_SECONDS)
    assert not router.adaptive_gossip_enabled and not router.spam_protection_enabled


def test_the_library_rate_limit_still_counts_per_forwarder_and_after_the_seen_check():
    # why we turn it off: it limits the *forwarder*, which is ourselves for our
    # own messages, and push_msg marks a message seen before the router refuses it
    router = GossipSub([gossip.PROTOCOLS[0]], 6, 4, 12, spam_protection_enabled=True)
    me = ID(b"\x00" * 10)
    msg = rpc_pb2.Message(data=b"x", topicIDs=["t"], from_id=me.to_bytes(), seqno=b"\x00" * 8)
    verdicts = [router._check_spam_protection(me, msg) for _ in range(12)]
    assert verdicts[:10] == [True] * 10 and not verdicts[10], changed(
        "spam_protection_enabled=False", "the per-forwarder limit is no longer 10 msg/s")
    push = source_of(Pubsub.push_msg)
    assert push.index("self._mark_msg_seen(msg)") < push.index("self.router.publish("), changed(
        "spam_protection_enabled=False", "push_msg no longer marks seen before the router")
    off = GossipSub([gossip.PROTOCOLS[0]], 6, 4, 12, spam_protection_enabled=False)
    assert all(off._check_spam_protection(me, msg) for _ in range(50))


def test_idontwant_is_still_emitted_from_publish_before_its_other_awaits():
    source = source_of(GossipSub.publish)
    emit = source.index("await self._emit_idontwant_for_message(")
    assert "await " not in source[:emit].split('"""')[-1], changed(
        "LobbyGossipSub._publishing_size", "publish awaits before it emits IDONTWANT")
    assert "_emit_idontwant_for_message" in dir(GossipSub)


def test_validators_run_between_the_seen_check_and_marking_seen():
    # A synchronous validator keeps the seen-check and the mark in one step: no duplicates.
    source = source_of(Pubsub.push_msg)
    order = [source.index(s) for s in ("self._is_msg_seen(msg)", "await self.validate_msg(",
                                       "self._mark_msg_seen(msg)")]
    assert order == sorted(order), changed("LobbyRules validator", "push_msg reordered")
    assert "is_async" in source_of(Pubsub.validate_msg)


def test_the_pubsub_modules_call_the_record_helpers_by_their_module_names():
    for module in (pubsub_module, gossipsub_module):
        assert hasattr(module, "maybe_consume_signed_record"), changed(
            "install_record_cache", f"{module.__name__} no longer imports maybe_consume_signed_record")
        assert hasattr(module, "env_to_send_in_RPC"), changed(
            "install_record_cache", f"{module.__name__} no longer imports env_to_send_in_RPC")
    assert "maybe_consume_signed_record(rpc_incoming" in source_of(Pubsub.continuously_read_stream)
    assert "env_to_send_in_RPC(self.pubsub.host)" in source_of(GossipSub.publish)
    gossip.install_record_cache()
    assert hasattr(pubsub_module.maybe_consume_signed_record, "wrapped")


def _record(key_pair, seq: int) -> Envelope:
    from libp2p.peer.envelope import seal_record

    record = PeerRecord(ID.from_pubkey(key_pair.public_key),
                        [Multiaddr("/ip4/127.0.0.1/tcp/4001")], seq)
    return seal_record(record, key_pair.private_key)


def test_the_peerstore_still_refuses_an_older_record_and_we_take_the_rpc_anyway():
    key_pair = create_new_key_pair(os.urandom(32))
    peer = ID.from_pubkey(key_pair.public_key)
    store = PeerStore()
    newer, older = _record(key_pair, 200), _record(key_pair, 100)
    assert store.consume_peer_record(newer, 7200)
    assert not store.consume_peer_record(older, 7200), changed(
        "_valid_but_older", "the peerstore now takes an older signed record")
    rpc = rpc_pb2.RPC(senderRecord=older.marshal_envelope())
    assert gossip._valid_but_older(rpc, peer)
    assert not gossip._valid_but_older(rpc, ID(b"\x00" * 10))
    forged = rpc_pb2.RPC(senderRecord=b"\x0a\x03abc")
    assert not gossip._valid_but_older(forged, peer)


def test_the_library_stream_handler_schedules_on_its_service_and_can_raise():
    source = source_of(Pubsub.continuously_read_stream)
    assert "self.manager.run_task(self.push_msg" in source, changed(
        "guarded_stream_handler", "messages are no longer scheduled on the service")
    assert "except Exception" not in source_of(Pubsub.stream_handler), changed(
        "guarded_stream_handler", "the handler catches everything now (the guard may go)")


def test_the_public_methods_the_lobby_uses_are_there():
    for name in ("ensure_peer_stream", "add_to_blacklist", "remove_from_blacklist",
                 "is_peer_blacklisted", "set_topic_validator", "wait_until_ready", "subscribe",
                 "publish"):
        assert callable(getattr(Pubsub, name, None)), changed("node/lobby.py", f"Pubsub.{name} is gone")
    assert "self.counter += 1" in source_of(Pubsub._next_seqno), changed(
        "Lobby.send message id", "seqno is no longer counter + 1")


def test_publish_still_picks_its_peers_through_get_peers_to_send():
    assert parameters_of(GossipSub._get_peers_to_send) == [
        "self", "topic_ids", "msg_forwarder", "origin", "msg_id"], changed(
        "LobbyGossipSub._get_peers_to_send", "its signature changed")
    assert "self._get_peers_to_send(" in source_of(GossipSub.publish), changed(
        "LobbyGossipSub._get_peers_to_send", "publish no longer calls it")
    assert "flood_publish" not in parameters_of(GossipSub.__init__), changed(
        "LobbyGossipSub._get_peers_to_send", "the library has flood_publish now: use it")
