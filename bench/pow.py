"""Mint, stamp and verify times of the identity proof and the proposal stamp (crypto/pow.py).

    .venv/bin/python bench/pow.py [--mints 8] [--stamps 200] [--bits 21]

Prints one JSON object: identity mints at the network difficulty (median, mean,
90th percentile, max seconds; minting is a geometric trial, so the spread is
wide), stamp mints (milliseconds), and verifications of each (microseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from strangers.crypto import pow


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float], scale: float, digits: int) -> dict[str, float]:
    return {"median": round(statistics.median(values) * scale, digits),
            "mean": round(statistics.fmean(values) * scale, digits),
            "p90": round(_quantile(values, 0.9) * scale, digits),
            "max": round(max(values) * scale, digits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mints", type=int, default=8)
    parser.add_argument("--stamps", type=int, default=200)
    parser.add_argument("--bits", type=int, default=pow.IDENTITY_BITS)
    args = parser.parse_args()

    mints, hashes, proofs = [], [], []
    for _ in range(args.mints):
        peer = b"\x00\x24\x08\x01\x12\x20" + os.urandom(32)
        started = time.perf_counter()
        nonce = pow.mint_identity(peer, args.bits)
        mints.append(time.perf_counter() - started)
        hashes.append(nonce + 1)
        proofs.append((peer, pow.encode_nonce(nonce)))
    started = time.perf_counter()
    rounds = 2000
    for _ in range(rounds // len(proofs)):
        for peer, proof in proofs:
            assert pow.identity_valid(peer, proof, args.bits)
    verify_identity = (time.perf_counter() - started) / (rounds // len(proofs) * len(proofs))

    proposer = b"\x00\x24\x08\x01\x12\x20" + os.urandom(32)
    stamps, made = [], []
    for _ in range(args.stamps):
        candidate = b"\x00\x24\x08\x01\x12\x20" + os.urandom(32)
        match_id = os.urandom(16)
        now = time.time()
        started = time.perf_counter()
        stamp = pow.mint_stamp(proposer, candidate, match_id, now)
        stamps.append(time.perf_counter() - started)
        made.append((stamp, candidate, match_id, now))
    started = time.perf_counter()
    for stamp, candidate, match_id, now in made:
        assert pow.stamp_valid(stamp, proposer, candidate, match_id, now)
    verify_stamp = (time.perf_counter() - started) / len(made)

    print(json.dumps({
        "identity_bits": args.bits,
        "stamp_bits": pow.STAMP_BITS,
        "identity_mint_seconds": _summary(mints, 1, 2),
        "identity_mint_hashes_mean": int(statistics.fmean(hashes)),
        "hashes_per_second": int(sum(hashes) / sum(mints)),
        "identity_verify_microseconds": round(verify_identity * 1e6, 1),
        "stamp_mint_milliseconds": _summary(stamps, 1e3, 2),
        "stamp_verify_microseconds": round(verify_stamp * 1e6, 1),
        "cpus": os.cpu_count(),
    }, indent=1))


if __name__ == "__main__":
    main()
