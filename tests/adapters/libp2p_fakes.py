"""Fakes that give trio memory streams the py-libp2p interface our adapters use.

The adapters (``node/chat.py``, ``node/matching.py``, ``node/libp2p/streamio.py``)
touch only a small part of a libp2p ``INetStream``: ``read(n)``, ``write``,
``close`` (half-close: we stop writing), ``reset`` and ``muxed_conn.peer_id``;
of the host only ``new_stream``, ``get_peerstore().add_addrs`` and the swarm's
``get_connections``/``remove_conn``.  :func:`stream_pair` wires two
:class:`FakeStream` ends over ``trio.testing.memory_stream_pair`` (or
``lockstep_stream_pair``) with libp2p's semantics:

* ``read`` returns at most ``n`` bytes and raises ``StreamEOF`` at the end
  (never ``b""``), ``StreamReset`` once either side reset the stream;
* ``write`` after our ``close`` raises ``StreamClosed``, after a reset
  ``StreamReset``;
* ``window``: like yamux's receive window, a writer blocks while the other
  side has ``window`` or more bytes it has not read yet (a frozen stranger
  stops reading, so our writes stall);
* ``freeze()`` makes one end a frozen process: it neither reads nor writes,
  and never closes.

Everything here is deterministic; tests run it under ``MockClock``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import Ed25519PrivateKey as Libp2pPrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.network.stream.exceptions import StreamClosed, StreamEOF, StreamReset
from libp2p.peer.id import ID

__all__ = [
    "FakeHost",
    "FakeStream",
    "Peer",
    "make_peer",
    "stream_pair",
]


@dataclass
class Peer:
    """A stranger's identity: its Ed25519 key and libp2p peer id."""

    signing_key: Ed25519PrivateKey
    peer_id: ID

    @property
    def public_bytes(self) -> bytes:
        return self.signing_key.public_key().public_bytes_raw()


def make_peer(seed: int | str) -> Peer:
    """A deterministic identity (same seed, same peer)."""
    raw = random.Random(f"peer-{seed}").randbytes(32)
    signing_key = Ed25519PrivateKey.from_private_bytes(raw)
    private = Libp2pPrivateKey.from_bytes(raw)
    peer_id = ID.from_pubkey(KeyPair(private, private.get_public_key()).public_key)
    return Peer(signing_key, peer_id)


@dataclass
class _Conn:
    peer_id: ID


@dataclass
class _Direction:
    """Bytes written by one end and not yet read by the other (for the window)."""

    window: int | None
    unread: int = 0
    progress: trio.Event = field(default_factory=trio.Event)

    def consumed(self, count: int) -> None:
        self.unread -= count
        self.progress.set()
        self.progress = trio.Event()


class _Shared:
    def __init__(self) -> None:
        self.reset = False
        self.reset_event = trio.Event()


class FakeStream:
    """One end of a libp2p-like stream; ``muxed_conn.peer_id`` is the *other* end's id."""

    def __init__(self, inner: trio.abc.HalfCloseableStream, remote: ID, shared: _Shared,
                 outgoing: _Direction, incoming: _Direction) -> None:
        self._inner = inner
        self.muxed_conn = _Conn(remote)
        self._shared = shared
        self._out = outgoing
        self._in = incoming
        self._write_closed = False
        self._frozen = trio.Event()
        self.resets = 0
        self.closes = 0
        self.written = bytearray()
        """Everything this end wrote, for assertions."""

    # -- the libp2p interface ---------------------------------------------------------

    async def read(self, n: int | None = None) -> bytes:
        if self._shared.reset:
            raise StreamReset("stream reset")
        if self._frozen.is_set():
            await trio.sleep_forever()
        max_bytes = None if n is None or n < 0 else n
        async with trio.open_nursery() as nursery:
            # whichever comes first: data (or EOF), or a reset
            result: list[bytes] = []

            async def receive() -> None:
                result.append(await self._inner.receive_some(max_bytes))
                nursery.cancel_scope.cancel()

            async def watch_reset() -> None:
                await self._shared.reset_event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(receive)
            nursery.start_soon(watch_reset)
        if not result:
            raise StreamReset("stream reset")
        data = bytes(result[0])
        if self._frozen.is_set():  # froze while waiting: the bytes stay unread
            await trio.sleep_forever()
        if not data:
            raise StreamEOF("stream ended")
        self._in.consumed(len(data))
        return data

    async def write(self, data: bytes) -> None:
        if self._shared.reset:
            raise StreamReset("stream reset")
        if self._write_closed:
            raise StreamClosed("stream closed for writing")
        if self._frozen.is_set():
            await trio.sleep_forever()
        while self._out.window is not None and self._out.unread >= self._out.window:
            await self._out.progress.wait()
            if self._shared.reset:
                raise StreamReset("stream reset")
        self._out.unread += len(data)
        self.written += data
        await self._inner.send_all(data)

    async def close(self) -> None:
        self.closes += 1
        if self._frozen.is_set():
            await trio.sleep_forever()
        if self._write_closed or self._shared.reset:
            return
        self._write_closed = True
        try:
            await self._inner.send_eof()
        except trio.ClosedResourceError:
            pass

    async def reset(self) -> None:
        self.resets += 1
        if self._frozen.is_set():
            await trio.sleep_forever()
        if not self._shared.reset:
            self._shared.reset = True
            self._shared.reset_event.set()

    # -- test controls --------------------------------------------------------------------

    def freeze(self) -> None:
        """This end's process stops (SIGSTOP): no reads, no writes, no close, for ever."""
        self._frozen.set()

    @property
    def was_reset(self) -> bool:
        return self._shared.reset

    @property
    def write_closed(self) -> bool:
        return self._write_closed


def stream_pair(left: ID, right: ID, *, window: int | None = None,
                lockstep: bool = False) -> tuple[FakeStream, FakeStream]:
    """Two connected ends: the first is ``left``'s (its remote is ``right``), the second ``right``'s."""
    a, b = trio.testing.lockstep_stream_pair() if lockstep else trio.testing.memory_stream_pair()
    shared = _Shared()
    a_to_b, b_to_a = _Direction(window), _Direction(window)
    return (FakeStream(a, right, shared, a_to_b, b_to_a),
            FakeStream(b, left, shared, b_to_a, a_to_b))


class _Peerstore:
    def __init__(self) -> None:
        self.addrs: dict[ID, list] = {}

    def add_addrs(self, peer_id: ID, addrs, ttl: int) -> None:
        self.addrs.setdefault(peer_id, []).extend(addrs)


class _Swarm:
    def get_connections(self, peer_id: ID) -> list:
        return []

    def remove_conn(self, conn) -> None:  # pragma: no cover - nothing is ever closed here
        pass


class FakeHost:
    """A host whose ``new_stream`` reaches other fake hosts' handlers (run in ``nursery``)."""

    def __init__(self, peer_id: ID, nursery: trio.Nursery) -> None:
        self.peer_id = peer_id
        self._nursery = nursery
        self._peerstore = _Peerstore()
        self._swarm = _Swarm()
        self.handlers: dict[str, object] = {}
        self.network: dict[ID, FakeHost] = {}
        self.streams: list[FakeStream] = []
        """Our ends of the streams we opened."""
        self.dial_delay = 0.0
        self.fail_dials = 0
        """How many of the next dials fail (as an unreachable peer's do)."""

    def connect(self, other: FakeHost) -> None:
        self.network[other.peer_id] = other
        other.network[self.peer_id] = self

    def get_peerstore(self) -> _Peerstore:
        return self._peerstore

    def get_network(self) -> _Swarm:
        return self._swarm

    def set_stream_handler(self, protocol: str, handler) -> None:
        self.handlers[str(protocol)] = handler

    async def new_stream(self, peer_id: ID, protocols: list) -> FakeStream:
        if self.dial_delay:
            await trio.sleep(self.dial_delay)
        if self.fail_dials:
            self.fail_dials -= 1
            raise ConnectionRefusedError(f"cannot dial {peer_id}")
        other = self.network.get(peer_id)
        if other is None:
            raise ConnectionRefusedError(f"no route to {peer_id}")
        handler = other.handlers.get(str(protocols[0]))
        if handler is None:
            raise ConnectionRefusedError(f"{peer_id} does not speak {protocols[0]}")
        ours, theirs = stream_pair(self.peer_id, peer_id)
        self.streams.append(ours)
        self._nursery.start_soon(handler, theirs)
        return ours
