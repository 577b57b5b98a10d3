"""The proposal's stamp minted in slices (node/stamping.py): the same stamp, and room for the dial."""

import os

import pytest
import trio

from strangers.crypto import pow
from strangers.errors import ConfigError, CryptoError
from strangers.node import stamping

PROPOSER = b"\x00\x24\x08\x01\x12\x20" + bytes(range(32))
CANDIDATE = b"\x00\x24\x08\x01\x12\x20" + bytes(range(32, 64))


@pytest.mark.parametrize("bits", [0, 4, 12])
async def test_same_stamp_as_the_pure_minter(bits):
    for _ in range(3):
        match_id = os.urandom(16)
        sliced = await stamping.mint_stamp(PROPOSER, CANDIDATE, match_id, 1_800_000_000.7, bits)
        assert sliced == pow.mint_stamp(PROPOSER, CANDIDATE, match_id, 1_800_000_000.7, bits)
        assert pow.stamp_valid(sliced, PROPOSER, CANDIDATE, match_id, 1_800_000_000, bits)


async def test_other_tasks_run_while_it_mints():
    """A task beside the mint (the dial) gets turns before the stamp is done."""
    turns = 0
    minted = trio.Event()

    async def beside() -> None:
        nonlocal turns
        while not minted.is_set():
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(beside)
        await trio.lowlevel.checkpoint()
        # 16 bits: ~65,000 nonces on average, so ~250 slices; at least a few for sure
        match_id = next(m for m in (os.urandom(16) for _ in range(1000))
                        if pow.mint_stamp(PROPOSER, CANDIDATE, m, 0.0, 16).nonce > 4 * stamping.SLICE)
        stamp = await stamping.mint_stamp(PROPOSER, CANDIDATE, match_id, 0.0, 16)
        minted.set()
    assert pow.stamp_valid(stamp, PROPOSER, CANDIDATE, match_id, 0, 16)
    assert turns >= stamp.nonce // stamping.SLICE


async def test_bad_input_raises_our_errors():
    with pytest.raises(ConfigError):
        await stamping.mint_stamp(PROPOSER, CANDIDATE, bytes(16), 0.0, 99)
    with pytest.raises(CryptoError):
        await stamping.mint_stamp(PROPOSER, b"", bytes(16), 0.0, 4)
    with pytest.raises(CryptoError):
        await stamping.mint_stamp(PROPOSER, CANDIDATE, b"short", 0.0, 4)
