"""The Signal Double Ratchet, sans-IO.

This follows https://signal.org/docs/specifications/doubleratchet/ (without
header encryption), with these concrete choices:

* DH: X25519.  A peer's ratchet public key travels in every message header.
* ``KDF_RK(rk, dh_out)``: ``HKDF-SHA256(dh_out, salt=rk,
  info=b"strangers/v1/ratchet-root", 64)``, split into the new root key (first
  32 bytes) and the new chain key (last 32 bytes).
* ``KDF_CK(ck)``: message key ``HMAC-SHA256(ck, 0x01)``, next chain key
  ``HMAC-SHA256(ck, 0x02)``.
* A message key ``mk`` is expanded by ``HKDF-SHA256(mk, salt=32 zero bytes,
  info=b"strangers/v1/message-key", 44)`` into a 32-byte ChaCha20-Poly1305
  key and a 12-byte nonce; every message key is used for exactly one message.
* The AEAD associated data is the caller's associated data (the handshake
  transcript hash) followed by the 40-byte header ``dh || pn || n``
  (:meth:`Header.to_bytes`), so a header cannot be altered in transit.
* ``MAX_SKIP`` bounds the message keys skipped in one chain in one step;
  ``MAX_SKIPPED_KEYS`` bounds the store of skipped keys (oldest evicted).

Who may send first.  The initiator performs a DH ratchet step to the
responder's ratchet key at construction, so it can send at once.  The
responder has no sending chain until it receives a message carrying the
initiator's ratchet key: :attr:`DoubleRatchet.can_send` is False and
:meth:`DoubleRatchet.encrypt` raises :class:`LocalProtocolError` until its
first successful :meth:`DoubleRatchet.decrypt`.  The chat protocol therefore
has the initiator send an empty "ready" message right after the handshake.

Decryption is transactional: every candidate state is computed on copies and
committed only once the AEAD tag verified, so a forged, tampered, replayed or
out-of-bounds message raises :class:`CryptoError` and leaves the ratchet
exactly as it was.  (It may still have drawn bytes from ``rng``.)

What is protected.  Message keys are deleted as soon as they are used, and
chain keys are replaced at every message, so stealing a ratchet's state does
not reveal messages it already decrypted (forward secrecy); each change of
speaker mixes a fresh X25519 exchange into the root key, so a stolen state
stops working once both sides have taken a new DH step (post-compromise
security).  What is not: keys of skipped messages still in the store (up to
``MAX_SKIPPED_KEYS``, until they arrive or are evicted) and the current
chain keys are exposed by a state compromise; message lengths, counts,
timing and the ratchet public keys in headers are visible to the network;
message loss is not detected beyond the replay and ordering rules above.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.errors import CryptoError, LocalProtocolError

from .primitives import (
    AEAD_KEY_SIZE,
    LABEL_MESSAGE_KEY,
    LABEL_RATCHET_ROOT,
    X25519_KEY_SIZE,
    Rng,
    aead_decrypt,
    aead_encrypt,
    hkdf,
    hmac_sha256,
    x25519,
    x25519_keypair,
)

__all__ = [
    "HEADER_SIZE",
    "MAX_SKIP",
    "MAX_SKIPPED_KEYS",
    "DoubleRatchet",
    "Header",
    "RatchetStatistics",
]

#: Most message keys skipped in one chain in one step; messages further ahead are rejected.
MAX_SKIP = 256
#: Bound of the skipped-message-key store; the oldest keys are evicted first.
MAX_SKIPPED_KEYS = 1024
#: How many retired remote ratchet keys are remembered to name replays from old chains.
_RETIRED_CHAINS_KEPT = 64

HEADER_SIZE = X25519_KEY_SIZE + 4 + 4
_COUNTER_LIMIT = 2**32
_KEY_SIZE = 32
_MESSAGE_KEY_ZERO_SALT = bytes(32)


@dataclass(frozen=True)
class Header:
    """The cleartext header of a ratchet message."""

    dh: bytes
    """The sender's current 32-byte X25519 ratchet public key."""
    pn: int
    """Number of messages in the sender's previous sending chain."""
    n: int
    """Number of this message in the sender's current sending chain."""

    def __post_init__(self) -> None:
        if not isinstance(self.dh, bytes) or len(self.dh) != X25519_KEY_SIZE:
            raise CryptoError(
                f"a ratchet header key must be {X25519_KEY_SIZE} bytes, got {self.dh!r}"
            )
        for name, value in (("pn", self.pn), ("n", self.n)):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value < _COUNTER_LIMIT
            ):
                raise CryptoError(
                    f"a ratchet header {name} must be an integer from 0 to 2**32 - 1, "
                    f"got {value!r}"
                )

    def to_bytes(self) -> bytes:
        """The canonical 40-byte encoding: ``dh || pn (u32 BE) || n (u32 BE)``."""
        return self.dh + struct.pack(">II", self.pn, self.n)

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse :meth:`to_bytes` output; raises :class:`CryptoError` on a wrong length."""
        if len(data) != HEADER_SIZE:
            raise CryptoError(
                f"a ratchet header is {HEADER_SIZE} bytes, got {len(data)}: {data!r}"
            )
        pn, n = struct.unpack(">II", data[X25519_KEY_SIZE:])
        return cls(dh=bytes(data[:X25519_KEY_SIZE]), pn=pn, n=n)


@dataclass(frozen=True)
class RatchetStatistics:
    """A snapshot of a ratchet's counters, for introspection and tests."""

    sent: int
    """Messages encrypted."""
    received: int
    """Messages successfully decrypted."""
    skipped_keys_stored: int
    """Keys of skipped (not yet arrived) messages currently held."""
    dh_ratchet_steps: int
    """DH ratchet steps taken on receiving a new remote ratchet key (the
    initiator's step at construction is not counted)."""


@dataclass(frozen=True)
class _State:
    """The whole ratchet state; replaced, never mutated (``skipped`` included)."""

    root_key: bytes
    sending: tuple[X25519PrivateKey, bytes]
    remote: bytes | None
    sending_chain: bytes | None
    receiving_chain: bytes | None = None
    sent_in_chain: int = 0
    received_in_chain: int = 0
    previous_chain_length: int = 0
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    retired: tuple[bytes, ...] = ()
    sent: int = 0
    received: int = 0
    dh_ratchet_steps: int = 0


def _kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    okm = hkdf(dh_out, salt=root_key, info=LABEL_RATCHET_ROOT, length=2 * _KEY_SIZE)
    return okm[:_KEY_SIZE], okm[_KEY_SIZE:]


def _kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """``(next chain key, message key)``."""
    return hmac_sha256(chain_key, b"\x02"), hmac_sha256(chain_key, b"\x01")


def _seal(message_key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    okm = _expand(message_key)
    return aead_encrypt(okm[:AEAD_KEY_SIZE], okm[AEAD_KEY_SIZE:], plaintext, ad)


def _open(message_key: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    okm = _expand(message_key)
    return aead_decrypt(okm[:AEAD_KEY_SIZE], okm[AEAD_KEY_SIZE:], ciphertext, ad)


def _expand(message_key: bytes) -> bytes:
    return hkdf(message_key, salt=_MESSAGE_KEY_ZERO_SALT, info=LABEL_MESSAGE_KEY, length=44)


def _check_root_key(root_key: bytes) -> None:
    if not isinstance(root_key, bytes) or len(root_key) != _KEY_SIZE:
        raise CryptoError(f"a ratchet root key must be {_KEY_SIZE} bytes, got {root_key!r}")


class DoubleRatchet:
    """One side of a Double Ratchet session.  Build it with :meth:`initiator`
    or :meth:`responder` (the handshake does this); not thread-safe."""

    def __init__(self, state: _State, rng: Rng) -> None:
        self._state = state
        self._rng = rng

    @classmethod
    def initiator(cls, root_key: bytes, remote_ratchet_pub: bytes, rng: Rng) -> DoubleRatchet:
        """The side that knows the peer's ratchet key first; it can send at once."""
        _check_root_key(root_key)
        sending = x25519_keypair(rng)
        root, chain = _kdf_rk(root_key, x25519(sending[0], remote_ratchet_pub))
        state = _State(root_key=root, sending=sending, remote=remote_ratchet_pub,
                       sending_chain=chain)
        return cls(state, rng)

    @classmethod
    def responder(
        cls, root_key: bytes, local_ratchet: tuple[X25519PrivateKey, bytes], rng: Rng
    ) -> DoubleRatchet:
        """The side whose key pair *local_ratchet* the initiator ratchets to;
        it can send only after its first successful :meth:`decrypt`."""
        _check_root_key(root_key)
        state = _State(root_key=root_key, sending=local_ratchet, remote=None, sending_chain=None)
        return cls(state, rng)

    @property
    def can_send(self) -> bool:
        """Whether :meth:`encrypt` may be called (False for a responder until
        its first successful :meth:`decrypt`)."""
        return self._state.sending_chain is not None

    def statistics(self) -> RatchetStatistics:
        """Counters describing this ratchet (no secrets)."""
        state = self._state
        return RatchetStatistics(
            sent=state.sent,
            received=state.received,
            skipped_keys_stored=len(state.skipped),
            dh_ratchet_steps=state.dh_ratchet_steps,
        )

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> tuple[Header, bytes]:
        """Encrypt the next message of our sending chain."""
        state = self._state
        if state.sending_chain is None:
            raise LocalProtocolError(
                "cannot encrypt yet: the responder's ratchet can send only after it "
                "has decrypted the initiator's first message"
            )
        header = Header(dh=state.sending[1], pn=state.previous_chain_length, n=state.sent_in_chain)
        next_chain, message_key = _kdf_ck(state.sending_chain)
        ciphertext = _seal(message_key, plaintext, associated_data + header.to_bytes())
        self._state = dataclasses.replace(
            state,
            sending_chain=next_chain,
            sent_in_chain=state.sent_in_chain + 1,
            sent=state.sent + 1,
        )
        return header, ciphertext

    def decrypt(self, header: Header, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Decrypt a message; on any failure raise :class:`CryptoError` and change nothing."""
        state = self._state
        ad = associated_data + header.to_bytes()
        skipped_key = state.skipped.get((header.dh, header.n))
        if skipped_key is not None:
            plaintext = _open(skipped_key, ciphertext, ad)
            skipped = dict(state.skipped)
            del skipped[(header.dh, header.n)]
            self._state = dataclasses.replace(
                state, skipped=skipped, received=state.received + 1
            )
            return plaintext
        if header.dh in state.retired or (
            header.dh == state.remote and header.n < state.received_in_chain
        ):
            raise CryptoError(
                f"message {header.n} was replayed or is too old: its key was already "
                "used or discarded"
            )
        skipped = dict(state.skipped)
        if header.dh != state.remote:
            state = _skip(state, header.pn, skipped)
            state = self._dh_ratchet(state, header)
        state = _skip(state, header.n, skipped)
        if state.receiving_chain is None:
            # The initiator knows the responder's handshake key from the start
            # but receives on it only after a DH step; the peer never sends on it.
            raise CryptoError(
                f"message {header.n} names the ratchet key {header.dh.hex()!r}, for which"
                " there is no receiving chain: it is forged"
            )
        next_chain, message_key = _kdf_ck(state.receiving_chain)
        plaintext = _open(message_key, ciphertext, ad)
        _evict(skipped)
        self._state = dataclasses.replace(
            state,
            receiving_chain=next_chain,
            received_in_chain=state.received_in_chain + 1,
            skipped=skipped,
            received=state.received + 1,
        )
        return plaintext

    def _dh_ratchet(self, state: _State, header: Header) -> _State:
        """Signal's DHRatchet: a receiving chain for *header.dh*, then a new
        sending key pair and sending chain."""
        root, receiving_chain = _kdf_rk(state.root_key, x25519(state.sending[0], header.dh))
        sending = x25519_keypair(self._rng)
        root, sending_chain = _kdf_rk(root, x25519(sending[0], header.dh))
        retired = state.retired if state.remote is None else (*state.retired, state.remote)
        return dataclasses.replace(
            state,
            root_key=root,
            sending=sending,
            remote=header.dh,
            sending_chain=sending_chain,
            receiving_chain=receiving_chain,
            previous_chain_length=state.sent_in_chain,
            sent_in_chain=0,
            received_in_chain=0,
            retired=retired[-_RETIRED_CHAINS_KEPT:],
            dh_ratchet_steps=state.dh_ratchet_steps + 1,
        )


def _skip(state: _State, until: int, skipped: dict[tuple[bytes, int], bytes]) -> _State:
    """Store the keys of the current receiving chain's messages before *until*
    into *skipped* (a private copy); return the advanced state."""
    if until - state.received_in_chain > MAX_SKIP:
        raise CryptoError(
            f"message {until} is too far ahead: more than {MAX_SKIP} messages "
            f"after message {state.received_in_chain} would have to be skipped"
        )
    if state.receiving_chain is None or state.remote is None:
        return state
    chain = state.receiving_chain
    number = state.received_in_chain
    while number < until:
        chain, skipped[(state.remote, number)] = _kdf_ck(chain)
        number += 1
    return dataclasses.replace(state, receiving_chain=chain, received_in_chain=number)


def _evict(skipped: dict[tuple[bytes, int], bytes]) -> None:
    """Drop the oldest skipped keys beyond ``MAX_SKIPPED_KEYS``."""
    while len(skipped) > MAX_SKIPPED_KEYS:
        del skipped[next(iter(skipped))]
