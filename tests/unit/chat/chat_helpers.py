"""Test helpers for the chat protocol: a wired pair of connections and a hand-played peer.

Like h11's ``tests/helpers.py``: :class:`ConnectionPair` holds an initiator
and a responder with real Ed25519 identities and seeded randomness, and moves
bytes between them; :class:`RawPeer` plays one end by hand with the bare
handshake and ratchet, so tests can send what no honest ``ChatConnection``
would.
"""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.frames import Envelope, FrameDecoder, Text, encode_frame, encode_inner
from strangers.crypto.franking import frank
from strangers.crypto.handshake import Commit, Finished, Handshake, Hello, Role
from strangers.crypto.ratchet import DoubleRatchet, Header
from strangers.crypto.session import CLOSED, NEED_DATA, ChatConnection, Established

__all__ = ["ConnectionPair", "RawPeer", "drain", "frames_in", "public_bytes"]


def frames_in(data: bytes) -> list[bytes]:
    """Split a stream into its frames, each with its length prefix."""
    out = []
    while data:
        size = int.from_bytes(data[:4], "big")
        out.append(data[: 4 + size])
        data = data[4 + size :]
    return out


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def drain(conn: ChatConnection) -> list[object]:
    """Every event ``conn`` has, up to NEED_DATA (left out) or CLOSED (kept)."""
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if event is CLOSED:
            return events


class ConnectionPair:
    """An initiator and a responder, back to back; everything is seeded by ``seed``.

    Two pairs built with the same seed behave identically byte for byte, which
    lets a test replay one pair's stream into the other's fresh connection.
    """

    def __init__(self, seed: int = 0) -> None:
        setup = random.Random(f"setup-{seed}")
        self.identities = {
            role: Ed25519PrivateKey.from_private_bytes(setup.randbytes(32)) for role in Role
        }
        self.match_id = setup.randbytes(16)
        self.conn = {
            role: ChatConnection(
                role=role,
                match_id=self.match_id,
                local_identity=self.identities[role],
                remote_identity=public_bytes(self.identities[role.peer]),
                rng=random.Random(f"{role.value}-{seed}").randbytes,
            )
            for role in Role
        }
        self.first: dict[Role, bytes] = {}
        self.frames: dict[str, bytes] = {}
        self.ready = b""

    @property
    def initiator(self) -> ChatConnection:
        return self.conn[Role.INITIATOR]

    @property
    def responder(self) -> ChatConnection:
        return self.conn[Role.RESPONDER]

    def start(self) -> None:
        """Both sides start: the initiator's commit is in ``first`` (not delivered yet)."""
        self.first = {role: conn.start() for role, conn in self.conn.items()}
        assert self.first[Role.RESPONDER] == b""

    def deliver(self, sender: Role, data: bytes) -> list[object]:
        """Feed ``data`` (if any) from ``sender`` to the other side; return its events."""
        receiver = self.conn[sender.peer]
        if data:
            receiver.receive_data(data)
        return drain(receiver)

    def end_stream(self, sender: Role) -> list[object]:
        """``sender`` closes the stream; return the other side's events."""
        receiver = self.conn[sender.peer]
        receiver.receive_data(b"")
        return drain(receiver)

    def send(self, sender: Role, *messages: object) -> list[object]:
        """``sender`` sends ``messages``; return the other side's events."""
        conn = self.conn[sender]
        data = b"".join(conn.send(message) for message in messages)  # type: ignore[arg-type]
        return self.deliver(sender, data)

    def flush(self, sender: Role) -> list[object]:
        """Deliver what ``sender`` has in ``data_to_send()``; return the other side's events."""
        return self.deliver(sender, self.conn[sender].data_to_send())

    def handshake(self) -> str:
        """Run the handshake but keep the initiator's Ready back; return the safety code.

        Records every handshake frame in ``self.frames`` (``"commit"``,
        ``"hello_R"``, ``"hello_I"``, ``"finished_I"``, ``"finished_R"``) and
        the Ready in ``self.ready``.
        """
        self.start()
        commit = self.first[Role.INITIATOR]
        assert self.deliver(Role.INITIATOR, commit) == []
        hello_r = self.responder.data_to_send()
        assert self.deliver(Role.RESPONDER, hello_r) == []
        hello_i, finished_i, ready = frames_in(self.initiator.data_to_send())
        responder_events = self.deliver(Role.INITIATOR, hello_i + finished_i)
        finished_r = self.responder.data_to_send()
        initiator_events = self.deliver(Role.RESPONDER, finished_r)
        code = self.initiator.safety_code
        assert code is not None
        assert initiator_events == responder_events == [Established(code)]
        self.frames = {
            "commit": commit, "hello_R": hello_r, "hello_I": hello_i,
            "finished_I": finished_i, "finished_R": finished_r,
        }
        self.ready = ready
        return code

    def open(self) -> str:
        """Handshake and deliver the ready: both sides may then send anything."""
        code = self.handshake()
        assert self.deliver(Role.INITIATOR, self.ready) == []
        assert self.responder.data_to_send() == b""
        assert self.initiator.data_to_send() == b""
        return code


class RawPeer:
    """The peer of ``victim`` played by hand: it encrypts any plaintext at all.

    ``RawPeer(pair, victim_role)`` takes the place of ``pair.conn[victim_role.peer]``
    (same identity, same match); :meth:`open` runs the handshake with the victim
    and, for a responder-played peer, decrypts the victim's ready.
    """

    def __init__(self, pair: ConnectionPair, victim: Role) -> None:
        self.role = victim.peer
        self.victim = pair.conn[victim]
        self.handshake = Handshake(
            role=self.role,
            match_id=pair.match_id,
            local_identity=pair.identities[self.role],
            remote_identity=public_bytes(pair.identities[victim]),
            rng=random.Random(f"raw-{self.role.value}").randbytes,
        )
        self.ratchet: DoubleRatchet | None = None
        self.associated_data = b""
        self.identity = pair.identities[self.role]
        self.match_id = pair.match_id
        self.texts_franked = 0

    def open(self) -> None:
        """Run the handshake with the victim; afterwards :meth:`seal` works.

        A responder-played peer also decrypts the victim's ready; an
        initiator-played peer sends no ready (tests send what they like).
        """
        decoder = FrameDecoder()
        first = self.victim.start()
        if self.role is Role.RESPONDER:
            decoder.feed(first)
            commit = decoder.next_frame()
            assert isinstance(commit, Commit)
            self.victim.receive_data(encode_frame(self.handshake.receive_commit(commit)))
            assert drain(self.victim) == []
            decoder.feed(self.victim.data_to_send())
            hello, finished, ready = decoder.next_frame(), decoder.next_frame(), decoder.next_frame()
            assert isinstance(hello, Hello) and isinstance(finished, Finished)
            assert isinstance(ready, Envelope)
            keys = self.handshake.receive_hello(hello)
            self.handshake.receive_finished(finished)
            self.victim.receive_data(encode_frame(self.handshake.finished()))
            assert [type(event).__name__ for event in drain(self.victim)] == ["Established"]
            self.ratchet, self.associated_data = keys.ratchet, keys.associated_data
            header = Header.from_bytes(ready.header)
            self.ratchet.decrypt(header, ready.ciphertext, self.associated_data)
        else:
            assert first == b""
            self.victim.receive_data(encode_frame(self.handshake.commit()))
            assert drain(self.victim) == []
            decoder.feed(self.victim.data_to_send())
            hello = decoder.next_frame()
            assert isinstance(hello, Hello)
            keys = self.handshake.receive_hello(hello)
            self.ratchet, self.associated_data = keys.ratchet, keys.associated_data
            self.victim.receive_data(
                encode_frame(self.handshake.hello()) + encode_frame(self.handshake.finished())
            )
            assert [type(event).__name__ for event in drain(self.victim)] == ["Established"]
            decoder.feed(self.victim.data_to_send())
            finished = decoder.next_frame()
            assert isinstance(finished, Finished)
            self.handshake.receive_finished(finished)

    def seal(self, plaintext: bytes) -> bytes:
        """A "msg" frame carrying exactly ``plaintext`` (no padding added)."""
        assert self.ratchet is not None
        header, ciphertext = self.ratchet.encrypt(plaintext, self.associated_data)
        return encode_frame(Envelope(header.to_bytes(), ciphertext))

    def seal_message(self, message: object) -> bytes:
        """Seal ``message``; a text without franking is franked as the next text (§6.11)."""
        if isinstance(message, Text) and message.franking is None:
            self.texts_franked += 1
            franking = frank(self.identity, random.Random(self.texts_franked).randbytes,
                             self.match_id, self.texts_franked, message.text)
            message = Text(message.id, message.text, franking)
        return self.seal(encode_inner(message))  # type: ignore[arg-type]
