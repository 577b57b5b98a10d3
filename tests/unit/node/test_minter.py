"""Identity proofs minted in a child process (node/minter.py), with a thread as the fallback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from strangers.crypto import pow
from strangers.node import minter
from strangers.node.identity import fresh_identity

BITS = 12


async def test_a_child_process_mints_a_valid_proof(monkeypatch, tmp_path):
    """In the child, not in the fallback thread; from any directory, a checkout of strangers
    included (its own ``strangers/`` must not shadow the installed package)."""
    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # the checkout's root
    threads = []
    monkeypatch.setattr(minter, "_mint_in_thread", lambda *args: threads.append(args))
    peer = fresh_identity().peer_id.to_bytes()
    with trio.fail_after(60):
        proof = await minter.mint_proof(peer, BITS)
    assert not threads and pow.identity_valid(peer, proof, BITS)


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


def test_the_child_on_its_own(tmp_path):
    peer = fresh_identity().peer_id.to_bytes()
    done = subprocess.run(minter.child_command(peer, 8), capture_output=True, cwd=tmp_path, check=True)
    assert pow.identity_valid(peer, pow.encode_nonce(int(done.stdout)), 8)


async def test_a_child_killed_by_a_signal_waits_for_our_own_shutdown(monkeypatch, autojump_clock):
    """A signal that killed the child (the group's Ctrl-C or SIGTERM) is usually ours too:
    a node being stopped does not start minting in a thread meanwhile."""
    threads = []

    async def killed(peer_id, bits):
        raise subprocess.CalledProcessError(-15, ["python"])

    async def thread(*args):
        threads.append(trio.current_time())
        return b"proof"

    monkeypatch.setattr(minter, "_mint_in_child", killed)
    monkeypatch.setattr(minter, "_mint_in_thread", thread)
    with trio.move_on_after(minter.SIGNAL_GRACE / 2):  # the node's shutdown
        await minter.mint_proof(b"peer", BITS)
    assert threads == []
    start = trio.current_time()
    assert await minter.mint_proof(b"peer", BITS) == b"proof"  # a signal for the child alone
    assert threads == [start + minter.SIGNAL_GRACE]


async def test_a_child_that_failed_on_its_own_falls_back_at_once(monkeypatch, autojump_clock):
    async def failed(peer_id, bits):
        raise subprocess.CalledProcessError(1, ["python"])

    async def thread(*args):
        return trio.current_time()

    monkeypatch.setattr(minter, "_mint_in_child", failed)
    monkeypatch.setattr(minter, "_mint_in_thread", thread)
    start = trio.current_time()
    assert await minter.mint_proof(b"peer", BITS) == start
