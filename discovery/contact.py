"""Keep in touch, by mutual consent (``docs/protocol.md`` §6.12), pure.

Inside one chat each side may send :class:`~strangers.crypto.frames.Keep`
("I would like to stay reachable"). It reveals nothing long-term. Only when a
side has both sent and received ``Keep`` does it send
:class:`~strangers.crypto.frames.Contact`: a new Ed25519 public key made for
this contact alone (the identity it will use to find the other again) and 32
random bytes, its half of the one-time secret. With both ``Contact`` messages
each side holds the same :class:`AgreedContact`: the other's long-term peer
id, and the secret

    secret = SHA-256("strangers/v1/contact" || min(s_a, s_b) || max(s_a, s_b))

from which both derive the rendezvous (:func:`rendezvous_interest`): an
interest name nobody else can guess, whose topic keys (``topics.py``) both
announce and look up later, and rotate with the epoch like every key.

If either side never sends ``Keep``, or the chat ends first, the other learns
nothing but that an offer was made. A ``Contact`` before both ``Keep`` is a
protocol error, as is a second one.

:class:`KeepInTouch` is the machine: :meth:`offer` when the user says
``/keep``, :meth:`receive` for each Keep or Contact from the stranger; each
returns the messages to send. Randomness comes in as ``rng``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from strangers.crypto.frames import CONTACT_SECRET_SIZE, Contact, Keep
from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.errors import LocalProtocolError, RemoteProtocolError

SECRET_LABEL = b"strangers/v1/contact"
RENDEZVOUS_LABEL = b"strangers/v1/rendezvous"
RENDEZVOUS_PREFIX = "contact-"


class KeepState(enum.Enum):
    """Where the offer stands in this chat."""

    NONE = "none"
    """Nobody offered."""
    OFFERED = "offered"
    """We offered; the stranger has not (yet)."""
    ASKED = "asked"
    """The stranger offered; we have not (yet)."""
    EXCHANGING = "exchanging"
    """Both offered; our Contact is out, the stranger's is awaited."""
    AGREED = "agreed"
    """Both Contact messages crossed: the contact is known."""


@dataclass(frozen=True)
class AgreedContact:
    """What each side keeps: our key for this contact, the other's id, the shared secret."""

    our_key: bytes
    """Our new long-term Ed25519 private key (32 bytes), made for this contact only."""
    their_peer_id: str
    """The other's long-term peer id (base58), the one to expect when we meet again."""
    secret: bytes


def _public(private: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(private).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def shared_secret(ours: bytes, theirs: bytes) -> bytes:
    """The one-time secret both sides compute from the two halves."""
    low, high = sorted((ours, theirs))
    return hashlib.sha256(SECRET_LABEL + low + high).digest()


def rendezvous_interest(secret: bytes) -> str:
    """The interest both look each other up under (canonical: lower-case hex, 56 characters)."""
    tag = hmac.new(secret, RENDEZVOUS_LABEL, hashlib.sha256).hexdigest()[:48]
    return RENDEZVOUS_PREFIX + tag


class KeepInTouch:
    """The mutual-consent exchange of one chat."""

    def __init__(self, rng: Callable[[int], bytes]) -> None:
        self._rng = rng
        self.state = KeepState.NONE
        self._key: bytes | None = None
        self._half: bytes | None = None
        self.contact: AgreedContact | None = None

    def offer(self) -> list[Keep | Contact]:
        """The user wants to keep in touch: what to send."""
        if self.state is KeepState.NONE:
            self.state = KeepState.OFFERED
            return [Keep()]
        if self.state is KeepState.ASKED:
            return [Keep(), self._our_contact()]
        raise LocalProtocolError("you already offered to keep in touch with this stranger")

    def receive(self, message: Keep | Contact) -> list[Keep | Contact]:
        """A Keep or Contact from the stranger: what to send back."""
        if isinstance(message, Keep):
            if self.state is KeepState.NONE:
                self.state = KeepState.ASKED
                return []
            if self.state is KeepState.OFFERED:
                return [self._our_contact()]
            raise RemoteProtocolError("the stranger offered to keep in touch twice")
        if self.state is not KeepState.EXCHANGING or self._key is None or self._half is None:
            raise RemoteProtocolError(
                f"the stranger sent a contact while the offer was {self.state.value}")
        if message.public_key == _public(self._key):
            raise RemoteProtocolError("the stranger sent our own contact key back")
        self.contact = AgreedContact(
            our_key=self._key,
            their_peer_id=peer_id_to_text(ed25519_peer_id(message.public_key)),
            secret=shared_secret(self._half, message.secret))
        self.state = KeepState.AGREED
        return []

    def _our_contact(self) -> Contact:
        self._key = self._rng(32)
        self._half = self._rng(CONTACT_SECRET_SIZE)
        self.state = KeepState.EXCHANGING
        return Contact(_public(self._key), self._half)
