"""Fuzz targets: every pure decoder and state machine that takes peer input.

Each target is a function ``bytes -> None`` that feeds the bytes to the code
under test and raises :class:`PropertyViolation` (or lets an unexpected
exception escape) if a property fails.  The properties, for every input:

* only the library's own errors come out (``RemoteProtocolError`` /
  ``CryptoError``, both :class:`~strangers.errors.StrangersError`; never
  ``AssertionError``, ``RecursionError``, ``TypeError``, ...);
* a failed machine stays failed (sticky ``ERROR``) and sends nothing more;
* buffers stay bounded;
* nothing hangs (every loop is bounded by the input; the fuzzers run each
  example under a hypothesis deadline in the long profile).

The same functions replay the corpus (``corpus/<target>/*``) and are driven by
the hypothesis strategies of ``test_fuzz_*.py``.  Inputs that need a setting
(which role, which state) take it from their first byte, so a corpus file is
always plain bytes.
"""

from __future__ import annotations

import collections
import random
import struct
from collections.abc import Callable
from typing import Any

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.frames import (
    MAX_FRAME,
    Delivered,
    Envelope,
    FrameDecoder,
    Ping,
    Text,
    Typing,
    decode_inner,
    encode_frame,
)
from strangers.crypto.handshake import Handshake, Role
from strangers.crypto.ratchet import DoubleRatchet, Header
from strangers.crypto.session import (
    CLOSED,
    MAX_QUEUED,
    MAX_UNDELIVERED,
    NEED_DATA,
    ChatConnection,
    ConnectionState,
    Established,
)
from strangers.discovery import proposal
from strangers.errors import CryptoError, RemoteProtocolError

__all__ = ["TARGETS", "EXECUTIONS", "PropertyViolation", "honest_stream"]

#: How many inputs each target ran in this process (for the long run's figures).
EXECUTIONS: collections.Counter[str] = collections.Counter()

PEER_ERRORS = (RemoteProtocolError, CryptoError)


class PropertyViolation(AssertionError):
    """A fuzz property failed (not an exception of the code under test)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PropertyViolation(message)


# --- chat frames and inner messages --------------------------------------------------


def chat_frames(data: bytes) -> None:
    """FrameDecoder over ``data`` cut in chunks whose sizes come from ``data`` itself."""
    EXECUTIONS["chat-frames"] += 1
    decoder = FrameDecoder()
    rng = random.Random(data[:8])
    position = 0
    try:
        while position < len(data):
            size = rng.choice([1, 2, 7, 64, 4096, MAX_FRAME + 4, len(data)])
            decoder.feed(data[position : position + size])
            position += size
            while (frame := decoder.next_frame()) is not None:
                _check(encode_frame(frame) is not None, "a decoded frame must encode again")
            _check(decoder.buffered <= MAX_FRAME + 4, f"decoder holds {decoder.buffered} bytes")
    except RemoteProtocolError:
        try:
            decoder.next_frame()
        except RemoteProtocolError:
            return
        raise PropertyViolation("a broken decoder decoded again") from None


def chat_inner(data: bytes) -> None:
    """decode_inner over a padded plaintext as it comes out of the AEAD."""
    EXECUTIONS["chat-inner"] += 1
    try:
        decode_inner(data)
    except RemoteProtocolError:
        pass


# --- the chat session ----------------------------------------------------------------


def _identities(seed: int) -> dict[Role, Ed25519PrivateKey]:
    setup = random.Random(f"fuzz-identities-{seed}")
    return {role: Ed25519PrivateKey.from_private_bytes(setup.randbytes(32)) for role in Role}


def _connection(role: Role, seed: int = 0) -> ChatConnection:
    keys = _identities(seed)
    return ChatConnection(
        role=role,
        match_id=bytes(range(16)),
        local_identity=keys[role],
        remote_identity=keys[role.peer].public_key().public_bytes_raw(),
        rng=random.Random(f"fuzz-{role.value}-{seed}").randbytes,
    )


def _split(data: bytes) -> list[bytes]:
    frames = []
    while data:
        size = int.from_bytes(data[:4], "big")
        frames.append(data[: 4 + size])
        data = data[4 + size :]
    return frames


def honest_stream(victim: Role) -> list[bytes]:
    """The frames an honest peer of ``victim`` sends in a short chat, in order.

    A fresh ``_connection(victim)`` answers byte for byte as the recorded one
    did, so any prefix of these frames is valid for it.
    """
    conn = {role: _connection(role) for role in Role}
    sent: list[bytes] = []
    peer = victim.peer

    def exchange(sender: Role, data: bytes) -> None:
        if sender is peer:
            sent.extend(_split(data))
        receiver = conn[sender.peer]
        receiver.receive_data(data)
        while receiver.next_event() not in (NEED_DATA, CLOSED):
            pass

    first = {role: conn[role].start() for role in Role}
    exchange(Role.INITIATOR, first[Role.INITIATOR])
    for _ in range(3):  # the handshake's flights
        for role in (Role.RESPONDER, Role.INITIATOR):
            data = conn[role].data_to_send()
            if data:
                exchange(role, data)
    for message in (Typing(True), Text(1, "one"), Ping(3), Text(2, "two" * 30)):
        exchange(peer, conn[peer].send(message))
    return sent


_HONEST: dict[Role, list[bytes]] = {}


def _honest(victim: Role) -> list[bytes]:
    if victim not in _HONEST:
        _HONEST[victim] = honest_stream(victim)
    return _HONEST[victim]


def _drain(conn: ChatConnection) -> list[object]:
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is CLOSED:
            events.append(event)
            return events
        events.append(event)
        _check(len(events) < 100_000, "next_event() does not stop")


def _check_invariants(conn: ChatConnection) -> None:
    stats = conn.statistics()
    _check(stats.buffered_bytes <= MAX_FRAME + 4, f"{stats.buffered_bytes} bytes buffered")
    _check(stats.queued_messages <= MAX_QUEUED + 1, f"{stats.queued_messages} queued")
    _check(stats.awaiting_delivery <= MAX_UNDELIVERED, "too many texts awaiting a receipt")


def _feed(conn: ChatConnection, chunks: list[bytes], end: bool) -> list[object]:
    """Feed ``chunks`` (then the end of stream), draining after each; check the
    properties; return the events reported until the chat ended or failed."""
    seen: list[object] = []
    try:
        for chunk in [*chunks, *([b""] if end else [])]:
            conn.receive_data(chunk)
            events = _drain(conn)
            seen += events
            conn.data_to_send()
            _check_invariants(conn)
            _check(events.count(CLOSED) <= 1, "events after CLOSED")
            if events[-1] is CLOSED:
                _check(conn.state is ConnectionState.CLOSED, f"CLOSED in state {conn.state}")
                return seen
    except PEER_ERRORS:
        _check(conn.state is ConnectionState.ERROR, f"failed in state {conn.state}")
        _check(conn.data_to_send() == b"", "a failed chat still sends")
        try:
            conn.next_event()
        except RemoteProtocolError:
            return seen
        raise PropertyViolation("a failed chat produced an event") from None
    return seen


def _check_conversation(events: list[object], sent_text_ids: set[int]) -> None:
    """Receipts name texts we sent, once each; received text ids increase."""
    acknowledged: set[int] = set()
    last_text = 0
    for event in events:
        if isinstance(event, Delivered):
            _check(event.id in sent_text_ids, f"a receipt for text {event.id}, never sent")
            _check(event.id not in acknowledged, f"a second receipt for text {event.id}")
            acknowledged.add(event.id)
        elif isinstance(event, Text):
            _check(event.id > last_text, f"text {event.id} reported after text {last_text}")
            last_text = event.id


def chat_session(data: bytes) -> None:
    """A ChatConnection in any state, fed arbitrary bytes.

    First byte: bit 0 the victim's role (0 initiator, 1 responder), bit 7 an
    end of stream after the data, bits 1-6 how many frames of the honest peer's
    stream (:func:`honest_stream`) it gets first, which puts it in every state
    in turn.  The rest is fed in chunks cut at the bytes' own frame boundaries
    and at a few fixed places.
    """
    EXECUTIONS["chat-session"] += 1
    if not data:
        return
    selector, rest = data[0], data[1:]
    victim = Role.RESPONDER if selector & 1 else Role.INITIATOR
    honest = _honest(victim)
    prefix = (selector >> 1 & 0x3F) % (len(honest) + 1)
    conn = _connection(victim)
    conn.start()
    for frame in honest[:prefix]:
        conn.receive_data(frame)
        _drain(conn)
        conn.data_to_send()
    chunks = [rest[i : i + 97] for i in range(0, len(rest), 97)] if selector & 0x40 else [rest]
    _feed(conn, [chunk for chunk in chunks if chunk], bool(selector & 0x80))


class _SealingPeer:
    """The honest peer of ``victim`` after the handshake, with a ratchet that
    encrypts any plaintext at all."""

    def __init__(self, victim: Role) -> None:
        keys = _identities(0)
        self.role = victim.peer
        self.victim = _connection(victim)
        handshake = Handshake(
            role=self.role, match_id=bytes(range(16)), local_identity=keys[self.role],
            remote_identity=keys[victim].public_key().public_bytes_raw(),
            rng=random.Random("fuzz-sealer").randbytes,
        )
        decoder = FrameDecoder()
        first = self.victim.start()
        if self.role is Role.RESPONDER:
            decoder.feed(first)
            self._give(handshake.receive_commit(decoder.next_frame()))  # type: ignore[arg-type]
            decoder.feed(self.victim.data_to_send())
            hello, finished, ready = (decoder.next_frame() for _ in range(3))
            session = handshake.receive_hello(hello)  # type: ignore[arg-type]
            handshake.receive_finished(finished)  # type: ignore[arg-type]
            self._give(handshake.finished())
            assert isinstance(ready, Envelope)
            session.ratchet.decrypt(Header.from_bytes(ready.header), ready.ciphertext,
                                    session.associated_data)
        else:
            self._give(handshake.commit())
            decoder.feed(self.victim.data_to_send())
            session = handshake.receive_hello(decoder.next_frame())  # type: ignore[arg-type]
            self._give(handshake.hello(), handshake.finished())
            decoder.feed(self.victim.data_to_send())
            handshake.receive_finished(decoder.next_frame())  # type: ignore[arg-type]
        self.ratchet: DoubleRatchet = session.ratchet
        self.associated_data = session.associated_data
        assert self.victim.state is ConnectionState.OPEN

    def _give(self, *frames: Any) -> None:
        self.victim.receive_data(b"".join(encode_frame(frame) for frame in frames))
        events = _drain(self.victim)
        assert all(e is NEED_DATA or isinstance(e, Established) for e in events), events

    def seal(self, plaintext: bytes) -> bytes:
        header, ciphertext = self.ratchet.encrypt(plaintext, self.associated_data)
        return encode_frame(Envelope(header.to_bytes(), ciphertext))


def chat_plaintexts(data: bytes) -> None:
    """An open chat fed authentic ciphertexts of arbitrary plaintexts.

    First byte: bit 0 the victim's role; bit 1 whether the victim sends two
    texts first (so that receipts for them are valid).  The rest is a sequence
    of plaintexts, each a 2-byte big-endian length and that many bytes.  This
    reaches the inner decoder and the conversation rules (ready, text ids,
    receipts, bye) through the real session.
    """
    EXECUTIONS["chat-plaintexts"] += 1
    if not data:
        return
    victim = Role.RESPONDER if data[0] & 1 else Role.INITIATOR
    peer = _SealingPeer(victim)
    sent_text_ids: set[int] = set()
    if data[0] & 2:
        peer.victim.send(Text(1, "a"))
        peer.victim.send(Text(2, "b"))
        sent_text_ids = {1, 2}
    frames = []
    rest = data[1:]
    while len(rest) >= 2:
        (size,) = struct.unpack_from(">H", rest)
        frames.append(peer.seal(rest[2 : 2 + size]))
        rest = rest[2 + size :]
    _check_conversation(_feed(peer.victim, frames, False), sent_text_ids)


# --- match frames ---------------------------------------------------------------------


def proposal_frames(data: bytes) -> None:
    """The match protocol: a 4-byte length prefix, then a body."""
    EXECUTIONS["proposal"] += 1
    try:
        proposal.frame_length(data[:4])
    except RemoteProtocolError:
        pass
    try:
        message = proposal.decode(data)
    except RemoteProtocolError:
        return
    _check(proposal.decode(proposal.encode(message)[4:]) == message, "decode(encode(m)) != m")


# --- DHT replies ------------------------------------------------------------------------


class _PeerStore:
    def __init__(self) -> None:
        self.added = 0

    def add_addrs(self, peer_id: object, addrs: list[object], ttl: object) -> None:
        self.added += 1


class _Host:
    def __init__(self) -> None:
        self.store = _PeerStore()

    def get_peerstore(self) -> _PeerStore:
        return self.store


class _DHTStandIn:
    """Just what ``StrangersDHT._learn_peers`` uses of its instance."""

    def __init__(self) -> None:
        from libp2p.peer.id import ID

        self.host = _Host()
        self.local_peer_id = ID(b"\x00\x24\x08\x01\x12\x20" + bytes(32))


def kad_reply(data: bytes) -> None:
    """A Kademlia reply: protobuf parsing as ``StrangersDHT._rpc`` does it, then the
    peer extraction of ``StrangersDHT._learn_peers`` on both peer lists."""
    EXECUTIONS["kad-reply"] += 1
    from libp2p.kad_dht.pb.kademlia_pb2 import Message

    from strangers.discovery.lookup import K_VALUE
    from strangers.node.libp2p.kad import MAX_ADDRS_PER_PEER, StrangersDHT

    reply = Message()
    try:
        reply.ParseFromString(data)
    except Exception:  # noqa: BLE001 - _rpc turns any parse failure into RemoteProtocolError
        return
    stand_in = _DHTStandIn()
    for peers in (reply.closerPeers, reply.providerPeers):
        learned = StrangersDHT._learn_peers(stand_in, peers)  # type: ignore[arg-type]
        _check(len(learned) <= 2 * K_VALUE, f"{len(learned)} peers learned from one reply")
        for info in learned:
            _check(len(info.addrs) <= MAX_ADDRS_PER_PEER, "too many addresses kept")


class _ByteStream:
    """A stream that returns ``data`` in reads of at most ``step`` bytes, then EOF."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step

    async def read(self, n: int) -> bytes:
        chunk = self._data[: min(n, self._step)]
        self._data = self._data[len(chunk) :]
        return chunk


def uvarint_frame(data: bytes) -> None:
    """The Kademlia stream framing (``streamio.read_uvarint_frame``), 4 KiB limit."""
    EXECUTIONS["uvarint-frame"] += 1
    from strangers.node.libp2p.streamio import read_uvarint_frame

    step = 1 + (data[0] % 16 if data else 0)

    async def read() -> None:
        try:
            frame = await read_uvarint_frame(_ByteStream(data[1:], step), 4096)
        except RemoteProtocolError:  # StreamEnded and StreamFailed are subclasses
            return
        _check(len(frame) <= 4096, f"a {len(frame)}-byte frame over the limit")

    trio.run(read)


#: Every target by its corpus directory name.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "chat-frames": chat_frames,
    "chat-inner": chat_inner,
    "chat-session": chat_session,
    "chat-plaintexts": chat_plaintexts,
    "proposal": proposal_frames,
    "kad-reply": kad_reply,
    "uvarint-frame": uvarint_frame,
}
