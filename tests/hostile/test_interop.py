"""Interop check, the one place beside the hostile peer that imports ``strangers``.

The hostile peer itself is written from docs/protocol.md only. This test runs its v2 initiator
and ratchet against the project's pure ``ChatConnection`` (responder) over bytes, so a drift
between the document and the code shows up here in milliseconds rather than as a puzzling e2e
failure. It needs the v2 handshake (branch ``crypto``) in the tree under test.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostile.crypto import InitiatorV2, Ratchet, franked_text, msg_frame, open_msg
from hostile.wire import FrameBuffer, frame_obj, unpack_map
from strangers.crypto.frames import Delivered
from strangers.crypto.handshake import Role
from strangers.crypto.session import CLOSED, NEED_DATA, ChatConnection, Established
from strangers.errors import StrangersError


class Victim:
    """The project's responder, fed and drained by hand."""

    def __init__(self, initiator_key: Ed25519PrivateKey, match_id: bytes) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.connection = ChatConnection(
            role=Role.RESPONDER, match_id=match_id, local_identity=self.key,
            remote_identity=initiator_key.public_key().public_bytes_raw(), rng=os.urandom)
        assert self.connection.start() == b""
        self.buffer = FrameBuffer()
        self.frames: list[dict] = []
        self.franking: tuple[Ed25519PrivateKey, bytes] | None = None

    def feed(self, data: bytes) -> list[object]:
        self.connection.receive_data(data)
        events = []
        while True:
            event = self.connection.next_event()
            self.frames += [unpack_map(b) for b in self.buffer.feed(self.connection.data_to_send())]
            if event is NEED_DATA or event is CLOSED:
                return events
            events.append(event)


def established_pair():
    key, match_id = Ed25519PrivateKey.generate(), os.urandom(16)
    victim = Victim(key, match_id)
    hostile = InitiatorV2(key, victim.key.public_key().public_bytes_raw(), match_id)
    victim.feed(frame_obj(hostile.commit()))
    keys = hostile.receive_hello(victim.frames.pop(0))
    ratchet = Ratchet.initiator(keys.root, keys.remote_ephemeral, keys.transcript, os.urandom)
    head, ciphertext = ratchet.encrypt({"t": "ready"})
    events = victim.feed(frame_obj(hostile.hello()) + frame_obj(hostile.finished())
                         + frame_obj(msg_frame(head, ciphertext)))
    assert events == [Established(safety_code=keys.safety)]
    hostile.receive_finished(victim.frames.pop(0))
    victim.franking = (key, match_id)
    return victim, ratchet


def test_the_hostile_peer_and_the_project_agree_on_handshake_and_ratchet():
    victim, ratchet = established_pair()
    head, ciphertext = ratchet.encrypt(franked_text(*victim.franking, 1, 1, "hello"))
    (text,) = victim.feed(frame_obj(msg_frame(head, ciphertext)))
    assert (text.id, text.text) == (1, "hello")
    for body in victim.buffer.feed(victim.connection.send(Delivered(1))):
        victim.frames.append(unpack_map(body))
    assert [open_msg(ratchet, frame) for frame in victim.frames] == [{"t": "delivered", "id": 1}]


def test_the_project_rejects_the_hostile_replay():
    victim, ratchet = established_pair()
    head, ciphertext = ratchet.encrypt(franked_text(*victim.franking, 1, 1, "twice"))
    data = frame_obj(msg_frame(head, ciphertext))
    victim.feed(data)
    try:
        victim.feed(data)
    except StrangersError:
        return
    raise AssertionError("the replayed frame was accepted")
