"""The authenticated key exchange that opens every chat (version 2), sans-IO.

Two matched strangers each already own a libp2p identity: an Ed25519 key
pair, whose public half the other learned from the libp2p connection.  The
handshake turns those identities and one fresh X25519 key pair per side into
a Double Ratchet session whose keys only the two of them know, and a safety
code the users may compare out of band.

Notation: ``I`` is the initiator (it proposed the match and opened the chat
stream), ``R`` the responder; ``idI``, ``idR`` their raw 32-byte Ed25519
public keys; ``m`` the 16-byte match id; ``eI``, ``eR`` fresh X25519 public
keys; ``||`` concatenation.  All labels are ASCII.

Flow (commit, then reveal, then key confirmation)::

    I: Commit(m, c)                       ->
                                          <- R: Hello_R   (R sends nothing before a valid commit)
    I: Hello_I, Finished_I (then Ready)   ->
                                          <- R: Finished_R (R is established once Finished_I verified)
    I is established once Finished_R verified.

Values::

    c          = SHA-256("strangers/v2/commit" || m || idI || eI)
    sig_X      = Ed25519-Sign(X's identity key,
                   "strangers/v2/hello" || roleX || m || c || eX || idX || idOther)
                 (roleX = b"I" or b"R")
    shared     = X25519(own ephemeral private, other's ephemeral)   (all-zero rejected)
    transcript = SHA-256("strangers/v2/transcript" || m || idI || idR || c || eI || eR)
    root       = HKDF-SHA256(shared, salt=transcript, info="strangers/v2/root",     32)
    safety     = HKDF-SHA256(shared, salt=transcript, info="strangers/v2/safety",    8)
    confirm    = HKDF-SHA256(shared, salt=transcript, info="strangers/v2/finished", 64)
    finished_I = HMAC-SHA256(confirm[0:32],  "strangers/v2/finished" || b"I" || transcript)
    finished_R = HMAC-SHA256(confirm[32:64], "strangers/v2/finished" || b"R" || transcript)

Why this order.  Each side's ephemeral key is fixed before it sees the
other's: the initiator's by its commitment, the responder's by sending its
hello first.  A machine in the middle that plays both victims therefore
cannot choose its own ephemerals after seeing theirs to make the two safety
codes collide: each leg's code is determined by a value it fixed before the
victim's random ephemeral was revealed, so one attempt succeeds with
probability 10**-15 and a failed attempt is a chat in which the users see
different codes.  The finished MACs confirm that both sides derived the same
keys from the same transcript before either reports the chat established.

The API enforces the order: :meth:`Handshake.hello` of an initiator raises
:class:`LocalProtocolError` until the responder's hello was received (so no
caller can reveal ``eI`` early), a responder makes its hello only from a
valid commit, and a responder's finished exists only once the initiator's
verified.

A :class:`Handshake` is single-use: each step may be taken once, in order;
once a step failed, every further call raises :class:`LocalProtocolError`.
Bad values from the peer (wrong match, commitment, signature, finished MAC,
low-order key...) raise :class:`CryptoError`.  The safety code is the
big-endian integer ``safety`` modulo 10**15, written as 15 zero-padded digits
in three groups of five ("01234 56789 01234"; the modulo bias is under one
part in 18,000).

Ratchet initialisation (unchanged from version 1): the responder's handshake
key pair becomes its initial ratchet key pair, and the initiator makes a fresh
ratchet key pair and steps to ``eR``; ``transcript`` is the associated-data
prefix of every ratchet message.

What the handshake does not hide: both identities are known to the libp2p
connection anyway, and these frames travel in the clear inside it.  Forward
secrecy comes from the ephemeral keys, which the handshake forgets once the
session keys exist.
"""

from __future__ import annotations

import enum
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.errors import CryptoError, LocalProtocolError

from .primitives import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    LABEL_COMMIT,
    LABEL_FINISHED,
    LABEL_HELLO,
    LABEL_ROOT,
    LABEL_SAFETY,
    LABEL_TRANSCRIPT,
    X25519_KEY_SIZE,
    Rng,
    ed25519_sign,
    ed25519_verify,
    hkdf,
    hmac_sha256,
    sha256,
    x25519,
    x25519_keypair,
)
from .ratchet import DoubleRatchet
from .wire import brief

__all__ = [
    "COMMITMENT_SIZE",
    "FINISHED_SIZE",
    "HELLO_VERSION",
    "MATCH_ID_SIZE",
    "Commit",
    "Finished",
    "Handshake",
    "Hello",
    "Role",
    "SessionKeys",
    "format_safety_code",
]

#: The handshake version carried in commits and hellos.
HELLO_VERSION = 2
MATCH_ID_SIZE = 16
COMMITMENT_SIZE = 32
FINISHED_SIZE = 32
_TRANSCRIPT_SIZE = 32
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
        """The one-byte role label that goes into signatures and finished MACs."""
        return b"I" if self is Role.INITIATOR else b"R"

    @property
    def peer(self) -> Role:
        """The other side's role."""
        return Role.RESPONDER if self is Role.INITIATOR else Role.INITIATOR


def _check_bytes(what: str, value: object, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise CryptoError(f"{what} must be {size} bytes, got {brief(value)}")


def _check_version(what: str, version: object) -> None:
    if type(version) is not int:
        raise CryptoError(f"the {what} version must be an integer, got {brief(version)}")
    if version != HELLO_VERSION:
        raise CryptoError(
            f"unsupported handshake version {version!r} (this node speaks "
            f"version {HELLO_VERSION}); one of you needs to upgrade strangers"
        )


@dataclass(frozen=True)
class Commit:
    """The initiator's first frame: a commitment to its hello's ephemeral key."""

    version: int
    """Handshake version; must be 2."""
    match_id: bytes
    """The 16-byte identifier of the match."""
    commitment: bytes
    """``SHA-256("strangers/v2/commit" || m || idI || eI)``, 32 bytes."""

    def __post_init__(self) -> None:
        _check_version("commit", self.version)
        _check_bytes("the commit match id", self.match_id, MATCH_ID_SIZE)
        _check_bytes("the commitment", self.commitment, COMMITMENT_SIZE)


@dataclass(frozen=True)
class Hello:
    """One side's ephemeral key, signed by its identity over the commitment."""

    version: int
    """Handshake version; must be 2."""
    match_id: bytes
    """The 16-byte identifier of the match."""
    ephemeral: bytes
    """A fresh 32-byte X25519 public key for this chat."""
    signature: bytes
    """64-byte Ed25519 signature by the sender's libp2p identity key."""

    def __post_init__(self) -> None:
        _check_version("hello", self.version)
        _check_bytes("the hello match id", self.match_id, MATCH_ID_SIZE)
        _check_bytes("the hello ephemeral key", self.ephemeral, X25519_KEY_SIZE)
        _check_bytes("the hello signature", self.signature, ED25519_SIGNATURE_SIZE)


@dataclass(frozen=True)
class Finished:
    """Key confirmation: an HMAC of the transcript under a key only the two sides know."""

    mac: bytes
    """32 bytes, ``finished_I`` or ``finished_R``."""

    def __post_init__(self) -> None:
        _check_bytes("the finished MAC", self.mac, FINISHED_SIZE)


@dataclass(frozen=True)
class SessionKeys:
    """What the handshake derives once both ephemerals are known."""

    ratchet: DoubleRatchet
    """The Double Ratchet for this role, ready to use."""
    associated_data: bytes
    """The 32-byte transcript hash: the associated data of every ratchet message."""
    safety_code: str
    """15 digits in three groups of five, identical on both sides."""

    def __post_init__(self) -> None:
        _check_bytes("the session associated data", self.associated_data, _TRANSCRIPT_SIZE)
        if not isinstance(self.safety_code, str) or not _SAFETY_CODE.fullmatch(
            self.safety_code
        ):
            raise CryptoError(
                f"a safety code is three groups of five digits, got {brief(self.safety_code)}"
            )


def format_safety_code(raw: bytes) -> str:
    """``int.from_bytes(raw, "big") mod 10**15`` as ``"ddddd ddddd ddddd"``."""
    digits = f"{int.from_bytes(raw, 'big') % 10**_SAFETY_DIGITS:0{_SAFETY_DIGITS}d}"
    return " ".join(digits[i : i + 5] for i in range(0, _SAFETY_DIGITS, 5))


def _commitment(match_id: bytes, initiator: bytes, ephemeral: bytes) -> bytes:
    return sha256(LABEL_COMMIT + match_id + initiator + ephemeral)


def _signed_payload(
    role: Role, match_id: bytes, commitment: bytes, ephemeral: bytes, sender: bytes,
    receiver: bytes,
) -> bytes:
    return LABEL_HELLO + role.label + match_id + commitment + ephemeral + sender + receiver


def _finished_mac(key: bytes, role: Role, transcript: bytes) -> bytes:
    return hmac_sha256(key, LABEL_FINISHED + role.label + transcript)


class _Step(enum.Enum):
    """Where one side's handshake stands (the next call it accepts)."""

    #: Responder: waiting for the initiator's commit.
    COMMIT = "waiting for the commit"
    #: Waiting for the peer's hello (the initiator after its commit, the responder after its hello).
    HELLO = "waiting for the peer's hello"
    #: Keys derived; waiting for the peer's finished MAC.
    FINISHED = "waiting for the peer's finished"
    #: The peer's finished verified: the handshake is complete.
    DONE = "done"
    #: A step failed; the handshake must be abandoned.
    FAILED = "failed"


class Handshake:
    """One side of the version 2 handshake.

    Initiator: send :meth:`commit`; feed the responder's hello to
    :meth:`receive_hello` (which returns the :class:`SessionKeys`); send
    :meth:`hello` and :meth:`finished`; feed the responder's finished to
    :meth:`receive_finished`.

    Responder: feed the commit to :meth:`receive_commit` and send the
    :class:`Hello` it returns; feed the initiator's hello to
    :meth:`receive_hello` and its finished to :meth:`receive_finished`; then
    send :meth:`finished`.
    """

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
            raise CryptoError(f"the handshake role must be a Role, got {brief(role)}")
        _check_bytes("the match id", match_id, MATCH_ID_SIZE)
        if not isinstance(local_identity, Ed25519PrivateKey):
            raise CryptoError(
                f"the local identity must be an Ed25519 private key, got {brief(local_identity)}"
            )
        _check_bytes("the remote identity key", remote_identity, ED25519_PUBLIC_KEY_SIZE)
        self._role = role
        self._match_id = match_id
        self._signing_key = local_identity
        self._local_identity = local_identity.public_key().public_bytes_raw()
        self._remote_identity = remote_identity
        self._rng = rng
        self._ephemeral: tuple[X25519PrivateKey, bytes] | None = x25519_keypair(rng)
        self._hello: Hello | None = None
        self._finished: Finished | None = None
        self._expected_finished = b""
        self._commit: Commit | None = None
        if role is Role.INITIATOR:
            self._step = _Step.HELLO
            self._commit = Commit(
                version=HELLO_VERSION,
                match_id=match_id,
                commitment=_commitment(match_id, self._local_identity, self._ephemeral[1]),
            )
        else:
            self._step = _Step.COMMIT

    @property
    def role(self) -> Role:
        """The role this side plays."""
        return self._role

    @property
    def complete(self) -> bool:
        """True once the peer's finished MAC verified."""
        return self._step is _Step.DONE

    # --- what we send ------------------------------------------------------------

    def commit(self) -> Commit:
        """The initiator's commit, to send first (the same object at every call)."""
        if self._commit is None or self._role is not Role.INITIATOR:
            raise LocalProtocolError("only the initiator sends a commit")
        return self._commit

    def hello(self) -> Hello:
        """Our hello, once it may be sent.

        The responder's exists once a valid commit was received; the
        initiator's only once the responder's hello was received and verified,
        so the initiator can never reveal its ephemeral key early.
        """
        if self._hello is None:
            raise LocalProtocolError(
                f"the {self._role.value}'s hello cannot be sent yet ({self._step.value})"
            )
        return self._hello

    def finished(self) -> Finished:
        """Our finished MAC, once it may be sent.

        The initiator's exists once the responder's hello verified; the
        responder's only once the initiator's finished verified.
        """
        if self._finished is None or (
            self._role is Role.RESPONDER and self._step is not _Step.DONE
        ):
            raise LocalProtocolError(
                f"the {self._role.value}'s finished cannot be sent yet ({self._step.value})"
            )
        return self._finished

    # --- what we receive ---------------------------------------------------------

    def _enter(self, step: _Step, what: str) -> None:
        if self._step is not step:
            raise LocalProtocolError(
                f"the {self._role.value} cannot take {what} now ({self._step.value})"
            )
        self._step = _Step.FAILED  # until the step succeeds

    def receive_commit(self, commit: Commit) -> Hello:
        """Responder: check the initiator's *commit*; return our hello, to send.

        Raises :class:`CryptoError` if the commit is for another match.
        """
        if self._role is not Role.RESPONDER:
            raise LocalProtocolError("only the responder receives a commit")
        self._enter(_Step.COMMIT, "a commit")
        if commit.match_id != self._match_id:
            raise CryptoError(
                f"the commit is for match {commit.match_id.hex()!r}, "
                f"not for this match {self._match_id.hex()!r}"
            )
        if self._ephemeral is None:  # pragma: no cover - set at construction, cleared later
            raise LocalProtocolError("the responder's ephemeral key is gone")
        self._commit = commit
        self._hello = self._make_hello(commit.commitment, self._ephemeral[1])
        self._step = _Step.HELLO
        return self._hello

    def receive_hello(self, hello: Hello) -> SessionKeys:
        """Verify the peer's *hello* and derive the session keys.

        The keys are not confirmed yet: report the chat established only once
        :meth:`receive_finished` succeeded.  Raises :class:`CryptoError` if the
        hello is not for this match, reflects our own key, does not match the
        commitment (responder), or is not signed by the expected peer.
        """
        self._enter(_Step.HELLO, "a hello")
        ephemeral, commit = self._ephemeral, self._commit
        if ephemeral is None or commit is None:  # pragma: no cover - guarded by the step
            raise LocalProtocolError("the handshake lost its state")
        self._ephemeral = None  # forget the private key whatever happens
        if hello.match_id != self._match_id:
            raise CryptoError(
                f"the hello is for match {hello.match_id.hex()!r}, "
                f"not for this match {self._match_id.hex()!r}"
            )
        if hmac.compare_digest(hello.ephemeral, ephemeral[1]):
            raise CryptoError("the peer sent back our own key (a reflection attack)")
        if self._role is Role.RESPONDER:
            expected = _commitment(self._match_id, self._remote_identity, hello.ephemeral)
            if not hmac.compare_digest(expected, commit.commitment):
                raise CryptoError(
                    "the initiator's hello does not match its commitment; someone may be "
                    "tampering with the connection"
                )
        peer = self._role.peer
        payload = _signed_payload(
            peer, hello.match_id, commit.commitment, hello.ephemeral, self._remote_identity,
            self._local_identity,
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
        transcript = sha256(
            LABEL_TRANSCRIPT + self._match_id + identities + commit.commitment + ephemerals
        )
        root = hkdf(shared, salt=transcript, info=LABEL_ROOT, length=32)
        safety = hkdf(shared, salt=transcript, info=LABEL_SAFETY, length=8)
        confirm = hkdf(shared, salt=transcript, info=LABEL_FINISHED, length=64)
        keys = {
            Role.INITIATOR: _finished_mac(confirm[:32], Role.INITIATOR, transcript),
            Role.RESPONDER: _finished_mac(confirm[32:], Role.RESPONDER, transcript),
        }
        self._finished = Finished(keys[self._role])
        self._expected_finished = keys[peer]
        if self._role is Role.INITIATOR:
            self._hello = self._make_hello(commit.commitment, ephemeral[1])
            ratchet = DoubleRatchet.initiator(
                root, remote_ratchet_pub=hello.ephemeral, rng=self._rng
            )
        else:
            ratchet = DoubleRatchet.responder(root, local_ratchet=ephemeral, rng=self._rng)
        self._step = _Step.FINISHED
        return SessionKeys(
            ratchet=ratchet,
            associated_data=transcript,
            safety_code=format_safety_code(safety),
        )

    def receive_finished(self, finished: Finished) -> None:
        """Verify the peer's finished MAC (constant time); raises :class:`CryptoError`."""
        self._enter(_Step.FINISHED, "a finished")
        if not hmac.compare_digest(finished.mac, self._expected_finished):
            raise CryptoError(
                f"the {self._role.peer.value}'s finished MAC is wrong: it did not derive the "
                "same keys from the same handshake; someone may be tampering with the connection"
            )
        self._step = _Step.DONE

    def _make_hello(self, commitment: bytes, ephemeral: bytes) -> Hello:
        payload = _signed_payload(
            self._role, self._match_id, commitment, ephemeral, self._local_identity,
            self._remote_identity,
        )
        return Hello(
            version=HELLO_VERSION,
            match_id=self._match_id,
            ephemeral=ephemeral,
            signature=ed25519_sign(self._signing_key, payload),
        )
