"""Identity proofs minted in a child process (node/minter.py), with a thread as the fallback."""

from __future__ import annotations

import sys

import trio

from strangers.crypto import pow
from strangers.node import minter
from strangers.node.identity import fresh_identity

BITS = 12


async def test_a_child_process_mints_a_valid_proof(monkeypatch):
    used = []
    original = minter._mint_in_child

    async def spy(peer_id, bits):
        used.append("child")
        return await original(peer_id, bits)

    monkeypatch.setattr(minter, "_mint_in_child", spy)
    peer = fresh_identity().peer_id.to_bytes()
    with trio.fail_after(60):
        proof = await minter.mint_proof(peer, BITS)
    assert used == ["child"] and pow.identity_valid(peer, proof, BITS)


async def test_without_a_child_the_thread_mints_it(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    peer = fresh_identity().peer_id.to_bytes()
    with trio.fail_after(60):
        proof = await minter.mint_proof(peer, BITS)
    assert pow.identity_valid(peer, proof, BITS)


async def test_a_child_answer_that_proves_nothing_is_not_taken(monkeypatch):
    """The child's nonce is checked: a wrong one (here, an 'echo' for a child) falls back."""
    peer = fresh_identity().peer_id.to_bytes()

    async def lying_child(peer_id, bits):
        raise ValueError("the minting process answered a nonce that proves nothing")

    monkeypatch.setattr(minter, "_mint_in_child", lying_child)
    with trio.fail_after(60):
        proof = await minter.mint_proof(peer, BITS)
    assert pow.identity_valid(peer, proof, BITS)


async def test_cancelling_the_mint_stops_the_child():
    peer = fresh_identity().peer_id.to_bytes()
    with trio.move_on_after(0.5) as scope:
        await minter._mint_in_child(peer, 40)  # years of work: only a cancel ends it
    assert scope.cancelled_caught


def test_the_command_line_of_the_child(capsys):
    peer = fresh_identity().peer_id.to_bytes()
    assert minter.main([peer.hex(), "8"]) == 0
    nonce = int(capsys.readouterr().out)
    assert pow.identity_valid(peer, pow.encode_nonce(nonce), 8)
    assert minter.main([]) == 2
