"""Identity proofs and stamps (crypto/pow.py): the worked example of docs/protocol.md §5.9,
binding, tampering, freshness, and one proof at the network's real difficulty."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.crypto import pow
from strangers.errors import ConfigError, CryptoError

# The worked example of docs/protocol.md §5.9: an Ed25519 peer id (identity multihash of
# the protobuf public key 08 01 12 20 || key) whose key is the bytes 0..31.
PEER = bytes.fromhex("002408011220") + bytes(range(32))
CANDIDATE = bytes.fromhex("002408011220") + bytes(range(32, 64))
MATCH_ID = bytes(range(16))
TIME = 1764500000


def test_identity_known_answer() -> None:
    assert pow.identity_prefix(PEER).hex() == (
        "737472616e676572732f76312f6964656e746974792d706f770026"
        "002408011220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    assert pow.mint_identity(PEER, 16) == 21628
    assert pow.identity_digest(PEER, 21628).hex() == (
        "0000e1659567f8391ffc8b84c658841c76447e98f3648cf58483455506a75fc1")
    assert pow.identity_valid(PEER, (21628).to_bytes(8, "big"), 16)
    # the same nonce found by hand, as another implementation would
    digest = hashlib.sha256(b"strangers/v1/identity-pow\x00" + bytes([len(PEER)]) + PEER
                            + (21628).to_bytes(8, "big")).digest()
    assert pow.leading_zero_bits(digest) == 16


def test_identity_known_answer_at_the_network_difficulty() -> None:
    proof = (769333).to_bytes(8, "big")
    assert pow.identity_valid(PEER, proof, pow.IDENTITY_BITS)
    assert pow.identity_digest(PEER, 769333).hex().startswith("000005")


def test_stamp_known_answer() -> None:
    stamp = pow.mint_stamp(PEER, CANDIDATE, MATCH_ID, TIME + 0.9)
    assert stamp == pow.Stamp(TIME, 3857)
    assert stamp.to_wire() == [TIME, (3857).to_bytes(8, "big")]
    prefix = pow.stamp_prefix(PEER, CANDIDATE, MATCH_ID, TIME)
    assert prefix.hex().endswith("000102030405060708090a0b0c0d0e0f" + "00000000692c2220")
    assert hashlib.sha256(prefix + (3857).to_bytes(8, "big")).hexdigest() == (
        "00053c99b5fc08959ac33244e0efcf14d89acd495073102914f4b013be005fe8")


def test_a_proof_is_bound_to_its_peer_id() -> None:
    proof = pow.encode_nonce(pow.mint_identity(PEER, 12))
    assert pow.identity_valid(PEER, proof, 12)
    assert not pow.identity_valid(CANDIDATE, proof, 12) or pow.leading_zero_bits(
        pow.identity_digest(CANDIDATE, int.from_bytes(proof, "big"))) >= 12
    other = pow.mint_identity(CANDIDATE, 12)
    assert pow.identity_valid(CANDIDATE, pow.encode_nonce(other), 12)
    # a proof at 12 bits is not one at the network's difficulty (unless by luck: checked)
    lucky = pow.leading_zero_bits(pow.identity_digest(PEER, int.from_bytes(proof, "big")))
    assert pow.identity_valid(PEER, proof, pow.IDENTITY_BITS) == (lucky >= pow.IDENTITY_BITS)


@pytest.mark.parametrize("proof", [None, b"", b"\x00" * 7, b"\x00" * 9, "0" * 16, 5])
def test_malformed_proofs_are_invalid(proof: object) -> None:
    assert not pow.identity_valid(PEER, proof, 1)


def test_no_proof_needed_at_zero_bits_but_well_formed() -> None:
    assert pow.identity_valid(PEER, bytes(8), 0)
    assert not pow.identity_valid(b"", bytes(8), 0)


@given(st.binary(min_size=8, max_size=8))
def test_random_nonces_fail_at_the_network_difficulty_almost_always(proof: bytes) -> None:
    digest = pow.identity_digest(PEER, int.from_bytes(proof, "big"))
    assert pow.identity_valid(PEER, proof, pow.IDENTITY_BITS) == (
        pow.leading_zero_bits(digest) >= pow.IDENTITY_BITS)


def test_a_stamp_is_bound_to_proposer_candidate_match_and_time() -> None:
    stamp = pow.mint_stamp(PEER, CANDIDATE, MATCH_ID, TIME)
    assert pow.stamp_valid(stamp, PEER, CANDIDATE, MATCH_ID, TIME)
    assert not pow.stamp_valid(stamp, CANDIDATE, PEER, MATCH_ID, TIME)  # swapped roles
    assert not pow.stamp_valid(stamp, PEER, PEER, MATCH_ID, TIME)  # another candidate
    assert not pow.stamp_valid(stamp, PEER, CANDIDATE, bytes(16), TIME)  # another proposal
    assert not pow.stamp_valid(pow.Stamp(TIME + 1, stamp.nonce), PEER, CANDIDATE, MATCH_ID, TIME)


def test_a_stamp_is_fresh_for_its_window_either_side() -> None:
    stamp = pow.mint_stamp(PEER, CANDIDATE, MATCH_ID, TIME)
    assert pow.stamp_valid(stamp, PEER, CANDIDATE, MATCH_ID, TIME + pow.STAMP_WINDOW)
    assert pow.stamp_valid(stamp, PEER, CANDIDATE, MATCH_ID, TIME - pow.STAMP_WINDOW)
    assert not pow.stamp_valid(stamp, PEER, CANDIDATE, MATCH_ID, TIME + pow.STAMP_WINDOW + 1)
    assert not pow.stamp_valid(stamp, PEER, CANDIDATE, MATCH_ID, TIME - pow.STAMP_WINDOW - 1)


@pytest.mark.parametrize("wire", [None, [], [TIME], [TIME, b"\x00" * 7], [True, bytes(8)],
                                  [1.5, bytes(8)], [-1, bytes(8)], [1 << 64, bytes(8)],
                                  [TIME, bytes(8), 1], "x"])
def test_malformed_stamps_are_refused(wire: object) -> None:
    with pytest.raises(CryptoError):
        pow.Stamp.from_wire(wire)


def test_minting_in_slices_finds_the_same_nonce() -> None:
    first = pow.mint_identity(PEER, 14)
    assert first is not None
    assert pow.mint_identity(PEER, 14, start=0, count=first) is None
    assert pow.mint_identity(PEER, 14, start=first, count=1) == first


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        pow.mint_identity(PEER, 41)
    with pytest.raises(ConfigError):
        pow.identity_valid(PEER, bytes(8), -1)
    with pytest.raises(CryptoError):
        pow.mint_identity(b"", 1)
    with pytest.raises(CryptoError):
        pow.mint_identity(PEER, 1, start=-1)
    with pytest.raises(CryptoError):
        pow.stamp_prefix(PEER, CANDIDATE, b"short", TIME)
    with pytest.raises(CryptoError):
        pow.stamp_prefix(PEER, CANDIDATE, MATCH_ID, -5)
    with pytest.raises(CryptoError):
        pow.encode_nonce(1 << 64)
    with pytest.raises(CryptoError):
        pow.Stamp(True, 0)
    assert not pow.stamp_valid(pow.Stamp(TIME, 0), b"", CANDIDATE, MATCH_ID, TIME, 0)


def test_difficulty_from_the_environment() -> None:
    assert pow.Difficulty.from_env({}) == pow.Difficulty(pow.IDENTITY_BITS, pow.STAMP_BITS)
    assert pow.Difficulty.from_env({pow.POW_BITS_ENV: "8"}) == pow.Difficulty(8, 8)
    assert pow.Difficulty.from_env({pow.POW_BITS_ENV: "30"}) == pow.Difficulty(30, pow.STAMP_BITS)
    assert not pow.Difficulty.from_env({pow.POW_BITS_ENV: "0"}).required
    assert pow.Difficulty().required
    for bad in ("x", "-1", "99"):
        with pytest.raises(ConfigError):
            pow.Difficulty.from_env({pow.POW_BITS_ENV: bad})


def test_minting_at_the_default_difficulty_gives_a_proof_others_accept() -> None:
    """The real price: about 2**21 hashes (a few CPU-seconds); verified with one hash."""
    peer = bytes.fromhex("002408011220") + hashlib.sha256(b"another key").digest()
    nonce = pow.mint_identity(peer, pow.IDENTITY_BITS)
    assert nonce is not None
    assert pow.identity_valid(peer, pow.encode_nonce(nonce), pow.IDENTITY_BITS)
