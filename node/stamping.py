"""A proposal's stamp minted in slices, so the dial to the candidate runs beside it.

A stamp (docs/protocol.md §5.9, :func:`strangers.crypto.pow.mint_stamp`)
binds the proposer, the candidate, the match id and the time: it can only be
minted once the walk has found the candidate. At 12 bits that is ~4,000
SHA-256 calls on average (2-13 ms of one core in pure Python, with a long
tail), which used to run before the dial. Minted here in slices of
:data:`SLICE` nonces with a trio checkpoint between two slices, it fills the
dial's waits (TCP connect, the candidate's half of Noise and multistream)
instead of preceding them; the stamp is the very one ``mint_stamp`` finds
(same prefix, same first nonce).

A thread would not do: the search holds the GIL, and the trio thread waking
up for the dial's bytes would wait for the interpreter's switch interval
(5 ms) at each wake-up.
"""

from __future__ import annotations

import trio

from strangers.crypto import pow

SLICE = 256
"""Nonces tried between two checkpoints (~0.2-0.4 ms of work)."""


async def mint_stamp(proposer: bytes, candidate: bytes, match_id: bytes, now: float,
                     bits: int = pow.STAMP_BITS) -> pow.Stamp:
    """:func:`strangers.crypto.pow.mint_stamp`, yielding to other tasks every :data:`SLICE` nonces."""
    start = 0
    while True:
        stamp = pow.search_stamp(proposer, candidate, match_id, now, bits, start, SLICE)
        if stamp is not None:
            return stamp
        start += SLICE
        await trio.lowlevel.checkpoint()
