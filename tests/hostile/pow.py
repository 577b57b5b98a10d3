"""Identity proofs and stamps as docs/protocol.md §5.9 specifies them (hashlib only)."""

from __future__ import annotations

import hashlib


def _zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def identity_proof(peer_id: bytes, bits: int) -> bytes:
    prefix = b"strangers/v1/identity-pow\x00" + bytes([len(peer_id)]) + peer_id
    nonce = 0
    while _zero_bits(hashlib.sha256(prefix + nonce.to_bytes(8, "big")).digest()) < bits:
        nonce += 1
    return nonce.to_bytes(8, "big")


def stamp(proposer: bytes, candidate: bytes, match_id: bytes, unix_time: int, bits: int) -> list:
    prefix = (b"strangers/v1/stamp\x00" + bytes([len(proposer)]) + proposer
              + bytes([len(candidate)]) + candidate + match_id + unix_time.to_bytes(8, "big"))
    nonce = 0
    while _zero_bits(hashlib.sha256(prefix + nonce.to_bytes(8, "big")).digest()) < bits:
        nonce += 1
    return [unix_time, nonce.to_bytes(8, "big")]
