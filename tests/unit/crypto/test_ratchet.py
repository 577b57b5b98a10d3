"""The Double Ratchet: conversations, reordering, replay, tampering, bounds."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangers.crypto.primitives import x25519_keypair
from strangers.crypto.ratchet import (
    HEADER_SIZE,
    MAX_SKIP,
    MAX_SKIPPED_KEYS,
    DoubleRatchet,
    Header,
    RatchetStatistics,
)
from strangers.errors import CryptoError, LocalProtocolError

AD = b"transcript hash stand-in........"
Message = tuple[Header, bytes]


def make_ratchets(seed: int = 0) -> tuple[DoubleRatchet, DoubleRatchet]:
    """(initiator, responder) sharing a root key, as the handshake builds them."""
    setup = random.Random(seed).randbytes
    root = setup(32)
    responder_key = x25519_keypair(setup)
    initiator = DoubleRatchet.initiator(
        root, remote_ratchet_pub=responder_key[1], rng=random.Random(seed + 1000).randbytes
    )
    responder = DoubleRatchet.responder(
        root, local_ratchet=responder_key, rng=random.Random(seed + 2000).randbytes
    )
    return initiator, responder


def send(ratchet: DoubleRatchet, plaintext: bytes) -> Message:
    return ratchet.encrypt(plaintext, AD)


def receive(ratchet: DoubleRatchet, message: Message, ad: bytes = AD) -> bytes:
    return ratchet.decrypt(*message, ad)


# --- Header -------------------------------------------------------------------


@given(
    dh=st.binary(min_size=32, max_size=32),
    pn=st.integers(0, 2**32 - 1),
    n=st.integers(0, 2**32 - 1),
)
def test_header_round_trip(dh: bytes, pn: int, n: int) -> None:
    header = Header(dh=dh, pn=pn, n=n)
    encoded = header.to_bytes()
    assert len(encoded) == HEADER_SIZE == 40
    assert encoded == dh + pn.to_bytes(4, "big") + n.to_bytes(4, "big")
    assert Header.from_bytes(encoded) == header
    assert Header.from_bytes(bytearray(encoded)) == header


@pytest.mark.parametrize("length", [0, 39, 41])
def test_header_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(CryptoError, match=f"40 bytes, got {length}"):
        Header.from_bytes(bytes(length))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dh": bytes(31)}, "key must be 32 bytes"),
        ({"dh": "x" * 32}, "key must be 32 bytes, got 'xxx"),
        ({"pn": -1}, "pn must be an integer from 0 to 2\\*\\*32 - 1, got -1"),
        ({"n": 2**32}, f"n must be .*, got {2**32}"),
        ({"n": True}, "got True"),
        ({"pn": 1.0}, "got 1.0"),
    ],
)
def test_header_validates_itself(fields: dict[str, object], message: str) -> None:
    with pytest.raises(CryptoError, match=message):
        Header(**{"dh": bytes(32), "pn": 0, "n": 0, **fields})  # type: ignore[arg-type]


# --- construction -------------------------------------------------------------


def test_constructors_validate_their_keys() -> None:
    key = x25519_keypair(random.Random(0).randbytes)
    rng = random.Random(1).randbytes
    with pytest.raises(CryptoError, match="root key must be 32 bytes, got b'short'"):
        DoubleRatchet.initiator(b"short", key[1], rng)
    with pytest.raises(CryptoError, match="root key must be 32 bytes"):
        DoubleRatchet.responder(bytes(31), key, rng)
    with pytest.raises(CryptoError, match="low-order point"):
        DoubleRatchet.initiator(bytes(32), bytes(32), rng)


def test_responder_cannot_send_until_its_first_decrypt() -> None:
    initiator, responder = make_ratchets()
    assert initiator.can_send and not responder.can_send
    with pytest.raises(LocalProtocolError, match="cannot encrypt yet"):
        send(responder, b"too early")
    ready = send(initiator, b"")
    with pytest.raises(CryptoError):
        receive(responder, (ready[0], ready[1][:-1]))
    assert not responder.can_send  # a failed decrypt does not unlock sending
    assert receive(responder, ready) == b""
    assert responder.can_send
    assert receive(initiator, send(responder, b"now")) == b"now"


# --- conversations ------------------------------------------------------------


def test_long_ping_pong_conversation() -> None:
    initiator, responder = make_ratchets()
    sides = [(initiator, responder), (responder, initiator)]
    first = send(initiator, b"ready")
    assert receive(responder, first) == b"ready"
    turns = 100
    for turn in range(turns):
        sender, receiver = sides[turn % 2]
        for index in range(turn % 3 + 1):
            text = f"turn {turn} message {index}".encode()
            header, ciphertext = send(sender, text)
            assert text not in ciphertext
            assert receive(receiver, (header, ciphertext)) == text
    statistics = initiator.statistics()
    assert statistics.sent == responder.statistics().received
    assert statistics.received == responder.statistics().sent
    # Each change of speaker is one DH ratchet step on the receiving side
    # ("ready", then every turn but the first, which the initiator also speaks).
    assert statistics.dh_ratchet_steps + responder.statistics().dh_ratchet_steps == turns
    assert statistics.skipped_keys_stored == responder.statistics().skipped_keys_stored == 0
    # A message from a chain long retired is still refused.
    with pytest.raises(CryptoError):
        receive(responder, first)


def test_every_message_uses_a_fresh_key() -> None:
    initiator, responder = make_ratchets()
    messages = [send(initiator, b"same text") for _ in range(5)]
    assert len({ciphertext for _, ciphertext in messages}) == 5
    assert [header.n for header, _ in messages] == [0, 1, 2, 3, 4]
    assert {header.dh for header, _ in messages} == {messages[0][0].dh}


def test_statistics() -> None:
    initiator, responder = make_ratchets()
    assert initiator.statistics() == RatchetStatistics(
        sent=0, received=0, skipped_keys_stored=0, dh_ratchet_steps=0
    )
    messages = [send(initiator, bytes([i])) for i in range(4)]
    receive(responder, messages[3])
    assert responder.statistics() == RatchetStatistics(
        sent=0, received=1, skipped_keys_stored=3, dh_ratchet_steps=1
    )
    receive(responder, messages[1])
    assert responder.statistics().skipped_keys_stored == 2
    assert initiator.statistics().sent == 4


# --- reordering ---------------------------------------------------------------


def test_out_of_order_within_a_chain() -> None:
    initiator, responder = make_ratchets()
    messages = [send(initiator, f"m{i}".encode()) for i in range(5)]
    for index in [4, 2, 0, 3, 1]:
        assert receive(responder, messages[index]) == f"m{index}".encode()
    assert responder.statistics().skipped_keys_stored == 0


def test_out_of_order_across_a_dh_step() -> None:
    initiator, responder = make_ratchets()
    a0, a1, a2 = (send(initiator, f"a{i}".encode()) for i in range(3))
    assert receive(responder, a0) == b"a0"
    assert receive(initiator, send(responder, b"b0")) == b"b0"
    c0 = send(initiator, b"c0")  # a new chain, with pn == 3
    assert c0[0].pn == 3 and c0[0].dh != a0[0].dh
    assert receive(responder, c0) == b"c0"  # skips a1 and a2 in the old chain
    assert responder.statistics().skipped_keys_stored == 2
    assert receive(responder, a2) == b"a2"
    assert receive(responder, a1) == b"a1"
    assert responder.statistics().skipped_keys_stored == 0
    assert receive(initiator, send(responder, b"b1")) == b"b1"


def test_skipping_exactly_max_skip_is_allowed_but_not_one_more() -> None:
    initiator, responder = make_ratchets()
    messages = [send(initiator, b"") for _ in range(2 * MAX_SKIP + 3)]
    with pytest.raises(CryptoError, match=f"message {MAX_SKIP + 1} is too far ahead"):
        receive(responder, messages[MAX_SKIP + 1])
    receive(responder, messages[MAX_SKIP])  # skips messages 0 .. MAX_SKIP - 1
    assert responder.statistics().skipped_keys_stored == MAX_SKIP
    # Now expecting message MAX_SKIP + 1: MAX_SKIP more may be skipped, not one more.
    with pytest.raises(CryptoError, match="too far ahead"):
        receive(responder, messages[2 * MAX_SKIP + 2])
    receive(responder, messages[2 * MAX_SKIP + 1])
    assert responder.statistics().skipped_keys_stored == 2 * MAX_SKIP


def test_too_many_skipped_in_the_previous_chain_is_rejected() -> None:
    initiator, responder = make_ratchets()
    old_chain = [send(initiator, f"a{i}".encode()) for i in range(MAX_SKIP + 2)]
    receive(responder, old_chain[0])
    receive(initiator, send(responder, b"b0"))
    new_chain = send(initiator, b"c0")  # pn = MAX_SKIP + 2: MAX_SKIP + 1 left to skip
    with pytest.raises(CryptoError, match="too far ahead"):
        receive(responder, new_chain)
    # Nothing was lost: the old chain is still readable, then the new one too.
    assert receive(responder, old_chain[1]) == b"a1"
    assert receive(responder, new_chain) == b"c0"
    assert responder.statistics().skipped_keys_stored == MAX_SKIP


def test_skipped_key_store_is_bounded_and_evicts_the_oldest() -> None:
    initiator, responder = make_ratchets()
    chains: list[list[Message]] = []
    rounds = MAX_SKIPPED_KEYS // MAX_SKIP + 2
    for round_number in range(rounds):
        chain = [send(initiator, f"{round_number}/{i}".encode()) for i in range(MAX_SKIP + 1)]
        receive(responder, chain[-1])
        stored = responder.statistics().skipped_keys_stored
        assert stored == min((round_number + 1) * MAX_SKIP, MAX_SKIPPED_KEYS)
        chains.append(chain)
        receive(initiator, send(responder, b"ack"))
    evicted_chains = rounds - MAX_SKIPPED_KEYS // MAX_SKIP
    for chain in chains[:evicted_chains]:
        with pytest.raises(CryptoError, match="replayed or is too old"):
            receive(responder, chain[0])
    assert receive(responder, chains[evicted_chains][0]) == f"{evicted_chains}/0".encode()
    assert receive(responder, chains[-1][MAX_SKIP - 1]) == f"{rounds - 1}/{MAX_SKIP - 1}".encode()
    assert responder.statistics().skipped_keys_stored == MAX_SKIPPED_KEYS - 2


# --- replay and forward secrecy -----------------------------------------------


def test_replay_in_the_current_chain_is_rejected() -> None:
    initiator, responder = make_ratchets()
    message = send(initiator, b"once")
    assert receive(responder, message) == b"once"
    with pytest.raises(CryptoError, match="message 0 was replayed or is too old"):
        receive(responder, message)


def test_used_skipped_keys_are_deleted() -> None:
    """Forward secrecy: once a message is read, its key is gone for good."""
    initiator, responder = make_ratchets()
    early, late = send(initiator, b"early"), send(initiator, b"late")
    receive(responder, late)
    assert receive(responder, early) == b"early"
    assert responder.statistics().skipped_keys_stored == 0
    for message in (early, late):
        with pytest.raises(CryptoError, match="replayed or is too old"):
            receive(responder, message)


def test_replay_from_an_old_chain_is_rejected() -> None:
    initiator, responder = make_ratchets()
    old = send(initiator, b"old")
    receive(responder, old)
    receive(initiator, send(responder, b"reply"))
    receive(responder, send(initiator, b"new chain"))
    with pytest.raises(CryptoError, match="replayed or is too old"):
        receive(responder, old)
    # The responder's own old messages are refused by the initiator too.
    reply = send(responder, b"second reply")
    receive(initiator, reply)
    receive(responder, send(initiator, b"third chain"))
    receive(initiator, send(responder, b"fourth chain"))
    with pytest.raises(CryptoError, match="replayed or is too old"):
        receive(initiator, reply)


# --- tampering ----------------------------------------------------------------


def flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


Tamper = Callable[[Header, bytes, bytes], tuple[Header, bytes, bytes]]
TAMPERS: dict[str, Tamper] = {
    "ciphertext": lambda h, c, a: (h, flip(c), a),
    "tag": lambda h, c, a: (h, flip(c, -1), a),
    "truncated": lambda h, c, a: (h, c[:-1], a),
    "empty": lambda h, c, a: (h, b"", a),
    "header-n": lambda h, c, a: (dataclasses.replace(h, n=h.n + 1), c, a),
    "header-pn": lambda h, c, a: (dataclasses.replace(h, pn=h.pn + 1), c, a),
    "header-dh": lambda h, c, a: (dataclasses.replace(h, dh=flip(h.dh, 5)), c, a),
    "header-dh-low-order": lambda h, c, a: (dataclasses.replace(h, dh=bytes(32)), c, a),
    "associated-data": lambda h, c, a: (h, c, flip(a)),
}


def scenario_first(initiator: DoubleRatchet, deliver: Callable[[Message], None]) -> Message:
    """The responder's very first message (DH step with no receiving chain yet)."""
    return send(initiator, b"genuine")


def scenario_same_chain(initiator: DoubleRatchet, deliver: Callable[[Message], None]) -> Message:
    deliver(send(initiator, b"before"))
    return send(initiator, b"genuine")


def scenario_skipped(initiator: DoubleRatchet, deliver: Callable[[Message], None]) -> Message:
    genuine = send(initiator, b"genuine")
    deliver(send(initiator, b"overtakes it"))
    return genuine


SCENARIOS = {
    "first": scenario_first,
    "same-chain": scenario_same_chain,
    "skipped": scenario_skipped,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampering_is_rejected_and_changes_nothing(scenario: str, tamper: str) -> None:
    initiator, responder = make_ratchets()
    _, twin = make_ratchets()  # sees the same messages, except the tampered one

    def deliver(message: Message) -> None:
        assert receive(responder, message) == receive(twin, message)

    genuine = SCENARIOS[scenario](initiator, deliver)
    with pytest.raises(CryptoError):
        responder.decrypt(*TAMPERS[tamper](genuine[0], genuine[1], AD))
    assert responder.statistics() == twin.statistics()
    assert responder.can_send == twin.can_send
    if responder.can_send:  # encrypt draws no randomness: equal output, equal state
        assert send(responder, b"probe") == send(twin, b"probe")
    assert receive(responder, genuine) == b"genuine"
    assert receive(initiator, send(responder, b"still fine")) == b"still fine"


def test_tampered_message_of_a_new_chain_changes_nothing() -> None:
    initiator, responder = make_ratchets()
    _, twin = make_ratchets()
    first = send(initiator, b"first")
    receive(responder, first), receive(twin, first)
    reply, twin_reply = send(responder, b"reply"), send(twin, b"reply")
    assert reply == twin_reply
    receive(initiator, reply)
    genuine = send(initiator, b"genuine")  # new chain: pn == 1, new dh
    for name, tamper in TAMPERS.items():
        with pytest.raises(CryptoError):
            responder.decrypt(*tamper(genuine[0], genuine[1], AD))
        assert responder.statistics() == twin.statistics(), name
        assert send(responder, name.encode()) == send(twin, name.encode())
    assert receive(responder, genuine) == b"genuine"


# --- any delivery order -------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_any_delivery_order_within_bounds_decrypts(data: st.DataObject, seed: int) -> None:
    """Whatever the interleaving of sends and (reordered) deliveries, every
    message decrypts exactly once, and a second delivery is refused."""
    initiator, responder = make_ratchets(seed)
    parties = {"I": initiator, "R": responder}
    peer = {"I": "R", "R": "I"}
    in_flight: dict[str, list[tuple[bytes, Message]]] = {"I": [], "R": []}
    delivered: list[tuple[str, Message]] = []
    counter = 0

    def deliver(to: str, index: int) -> None:
        expected, message = in_flight[to].pop(index)
        assert receive(parties[to], message) == expected
        delivered.append((to, message))

    actions = data.draw(
        st.lists(st.tuples(st.sampled_from("IR"), st.booleans(), st.integers(0, 99)), max_size=80)
    )
    for who, sending, pick in actions:
        if sending and parties[who].can_send:
            text = f"{who}{counter}".encode()
            counter += 1
            in_flight[peer[who]].append((text, send(parties[who], text)))
        elif not sending and in_flight[who]:
            deliver(who, pick % len(in_flight[who]))
    for to in "IR":
        order = data.draw(st.permutations(range(len(in_flight[to]))))
        pending = list(in_flight[to])
        in_flight[to] = []
        for index in order:
            in_flight[to].append(pending[index])
        while in_flight[to]:
            deliver(to, 0)
    for party in parties.values():
        assert party.statistics().skipped_keys_stored == 0
    assert initiator.statistics().sent == responder.statistics().received
    assert responder.statistics().sent == initiator.statistics().received
    if delivered:
        to, message = data.draw(st.sampled_from(delivered))
        with pytest.raises(CryptoError, match="replayed or is too old"):
            receive(parties[to], message)


# --- regression: issue 7, fault 2 ---------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 255, 256])
def test_a_header_with_the_responders_handshake_key_is_a_crypto_error(n: int) -> None:
    """Right after the handshake the initiator knows the responder's key but has no
    receiving chain for it: a header naming that key used to hit an ``assert``
    (``AssertionError``, or ``TypeError`` under ``python -O``)."""
    setup = random.Random(0).randbytes
    root = setup(32)
    responder_key = x25519_keypair(setup)
    initiator = DoubleRatchet.initiator(
        root, remote_ratchet_pub=responder_key[1], rng=random.Random(1).randbytes
    )
    before = initiator.statistics()
    with pytest.raises(CryptoError, match="no receiving chain"):
        initiator.decrypt(Header(dh=responder_key[1], pn=0, n=n), bytes(16), AD)
    assert initiator.statistics() == before
    # the ratchet still works afterwards
    responder = DoubleRatchet.responder(root, local_ratchet=responder_key,
                                        rng=random.Random(2).randbytes)
    assert receive(responder, send(initiator, b"ready")) == b"ready"
    assert receive(initiator, send(responder, b"hi")) == b"hi"
