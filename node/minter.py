"""Identity proofs (protocol §5.9) minted in a child process, not in a thread of the node.

Minting is a loop of SHA-256 calls in Python: in a worker thread it holds the
interpreter's lock between calls, so every network event of the node waited
for it (the first chat of a returning user, whose next identity is minted in
the background, showed 55-77 ms round trips instead of 25 ms on a loaded
machine: ``docs/performance.md``, issue 8). A child process runs on another
core with no lock to share, at a lower priority (``nice`` 10), and is killed
when the node no longer wants its answer (trio cancels ``run_process``).

The child is ``python -I -c CHILD PEER_ID_HEX BITS`` (:data:`CHILD`): it imports
only :mod:`strangers.crypto.pow` (60 ms, not the node's 1.5 s of imports) and
prints the nonce in decimal. ``-I`` keeps the current directory out of its
path: run from a checkout of strangers, ``strangers`` would otherwise be the
checkout's own directory, without ``strangers.node`` and friends. If the
child cannot run, the node mints in a thread as before.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys

import trio

from strangers.crypto import pow

logger = logging.getLogger(__name__)

SIGNAL_GRACE = 1.0
"""Seconds to wait, after a signal killed the child, for the node's own shutdown."""
THREAD_SLICE = 1 << 15
"""Nonces per worker-thread call on the fallback path (cancellation between slices)."""


async def mint_proof(peer_id: bytes, bits: int) -> bytes:
    """A proof of ``bits`` for ``peer_id`` (its libp2p bytes), encoded for the wire."""
    try:
        return await _mint_in_child(peer_id, bits)
    except (OSError, ValueError, trio.RunFinishedError) as exc:  # no child: a thread will do
        logger.info("minting in a thread (the child process failed: %s)", exc)
    except subprocess.CalledProcessError as exc:
        if exc.returncode < 0:
            # Killed by a signal: usually the one that stops the whole node too (a
            # terminal's Ctrl-C, a session's SIGTERM go to the process group). Our own
            # cancellation comes within this wait; only then is the thread worth it.
            await trio.sleep(SIGNAL_GRACE)
        logger.info("minting in a thread (the child process failed: %r)", exc)
    except Exception as exc:  # and friends
        logger.info("minting in a thread (the child process failed: %r)", exc)
    return await _mint_in_thread(peer_id, bits)


CHILD = """
import os, sys
try:
    os.nice(10)  # the node and its user come first
except (AttributeError, OSError):
    pass
from strangers.crypto import pow
nonce = pow.mint_identity(bytes.fromhex(sys.argv[1]), int(sys.argv[2]))
print(-1 if nonce is None else nonce, flush=True)
"""
"""What the child runs (``sys.argv[1:]``: the peer id in hex, the bits)."""


def child_command(peer_id: bytes, bits: int) -> list[str]:
    return [sys.executable, "-I", "-c", CHILD, peer_id.hex(), str(bits)]


async def _mint_in_child(peer_id: bytes, bits: int) -> bytes:
    done = await trio.run_process(child_command(peer_id, bits),
                                  capture_stdout=True, capture_stderr=True, stdin=b"")
    proof = pow.encode_nonce(int(done.stdout.strip() or b"-1"))
    if not pow.identity_valid(peer_id, proof, bits):  # never trust a child's word for it
        raise ValueError(f"the minting process answered a nonce that proves nothing: {done.stdout!r:.80}")
    return proof


async def _mint_in_thread(peer_id: bytes, bits: int) -> bytes:
    start = 0
    while True:
        nonce = await trio.to_thread.run_sync(functools.partial(
            pow.mint_identity, peer_id, bits, start=start, count=THREAD_SLICE))
        if nonce is not None:
            return pow.encode_nonce(nonce)
        start += THREAD_SLICE
