"""Franking inside the chat session (docs/protocol.md §6.11): evidence kept, forgeries refused."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.frames import Ready, Text
from strangers.crypto.franking import frank, verify_franking
from strangers.crypto.handshake import Role
from strangers.crypto.session import MAX_EVIDENCE, NEED_DATA, ConnectionState
from strangers.errors import CryptoError

from chat_helpers import ConnectionPair, RawPeer


def test_received_texts_are_kept_as_evidence_bounded(open_pair) -> None:
    sender, receiver = Role.INITIATOR, Role.RESPONDER
    count = MAX_EVIDENCE + 5
    for number in range(1, count + 1):
        assert open_pair.send(sender, Text(number, f"text {number}")) == [
            Text(number, f"text {number}")]
    evidence = open_pair.conn[receiver].evidence
    assert len(evidence) == MAX_EVIDENCE
    assert [item.seq for item in evidence] == list(range(6, count + 1))
    assert evidence[-1].text == f"text {count}"
    for item in evidence[:3]:
        verify_franking(open_pair.conn[receiver].remote_identity, open_pair.conn[receiver].match_id,
                        item.seq, item.text, item.franking)
    assert open_pair.conn[sender].evidence == ()


def opened(victim: Role) -> RawPeer:
    """A raw peer with the chat open (an initiator-played peer has sent its Ready)."""
    peer = RawPeer(ConnectionPair(), victim)
    peer.open()
    if victim is Role.RESPONDER:
        peer.victim.receive_data(peer.seal_message(Ready()))
        assert peer.victim.next_event() is NEED_DATA
    return peer


@pytest.mark.parametrize("victim", [Role.INITIATOR, Role.RESPONDER])
def test_a_text_with_a_forged_or_reused_franking_ends_the_chat(victim: Role) -> None:
    peer = opened(victim)
    first = frank(peer.identity, random.Random(1).randbytes, peer.match_id, 1, "one")
    peer.victim.receive_data(peer.seal_message(Text(1, "one", first)))
    assert peer.victim.next_event() == Text(1, "one")
    # the franking of text 1 again on text 2: the sequence number is not the signed one
    peer.victim.receive_data(peer.seal_message(Text(2, "one", first)))
    with pytest.raises(CryptoError, match="text 2 of the chat"):
        peer.victim.next_event()
    assert peer.victim.state is ConnectionState.ERROR


@pytest.mark.parametrize("victim", [Role.INITIATOR, Role.RESPONDER])
def test_a_text_franked_by_someone_else_ends_the_chat(victim: Role) -> None:
    peer = opened(victim)
    other = frank(Ed25519PrivateKey.generate(), random.Random(1).randbytes, peer.match_id, 1, "hi")
    peer.victim.receive_data(peer.seal_message(Text(1, "hi", other)))
    with pytest.raises(CryptoError):
        peer.victim.next_event()
    assert peer.victim.evidence == ()
