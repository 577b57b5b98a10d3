"""Message franking: evidence, made by the sender, that it sent a text (pure).

Without an operator nobody countersigns a message, so the evidence a report
carries has to come from the sender itself (``docs/protocol.md`` §6.11).  Each
text a node sends in a chat carries, inside the encrypted message:

* ``k``: a fresh 32-byte *franking key* (random, never reused);
* ``g``: the sender's Ed25519 signature, by its identity key (the key its peer
  id names and the handshake authenticated), over
  ``SIGN_LABEL || match id (16) || seq (8, big-endian) || c``, where
* ``c = HMAC-SHA256(k, COMMIT_LABEL || match id || seq || text)`` is the
  commitment to the text (UTF-8), and ``seq`` the text's number among the
  sender's texts in this chat (1 for its first text, then 2, 3...; implicit:
  both ends count, nothing on the wire).

The receiver recomputes ``c`` and checks the signature before it shows the
text; a text whose franking fails is a :class:`~strangers.errors.CryptoError`
(the chat ends).  A report then holds, per text, ``(seq, text, k, g)``:
anyone with the sender's public key can recompute ``c`` and check ``g``, so a
text cannot be edited, moved to another chat or renumbered without breaking
it, and the receiver (who never learns the sender's private key) cannot forge
one.  HMAC-SHA256 under a fresh key is a committing construction: nobody can
find two texts with the same ``c`` (that would be an HMAC-SHA256 collision),
which ChaCha20-Poly1305 alone does not give (its tag is not committing).

This costs deniability towards third parties for every text the receiver
chooses to keep: see ``docs/threat-model.md`` §3.8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.errors import CryptoError

from .primitives import (
    ED25519_SIGNATURE_SIZE,
    Rng,
    ed25519_sign,
    ed25519_verify,
    hmac_sha256,
)

__all__ = [
    "COMMIT_LABEL",
    "FRANK_KEY_SIZE",
    "MAX_SEQ",
    "SIGN_LABEL",
    "Franking",
    "commitment",
    "frank",
    "signed_message",
    "verify_franking",
]

FRANK_KEY_SIZE: Final = 32
COMMIT_LABEL: Final = b"strangers/v1/frank/commit\x00"
SIGN_LABEL: Final = b"strangers/v1/frank/sign\x00"
MATCH_ID_SIZE: Final = 16
MAX_SEQ: Final = 2**63 - 1


@dataclass(frozen=True)
class Franking:
    """What a text carries as evidence: its franking key and the sender's signature."""

    key: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if type(self.key) is not bytes or len(self.key) != FRANK_KEY_SIZE:
            raise CryptoError(f"a franking key is {FRANK_KEY_SIZE} bytes, not {self.key!r:.80}")
        if type(self.signature) is not bytes or len(self.signature) != ED25519_SIGNATURE_SIZE:
            raise CryptoError(
                f"a franking signature is {ED25519_SIGNATURE_SIZE} bytes,"
                f" not {self.signature!r:.80}"
            )


def _context(match_id: bytes, seq: int) -> bytes:
    if type(match_id) is not bytes or len(match_id) != MATCH_ID_SIZE:
        raise CryptoError(f"a match id is {MATCH_ID_SIZE} bytes, not {match_id!r:.80}")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise CryptoError(f"a franking sequence number is 1 to {MAX_SEQ}, not {seq!r:.80}")
    return match_id + seq.to_bytes(8, "big")


def commitment(key: bytes, match_id: bytes, seq: int, text: str) -> bytes:
    """``c = HMAC-SHA256(key, COMMIT_LABEL || match_id || seq || text)`` (32 bytes)."""
    return hmac_sha256(key, COMMIT_LABEL + _context(match_id, seq) + text.encode("utf-8"))


def signed_message(match_id: bytes, seq: int, commitment_: bytes) -> bytes:
    """The bytes the sender signs: ``SIGN_LABEL || match_id || seq || c``."""
    return SIGN_LABEL + _context(match_id, seq) + commitment_


def frank(identity: Ed25519PrivateKey, rng: Rng, match_id: bytes, seq: int,
          text: str) -> Franking:
    """Frank the sender's ``seq``-th text of the chat ``match_id``."""
    key = rng(FRANK_KEY_SIZE)
    commit = commitment(key, match_id, seq, text)
    return Franking(key, ed25519_sign(identity, signed_message(match_id, seq, commit)))


def verify_franking(sender: bytes, match_id: bytes, seq: int, text: str,
                    franking: Franking) -> None:
    """Check a text's franking under the sender's raw Ed25519 public key.

    Raises :class:`~strangers.errors.CryptoError` when it does not verify.
    """
    commit = commitment(franking.key, match_id, seq, text)
    try:
        ed25519_verify(sender, franking.signature, signed_message(match_id, seq, commit))
    except CryptoError:
        raise CryptoError(
            f"text {seq} of the chat does not carry the sender's valid franking signature"
        ) from None

