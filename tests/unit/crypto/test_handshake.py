"""The handshake (version 2): agreement, the documented derivation and its
known-answer vector, the commit-then-reveal order, key confirmation, and every
way a frame can be wrong."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from strangers.crypto.frames import Ready, encode_inner
from strangers.crypto.handshake import (
    Commit,
    Finished,
    Handshake,
    Hello,
    Role,
    SessionKeys,
    format_safety_code,
)
from strangers.crypto.primitives import (
    LABEL_COMMIT,
    LABEL_FINISHED,
    LABEL_HELLO,
    LABEL_ROOT,
    LABEL_SAFETY,
    LABEL_TRANSCRIPT,
    ed25519_sign,
    hkdf,
    hmac_sha256,
    sha256,
    x25519,
    x25519_keypair,
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
    """The whole handshake in order: (initiator keys, responder keys)."""
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    initiator_keys = pair.initiator.receive_hello(hello_r)
    responder_keys = pair.responder.receive_hello(pair.initiator.hello())
    pair.responder.receive_finished(pair.initiator.finished())
    pair.initiator.receive_finished(pair.responder.finished())
    assert pair.initiator.complete and pair.responder.complete
    return initiator_keys, responder_keys


@pytest.fixture
def pair() -> Pair:
    return make_pair()


def signed_hello(key: Ed25519PrivateKey, role: Role, match_id: bytes, commitment: bytes,
                 ephemeral: bytes, receiver: bytes) -> Hello:
    payload = (LABEL_HELLO + role.label + match_id + commitment + ephemeral + public(key)
               + receiver)
    return Hello(version=2, match_id=match_id, ephemeral=ephemeral,
                 signature=ed25519_sign(key, payload))


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
    e_i = initiator_eph.public_key().public_bytes_raw()
    e_r = responder_eph.public_key().public_bytes_raw()
    id_i, id_r = public(pair.initiator_identity), public(pair.responder_identity)
    assert pair.initiator.hello().ephemeral == e_i
    assert pair.responder.hello().ephemeral == e_r
    commitment = sha256(LABEL_COMMIT + pair.match_id + id_i + e_i)
    assert pair.initiator.commit() == Commit(2, pair.match_id, commitment)

    shared = x25519(initiator_eph, e_r)
    transcript = sha256(LABEL_TRANSCRIPT + pair.match_id + id_i + id_r + commitment + e_i + e_r)
    assert initiator_keys.associated_data == transcript
    safety = hkdf(shared, salt=transcript, info=LABEL_SAFETY, length=8)
    digits = f"{int.from_bytes(safety, 'big') % 10**15:015d}"
    assert initiator_keys.safety_code == f"{digits[:5]} {digits[5:10]} {digits[10:]}"
    confirm = hkdf(shared, salt=transcript, info=LABEL_FINISHED, length=64)
    assert pair.initiator.finished().mac == hmac_sha256(
        confirm[:32], LABEL_FINISHED + b"I" + transcript)
    assert pair.responder.finished().mac == hmac_sha256(
        confirm[32:], LABEL_FINISHED + b"R" + transcript)

    # A responder ratchet built by hand from the documented root understands the initiator.
    root = hkdf(shared, salt=transcript, info=LABEL_ROOT, length=32)
    by_hand = DoubleRatchet.responder(
        root, local_ratchet=(responder_eph, e_r), rng=random.Random(9).randbytes
    )
    header, ciphertext = initiator_keys.ratchet.encrypt(b"ready", transcript)
    assert header.dh != e_r  # the initiator ratcheted to a fresh key pair
    assert by_hand.decrypt(header, ciphertext, transcript) == b"ready"
    assert responder_keys.ratchet.decrypt(header, ciphertext, transcript) == b"ready"


# The known-answer vector of docs/protocol.md §6.2, computed from the spec with
# hashlib/hmac/cryptography alone (not with strangers.crypto).
KAT = {
    "idI": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    "idR": "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7",
    "m": "404142434445464748494a4b4c4d4e4f",
    "eI": "493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d",
    "eR": "dc2cca31e8e43bbd91dff7e475cca3347eb478107d5bd765aba4ae4a30c35d44",
    "c": "97797c7c3429717ee8cd9d124f223b543b8dd81011bd7da0697b23dfe326bf39",
    "sigI": "443b270a4d8b7a151aae7f864dd0ff309a2d7a7d1b0bc3137aaebd92af80c079"
            "d44628c60a2d7cc4efe7bbf716daaf102b64b69eb12572e7cab0bb6b92919d06",
    "sigR": "df0d722e54f588fa4c081bfe6aa7e848b0de8087fdc19f39b49c03ce493837c1"
            "55f02d80a231cf52dfbe1ce0d4b6e375dc47417022dbacdfe1970a3a4b9a430d",
    "transcript": "edb7aeddd5b07dcf3c4d73185f75f7dfe89c016085b231814cca03e5beb5f47a",
    "root": "c18b7b67076d33902a873416ce9eb74ab331ba15addab7b9188cabc14f918589",
    "safety": "793b16d21d1eb4dd",
    "finished_I": "e29fd45a6960d9aeecf245d283c3818ab9c1c9bb117912fb7c93e5ea732f7f1d",
    "finished_R": "1d3a3fc6d9794e49186c2b48bbf4c962b08427c1b526aba63aca8546c73f3e0c",
    "code": "60099 39027 03837",
    # the initiator's first ratchet message, Ready, with ratchet private key a0..bf
    "ready_header": "605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c"
                    "0000000000000000",
    "ready_ciphertext": "795a46d4c0f3c18301d3532db91c02b2e35a34805b00d9c17f015f9213a6736c"
                        "45c0cdf97368a9213446119bb60f88595a9ca1063e06438cda82230002d1dec1"
                        "c6ced3b22770a2a5a7632d5954e5acad",
}


def test_known_answer_vector() -> None:
    """Identity keys 00..1f (I) and 20..3f (R), m = 40..4f, ephemeral private keys
    80..9f (I) and c0..df (R): every value of the handshake, byte for byte."""
    sign_i = Ed25519PrivateKey.from_private_bytes(bytes(range(0, 32)))
    sign_r = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    match_id = bytes(range(64, 80))
    draws_i = [bytes(range(0x80, 0xA0)), bytes(range(0xA0, 0xC0))]  # ephemeral, ratchet key
    draws_r = [bytes(range(0xC0, 0xE0))]
    initiator = Handshake(role=Role.INITIATOR, match_id=match_id, local_identity=sign_i,
                          remote_identity=public(sign_r), rng=lambda n: draws_i.pop(0))
    responder = Handshake(role=Role.RESPONDER, match_id=match_id, local_identity=sign_r,
                          remote_identity=public(sign_i), rng=lambda n: draws_r.pop(0))
    vector = {key: bytes.fromhex(value) for key, value in KAT.items() if key != "code"}
    assert public(sign_i) == vector["idI"] and public(sign_r) == vector["idR"]
    assert initiator.commit() == Commit(2, vector["m"], vector["c"])
    hello_r = responder.receive_commit(initiator.commit())
    assert hello_r == Hello(2, vector["m"], vector["eR"], vector["sigR"])
    keys_i = initiator.receive_hello(hello_r)
    assert initiator.hello() == Hello(2, vector["m"], vector["eI"], vector["sigI"])
    assert initiator.finished() == Finished(vector["finished_I"])
    keys_r = responder.receive_hello(initiator.hello())
    responder.receive_finished(initiator.finished())
    assert responder.finished() == Finished(vector["finished_R"])
    initiator.receive_finished(responder.finished())
    for keys in (keys_i, keys_r):
        assert keys.associated_data == vector["transcript"]
        assert keys.safety_code == KAT["code"] == format_safety_code(vector["safety"])
    # the first ratchet message: the Ready, padded to 64 bytes
    header, ciphertext = keys_i.ratchet.encrypt(encode_inner(Ready()), vector["transcript"])
    assert header.to_bytes() == vector["ready_header"]
    assert ciphertext == vector["ready_ciphertext"]
    # the root: a responder ratchet built from the vector's root reads the initiator
    by_hand = DoubleRatchet.responder(
        vector["root"],
        local_ratchet=(X25519PrivateKey.from_private_bytes(bytes(range(0xC0, 0xE0))),
                       vector["eR"]),
        rng=random.Random(0).randbytes,
    )
    assert by_hand.decrypt(header, ciphertext, vector["transcript"]) == encode_inner(Ready())


@pytest.mark.parametrize("role", list(Role))
def test_signature_covers_the_documented_fields(pair: Pair, role: Role) -> None:
    complete(pair)
    sender, receiver = pair.identity_of(role), pair.identity_of(role.peer)
    hello = pair.of(role).hello()
    commitment = pair.initiator.commit().commitment
    expected = signed_hello(sender, role, pair.match_id, commitment, hello.ephemeral,
                            public(receiver))
    assert hello == expected  # Ed25519 signatures are deterministic
    assert hello.version == 2 and hello.match_id == pair.match_id


def test_frames_are_the_same_object_every_time(pair: Pair) -> None:
    complete(pair)
    assert pair.initiator.commit() is pair.initiator.commit()
    assert pair.initiator.hello() is pair.initiator.hello()
    assert pair.responder.finished() is pair.responder.finished()
    assert pair.initiator.role is Role.INITIATOR and pair.responder.role is Role.RESPONDER


def test_a_seeded_rng_makes_everything_deterministic() -> None:
    first, second = make_pair(7), make_pair(7)
    keys_1, keys_2 = complete(first), complete(second)
    assert first.initiator.hello() == second.initiator.hello()
    assert first.responder.hello() == second.responder.hello()
    assert [(k.associated_data, k.safety_code) for k in keys_1] == [
        (k.associated_data, k.safety_code) for k in keys_2
    ]
    assert keys_1[0].ratchet.encrypt(b"x", b"ad") == keys_2[0].ratchet.encrypt(b"x", b"ad")


def test_different_chats_have_different_codes() -> None:
    codes = {complete(make_pair(seed))[0].safety_code for seed in range(20)}
    assert len(codes) == 20


def test_role_helpers() -> None:
    assert Role.INITIATOR.peer is Role.RESPONDER and Role.RESPONDER.peer is Role.INITIATOR
    assert Role.INITIATOR.label == b"I" and Role.RESPONDER.label == b"R"


# --- the order: commit, then reveal ---------------------------------------------


def test_the_initiator_reveals_nothing_before_the_responders_hello(pair: Pair) -> None:
    """Against a machine in the middle that would grind its key after seeing ours."""
    with pytest.raises(LocalProtocolError, match="initiator's hello cannot be sent yet"):
        pair.initiator.hello()
    with pytest.raises(LocalProtocolError, match="initiator's finished cannot be sent yet"):
        pair.initiator.finished()
    # the commit hides the ephemeral key: it is a hash, not the key
    assert pair.initiator_rng.outputs[0] not in pair.initiator.commit().commitment


def test_the_responder_makes_its_hello_only_from_a_commit(pair: Pair) -> None:
    with pytest.raises(LocalProtocolError, match="responder's hello cannot be sent yet"):
        pair.responder.hello()
    with pytest.raises(LocalProtocolError, match="only the initiator sends a commit"):
        pair.responder.commit()
    with pytest.raises(LocalProtocolError, match="only the responder receives a commit"):
        pair.initiator.receive_commit(pair.initiator.commit())
    with pytest.raises(LocalProtocolError, match="cannot take a hello now"):
        pair.responder.receive_hello(signed_hello(
            pair.initiator_identity, Role.INITIATOR, pair.match_id, bytes(32), bytes(32),
            public(pair.responder_identity)))


def test_the_responder_confirms_only_after_the_initiator(pair: Pair) -> None:
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    pair.initiator.receive_hello(hello_r)
    pair.responder.receive_hello(pair.initiator.hello())
    with pytest.raises(LocalProtocolError, match="responder's finished cannot be sent yet"):
        pair.responder.finished()
    pair.responder.receive_finished(pair.initiator.finished())
    assert pair.responder.complete and not pair.initiator.complete
    pair.initiator.receive_finished(pair.responder.finished())
    assert pair.initiator.complete


def test_a_man_in_the_middle_cannot_grind_either_leg() -> None:
    """The attack of issue 7, fault 4, in the API's terms.

    Leg A (victim initiator, attacker responder): the attacker must send its
    hello, fixing its key, before the victim reveals hers; it cannot send
    another one afterwards.  Leg B (attacker initiator, victim responder): the
    attacker commits first; a hello with any other key than the committed one,
    however well signed, is refused.
    """
    pair = make_pair(3)
    attacker = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    # Leg A
    victim_i = Handshake(role=Role.INITIATOR, match_id=pair.match_id,
                         local_identity=pair.initiator_identity,
                         remote_identity=public(attacker), rng=random.Random(1).randbytes)
    attacker_r = Handshake(role=Role.RESPONDER, match_id=pair.match_id,
                           local_identity=attacker,
                           remote_identity=public(pair.initiator_identity),
                           rng=random.Random(2).randbytes)
    first_try = attacker_r.receive_commit(victim_i.commit())
    with pytest.raises(LocalProtocolError):
        victim_i.hello()  # nothing to grind against yet
    victim_i.receive_hello(first_try)
    revealed = victim_i.hello().ephemeral
    assert sha256(LABEL_COMMIT + pair.match_id + public(pair.initiator_identity)
                  + revealed) == victim_i.commit().commitment
    ground = signed_hello(attacker, Role.RESPONDER, pair.match_id,
                          victim_i.commit().commitment, x25519_keypair(random.Random(5).randbytes)[1],
                          public(pair.initiator_identity))
    with pytest.raises(LocalProtocolError):
        victim_i.receive_hello(ground)  # one hello per chat: the first one counts
    # Leg B
    victim_r = Handshake(role=Role.RESPONDER, match_id=pair.match_id,
                         local_identity=pair.responder_identity,
                         remote_identity=public(attacker), rng=random.Random(3).randbytes)
    attacker_i = Handshake(role=Role.INITIATOR, match_id=pair.match_id,
                           local_identity=attacker,
                           remote_identity=public(pair.responder_identity),
                           rng=random.Random(4).randbytes)
    victim_r.receive_commit(attacker_i.commit())
    # after seeing the victim's key, the attacker tries another key of its choice
    other_key = x25519_keypair(random.Random(6).randbytes)[1]
    ground = signed_hello(attacker, Role.INITIATOR, pair.match_id,
                          attacker_i.commit().commitment, other_key, public(pair.responder_identity))
    with pytest.raises(CryptoError, match="does not match its commitment"):
        victim_r.receive_hello(ground)


# --- every way it can be wrong --------------------------------------------------


@pytest.mark.parametrize("field", ["match_id", "commitment"])
def test_a_commit_for_another_match_is_rejected(pair: Pair, field: str) -> None:
    commit = pair.initiator.commit()
    if field == "match_id":
        with pytest.raises(CryptoError, match="commit is for match"):
            pair.responder.receive_commit(dataclasses.replace(commit, match_id=bytes(16)))
    else:  # a wrong commitment is found out when the hello arrives
        pair.responder.receive_commit(dataclasses.replace(commit, commitment=bytes(32)))
        pair.initiator.receive_hello(make_pair().responder.receive_commit(commit))
        with pytest.raises(CryptoError, match="does not match its commitment"):
            pair.responder.receive_hello(pair.initiator.hello())


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("field", ["match_id", "ephemeral", "signature"])
def test_every_tampered_hello_field_is_rejected(pair: Pair, role: Role, field: str) -> None:
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    if role is Role.RESPONDER:
        hello, receiver = hello_r, pair.initiator
    else:
        pair.initiator.receive_hello(hello_r)
        hello, receiver = pair.initiator.hello(), pair.responder
    value = bytearray(getattr(hello, field))
    value[-1] ^= 1
    with pytest.raises(CryptoError, match="not for this match|commitment|not signed"):
        receiver.receive_hello(dataclasses.replace(hello, **{field: bytes(value)}))


@pytest.mark.parametrize("role", list(Role))
def test_a_wrong_finished_mac_is_rejected(pair: Pair, role: Role) -> None:
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    pair.initiator.receive_hello(hello_r)
    pair.responder.receive_hello(pair.initiator.hello())
    if role is Role.INITIATOR:  # the responder checks the initiator's finished
        good, receiver = pair.initiator.finished(), pair.responder
    else:
        pair.responder.receive_finished(pair.initiator.finished())
        good, receiver = pair.responder.finished(), pair.initiator
    for position in (0, 31):
        mac = bytearray(good.mac)
        mac[position] ^= 0x80
        fresh = make_pair()
        target = fresh.responder if role is Role.INITIATOR else fresh.initiator
        hello_r = fresh.responder.receive_commit(fresh.initiator.commit())
        fresh.initiator.receive_hello(hello_r)
        fresh.responder.receive_hello(fresh.initiator.hello())
        if role is Role.RESPONDER:
            fresh.responder.receive_finished(fresh.initiator.finished())
        with pytest.raises(CryptoError, match=f"{role.value}'s finished MAC is wrong"):
            target.receive_finished(Finished(bytes(mac)))
        assert not target.complete
    receiver.receive_finished(good)
    assert receiver.complete


def test_the_finished_macs_of_the_two_roles_differ(pair: Pair) -> None:
    """A finished reflected back to its sender does not verify."""
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    pair.initiator.receive_hello(hello_r)
    pair.responder.receive_hello(pair.initiator.hello())
    pair.responder.receive_finished(pair.initiator.finished())
    assert pair.initiator.finished() != pair.responder.finished()
    with pytest.raises(CryptoError, match="finished MAC is wrong"):
        pair.initiator.receive_finished(pair.initiator.finished())


def test_hello_replayed_into_another_match_with_its_id_rewritten_is_rejected() -> None:
    first, second = make_pair(1), make_pair(2)
    hello_r = first.responder.receive_commit(first.initiator.commit())
    rewritten = dataclasses.replace(hello_r, match_id=second.match_id)
    second.responder.receive_commit(second.initiator.commit())
    with pytest.raises(CryptoError, match="not signed"):
        second.initiator.receive_hello(rewritten)


@pytest.mark.parametrize("role", list(Role))
def test_man_in_the_middle_with_its_own_key_is_rejected(pair: Pair, role: Role) -> None:
    """A hello signed by anyone but the expected peer fails, even with a valid commitment."""
    mallory = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
    commit = pair.initiator.commit()
    if role is Role.RESPONDER:
        forged = signed_hello(mallory, Role.RESPONDER, pair.match_id, commit.commitment,
                              x25519_keypair(random.Random(1).randbytes)[1],
                              public(pair.initiator_identity))
        with pytest.raises(CryptoError, match="not signed by the expected responder"):
            pair.initiator.receive_hello(forged)
    else:
        ephemeral = x25519_keypair(random.Random(1).randbytes)[1]
        commitment = sha256(LABEL_COMMIT + pair.match_id + public(pair.initiator_identity)
                            + ephemeral)
        pair.responder.receive_commit(Commit(2, pair.match_id, commitment))
        forged = signed_hello(mallory, Role.INITIATOR, pair.match_id, commitment, ephemeral,
                              public(pair.responder_identity))
        with pytest.raises(CryptoError, match="not signed by the expected initiator"):
            pair.responder.receive_hello(forged)


def test_reflected_hello_is_rejected(pair: Pair) -> None:
    """The responder's own hello sent back to it as the initiator's."""
    hello_r = pair.responder.receive_commit(pair.initiator.commit())
    with pytest.raises(CryptoError, match="our own key"):
        pair.responder.receive_hello(hello_r)


def test_role_confusion_is_rejected() -> None:
    """The responder's identity signing as initiator cannot pass as the responder."""
    pair = make_pair(4)
    confused = Handshake(
        role=Role.INITIATOR, match_id=pair.match_id, local_identity=pair.responder_identity,
        remote_identity=public(pair.initiator_identity), rng=random.Random(2).randbytes,
    )
    pair.responder.receive_commit(pair.initiator.commit())
    hello = signed_hello(pair.responder_identity, Role.INITIATOR, pair.match_id,
                         pair.initiator.commit().commitment,
                         x25519_keypair(random.Random(3).randbytes)[1],
                         public(pair.initiator_identity))
    with pytest.raises(CryptoError, match="not signed by the expected responder"):
        pair.initiator.receive_hello(hello)
    assert confused.role is Role.INITIATOR


def test_low_order_ephemeral_is_rejected_even_when_signed_and_committed(pair: Pair) -> None:
    """A malicious but genuine peer cannot force a known shared secret."""
    low_order = bytes(32)
    commitment = sha256(LABEL_COMMIT + pair.match_id + public(pair.initiator_identity)
                        + low_order)
    pair.responder.receive_commit(Commit(2, pair.match_id, commitment))
    hello = signed_hello(pair.initiator_identity, Role.INITIATOR, pair.match_id, commitment,
                         low_order, public(pair.responder_identity))
    with pytest.raises(CryptoError, match="low-order point"):
        pair.responder.receive_hello(hello)


def test_invalid_remote_identity_key_is_rejected() -> None:
    pair = make_pair()
    broken = Handshake(
        role=Role.INITIATOR, match_id=pair.match_id, local_identity=pair.initiator_identity,
        remote_identity=b"\xff" * 32,  # not an Ed25519 point
        rng=random.Random(2).randbytes,
    )
    hello_r = pair.responder.receive_commit(broken.commit())
    with pytest.raises(CryptoError, match="not signed by the expected responder 'ffff"):
        broken.receive_hello(hello_r)


def test_each_step_is_taken_once(pair: Pair) -> None:
    complete(pair)
    with pytest.raises(LocalProtocolError, match="cannot take a commit now"):
        pair.responder.receive_commit(pair.initiator.commit())
    with pytest.raises(LocalProtocolError, match="cannot take a hello now"):
        pair.initiator.receive_hello(pair.responder.hello())
    with pytest.raises(LocalProtocolError, match="cannot take a finished now"):
        pair.initiator.receive_finished(pair.responder.finished())


def test_a_failed_handshake_cannot_be_retried(pair: Pair) -> None:
    genuine = pair.responder.receive_commit(pair.initiator.commit())
    with pytest.raises(CryptoError):
        pair.initiator.receive_hello(dataclasses.replace(genuine, signature=bytes(64)))
    with pytest.raises(LocalProtocolError, match="failed"):
        pair.initiator.receive_hello(genuine)
    with pytest.raises(LocalProtocolError):
        pair.initiator.hello()


# --- validation ---------------------------------------------------------------

GOOD_HELLO = {"version": 2, "match_id": bytes(16), "ephemeral": bytes(32), "signature": bytes(64)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", 1, "unsupported handshake version 1"),
        ("version", 3, "unsupported handshake version 3"),
        ("version", 0, "unsupported handshake version 0"),
        ("version", "2", "version must be an integer, got '2'"),
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
        hello.version = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Commit(1, bytes(16), bytes(32)), "unsupported handshake version 1"),
        (lambda: Commit(2, bytes(15), bytes(32)), "commit match id must be 16 bytes"),
        (lambda: Commit(2, bytes(16), bytes(31)), "commitment must be 32 bytes"),
        (lambda: Finished(bytes(31)), "finished MAC must be 32 bytes"),
        (lambda: Finished("x" * 32), "finished MAC must be 32 bytes, got 'xxx"),
    ],
)
def test_commit_and_finished_validate_themselves(build: Callable[[], object], message: str) -> None:
    with pytest.raises(CryptoError, match=message):
        build()


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
