"""Identity proofs (protocol §5.9) minted in a child process, not in a thread of the node.

Minting is a loop of SHA-256 calls in Python: in a worker thread it holds the
interpreter's lock between calls, so every network event of the node waited
for it (the first chat of a returning user, whose next identity is minted in
the background, showed 55-77 ms round trips instead of 25 ms on a loaded
machine: ``docs/performance.md``, issue 8). A child process runs on another
core with no lock to share, at a lower priority (``nice`` 10), and is killed
when the node no longer wants its answer (trio cancels ``run_process``).

Run as ``python -m strangers.node.minter PEER_ID_HEX BITS``: prints the nonce
in decimal. If the child cannot run, the node mints in a thread as before.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

import trio

from strangers.crypto import pow

logger = logging.getLogger(__name__)

THREAD_SLICE = 1 << 15
"""Nonces per worker-thread call on the fallback path (cancellation between slices)."""


async def mint_proof(peer_id: bytes, bits: int) -> bytes:
    """A proof of ``bits`` for ``peer_id`` (its libp2p bytes), encoded for the wire."""
    try:
        return await _mint_in_child(peer_id, bits)
    except (OSError, ValueError, trio.RunFinishedError) as exc:  # no child: a thread will do
        logger.info("minting in a thread (the child process failed: %s)", exc)
    except Exception as exc:  # CalledProcessError and friends
        logger.info("minting in a thread (the child process failed: %r)", exc)
    return await _mint_in_thread(peer_id, bits)


async def _mint_in_child(peer_id: bytes, bits: int) -> bytes:
    done = await trio.run_process(
        [sys.executable, "-m", "strangers.node.minter", peer_id.hex(), str(bits)],
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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m strangers.node.minter PEER_ID_HEX BITS", file=sys.stderr)
        return 2
    try:
        os.nice(10)  # the node and its user come first
    except (AttributeError, OSError):
        pass
    nonce = pow.mint_identity(bytes.fromhex(argv[0]), int(argv[1]))
    if nonce is None:
        return 1
    print(nonce, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
