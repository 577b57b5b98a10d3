"""Keep in touch (discovery/contact.py): consent on both sides before anything long-term moves."""

from __future__ import annotations

import os

import pytest

from strangers.crypto.frames import Contact, Keep, decode_inner, encode_inner
from strangers.crypto.peerid import ed25519_key_of, peer_id_from_text
from strangers.discovery.contact import (
    KeepInTouch,
    KeepState,
    rendezvous_interest,
    shared_secret,
)
from strangers.discovery.interests import normalize_interest
from strangers.errors import LocalProtocolError, RemoteProtocolError


def deliver(messages, to: KeepInTouch) -> list:
    """Hand ``messages`` to ``to``; everything it answers."""
    answers = []
    for message in messages:
        answers += to.receive(decode_inner(encode_inner(message)))  # over the wire format
    return answers


@pytest.mark.parametrize("first", ["a", "b"])
def test_both_offer_and_both_hold_the_same_secret_and_each_others_new_id(first: str) -> None:
    a, b = KeepInTouch(os.urandom), KeepInTouch(os.urandom)
    one, two = (a, b) if first == "a" else (b, a)
    out = one.offer()
    assert out == [Keep()] and one.state is KeepState.OFFERED
    assert deliver(out, two) == [] and two.state is KeepState.ASKED
    out = two.offer()  # agreeing: its Keep and its contact at once
    assert [type(m) for m in out] == [Keep, Contact]
    back = deliver(out, one)
    assert [type(m) for m in back] == [Contact] and one.state is KeepState.AGREED
    assert deliver(back, two) == [] and two.state is KeepState.AGREED
    assert a.contact.secret == b.contact.secret
    # each learns the other's key for this contact, which is neither's own
    key_b = ed25519_key_of(peer_id_from_text(a.contact.their_peer_id))
    key_a = ed25519_key_of(peer_id_from_text(b.contact.their_peer_id))
    assert key_a != key_b and None not in (key_a, key_b)
    assert a.contact.our_key != b.contact.our_key


def test_crossed_offers_also_agree() -> None:
    a, b = KeepInTouch(os.urandom), KeepInTouch(os.urandom)
    from_a, from_b = a.offer(), b.offer()
    to_b, to_a = deliver(from_a, b), deliver(from_b, a)
    assert deliver(to_b, a) == [] and deliver(to_a, b) == []
    assert a.state is b.state is KeepState.AGREED and a.contact.secret == b.contact.secret


def test_an_offer_alone_reveals_nothing_long_term() -> None:
    a, b = KeepInTouch(os.urandom), KeepInTouch(os.urandom)
    assert deliver(a.offer(), b) == []
    assert b.contact is None and a.contact is None and b.state is KeepState.ASKED


def test_a_contact_pushed_without_consent_or_twice_is_a_protocol_error() -> None:
    pushed = Contact(bytes(32), bytes(32))
    for state_setup in (lambda m: None, lambda m: m.offer(), lambda m: m.receive(Keep())):
        machine = KeepInTouch(os.urandom)
        state_setup(machine)
        with pytest.raises(RemoteProtocolError, match="contact"):
            machine.receive(pushed)
    machine = KeepInTouch(os.urandom)
    machine.receive(Keep())
    with pytest.raises(RemoteProtocolError, match="twice"):
        machine.receive(Keep())
    with pytest.raises(LocalProtocolError, match="already offered"):
        _offer_twice()


def _offer_twice() -> None:
    machine = KeepInTouch(os.urandom)
    machine.offer()
    machine.offer()


def test_our_own_key_echoed_back_is_refused() -> None:
    machine = KeepInTouch(os.urandom)
    machine.receive(Keep())
    ours = machine.offer()[1]
    with pytest.raises(RemoteProtocolError, match="own contact key"):
        machine.receive(Contact(ours.public_key, os.urandom(32)))


def test_the_secret_is_symmetric_and_the_rendezvous_a_canonical_unguessable_interest() -> None:
    x, y = os.urandom(32), os.urandom(32)
    assert shared_secret(x, y) == shared_secret(y, x) != shared_secret(x, x)
    tag = rendezvous_interest(shared_secret(x, y))
    assert normalize_interest(tag) == tag and len(tag) <= 64 and tag.startswith("contact-")
    assert rendezvous_interest(shared_secret(x, os.urandom(32))) != tag


@pytest.mark.parametrize("body", [
    {"t": "contact", "p": b"\x00" * 31, "s": b"\x00" * 32},
    {"t": "contact", "p": b"\x00" * 32, "s": "text"},
    {"t": "contact", "p": b"\x00" * 32},
    {"t": "keep", "x": 1},
])
def test_bad_keep_messages_from_the_network_are_remote_errors(body) -> None:
    import msgpack

    from strangers.crypto.frames import PAD_BLOCK

    content = msgpack.packb(body, use_bin_type=True)
    padded = len(content).to_bytes(2, "big") + content
    padded += bytes(-len(padded) % PAD_BLOCK)
    with pytest.raises(RemoteProtocolError):
        decode_inner(padded)
