"""Whole nodes with the price on (8-bit proofs): block, refusal of unproven and blocked
peers as proposer and as candidate, persistence across a restart, lanes side by side."""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo

from strangers.crypto import pow
from strangers.discovery.matcher import Refusal
from strangers.discovery.proposal import Accept, Propose, Refuse, decode, encode, frame_length
from strangers.node import NodeConfig, events, open_node, read_blocks
from strangers.node.libp2p.addresses import dialable_addrs
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.libp2p.streamio import read_exactly
from strangers.node.matching import MATCH_PROTOCOL

from dhtnet import next_event

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
BITS = 8


@pytest.fixture(autouse=True)
def price_on(monkeypatch):
    monkeypatch.setenv(pow.POW_BITS_ENV, str(BITS))


def _config(bootstrap=(), **kwargs) -> NodeConfig:
    return NodeConfig(listen=LOOPBACK, bootstrap=tuple(bootstrap), mdns=False, **kwargs)


@asynccontextmanager
async def _server():
    quiet_library_logs()
    async with open_node(_config(chat=False)) as server:
        yield (server.addrs[0],)


def _info(node) -> PeerInfo:
    return PeerInfo(node.identity.peer_id, dialable_addrs(node.host))


async def _raw_proposal(sender, target, proposal: Propose):
    """``proposal`` sent as is, over sender's host: the answer, or None if the stream was reset."""
    sender.host.get_peerstore().add_addrs(target.identity.peer_id, dialable_addrs(target.host), 600)
    with trio.fail_after(10):
        stream = await sender.host.new_stream(target.identity.peer_id, [TProtocol(MATCH_PROTOCOL)])
        try:
            await stream.write(encode(proposal))
            prefix = await read_exactly(stream, 4)
            return decode(await read_exactly(stream, frame_length(prefix)))
        except Exception:
            return None
        finally:
            await stream.reset()


async def test_block_ends_the_chat_and_refuses_the_stranger_both_ways_even_after_a_restart(tmp_path):
    async with _server() as boot:
        async with open_node(_config(boot, interests=("cinema",))) as alice, \
                open_node(_config(boot, interests=("cinema",),
                                  identity_file=tmp_path / "bob.key")) as bob:
            assert (await next_event(alice, events.Matched)).peer_id == bob.peer_id
            await next_event(bob, events.Matched)
            assert alice.safety.proof is not None and bob.safety.proof is not None
            await alice.block()
            blocked = await next_event(alice, events.Blocked)
            assert (blocked.peer_id, blocked.common_interests) == (bob.peer_id, ("cinema",))
            assert await next_event(alice, events.StrangerLeft) == events.StrangerLeft("blocked", True)
            left = await next_event(bob, events.StrangerLeft)
            assert (left.reason, left.by_us) == ("next", False)  # an ordinary leave
            assert [b.peer_id for b in read_blocks()] == [bob.peer_id]
            # as candidate: bob's proposal is cut before a byte is read
            refused = alice.safety.refused
            assert await bob.matching.propose(_info(alice), os.urandom(16), ()) is None
            assert alice.safety.refused > refused
            # as proposer: alice never dials bob
            sent = bob.matching.proposals_received
            assert await alice.matching.propose(_info(bob), os.urandom(16), ()) is None
            assert bob.matching.proposals_received == sent
            with pytest.raises(Exception, match="not chatting"):
                await alice.block()
        # the block survives a restart, and so does bob's identity (kept with its proof)
        assert (tmp_path / "bob.key.pow").exists()
        async with open_node(_config(boot, interests=("cinema",), auto_next=False)) as alice2, \
                open_node(_config(boot, interests=("cinema",),
                                  identity_file=tmp_path / "bob.key")) as bob2:
            assert bob2.peer_id == bob.peer_id
            assert alice2.safety.refuses(bob2.identity.peer_id) == "blocked"
            assert await bob2.matching.propose(_info(alice2), os.urandom(16), ()) is None


async def test_proposals_without_a_valid_proof_or_stamp_are_refused_first():
    async with _server() as boot:
        async with open_node(_config(boot, interests=("cinema",))) as alice, \
                open_node(_config(boot, interests=("cinema",), auto_next=False)) as mallory:
            await alice.safety.proof_ready.wait()
            alice.stop_search()
            mallory.stop_search()
            target = alice.identity.peer_id.to_bytes()
            me = mallory.identity.peer_id.to_bytes()
            bad_proof = next(p for p in (pow.encode_nonce(n) for n in range(1000))
                             if not pow.identity_valid(me, p, BITS))
            mid = os.urandom(16)
            good_stamp = pow.mint_stamp(me, target, mid, time.time(), BITS)
            cases = [
                Propose(mid, ()),  # a fresh identity without any proof
                Propose(mid, (), bad_proof, good_stamp),
                Propose(mid, (), mallory.safety.proof, None),
                Propose(mid, (), mallory.safety.proof,
                        pow.mint_stamp(me, me, mid, time.time(), BITS)),
                Propose(mid, (), mallory.safety.proof, pow.mint_stamp(me, target, mid, 1000, BITS)),
            ]
            for proposal in cases:
                answer = await _raw_proposal(mallory, alice, proposal)
                assert answer == Refuse(mid, Refusal.NO_PROOF), proposal
            assert alice.matcher.state.value == "idle"  # the matcher never saw them


async def test_lanes_side_by_side_adult_meets_only_adult():
    async with _server() as boot:
        async with open_node(_config(boot, interests=("cinema",), random_after=0)) as general, \
                open_node(_config(boot, interests=("cinema",), adult=True, random_after=0)) as adult1, \
                open_node(_config(boot, interests=("cinema",), adult=True, random_after=0)) as adult2:
            first = await next_event(adult1, events.Matched, timeout=30)
            assert first.peer_id == adult2.peer_id
            # the general node's keys never list them, and a proposal across lanes is refused
            mid = os.urandom(16)
            answer = await general.matching.propose(_info(adult1), mid, ())
            assert answer in (Refuse(mid, Refusal.OTHER_LANE), Refuse(mid, Refusal.BUSY))
            general.stop_search()
            adult_mid = os.urandom(16)
            stamp = pow.mint_stamp(adult1.identity.peer_id.to_bytes(),
                                   general.identity.peer_id.to_bytes(), adult_mid,
                                   time.time(), BITS)
            answer = await _raw_proposal(adult1, general, Propose(
                adult_mid, (), adult1.safety.proof, stamp, "adult"))
            assert answer == Refuse(adult_mid, Refusal.OTHER_LANE)
            assert not isinstance(answer, Accept)
