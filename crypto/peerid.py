"""libp2p peer ids, pure: the text form (base58btc) and the Ed25519 key inside one.

An Ed25519 peer id is the identity multihash of the protobuf-encoded public
key: ``00 24 08 01 12 20 || key (32)``, 38 bytes, written in base58btc (it
starts with ``12D3KooW``).  Other keys give a sha2-256 multihash
(``12 20 || 32 bytes``).  Reports and lists use these without importing libp2p.
"""

from __future__ import annotations

from typing import Final

from strangers.errors import CryptoError

__all__ = ["ED25519_PREFIX", "ed25519_peer_id", "ed25519_key_of", "peer_id_from_text",
           "peer_id_to_text"]

ED25519_PREFIX: Final = bytes.fromhex("002408011220")
_SHA256_PREFIX: Final = bytes.fromhex("1220")
_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {char: value for value, char in enumerate(_ALPHABET)}
MAX_TEXT: Final = 64
"""Longest peer id text accepted (an Ed25519 one is 52 characters, a sha2-256 one 46)."""


def peer_id_to_text(peer_id: bytes) -> str:
    """The base58btc text of a binary peer id."""
    number = int.from_bytes(peer_id, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_ALPHABET[digit])
    zeros = len(peer_id) - len(peer_id.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def peer_id_from_text(text: object) -> bytes:
    """The binary peer id written as ``text``; raises CryptoError unless it is one."""
    if type(text) is not str or not 0 < len(text) <= MAX_TEXT:
        raise CryptoError(f"not a peer id: {text!r:.80}")
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            raise CryptoError(f"not a peer id (bad character {char!r}): {text!r:.80}")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    raw = b"\x00" * zeros + body
    if not (len(raw) == 38 and raw.startswith(ED25519_PREFIX)) and not (
        len(raw) == 34 and raw.startswith(_SHA256_PREFIX)
    ):
        raise CryptoError(f"not a peer id (neither Ed25519 nor sha2-256): {text!r:.80}")
    return raw


def ed25519_peer_id(public_key: bytes) -> bytes:
    """The binary peer id of a raw 32-byte Ed25519 public key."""
    if type(public_key) is not bytes or len(public_key) != 32:
        raise CryptoError(f"an Ed25519 public key is 32 bytes, not {public_key!r:.80}")
    return ED25519_PREFIX + public_key


def ed25519_key_of(peer_id: bytes) -> bytes | None:
    """The raw Ed25519 key an Ed25519 peer id holds, or None for another kind of id."""
    if len(peer_id) == 38 and peer_id.startswith(ED25519_PREFIX):
        return peer_id[len(ED25519_PREFIX):]
    return None
