"""Integration: whole nodes (open_node) on 127.0.0.1 in one process."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import trio
from libp2p.peer.peerinfo import PeerInfo

from strangers.discovery.matcher import MatchState, Refusal
from strangers.discovery.proposal import Accept, Refuse
from strangers.node import NodeConfig, events, open_node
from strangers.node.libp2p.addresses import dialable_addrs
from strangers.node.libp2p.host import quiet_library_logs

from dhtnet import next_event

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


def _config(bootstrap=(), **kwargs) -> NodeConfig:
    return NodeConfig(listen=LOOPBACK, bootstrap=tuple(bootstrap), mdns=False, **kwargs)


@asynccontextmanager
async def _network(*configs):
    """A serve node plus one chat node per config dict."""
    quiet_library_logs()
    async with open_node(_config(chat=False)) as server:
        boot = (server.addrs[0],)
        async with _open_all([_config(boot, **c) for c in configs]) as nodes:
            yield server, nodes


@asynccontextmanager
async def _open_all(configs):
    if not configs:
        yield []
        return
    async with open_node(configs[0]) as first, _open_all(configs[1:]) as rest:
        yield [first, *rest]


async def test_two_nodes_match_and_exchange_messages():
    async with _network({"interests": ("cinema",)}, {"interests": ("jazz", "cinema")}) as (_s, (a, b)):
        match_a = await next_event(a, events.Matched)
        match_b = await next_event(b, events.Matched)
        assert match_a.common_interests == match_b.common_interests == ("cinema",)
        assert match_a.safety_code == match_b.safety_code
        assert match_a.peer_id == b.peer_id and match_b.peer_id == a.peer_id
        message_id = await a.send_text("hello")
        received = await next_event(b, events.MessageReceived)
        assert (received.id, received.text) == (message_id, "hello")
        assert (await next_event(a, events.Delivered)).id == message_id
        await b.next()
        left = await next_event(a, events.StrangerLeft)
        assert left.reason == "next" and not left.by_us


async def test_a_matched_node_refuses_other_proposals():
    async with _network({"interests": ("chess",)}, {"interests": ("chess",)},
                        {"interests": ("golf",), "interests_only": True}) as (_s, (a, b, c)):
        await next_event(a, events.Matched)
        await next_event(b, events.Matched)
        info = PeerInfo(a.identity.peer_id, dialable_addrs(a.host))
        c.matcher.stop()
        c.matcher.start_search(trio.current_time())
        c.matcher.propose(a.identity.peer_id.to_bytes())
        with trio.fail_after(5):
            answer = await c.matching.propose(info, os.urandom(16), ("chess",))
        assert answer.reason is Refusal.BUSY
        assert a.matcher.state is MatchState.MATCHED


async def test_crossed_proposals_end_in_exactly_one_match():
    async with _network({"interests": ("go",), "interests_only": True},
                        {"interests": ("chess",), "interests_only": True}) as (_s, (a, b)):
        # Take both nodes' matching in hand: each proposes to the other at once.
        for node in (a, b):
            node.stop_search()
        for node, other in ((a, b), (b, a)):
            node.matcher.stop()
            node.matcher.interests = ("go",)
            node.matcher.start_search(trio.current_time())
            node.matcher.propose(other.identity.peer_id.to_bytes())
        answers = {}

        async def propose(node, other):
            info = PeerInfo(other.identity.peer_id, dialable_addrs(other.host))
            answers[node.peer_id] = await node.matching.propose(info, os.urandom(16), ("go",))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(propose, a, b)
                nursery.start_soon(propose, b, a)
        accepted = [peer for peer, answer in answers.items() if isinstance(answer, Accept)]
        assert all(isinstance(a, (Accept, Refuse)) for a in answers.values())
        assert len(accepted) == 1
        smaller = min((a, b), key=lambda n: n.identity.peer_id.to_bytes())
        assert accepted == [smaller.peer_id]  # the smaller peer id's proposal wins
        loser = b if smaller is a else a
        assert loser.matcher.state is MatchState.MATCHED


async def test_a_stranger_without_an_ed25519_identity_is_refused_and_the_search_goes_on():
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.peer.id import ID

    from strangers.crypto.handshake import Role

    class ResetOnlyStream:
        reset_called = False

        async def reset(self):
            self.reset_called = True

    quiet_library_logs()
    async with open_node(_config(interests=("go",))) as node:
        odd = ID.from_pubkey(create_new_key_pair().public_key)
        node.stop_search()
        node.matcher.stop()
        node.matcher.start_search(trio.current_time())
        node.matcher.on_proposal(odd.to_bytes(), ("go",), trio.current_time())
        assert node.matcher.state is MatchState.MATCHED
        stream = ResetOnlyStream()
        with trio.fail_after(5):
            await node.chats.run_chat(stream, Role.RESPONDER, odd, os.urandom(16), ("go",), trio.Event())
        assert stream.reset_called
        assert node.matcher.state is MatchState.SEARCHING  # looking for the next one
        decision = node.matcher.on_proposal(odd.to_bytes(), ("go",), trio.current_time())
        assert not decision.accept  # and it cannot hold us again at once
