"""The handshake: agreement, the documented derivation, and every way a hello
can be wrong."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.crypto.handshake import Handshake, Hello, Role, SessionKeys
from strangers.crypto.primitives import (
    LABEL_HELLO,
    LABEL_ROOT,
    LABEL_SAFETY,
    LABEL_TRANSCRIPT,
    ed25519_sign,
    hkdf,
    sha256,
    x25519,
)
from strangers.crypto.ratchet import DoubleRatchet
from strangers.errors import CryptoError, LocalProtocolError

SAFETY_CODE = re.compile(r"\d{5} \d{5} \d{5}")


class RecordingRng:
    """A seeded rng that remembers what it handed out."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self.outputs: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        output = self._random.randbytes(n)
        self.outputs.append(output)
        return output


def identity(rng: Callable[[int], bytes]) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(rng(32))


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


@dataclass
class Pair:
    """An initiator and a responder set up for the same match."""

    match_id: bytes
    initiator_identity: Ed25519PrivateKey
    responder_identity: Ed25519PrivateKey
    initiator_rng: RecordingRng
    responder_rng: RecordingRng
    initiator: Handshake
    responder: Handshake

    def of(self, role: Role) -> Handshake:
        return self.initiator if role is Role.INITIATOR else self.responder

    def identity_of(self, role: Role) -> Ed25519PrivateKey:
        return self.initiator_identity if role is Role.INITIATOR else self.responder_identity


def make_pair(seed: int = 1) -> Pair:
    setup = random.Random(seed).randbytes
    match_id = setup(16)
    initiator_identity, responder_identity = identity(setup), identity(setup)
    initiator_rng, responder_rng = RecordingRng(seed * 2), RecordingRng(seed * 2 + 1)
    return Pair(
        match_id=match_id,
        initiator_identity=initiator_identity,
        responder_identity=responder_identity,
        initiator_rng=initiator_rng,
        responder_rng=responder_rng,
        initiator=Handshake(
            role=Role.INITIATOR,
            match_id=match_id,
            local_identity=initiator_identity,
            remote_identity=public(responder_identity),
            rng=initiator_rng,
        ),
        responder=Handshake(
            role=Role.RESPONDER,
            match_id=match_id,
            local_identity=responder_identity,
            remote_identity=public(initiator_identity),
            rng=responder_rng,
        ),
    )


def complete(pair: Pair) -> tuple[SessionKeys, SessionKeys]:
    """Both sides receive the other's hello: (initiator keys, responder keys)."""
    return (
        pair.initiator.receive_hello(pair.responder.hello()),
        pair.responder.receive_hello(pair.initiator.hello()),
    )


@pytest.fixture
def pair() -> Pair:
    return make_pair()


# --- success ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_both_sides_agree_and_can_talk(seed: int) -> None:
    initiator, responder = complete(make_pair(seed))
    assert initiator.associated_data == responder.associated_data
    assert len(initiator.associated_data) == 32
    assert initiator.safety_code == responder.safety_code
    assert SAFETY_CODE.fullmatch(initiator.safety_code)
    # The same root key on both sides: the ratchets understand each other.
    assert initiator.ratchet.can_send and not responder.ratchet.can_send
    header, ciphertext = initiator.ratchet.encrypt(b"", initiator.associated_data)
    assert responder.ratchet.decrypt(header, ciphertext, responder.associated_data) == b""
    header, ciphertext = responder.ratchet.encrypt(b"hello", responder.associated_data)
    assert initiator.ratchet.decrypt(header, ciphertext, initiator.associated_data) == b"hello"


def test_derivation_is_the_documented_one(pair: Pair) -> None:
    initiator_keys, responder_keys = complete(pair)
    # The first rng draw of each handshake is its ephemeral private key.
    initiator_eph = X25519PrivateKey.from_private_bytes(pair.initiator_rng.outputs[0])
    responder_eph = X25519PrivateKey.from_private_bytes(pair.responder_rng.outputs[0])
    initiator_eph_pub = initiator_eph.public_key().public_bytes_raw()
    responder_eph_pub = responder_eph.public_key().public_bytes_raw()
    assert pair.initiator.hello().ephemeral == initiator_eph_pub
    assert pair.responder.hello().ephemeral == responder_eph_pub

    shared = x25519(initiator_eph, responder_eph_pub)
    transcript = sha256(
        LABEL_TRANSCRIPT
        + pair.match_id
        + public(pair.initiator_identity)
        + public(pair.responder_identity)
        + initiator_eph_pub
        + responder_eph_pub
    )
    assert initiator_keys.associated_data == transcript
    safety = hkdf(shared, salt=transcript, info=LABEL_SAFETY, length=8)
    digits = f"{int.from_bytes(safety, 'big') % 10**15:015d}"
    assert initiator_keys.safety_code == f"{digits[:5]} {digits[5:10]} {digits[10:]}"

    # A responder ratchet built by hand from the documented root understands the initiator.
    root = hkdf(shared, salt=transcript, info=LABEL_ROOT, length=32)
    by_hand = DoubleRatchet.responder(
        root, local_ratchet=(responder_eph, responder_eph_pub), rng=random.Random(9).randbytes
    )
    header, ciphertext = initiator_keys.ratchet.encrypt(b"ready", transcript)
    assert header.dh != responder_eph_pub  # the initiator ratcheted to a fresh key pair
    assert by_hand.decrypt(header, ciphertext, transcript) == b"ready"
    assert responder_keys.ratchet.decrypt(header, ciphertext, transcript) == b"ready"


@pytest.mark.parametrize("role", list(Role))
def test_signature_covers_the_documented_fields(pair: Pair, role: Role) -> None:
    sender, receiver = pair.identity_of(role), pair.identity_of(role.peer)
    hello = pair.of(role).hello()
    expected = ed25519_sign(
        sender,
        LABEL_HELLO
        + {Role.INITIATOR: b"I", Role.RESPONDER: b"R"}[role]
        + pair.match_id
        + hello.ephemeral
        + public(sender)
        + public(receiver),
    )
    assert hello.signature == expected  # Ed25519 signatures are deterministic
    assert hello.version == 1 and hello.match_id == pair.match_id


def test_hello_is_the_same_object_every_time(pair: Pair) -> None:
    assert pair.initiator.hello() is pair.initiator.hello()
    assert pair.initiator.role is Role.INITIATOR and pair.responder.role is Role.RESPONDER


def test_a_seeded_rng_makes_everything_deterministic() -> None:
    first, second = make_pair(7), make_pair(7)
    assert first.initiator.hello() == second.initiator.hello()
    assert first.responder.hello() == second.responder.hello()
    keys_1, keys_2 = complete(first), complete(second)
    assert [(k.associated_data, k.safety_code) for k in keys_1] == [
        (k.associated_data, k.safety_code) for k in keys_2
    ]
    assert keys_1[0].ratchet.encrypt(b"x", b"ad") == keys_2[0].ratchet.encrypt(b"x", b"ad")


def test_different_chats_have_different_codes() -> None:
    codes = {complete(make_pair(seed))[0].safety_code for seed in range(20)}
    assert len(codes) == 20


def test_role_helpers() -> None:
    assert Role.INITIATOR.peer is Role.RESPONDER and Role.RESPONDER.peer is Role.INITIATOR
    assert (Role.INITIATOR.label, Role.RESPONDER.label) == (b"I", b"R")
    assert Role("initiator") is Role.INITIATOR


# --- attacks and mistakes -----------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_tampered_signature_is_rejected(pair: Pair, role: Role) -> None:
    hello = pair.of(role.peer).hello()
    forged = dataclasses.replace(
        hello, signature=hello.signature[:-1] + bytes([hello.signature[-1] ^ 1])
    )
    with pytest.raises(CryptoError, match="not signed by the expected"):
        pair.of(role).receive_hello(forged)


@pytest.mark.parametrize("role", list(Role))
def test_tampered_ephemeral_is_rejected(pair: Pair, role: Role) -> None:
    hello = pair.of(role.peer).hello()
    mallory_eph = X25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(CryptoError, match="not signed by the expected"):
        pair.of(role).receive_hello(dataclasses.replace(hello, ephemeral=mallory_eph))


def test_hello_for_another_match_is_rejected(pair: Pair) -> None:
    other = Handshake(
        role=Role.RESPONDER,
        match_id=bytes(16),
        local_identity=pair.responder_identity,
        remote_identity=public(pair.initiator_identity),
        rng=random.Random(5).randbytes,
    )
    with pytest.raises(CryptoError, match=f"for match {bytes(16).hex()!r}"):
        pair.initiator.receive_hello(other.hello())


def test_hello_replayed_into_another_match_with_its_id_rewritten_is_rejected(
    pair: Pair,
) -> None:
    old = make_pair(3)  # same kind of peers, earlier chat
    old_hello = Handshake(
        role=Role.RESPONDER,
        match_id=old.match_id,
        local_identity=pair.responder_identity,
        remote_identity=public(pair.initiator_identity),
        rng=random.Random(5).randbytes,
    ).hello()
    rewritten = dataclasses.replace(old_hello, match_id=pair.match_id)
    with pytest.raises(CryptoError, match="not signed by the expected responder"):
        pair.initiator.receive_hello(rewritten)


@pytest.mark.parametrize("role", list(Role))
def test_man_in_the_middle_with_its_own_key_is_rejected(pair: Pair, role: Role) -> None:
    mallory = Ed25519PrivateKey.generate()
    impostor = Handshake(
        role=role.peer,
        match_id=pair.match_id,
        local_identity=mallory,
        remote_identity=public(pair.identity_of(role)),
        rng=random.Random(6).randbytes,
    )
    with pytest.raises(CryptoError, match="not signed by the expected"):
        pair.of(role).receive_hello(impostor.hello())


def test_hello_spliced_from_a_chat_with_someone_else_is_rejected(pair: Pair) -> None:
    carol = Ed25519PrivateKey.generate()
    # The responder's genuine hello, but addressed to Carol (e.g. a relay splicing chats).
    to_carol = Handshake(
        role=Role.RESPONDER,
        match_id=pair.match_id,
        local_identity=pair.responder_identity,
        remote_identity=public(carol),
        rng=random.Random(8).randbytes,
    )
    with pytest.raises(CryptoError, match="not signed by the expected"):
        pair.initiator.receive_hello(to_carol.hello())


@pytest.mark.parametrize("role", list(Role))
def test_reflected_hello_is_rejected(pair: Pair, role: Role) -> None:
    handshake = pair.of(role)
    with pytest.raises(CryptoError, match="our own hello"):
        handshake.receive_hello(handshake.hello())


def test_role_confusion_is_rejected() -> None:
    """Both sides believe they are the initiator: neither signature checks out."""
    pair = make_pair(4)
    confused = Handshake(
        role=Role.INITIATOR,
        match_id=pair.match_id,
        local_identity=pair.responder_identity,
        remote_identity=public(pair.initiator_identity),
        rng=random.Random(2).randbytes,
    )
    with pytest.raises(CryptoError, match="not signed by the expected responder"):
        pair.initiator.receive_hello(confused.hello())
    with pytest.raises(CryptoError, match="not signed by the expected responder"):
        confused.receive_hello(pair.initiator.hello())


def test_low_order_ephemeral_is_rejected_even_when_signed(pair: Pair) -> None:
    """A malicious but genuine peer cannot force a known shared secret."""
    low_order = bytes(32)
    signature = ed25519_sign(
        pair.responder_identity,
        LABEL_HELLO
        + b"R"
        + pair.match_id
        + low_order
        + public(pair.responder_identity)
        + public(pair.initiator_identity),
    )
    hello = Hello(version=1, match_id=pair.match_id, ephemeral=low_order, signature=signature)
    with pytest.raises(CryptoError, match="low-order point"):
        pair.initiator.receive_hello(hello)


def test_invalid_remote_identity_key_is_rejected() -> None:
    pair = make_pair()
    broken = Handshake(
        role=Role.INITIATOR,
        match_id=pair.match_id,
        local_identity=pair.initiator_identity,
        remote_identity=b"\xff" * 32,  # not an Ed25519 point
        rng=random.Random(2).randbytes,
    )
    with pytest.raises(CryptoError, match="not signed by the expected responder 'ffff"):
        broken.receive_hello(pair.responder.hello())


def test_receive_hello_twice_is_a_local_error(pair: Pair) -> None:
    pair.initiator.receive_hello(pair.responder.hello())
    with pytest.raises(LocalProtocolError, match="already received a hello"):
        pair.initiator.receive_hello(pair.responder.hello())


def test_a_failed_handshake_cannot_be_retried(pair: Pair) -> None:
    genuine = pair.responder.hello()
    with pytest.raises(CryptoError):
        pair.initiator.receive_hello(dataclasses.replace(genuine, signature=bytes(64)))
    with pytest.raises(LocalProtocolError):
        pair.initiator.receive_hello(genuine)


# --- validation ---------------------------------------------------------------

GOOD_HELLO = {"version": 1, "match_id": bytes(16), "ephemeral": bytes(32), "signature": bytes(64)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", 2, "unsupported handshake version 2"),
        ("version", 0, "unsupported handshake version 0"),
        ("version", "1", "version must be an integer, got '1'"),
        ("version", True, "version must be an integer, got True"),
        ("match_id", bytes(15), r"match id must be 16 bytes, got b'\\x00"),
        ("match_id", "0" * 16, "match id must be 16 bytes, got '0000"),
        ("ephemeral", bytes(33), "ephemeral key must be 32 bytes"),
        ("ephemeral", bytearray(32), "ephemeral key must be 32 bytes, got bytearray"),
        ("signature", bytes(63), "signature must be 64 bytes"),
        ("signature", None, "signature must be 64 bytes, got None"),
    ],
)
def test_hello_validates_itself(field: str, value: object, message: str) -> None:
    with pytest.raises(CryptoError, match=message):
        Hello(**{**GOOD_HELLO, field: value})  # type: ignore[arg-type]


def test_hello_is_frozen() -> None:
    hello = Hello(**GOOD_HELLO)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hello.version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "initiator", "role must be a Role, got 'initiator'"),
        ("match_id", bytes(8), "match id must be 16 bytes"),
        ("local_identity", b"k" * 32, "local identity must be an Ed25519 private key"),
        ("remote_identity", bytes(33), "remote identity key must be 32 bytes"),
    ],
)
def test_handshake_validates_its_arguments(field: str, value: object, message: str) -> None:
    arguments: dict[str, object] = {
        "role": Role.INITIATOR,
        "match_id": bytes(16),
        "local_identity": Ed25519PrivateKey.generate(),
        "remote_identity": bytes(32),
        "rng": random.Random(0).randbytes,
    }
    with pytest.raises(CryptoError, match=message):
        Handshake(**{**arguments, field: value})  # type: ignore[arg-type]


def test_session_keys_validate_themselves(pair: Pair) -> None:
    keys, _ = complete(pair)
    with pytest.raises(CryptoError, match="associated data must be 32 bytes"):
        dataclasses.replace(keys, associated_data=b"short")
    for bad in ["1234 56789 01234", "12345678901234 5", "abcde 12345 12345", 123]:
        with pytest.raises(CryptoError, match=re.escape(repr(bad))):
            dataclasses.replace(keys, safety_code=bad)
