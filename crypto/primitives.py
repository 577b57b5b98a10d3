"""Thin, named wrappers around the few primitives strangers uses.

Everything here is a pure function: no I/O, no clock, and no randomness that
is not injected (key generation takes ``rng: Callable[[int], bytes]``, which
must return that many bytes from a cryptographically secure source, e.g.
``os.urandom`` in production or ``random.Random(seed).randbytes`` in tests).

The wrappers exist so that the rest of ``strangers.crypto``:

* names every key derivation by a purpose label (the ``LABEL_*`` constants
  below: the handshake's begin with ``b"strangers/v2/"``, the ratchet's with
  ``b"strangers/v1/"``), so that no two derivations can ever produce the same key;
* never sees an exception from ``cryptography``: anything that fails
  (a wrong length, a low-order X25519 point, a forged tag or signature) raises
  :class:`~strangers.errors.CryptoError` whose message is the text a user sees.

Primitives: X25519 (RFC 7748), Ed25519 (RFC 8032), HKDF-SHA256 (RFC 5869),
HMAC-SHA256 (RFC 2104), SHA-256 and ChaCha20-Poly1305 (RFC 8439).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strangers.errors import CryptoError

__all__ = [
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "LABELS",
    "LABEL_COMMIT",
    "LABEL_FINISHED",
    "LABEL_HELLO",
    "LABEL_MESSAGE_KEY",
    "LABEL_PREFIX",
    "LABEL_RATCHET_ROOT",
    "LABEL_ROOT",
    "LABEL_SAFETY",
    "LABEL_TRANSCRIPT",
    "RATCHET_LABEL_PREFIX",
    "X25519_KEY_SIZE",
    "Rng",
    "aead_decrypt",
    "aead_encrypt",
    "ed25519_sign",
    "ed25519_verify",
    "hkdf",
    "hmac_sha256",
    "sha256",
    "x25519",
    "x25519_keypair",
]

Rng = Callable[[int], bytes]
"""A source of randomness: ``rng(n)`` returns ``n`` unpredictable bytes."""

#: Prefix of the handshake's labels; the ``v2`` changes with the handshake version.
LABEL_PREFIX = b"strangers/v2/"
#: Prefix of the Double Ratchet's labels (the ratchet did not change in version 2).
RATCHET_LABEL_PREFIX = b"strangers/v1/"
#: SHA-256 domain of the initiator's commitment to its hello.
LABEL_COMMIT = LABEL_PREFIX + b"commit"
#: Ed25519 signature context of a handshake hello.
LABEL_HELLO = LABEL_PREFIX + b"hello"
#: SHA-256 domain of the handshake transcript hash.
LABEL_TRANSCRIPT = LABEL_PREFIX + b"transcript"
#: HKDF info of the Double Ratchet's initial root key.
LABEL_ROOT = LABEL_PREFIX + b"root"
#: HKDF info of the safety code the two users compare out of band.
LABEL_SAFETY = LABEL_PREFIX + b"safety"
#: HKDF info of the two finished-MAC keys, and the prefix of each finished MAC's input.
LABEL_FINISHED = LABEL_PREFIX + b"finished"
#: HKDF info of the ratchet's root-chain step (KDF_RK).
LABEL_RATCHET_ROOT = RATCHET_LABEL_PREFIX + b"ratchet-root"
#: HKDF info that expands a message key into an AEAD key and nonce.
LABEL_MESSAGE_KEY = RATCHET_LABEL_PREFIX + b"message-key"
#: Every label, for checking that they are distinct and well-formed.
LABELS = (
    LABEL_COMMIT,
    LABEL_HELLO,
    LABEL_TRANSCRIPT,
    LABEL_ROOT,
    LABEL_SAFETY,
    LABEL_FINISHED,
    LABEL_RATCHET_ROOT,
    LABEL_MESSAGE_KEY,
)

X25519_KEY_SIZE = 32
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
AEAD_KEY_SIZE = 32
AEAD_NONCE_SIZE = 12
AEAD_TAG_SIZE = 16
_HKDF_MAX_LENGTH = 255 * 32


def sha256(data: bytes) -> bytes:
    """SHA-256 of *data* (32 bytes)."""
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of *data* under *key* (32 bytes)."""
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with *salt*, expand with the label *info*."""
    if not 1 <= length <= _HKDF_MAX_LENGTH:
        raise CryptoError(
            f"HKDF-SHA256 can derive 1 to {_HKDF_MAX_LENGTH} bytes, not {length!r}"
        )
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(
        ikm
    )


def x25519_keypair(rng: Rng) -> tuple[X25519PrivateKey, bytes]:
    """A fresh X25519 key pair from ``rng(32)``: the private key and the raw public key."""
    seed = rng(X25519_KEY_SIZE)
    if len(seed) != X25519_KEY_SIZE:
        raise CryptoError(
            f"the random source returned {len(seed)} bytes instead of {X25519_KEY_SIZE}"
        )
    private = X25519PrivateKey.from_private_bytes(seed)
    return private, private.public_key().public_bytes_raw()


def x25519(private: X25519PrivateKey, public: bytes) -> bytes:
    """The X25519 shared secret of *private* and the peer's raw *public* key.

    Rejects public keys that are not 32 bytes, and low-order points (which
    give an all-zero secret, i.e. one the peer did not contribute to).
    """
    if len(public) != X25519_KEY_SIZE:
        raise CryptoError(
            f"an X25519 public key is {X25519_KEY_SIZE} bytes, got {len(public)}: {public!r}"
        )
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # OpenSSL refuses an all-zero result itself
        shared = bytes(X25519_KEY_SIZE)
    if hmac.compare_digest(shared, bytes(X25519_KEY_SIZE)):
        raise CryptoError(
            f"the X25519 public key {public.hex()!r} is a low-order point "
            "(the shared secret would be zero)"
        )
    return shared


def ed25519_sign(private: Ed25519PrivateKey, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of *message*."""
    return private.sign(message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> None:
    """Check an Ed25519 *signature* of *message* under the raw *public* key.

    Raises :class:`CryptoError` if the key or signature is malformed or the
    signature does not verify.
    """
    if len(public) != ED25519_PUBLIC_KEY_SIZE:
        raise CryptoError(
            f"an Ed25519 public key is {ED25519_PUBLIC_KEY_SIZE} bytes, "
            f"got {len(public)}: {public!r}"
        )
    if len(signature) != ED25519_SIGNATURE_SIZE:
        raise CryptoError(
            f"an Ed25519 signature is {ED25519_SIGNATURE_SIZE} bytes, "
            f"got {len(signature)}: {signature!r}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise CryptoError(
            f"the signature is not valid for the Ed25519 key {public.hex()!r}"
        ) from None


def _aead(key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    if len(key) != AEAD_KEY_SIZE:
        raise CryptoError(f"a ChaCha20-Poly1305 key is {AEAD_KEY_SIZE} bytes, got {len(key)}")
    if len(nonce) != AEAD_NONCE_SIZE:
        raise CryptoError(
            f"a ChaCha20-Poly1305 nonce is {AEAD_NONCE_SIZE} bytes, got {len(nonce)}: {nonce!r}"
        )
    return ChaCha20Poly1305(key)


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """ChaCha20-Poly1305 encryption: ciphertext followed by the 16-byte tag.

    A (key, nonce) pair must never be used twice.
    """
    return _aead(key, nonce).encrypt(nonce, plaintext, ad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """ChaCha20-Poly1305 decryption; raises :class:`CryptoError` unless authentic."""
    cipher = _aead(key, nonce)
    try:
        return cipher.decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        raise CryptoError(
            "the message failed authentication: it was corrupted, forged, "
            "or encrypted under another key"
        ) from None
