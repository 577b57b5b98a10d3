"""The authenticated key exchange that opens every chat, sans-IO.

Two matched strangers each already own a libp2p identity: an Ed25519 key
pair, whose public half the other learned from the libp2p connection.  The
handshake turns those identities and one fresh X25519 key pair per side into
a Double Ratchet session whose keys only the two of them know.

Messages.  Each side sends exactly one :class:`Hello`::

    version   = 1
    match_id  = the 16-byte identifier of the match both sides agreed on
    ephemeral = a fresh 32-byte X25519 public key (new for every chat)
    signature = Ed25519 signature, by the sender's identity key, of
        b"strangers/v1/hello" || sender role (b"I" or b"R") || match_id
        || ephemeral || sender identity public key || receiver identity public key

The initiator is the node that proposed the match and opened the chat
stream; the other is the responder.  All signed fields have a fixed length,
so the concatenation is unambiguous.  The signature makes the hello useless
anywhere else: it cannot be replayed into another match (``match_id``),
reflected back to its sender (the role differs, and the receiver also
refuses its own ephemeral key), or spliced between other peers by a man in
the middle or a relay (both identities are bound).  The version is bound by
the ``v1`` in the label; only version 1 is accepted.

On receiving the peer's hello, a side checks that its ``match_id`` is ours,
that its ephemeral key is not our own, and the signature under the peer's
identity with the peer's role; then::

    shared     = X25519(our ephemeral, their ephemeral)   (low-order points rejected)
    transcript = SHA-256(b"strangers/v1/transcript" || match_id
                 || initiator identity || responder identity
                 || initiator ephemeral || responder ephemeral)
    root       = HKDF-SHA256(shared, salt=transcript, info=b"strangers/v1/root", 32)
    safety     = HKDF-SHA256(shared, salt=transcript, info=b"strangers/v1/safety", 8)

The transcript is ordered by role, so both sides compute the same one; it is
the associated data of every ratchet message.  The safety code is the
big-endian integer ``safety`` modulo 10**15, written as 15 zero-padded digits
in three groups of five ("01234 56789 01234"); users who read the same code
to each other over another channel know that no one sits between them (the
modulo bias, under one part in 18,000, is negligible).

Ratchet initialisation, as in Signal with the responder's ephemeral playing
Bob's signed prekey: the responder's handshake key pair becomes its initial
ratchet key pair (``DoubleRatchet.responder``), and the initiator generates a
fresh ratchet key pair and performs the first DH ratchet step to the
responder's ephemeral (``DoubleRatchet.initiator``).  So the initiator can
encrypt at once, while the responder's ``can_send`` is False until it has
decrypted a first message: the initiator sends an empty "ready" message right
after the handshake, and either user may then speak first.

A :class:`Handshake` is single-use: after :meth:`Handshake.receive_hello`
has been called once, successfully or not, further calls raise
:class:`LocalProtocolError`; a failed handshake must be abandoned.  Bad
values (wrong lengths, versions, signatures...) raise :class:`CryptoError`.

What the handshake does not hide: both identities are known to the libp2p
connection anyway, and the hellos (ephemeral keys, match id) travel in the
clear inside that connection.  Forward secrecy of the session comes from the
ephemeral keys, which the handshake forgets once the session keys exist.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.errors import CryptoError, LocalProtocolError

from .primitives import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    LABEL_HELLO,
    LABEL_ROOT,
    LABEL_SAFETY,
    LABEL_TRANSCRIPT,
    X25519_KEY_SIZE,
    Rng,
    ed25519_sign,
    ed25519_verify,
    hkdf,
    sha256,
    x25519,
    x25519_keypair,
)
from .ratchet import DoubleRatchet

__all__ = ["HELLO_VERSION", "MATCH_ID_SIZE", "Handshake", "Hello", "Role", "SessionKeys"]

HELLO_VERSION = 1
MATCH_ID_SIZE = 16
_SAFETY_DIGITS = 15
_SAFETY_CODE = re.compile(r"\d{5} \d{5} \d{5}")


class Role(enum.Enum):
    """Which side of the chat a node plays."""

    INITIATOR = "initiator"
    """The node that proposed the match and opened the chat stream."""
    RESPONDER = "responder"
    """The node that accepted the match and the incoming chat stream."""

    @property
    def label(self) -> bytes:
        """The one-byte role label that goes into signatures."""
        return b"I" if self is Role.INITIATOR else b"R"

    @property
    def peer(self) -> Role:
        """The other side's role."""
        return Role.RESPONDER if self is Role.INITIATOR else Role.INITIATOR


def _check_bytes(what: str, value: object, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise CryptoError(f"{what} must be {size} bytes, got {value!r}")


@dataclass(frozen=True)
class Hello:
    """The one handshake message each side sends."""

    version: int
    """Protocol version; must be 1."""
    match_id: bytes
    """The 16-byte identifier of the match."""
    ephemeral: bytes
    """A fresh 32-byte X25519 public key for this chat."""
    signature: bytes
    """64-byte Ed25519 signature by the sender's libp2p identity key."""

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or isinstance(self.version, bool):
            raise CryptoError(f"the hello version must be an integer, got {self.version!r}")
        if self.version != HELLO_VERSION:
            raise CryptoError(
                f"unsupported handshake version {self.version!r} (this node speaks "
                f"version {HELLO_VERSION}); one of you needs to upgrade strangers"
            )
        _check_bytes("the hello match id", self.match_id, MATCH_ID_SIZE)
        _check_bytes("the hello ephemeral key", self.ephemeral, X25519_KEY_SIZE)
        _check_bytes("the hello signature", self.signature, ED25519_SIGNATURE_SIZE)


@dataclass(frozen=True)
class SessionKeys:
    """What a completed handshake yields."""

    ratchet: DoubleRatchet
    """The Double Ratchet for this role, ready to use."""
    associated_data: bytes
    """The 32-byte transcript hash: the associated data of every ratchet message."""
    safety_code: str
    """15 digits in three groups of five, identical on both sides."""

    def __post_init__(self) -> None:
        _check_bytes("the session associated data", self.associated_data, 32)
        if not isinstance(self.safety_code, str) or not _SAFETY_CODE.fullmatch(
            self.safety_code
        ):
            raise CryptoError(
                f"a safety code is three groups of five digits, got {self.safety_code!r}"
            )


def _signed_payload(
    role: Role, match_id: bytes, ephemeral: bytes, sender: bytes, receiver: bytes
) -> bytes:
    return LABEL_HELLO + role.label + match_id + ephemeral + sender + receiver


def _format_safety_code(raw: bytes) -> str:
    digits = f"{int.from_bytes(raw, 'big') % 10**_SAFETY_DIGITS:0{_SAFETY_DIGITS}d}"
    return " ".join(digits[i : i + 5] for i in range(0, _SAFETY_DIGITS, 5))


class Handshake:
    """One side of the handshake: send :meth:`hello`, feed the peer's hello
    to :meth:`receive_hello`, get :class:`SessionKeys`."""

    def __init__(
        self,
        *,
        role: Role,
        match_id: bytes,
        local_identity: Ed25519PrivateKey,
        remote_identity: bytes,
        rng: Rng,
    ) -> None:
        if not isinstance(role, Role):
            raise CryptoError(f"the handshake role must be a Role, got {role!r}")
        _check_bytes("the match id", match_id, MATCH_ID_SIZE)
        if not isinstance(local_identity, Ed25519PrivateKey):
            raise CryptoError(
                f"the local identity must be an Ed25519 private key, got {local_identity!r}"
            )
        _check_bytes("the remote identity key", remote_identity, ED25519_PUBLIC_KEY_SIZE)
        self._role = role
        self._match_id = match_id
        self._local_identity = local_identity.public_key().public_bytes_raw()
        self._remote_identity = remote_identity
        self._rng = rng
        self._ephemeral: tuple[X25519PrivateKey, bytes] | None = x25519_keypair(rng)
        ephemeral = self._ephemeral[1]
        payload = _signed_payload(
            role, match_id, ephemeral, self._local_identity, remote_identity
        )
        self._hello = Hello(
            version=HELLO_VERSION,
            match_id=match_id,
            ephemeral=ephemeral,
            signature=ed25519_sign(local_identity, payload),
        )

    @property
    def role(self) -> Role:
        """The role this side plays."""
        return self._role

    def hello(self) -> Hello:
        """Our hello, to send to the peer (the same object at every call)."""
        return self._hello

    def receive_hello(self, hello: Hello) -> SessionKeys:
        """Verify the peer's *hello* and derive the session.

        Raises :class:`CryptoError` if the hello is not for this match, is our
        own, or is not signed by the expected peer in the expected role, and
        :class:`LocalProtocolError` if called more than once.
        """
        if self._ephemeral is None:
            raise LocalProtocolError(
                "this handshake already received a hello; start a new one for a new chat"
            )
        ephemeral, self._ephemeral = self._ephemeral, None
        if hello.match_id != self._match_id:
            raise CryptoError(
                f"the hello is for match {hello.match_id.hex()!r}, "
                f"not for this match {self._match_id.hex()!r}"
            )
        if hello.ephemeral == ephemeral[1]:
            raise CryptoError("the peer sent back our own hello (a reflection attack)")
        peer = self._role.peer
        payload = _signed_payload(
            peer, hello.match_id, hello.ephemeral, self._remote_identity, self._local_identity
        )
        try:
            ed25519_verify(self._remote_identity, hello.signature, payload)
        except CryptoError:
            raise CryptoError(
                f"the hello is not signed by the expected {peer.value} "
                f"{self._remote_identity.hex()!r} for this chat; someone may be "
                "tampering with the connection"
            ) from None
        shared = x25519(ephemeral[0], hello.ephemeral)
        if self._role is Role.INITIATOR:
            identities = self._local_identity + self._remote_identity
            ephemerals = ephemeral[1] + hello.ephemeral
        else:
            identities = self._remote_identity + self._local_identity
            ephemerals = hello.ephemeral + ephemeral[1]
        transcript = sha256(LABEL_TRANSCRIPT + self._match_id + identities + ephemerals)
        root = hkdf(shared, salt=transcript, info=LABEL_ROOT, length=32)
        safety = hkdf(shared, salt=transcript, info=LABEL_SAFETY, length=8)
        if self._role is Role.INITIATOR:
            ratchet = DoubleRatchet.initiator(root, remote_ratchet_pub=hello.ephemeral, rng=self._rng)
        else:
            ratchet = DoubleRatchet.responder(root, local_ratchet=ephemeral, rng=self._rng)
        return SessionKeys(
            ratchet=ratchet,
            associated_data=transcript,
            safety_code=_format_safety_code(safety),
        )
