"""A libp2p host that speaks the strangers wire protocol from docs/protocol.md, and nothing else.

It uses py-libp2p directly (TCP, Noise only, Yamux, an Ed25519 identity), msgpack and
``cryptography``; it imports nothing from ``strangers``. Every step is a separate call so that an
attack can stop, lie or stall between any two of them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as new_noise_key_pair
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from multiaddr import Multiaddr

from .crypto import (
    HostileCryptoError,
    InitiatorV1,
    InitiatorV2,
    Keys,
    Ratchet,
    franked_text,
    msg_frame,
    open_msg,
    raw_key_from_peer_id,
)
from .wire import MAX_PROPOSAL_FRAME, FrameBuffer, WireError, frame, frame_obj, pack, unpack_map

MATCH_PROTOCOL = "/strangers/match/1.0.0"
KAD_PROTOCOL = "/strangers/kad/1.0.0"  # docs/protocol.md §4
EPOCH_SECONDS = 300
CHAT_V1 = "/strangers/chat/1.0.0"
CHAT_V2 = "/strangers/chat/2.0.0"
CHAT_V3 = "/strangers/chat/3.0.0"
"""v2's handshake and ratchet; texts carry franking (§6.11)."""
DEFAULT_CHAT_PROTOCOL = CHAT_V3
DEFAULT_HANDSHAKE_VERSION = 2
READ_SIZE = 65536 + 4


class StreamGone(Exception):
    """The victim closed or reset the stream (or the connection went away)."""


class FrameStream:
    """Frames over one libp2p stream: write raw bytes, read whole frame bodies."""

    def __init__(self, stream, limit: int) -> None:
        self.stream = stream
        self._buffer = FrameBuffer(limit)
        self._ready: list[bytes] = []

    async def write(self, data: bytes) -> None:
        try:
            await self.stream.write(data)
        except Exception as exc:  # py-libp2p raises several stream/muxer errors
            raise StreamGone(f"write failed: {exc!r}") from None

    async def write_obj(self, obj: object) -> bytes:
        data = frame_obj(obj)
        await self.write(data)
        return data

    async def read_body(self) -> bytes:
        while not self._ready:
            try:
                data = await self.stream.read(READ_SIZE)
            except Exception as exc:  # StreamEOF, StreamReset, muxer errors
                raise StreamGone(f"{type(exc).__name__}: {exc}") from None
            if not data:
                raise StreamGone("end of stream")
            self._ready.extend(self._buffer.feed(data))
        return self._ready.pop(0)

    async def read_map(self) -> dict:
        return unpack_map(await self.read_body())

    async def wait_gone(self) -> str:
        """Read and drop whatever arrives until the victim ends the stream; say how it ended."""
        while True:
            try:
                await self.read_body()
            except StreamGone as exc:
                return str(exc)
            except WireError:
                continue

    async def reset(self) -> None:
        try:
            await self.stream.reset()
        except Exception:
            pass

    async def close(self) -> None:
        try:
            await self.stream.close()
        except Exception:
            pass


@dataclass
class HostilePeer:
    host: object
    identity: Ed25519PrivateKey
    peer_id: ID
    log: list[str] = field(default_factory=list)
    """Oddities the victim showed on the way (for the test output)."""

    async def connect(self, addr: str) -> ID:
        info = info_from_p2p_addr(Multiaddr(addr))
        await self.host.connect(info)
        return info.peer_id

    async def open(self, victim: ID, protocol: str, limit: int) -> FrameStream:
        stream = await self.host.new_stream(victim, [TProtocol(protocol)])
        return FrameStream(stream, limit)

    async def propose(self, victim: ID, interests: list[str], *, match_id: bytes | None = None,
                      body: bytes | None = None) -> tuple[bytes, dict]:
        """§5.2: write a Propose (or ``body`` instead) and read the answer; (match id, answer)."""
        match_id = match_id or secrets.token_bytes(16)
        stream = await self.open(victim, MATCH_PROTOCOL, MAX_PROPOSAL_FRAME)
        try:
            if body is None:
                body = pack({"t": "propose", "v": 1, "m": match_id, "i": interests})
            await stream.write(frame(body))
            answer = await stream.read_map()
        finally:
            await stream.close()
        return match_id, answer

    async def match(self, victim: ID, interests: list[str]) -> bytes:
        """Propose until accepted (the victim may be busy for a moment); the match id."""
        match_id = secrets.token_bytes(16)
        with trio.fail_after(20):
            while True:
                try:
                    _, answer = await self.propose(victim, interests, match_id=match_id)
                except StreamGone as exc:  # an honest proposer tries again too (§5.3, §5.5)
                    self.log.append(f"proposal stream ended before the answer: {exc}")
                    answer = {}
                if answer.get("t") == "accept" and answer.get("m") == match_id:
                    return match_id
                await trio.sleep(0.2)

    async def open_chat(self, victim: ID, protocol: str = DEFAULT_CHAT_PROTOCOL) -> FrameStream:
        return await self.open(victim, protocol, 65536)

    # -- the responder's side: be found, accept, take the chat stream ---------------------------

    async def advertise(self, dht_addr: str, interest: str, now: float | None = None) -> None:
        """ADD_PROVIDER (standard Kademlia) for the interest's home key of this epoch (§3.2)."""
        server = await self.connect(dht_addr)
        message = Message()
        message.type = Message.MessageType.ADD_PROVIDER
        message.key = topic_key(interest, time.time() if now is None else now)
        provider = message.providerPeers.add()
        provider.id = self.peer_id.to_bytes()
        provider.addrs.extend(addr.to_bytes() for addr in self.host.get_addrs())
        body = message.SerializeToString()
        stream = await self.host.new_stream(server, [TProtocol(KAD_PROTOCOL)])
        try:
            await stream.write(_varint(len(body)) + body)
        finally:
            await stream.close()

    def answer_proposals(self, interest: str, protocol: str,
                         on_chat: Callable[[ID, bytes, FrameStream], Awaitable[None]]) -> None:
        """Accept every Propose (echoing its match id, §5.2), then hand the chat stream of the
        peer we accepted to ``on_chat`` (the stream lives as long as that coroutine)."""
        accepted: dict[ID, bytes] = {}

        async def on_match(stream) -> None:
            frames = FrameStream(stream, MAX_PROPOSAL_FRAME)
            try:
                propose = await frames.read_map()
                if propose.get("t") == "propose" and isinstance(propose.get("m"), bytes):
                    accepted[stream.muxed_conn.peer_id] = propose["m"]
                    await frames.write_obj({"t": "accept", "m": propose["m"], "i": [interest]})
            except (StreamGone, WireError):
                pass
            finally:
                await frames.close()

        async def on_chat_stream(stream) -> None:
            frames = FrameStream(stream, 65536)
            match_id = accepted.get(stream.muxed_conn.peer_id)
            if match_id is None:
                await frames.reset()
                return
            await on_chat(stream.muxed_conn.peer_id, match_id, frames)

        self.host.set_stream_handler(TProtocol(MATCH_PROTOCOL), on_match)
        self.host.set_stream_handler(TProtocol(protocol), on_chat_stream)


def topic_key(interest: str, now: float, shard: int = 0) -> bytes:
    """The Kademlia key (sha2-256 multihash) of an already canonical interest (§3.2)."""
    epoch = int(now // EPOCH_SECONDS)
    name = f"strangers/v1/interest/{interest}/{epoch}/{shard}"
    return b"\x12\x20" + hashlib.sha256(name.encode("utf-8")).digest()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@dataclass
class Chat:
    """A chat whose handshake we completed as initiator: encrypt, decrypt, replay, forge."""

    stream: FrameStream
    ratchet: Ratchet
    keys: Keys
    sent_frames: list[bytes] = field(default_factory=list)
    next_id: int = 1
    identity: Ed25519PrivateKey | None = None
    match_id: bytes = b""
    texts_sent: int = 0

    async def send(self, message: dict) -> bytes:
        """Encrypt and write one inner message; the exact frame bytes written."""
        head, ciphertext = self.ratchet.encrypt(message)
        data = await self.stream.write_obj(msg_frame(head, ciphertext))
        self.sent_frames.append(data)
        return data

    def text(self, text: str) -> dict:
        """The next text as an inner map, franked (§6.11) when the chat has an identity."""
        if self.identity is None:  # v1 and v2 chats: texts without franking
            return {"t": "text", "id": self.next_id, "x": text}
        self.texts_sent += 1
        return franked_text(self.identity, self.match_id, self.texts_sent, self.next_id, text)

    async def send_text(self, text: str) -> bytes:
        data = await self.send(self.text(text))
        self.next_id += 1
        return data

    async def receive(self) -> dict:
        """The next inner message from the victim."""
        return open_msg(self.ratchet, await self.stream.read_map())

    async def receive_until(self, kind: str) -> dict:
        while True:
            message = await self.receive()
            if message.get("t") == kind:
                return message


async def handshake(stream: FrameStream, peer: HostilePeer, victim: ID, match_id: bytes,
                    version: int = DEFAULT_HANDSHAKE_VERSION) -> Chat:
    """Run the initiator side of the v1 or v2 handshake, then send Ready (§6.5 rule 2)."""
    remote_identity = raw_key_from_peer_id(victim.to_bytes())
    if version == 1:
        v1 = InitiatorV1(peer.identity, remote_identity, match_id, os.urandom)
        await stream.write_obj(v1.hello())
        keys = v1.receive_hello(await stream.read_map())
        chat = Chat(stream, Ratchet.initiator(keys.root, keys.remote_ephemeral, keys.transcript,
                                              os.urandom), keys)
        await chat.send({"t": "ready"})
        return chat
    if version != 2:
        raise ValueError(f"unknown handshake version {version!r}")
    v2 = InitiatorV2(peer.identity, remote_identity, match_id, os.urandom)
    await stream.write_obj(v2.commit())
    keys = v2.receive_hello(await stream.read_map())
    chat = Chat(stream, Ratchet.initiator(keys.root, keys.remote_ephemeral, keys.transcript,
                                          os.urandom), keys)
    if _protocol_of(stream) not in (CHAT_V1, CHAT_V2):  # v3 and later frank their texts
        chat.identity, chat.match_id = peer.identity, match_id
    # One flight: hello_I, finished_I, msg(Ready).
    head, ciphertext = chat.ratchet.encrypt({"t": "ready"})
    await stream.write(frame_obj(v2.hello()) + frame_obj(v2.finished())
                       + frame_obj(msg_frame(head, ciphertext)))
    v2.receive_finished(await stream.read_map())
    return chat


def _protocol_of(stream: FrameStream) -> str:
    get_protocol = getattr(stream.stream, "get_protocol", None)
    return str(get_protocol()) if get_protocol is not None else DEFAULT_CHAT_PROTOCOL


@asynccontextmanager
async def open_hostile_peer(listen: str = "/ip4/127.0.0.1/tcp/0") -> AsyncIterator[HostilePeer]:
    """A running host with a fresh Ed25519 identity (a new stranger every time)."""
    seed = os.urandom(32)
    key_pair = create_new_key_pair(seed)
    noise = NoiseTransport(key_pair, noise_privkey=new_noise_key_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={NOISE_PROTOCOL_ID: noise},
                    muxer_preference="YAMUX",
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    # py-libp2p's auto-connector would dial every peer identify tells us about; a stranger
    # dials only its victim.
    connector = getattr(host.get_network(), "auto_connector", None)
    if connector is not None:
        connector.maybe_connect = _never_connect
    _refuse_unreadable_streams(host.get_network())
    async with host.run(listen_addrs=[Multiaddr(listen)]):
        yield HostilePeer(host, Ed25519PrivateKey.from_private_bytes(seed), host.get_id())


async def _never_connect(*_args, **_kwargs) -> None:
    return None


def _refuse_unreadable_streams(swarm) -> None:
    """A stream this host cannot read ends alone, as any libp2p peer's would.

    py-libp2p 0.8.1 stops the whole host when an inbound stream's handling
    raises, e.g. on a protocol id that is not UTF-8: the data a victim sends
    right behind a proposal we refuse (multistream-select's lazy mode) reads
    as one. The tests attack the victim, not this host.
    """
    handle = swarm.common_stream_handler

    async def refusing(stream) -> None:
        try:
            await handle(stream)
        except Exception:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await stream.reset()
                except Exception:
                    pass

    swarm.common_stream_handler = refusing


__all__ = [
    "CHAT_V1", "CHAT_V2", "CHAT_V3", "Chat", "FrameStream", "HostileCryptoError", "HostilePeer",
    "StreamGone", "handshake", "open_hostile_peer",
]
