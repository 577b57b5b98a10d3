"""A price on identities and on proposals: hashcash over SHA-256, pure.

Two proofs, both "find a nonce whose hash starts with ``bits`` zero bits"
(docs/protocol.md §5.9 gives the byte layouts and a worked example):

* the *identity proof* binds a nonce to a peer id::

      digest = SHA-256("strangers/v1/identity-pow\\0" || u8 len(peer_id) || peer_id || u64 nonce)

  Minting one at :data:`IDENTITY_BITS` costs about 2**21 hashes (a few
  CPU-seconds in Python); checking it costs one hash.  It makes every fresh
  identity cost something, so that a block (which is per identity) means
  something.

* the *stamp* binds one proposal to its proposer, its candidate, its match id
  and the time (whole Unix seconds)::

      digest = SHA-256("strangers/v1/stamp\\0" || u8 len(proposer) || proposer
                       || u8 len(candidate) || candidate || match_id (16 bytes)
                       || u64 time || u64 nonce)

  Minting one at :data:`STAMP_BITS` costs about 4,000 hashes (milliseconds);
  a stamp is accepted for :data:`STAMP_WINDOW` seconds either side of the
  verifier's clock.  It makes spraying thousands of strangers cost CPU, and a
  stamp cannot be reused for another candidate or another proposal.

Integers are big-endian.  Everything here is synchronous and pure: the caller
passes the time, and mints in slices (``start``, ``count``) so that it can
stop between two of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from strangers.errors import ConfigError, CryptoError

IDENTITY_DOMAIN = b"strangers/v1/identity-pow\x00"
STAMP_DOMAIN = b"strangers/v1/stamp\x00"

IDENTITY_BITS = 21
"""The network-wide difficulty of an identity proof: nodes refuse proposals
(and acceptances) from identities whose proof has fewer leading zero bits.
The one place it is set; ``STRANGERS_POW_BITS`` lowers it for tests only."""
STAMP_BITS = 12
"""The difficulty of a per-proposal stamp."""
STAMP_WINDOW = 120
"""A stamp's time may differ from the verifier's clock by this many seconds."""
MAX_BITS = 40
NONCE_BYTES = 8
MATCH_ID_BYTES = 16
MAX_PEER_ID_BYTES = 64
POW_BITS_ENV = "STRANGERS_POW_BITS"
"""Test-only: the identity difficulty a node mints and demands (0 turns the
price off: proposals without proofs or stamps are then accepted)."""

_U64 = 1 << 64


def _check_bits(bits: object) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 0 <= bits <= MAX_BITS:
        raise ConfigError(f"proof-of-work difficulty must be 0..{MAX_BITS} bits, got {bits!r}")
    return bits


def _check_peer(peer_id: object, what: str) -> bytes:
    if not isinstance(peer_id, bytes) or not 0 < len(peer_id) <= MAX_PEER_ID_BYTES:
        raise CryptoError(f"{what} must be 1..{MAX_PEER_ID_BYTES} bytes, got {peer_id!r:.80}")
    return peer_id


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` starts with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _search(prefix: bytes, bits: int, start: int, count: int) -> int | None:
    if not isinstance(start, int) or not isinstance(count, int) or start < 0 or count < 0:
        raise CryptoError(f"bad nonce range {start!r}+{count!r}")
    base = hashlib.sha256(prefix)
    limit = 1 << (256 - bits)
    from_bytes = int.from_bytes
    for nonce in range(start, min(start + count, _U64)):
        hasher = base.copy()
        hasher.update(nonce.to_bytes(NONCE_BYTES, "big"))
        if from_bytes(hasher.digest(), "big") < limit:
            return nonce
    return None


# -- identity proofs ------------------------------------------------------------------------

def identity_prefix(peer_id: bytes) -> bytes:
    """What is hashed before the nonce, for ``peer_id`` (its libp2p bytes)."""
    peer = _check_peer(peer_id, "peer id")
    return IDENTITY_DOMAIN + bytes([len(peer)]) + peer


def identity_digest(peer_id: bytes, nonce: int) -> bytes:
    return hashlib.sha256(identity_prefix(peer_id) + nonce.to_bytes(NONCE_BYTES, "big")).digest()


def mint_identity(peer_id: bytes, bits: int, *, start: int = 0, count: int = _U64) -> int | None:
    """The first nonce in ``[start, start + count)`` that proves ``peer_id`` at ``bits``, or None."""
    return _search(identity_prefix(peer_id), _check_bits(bits), start, count)


def identity_valid(peer_id: bytes, proof: object, bits: int) -> bool:
    """Whether ``proof`` (the nonce's 8 bytes, as sent) proves ``peer_id`` at ``bits`` or more."""
    _check_bits(bits)
    if not isinstance(proof, bytes) or len(proof) != NONCE_BYTES:
        return False
    try:
        digest = identity_digest(peer_id, int.from_bytes(proof, "big"))
    except CryptoError:
        return False
    return leading_zero_bits(digest) >= bits


def encode_nonce(nonce: int) -> bytes:
    if not isinstance(nonce, int) or not 0 <= nonce < _U64:
        raise CryptoError(f"nonce out of range: {nonce!r:.40}")
    return nonce.to_bytes(NONCE_BYTES, "big")


# -- stamps ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stamp:
    """A per-proposal proof of work: the time it claims and its nonce."""

    time: int
    nonce: int

    def __post_init__(self) -> None:
        for name in ("time", "nonce"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _U64:
                raise CryptoError(f"stamp {name} out of range: {value!r:.40}")

    def to_wire(self) -> list[object]:
        """As sent in a proposal: ``[time, nonce (8 bytes)]``."""
        return [self.time, encode_nonce(self.nonce)]

    @classmethod
    def from_wire(cls, value: object) -> Stamp:
        """From a proposal's ``"s"`` field; CryptoError if malformed."""
        if (not isinstance(value, list) or len(value) != 2 or type(value[0]) is not int
                or not isinstance(value[1], bytes) or len(value[1]) != NONCE_BYTES):
            raise CryptoError(f"bad stamp {value!r:.80}")
        return cls(value[0], int.from_bytes(value[1], "big"))


def stamp_prefix(proposer: bytes, candidate: bytes, match_id: bytes, time: int) -> bytes:
    proposer = _check_peer(proposer, "proposer id")
    candidate = _check_peer(candidate, "candidate id")
    if not isinstance(match_id, bytes) or len(match_id) != MATCH_ID_BYTES:
        raise CryptoError(f"match id must be {MATCH_ID_BYTES} bytes, got {match_id!r:.80}")
    if not isinstance(time, int) or not 0 <= time < _U64:
        raise CryptoError(f"stamp time out of range: {time!r:.40}")
    return (STAMP_DOMAIN + bytes([len(proposer)]) + proposer + bytes([len(candidate)])
            + candidate + match_id + time.to_bytes(8, "big"))


def mint_stamp(proposer: bytes, candidate: bytes, match_id: bytes, now: float,
               bits: int = STAMP_BITS) -> Stamp:
    """A stamp for one proposal at Unix time ``now`` (milliseconds of work at STAMP_BITS)."""
    stamp = search_stamp(proposer, candidate, match_id, now, bits, 0, _U64)
    if stamp is None:  # pragma: no cover - 2**64 nonces always hold one
        raise CryptoError("no stamp found")
    return stamp


def search_stamp(proposer: bytes, candidate: bytes, match_id: bytes, now: float, bits: int,
                 start: int, count: int) -> Stamp | None:
    """The stamp :func:`mint_stamp` finds, if its nonce is in ``start .. start + count``.

    Searched slice by slice (``start`` 0, then ``count``, ...) it gives the
    very stamp ``mint_stamp`` does, for callers that must not hold the CPU
    for the whole search (``node/stamping.py``).
    """
    time = int(now)
    nonce = _search(stamp_prefix(proposer, candidate, match_id, time), _check_bits(bits), start, count)
    return None if nonce is None else Stamp(time, nonce)


def stamp_valid(stamp: Stamp, proposer: bytes, candidate: bytes, match_id: bytes, now: float,
                bits: int = STAMP_BITS) -> bool:
    """Whether ``stamp`` is fresh (within STAMP_WINDOW of ``now``) and proves this proposal."""
    _check_bits(bits)
    if abs(stamp.time - now) > STAMP_WINDOW:
        return False
    try:
        prefix = stamp_prefix(proposer, candidate, match_id, stamp.time)
    except CryptoError:
        return False
    digest = hashlib.sha256(prefix + stamp.nonce.to_bytes(NONCE_BYTES, "big")).digest()
    return leading_zero_bits(digest) >= bits


# -- difficulty -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Difficulty:
    """The bits a node mints and demands."""

    identity: int = IDENTITY_BITS
    stamp: int = STAMP_BITS

    def __post_init__(self) -> None:
        _check_bits(self.identity)
        _check_bits(self.stamp)

    @property
    def required(self) -> bool:
        """False only in tests that turned the price off (bits 0)."""
        return self.identity > 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Difficulty:
        """The network's difficulty, or the lower one ``STRANGERS_POW_BITS`` sets (tests)."""
        text = environ.get(POW_BITS_ENV, "").strip()
        if not text:
            return cls()
        try:
            bits = int(text)
        except ValueError:
            raise ConfigError(f"{POW_BITS_ENV} must be a number of bits, got {text!r}") from None
        _check_bits(bits)
        return cls(identity=bits, stamp=min(STAMP_BITS, bits))
