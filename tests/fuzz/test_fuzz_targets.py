"""Property-based fuzzers of every decoder and state machine that takes peer input.

Each fuzzer draws inputs from three kinds of strategies and feeds them to one
target of ``targets.py`` (whose docstring lists the properties):

* raw bytes;
* structure-aware inputs: msgpack maps with the protocol's keys and values of
  the right and wrong types and sizes, correctly length-prefixed, so that the
  fuzzer gets past the framing and the msgpack layer;
* mutations (bit flips, insertions, deletions, duplications, truncations,
  splices) of valid inputs: the honest chat streams and the corpus.

Quick profile by default (the whole file in well under a minute);
``STRANGERS_FUZZ=long`` for the long run (``README.md``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from targets import TARGETS, honest_stream

from strangers.crypto.handshake import Role

CORPUS = Path(__file__).parent / "corpus"
LONG = os.environ.get("STRANGERS_FUZZ") == "long"


def fuzz_settings(quick: int, long: int) -> settings:
    examples = int(os.environ.get("STRANGERS_FUZZ_EXAMPLES", long if LONG else quick))
    return settings(
        max_examples=examples,
        deadline=None if not LONG else 2000,  # ms: a hang shows up as a deadline error
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not LONG,  # the suite stays reproducible; the long run explores
    )


def corpus(target: str) -> list[bytes]:
    directory = CORPUS / target
    return [path.read_bytes() for path in sorted(directory.iterdir())] if directory.is_dir() else []


# --- generic strategies -----------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A valid input, then 1..8 random edits."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "cut", "splice"]))
        at = draw(st.integers(0, len(data))) if data else 0
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[min(at, len(data) - 1)] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xC1, 0xFF]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":
            other = draw(seeds)
            data[at:] = other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.sampled_from([0, 1, 2, 3, -1, 2**32, 2**53, 2**53 + 1])
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["commit", "hello", "finished", "msg", "ready", "text", "typing",
                       "delivered", "bye", "ping", "pong", "propose", "accept", "refuse",
                       "busy", "quit", "jazz"])
    | st.binary(max_size=80)
    | st.sampled_from([16, 32, 40, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=2), inner, max_size=3), max_leaves=6)


def maps(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=2), values, max_size=7)


def packed(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def deep(levels: int, kind: int) -> bytes:
    opener = [b"\x91", b"\x81\xa1t"][kind]
    return opener * levels + b"\xc0"


deep_bodies = st.builds(deep, st.integers(1, 1200), st.integers(0, 1))
chat_maps = maps(["t", "v", "m", "c", "e", "s", "f", "h"])
inner_maps = maps(["t", "id", "x", "a", "r", "n"])
proposal_maps = maps(["t", "v", "m", "i", "r"])


def padded(content: bytes) -> bytes:
    size = -(-(2 + len(content)) // 64) * 64
    return struct.pack(">H", len(content)) + content + bytes(max(0, size - 2 - len(content)))


# --- the fuzzers ----------------------------------------------------------------------


HONEST = {role: b"".join(honest_stream(role)) for role in Role}
frame_inputs = st.one_of(
    st.binary(max_size=300),
    st.lists(chat_maps.map(packed) | deep_bodies, max_size=4).map(
        lambda bodies: b"".join(framed(body) for body in bodies)),
    mutated(st.sampled_from([*HONEST.values(), *corpus("chat-frames")])),
)


@fuzz_settings(quick=200, long=4_000)
@given(frame_inputs)
def test_chat_frames(data: bytes) -> None:
    TARGETS["chat-frames"](data)


@fuzz_settings(quick=200, long=3_000)
@given(st.one_of(
    st.binary(max_size=200),
    (inner_maps.map(packed) | deep_bodies).map(padded),
    mutated((inner_maps.map(packed)).map(padded)),
))
def test_chat_inner(data: bytes) -> None:
    TARGETS["chat-inner"](data)


def _session_input(selector: int, body: bytes) -> bytes:
    return bytes([selector]) + body


@st.composite
def session_inputs(draw: st.DrawFn) -> bytes:
    selector = draw(st.integers(0, 255))
    victim = Role.RESPONDER if selector & 1 else Role.INITIATOR
    body = draw(st.one_of(
        st.binary(max_size=200),
        st.lists(chat_maps.map(packed) | deep_bodies, max_size=3).map(
            lambda bodies: b"".join(framed(b) for b in bodies)),
        mutated(st.just(HONEST[victim])),
    ))
    return _session_input(selector, body)


@fuzz_settings(quick=200, long=3_000)
@given(session_inputs() | mutated(st.sampled_from(corpus("chat-session") or [b"\x00"])))
def test_chat_session(data: bytes) -> None:
    TARGETS["chat-session"](data)


@st.composite
def plaintext_inputs(draw: st.DrawFn) -> bytes:
    plaintexts = draw(st.lists(st.one_of(
        inner_maps.map(packed).map(padded),
        st.builds(lambda i, t: padded(packed({"t": "text", "id": i, "x": t})),
                  st.integers(-1, 4), st.text(min_size=0, max_size=3)),
        st.builds(lambda i: padded(packed({"t": "delivered", "id": i})), st.integers(0, 4)),
        st.just(padded(packed({"t": "ready"}))),
        st.binary(max_size=70),
    ), max_size=6))
    body = b"".join(struct.pack(">H", len(p)) + p for p in plaintexts)
    return bytes([draw(st.integers(0, 3))]) + body


@fuzz_settings(quick=100, long=1_500)
@given(plaintext_inputs())
def test_chat_plaintexts(data: bytes) -> None:
    TARGETS["chat-plaintexts"](data)


@fuzz_settings(quick=200, long=4_000)
@given(st.one_of(
    st.binary(max_size=300),
    proposal_maps.map(packed),
    deep_bodies,
    mutated(st.sampled_from(corpus("proposal") or [b"\x80"])),
))
def test_proposal(data: bytes) -> None:
    TARGETS["proposal"](data)


VALID_PEER_ID = b"\x00\x24\x08\x01\x12\x20" + bytes(32)
VALID_ADDR = b"\x04\x7f\x00\x00\x01\x06\x10\x00"  # /ip4/127.0.0.1/tcp/4096
kad_peers = st.lists(
    st.tuples(st.sampled_from([VALID_PEER_ID, b"", b"\x00"]) | st.binary(max_size=40),
              st.integers(0, 12), st.sampled_from([VALID_ADDR, b"", b"\x04"]) | st.binary(max_size=12)),
    max_size=8,
).map(lambda peers: peers * 6)  # up to 48 peers, past the 40 we read


def kad_message(kind: int, closer: list[Any], providers: list[Any]) -> bytes:
    from libp2p.kad_dht.pb.kademlia_pb2 import Message

    message = Message()
    message.type = kind
    for field, peers in ((message.closerPeers, closer), (message.providerPeers, providers)):
        for peer_id, count, addr in peers:
            peer = field.add()
            peer.id = peer_id
            peer.addrs.extend([addr] * count)
    return message.SerializeToString()


kad_messages = st.builds(kad_message, st.integers(0, 5), kad_peers, kad_peers)


@fuzz_settings(quick=60, long=1_000)
@given(st.binary(max_size=300) | kad_messages | mutated(kad_messages))
def test_kad_reply(data: bytes) -> None:
    TARGETS["kad-reply"](data)


@fuzz_settings(quick=100, long=4_000)
@given(st.binary(max_size=40) | st.builds(lambda s, n, rest: bytes([s]) + n + rest,
                                           st.integers(0, 255), st.binary(min_size=1, max_size=10),
                                           st.binary(max_size=100)))
def test_uvarint_frame(data: bytes) -> None:
    TARGETS["uvarint-frame"](data)


# --- the corpus -------------------------------------------------------------------------


def test_every_corpus_directory_names_a_target() -> None:
    assert CORPUS.is_dir()
    assert {path.name for path in CORPUS.iterdir()} <= set(TARGETS)
    assert all(corpus(target) for target in TARGETS), "every target has regression inputs"


@pytest.mark.parametrize(
    ("target", "path"),
    [(path.parent.name, path) for path in sorted(CORPUS.glob("*/*"))],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_corpus_input(target: str, path: Path) -> None:
    """Every regression input, replayed through its target."""
    TARGETS[target](path.read_bytes())
