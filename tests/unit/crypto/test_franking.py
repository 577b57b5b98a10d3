"""Message franking (docs/protocol.md §6.11): the known-answer vector, tampering, and the session."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.franking import Franking, commitment, frank, verify_franking
from strangers.crypto.peerid import (
    ed25519_key_of,
    ed25519_peer_id,
    peer_id_from_text,
    peer_id_to_text,
)
from strangers.errors import CryptoError

# The vector of §6.11.2 (copied from the document).
KAT = {
    "identity_seed": bytes(range(0x00, 0x20)),
    "public_key": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    "peer_id": "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB",
    "match_id": bytes(range(0x40, 0x50)),
    "seq": 1,
    "text": "hello, stranger",
    "key": bytes(range(0xA0, 0xC0)),
    "c": "5b92bf7d1146e8ad19460c43bb0b3c8a1db375c4d58c390343761a1c7f056009",
    "g": "7b59cd16a128cd684d039248493670d2efb0353c0e956a3d5200bb2ae8a72322"
         "4752637db23927cf8ae94e15ca86e8f94b2b3bf1a574b096947bdb3c2da48c08",
}
IDENTITY = Ed25519PrivateKey.from_private_bytes(KAT["identity_seed"])
PUBLIC = IDENTITY.public_key().public_bytes_raw()


def test_known_answer_vector() -> None:
    assert PUBLIC.hex() == KAT["public_key"]
    assert peer_id_to_text(ed25519_peer_id(PUBLIC)) == KAT["peer_id"]
    c = commitment(KAT["key"], KAT["match_id"], 1, KAT["text"])
    assert c.hex() == KAT["c"]
    # the same commitment, computed from the document's formula with the standard library
    context = KAT["match_id"] + (1).to_bytes(8, "big")
    expected = hmac.new(KAT["key"], b"strangers/v1/frank/commit\x00" + context
                        + KAT["text"].encode(), hashlib.sha256).digest()
    assert c == expected
    franking = frank(IDENTITY, lambda size: KAT["key"], KAT["match_id"], 1, KAT["text"])
    assert franking == Franking(KAT["key"], bytes.fromhex(KAT["g"]))
    verify_franking(PUBLIC, KAT["match_id"], 1, KAT["text"], franking)


@pytest.mark.parametrize("change", ["text", "seq", "match", "key", "signature", "sender"])
def test_any_change_breaks_the_franking(change: str) -> None:
    match_id, text, seq = KAT["match_id"], KAT["text"], 1
    franking = frank(IDENTITY, random.Random(1).randbytes, match_id, seq, text)
    sender = PUBLIC
    if change == "text":
        text = "hello, strangeR"
    elif change == "seq":
        seq = 2
    elif change == "match":
        match_id = bytes(16)
    elif change == "key":
        franking = Franking(bytes(32), franking.signature)
    elif change == "signature":
        franking = Franking(franking.key, bytes(64))
    else:
        sender = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(CryptoError, match="franking signature"):
        verify_franking(sender, match_id, seq, text, franking)


@pytest.mark.parametrize("bad", [
    lambda: Franking(bytes(31), bytes(64)),
    lambda: Franking(bytes(32), bytes(63)),
    lambda: commitment(bytes(32), bytes(15), 1, "x"),
    lambda: commitment(bytes(32), bytes(16), 0, "x"),
    lambda: commitment(bytes(32), bytes(16), True, "x"),
])
def test_bad_values_are_refused(bad) -> None:
    with pytest.raises(CryptoError):
        bad()


def test_peer_ids_round_trip_and_bad_ones_are_refused() -> None:
    raw = peer_id_from_text(KAT["peer_id"])
    assert ed25519_key_of(raw) == PUBLIC
    assert peer_id_to_text(raw) == KAT["peer_id"]
    rsa_like = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
    assert ed25519_key_of(peer_id_from_text(rsa_like)) is None
    assert peer_id_to_text(peer_id_from_text(rsa_like)) == rsa_like
    for bad in ["", "0OIl", "12D3KooW", "x" * 65, 5, KAT["peer_id"] + "1"]:
        with pytest.raises(CryptoError):
            peer_id_from_text(bad)
    with pytest.raises(CryptoError):
        ed25519_peer_id(bytes(31))
