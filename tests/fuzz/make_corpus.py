"""Write the seed corpus of ``tests/fuzz/corpus/`` (run from anywhere; idempotent).

    .venv/bin/python tests/fuzz/make_corpus.py

Each file is one input of the target named by its directory (``targets.py``):
valid inputs to start mutations from, and the reproducers of issue 7 kept as
regression inputs (the names say which).  Inputs a long run finds to crash
belong here too, under a name that says what they broke.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from targets import honest_stream  # noqa: E402

from strangers.crypto.handshake import Role  # noqa: E402

DEEP_LIST = b"\x91" * 1000 + b"\xc0"  # [[[...[nil]...]]], 1000 levels (msgpack allows 1024)
MATCH_ID = bytes(range(16))
#: Franking fields of the right sizes (§6.11); the signature does not verify, so a text
#: seed reaches the franking check (a CryptoError) after the conversation rules.
UNSIGNED = {"k": bytes(32), "g": bytes(64)}


def framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def packed(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def padded(content: bytes) -> bytes:
    size = -(-(2 + len(content)) // 64) * 64
    return struct.pack(">H", len(content)) + content + bytes(size - 2 - len(content))


def plaintexts(*items: bytes) -> bytes:
    return b"".join(struct.pack(">H", len(item)) + item for item in items)


def selector(victim: Role, prefix: int, *, end: bool = False, chunked: bool = False) -> bytes:
    return bytes([(victim is Role.RESPONDER) | prefix << 1 | chunked << 6 | end << 7])


def main() -> None:
    honest = {role: honest_stream(role) for role in Role}
    hello_r = msgpack.unpackb(honest[Role.INITIATOR][0][4:])
    responder_handshake_key = hello_r["e"]
    fault1 = b"\x00\x00\x00\x01\xc1"
    deep_frame = framed(b"\x81\xa1t" + DEEP_LIST)
    files: dict[str, dict[str, bytes]] = {
        "chat-frames": {
            "honest-from-initiator": b"".join(honest[Role.RESPONDER]),
            "honest-from-responder": b"".join(honest[Role.INITIATOR]),
            "issue7-fault1-c1": fault1,
            "issue7-fault3-deep-list": framed(DEEP_LIST),
            "issue7-fault3-deep-type": deep_frame,
            "issue7-fault3-deep-maps": framed(b"\x82\xa1t\xa3msg\xa1z" + b"\x81\xa1z" * 500
                                              + b"\xc0"),
            "zero-length": b"\x00\x00\x00\x00",
            "oversize-prefix": b"\x00\x01\x00\x01" + bytes(10),
        },
        "chat-inner": {
            "text": padded(packed({"t": "text", "id": 1, "x": "hi", **UNSIGNED})),
            "issue7-fault3-deep": padded(b"\x82\xa1t\xa4text\xa1x" + DEEP_LIST),
            "bad-padding": padded(packed({"t": "ready"}))[:-1] + b"\x01",
        },
        "chat-session": {
            # the honest stream into a fresh connection of each role
            "honest-initiator": selector(Role.INITIATOR, 0) + b"".join(honest[Role.INITIATOR]),
            "honest-responder": selector(Role.RESPONDER, 0) + b"".join(honest[Role.RESPONDER]),
            # issue 7, fault 2: right after the handshake, a header with the responder's
            # handshake key and n <= 256 hit an assert in the initiator's ratchet
            "issue7-fault2-initiator-header-with-responder-key": selector(Role.INITIATOR, 2)
            + framed(packed({"t": "msg", "h": responder_handshake_key + struct.pack(">II", 0, 3),
                             "c": bytes(16)})),
        },
        "chat-plaintexts": {
            "text-and-receipt": bytes([2]) + plaintexts(
                padded(packed({"t": "text", "id": 1, "x": "x", **UNSIGNED})),
                padded(packed({"t": "delivered", "id": 1}))),
            "issue7-fault6-forged-receipt-initiator": bytes([0]) + plaintexts(
                padded(packed({"t": "delivered", "id": 1}))),
            "issue7-fault6-forged-receipt-responder": bytes([1]) + plaintexts(
                padded(packed({"t": "ready"})), padded(packed({"t": "delivered", "id": 7}))),
            "issue7-fault6-receipt-twice": bytes([2]) + plaintexts(
                padded(packed({"t": "delivered", "id": 2})),
                padded(packed({"t": "delivered", "id": 2}))),
            "repeated-text-id": bytes([0]) + plaintexts(
                padded(packed({"t": "text", "id": 5, "x": "a", **UNSIGNED})),
                padded(packed({"t": "text", "id": 5, "x": "b", **UNSIGNED}))),
        },
        "proposal": {
            "propose": packed({"t": "propose", "v": 1, "m": MATCH_ID, "i": ["jazz"]}),
            "accept": packed({"t": "accept", "m": MATCH_ID, "i": ["jazz", "cinema"]}),
            "refuse": packed({"t": "refuse", "m": MATCH_ID, "r": "busy"}),
            "issue7-fault3-deep-top": DEEP_LIST,
            "issue7-fault3-deep-type": b"\x81\xa1t" + DEEP_LIST,
            "issue7-fault3-deep-interests": b"\x84\xa1t\xa7propose\xa1v\x01\xa1m\xc4\x10"
            + MATCH_ID + b"\xa1i" + DEEP_LIST,
            "issue7-fault3-deep-reason": b"\x83\xa1t\xa6refuse\xa1m\xc4\x10" + MATCH_ID + b"\xa1r"
            + DEEP_LIST,
            "issue7-fault3-deep-match-id": b"\x83\xa1t\xa6refuse\xa1m" + DEEP_LIST
            + b"\xa1r\xa4busy",
        },
        "kad-reply": {
            "garbage": b"\x0a\xff\xff\xff\xff\x0f",
            "many-peers": _kad_reply(),
        },
        "uvarint-frame": {
            "overlong-varint": b"\x00" + b"\xff" * 12,
            "too-long": b"\x03" + b"\x80\x80\x04" + bytes(10),
            "short": b"\x00\x05abc",
        },
    }
    for i in range(0, 10):  # fault 1's frame and fault 3's frame in every state of both roles
        for victim in Role:
            files["chat-session"][f"issue7-c1-{victim.value}-after-{i}"] = (
                selector(victim, i) + fault1)
            files["chat-session"][f"issue7-deep-{victim.value}-after-{i}"] = (
                selector(victim, i, end=True) + deep_frame)
    for target, inputs in files.items():
        directory = HERE / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in inputs.items():
            (directory / name).write_bytes(data)


def _kad_reply() -> bytes:
    from libp2p.kad_dht.pb.kademlia_pb2 import Message

    message = Message()
    message.type = Message.MessageType.FIND_NODE
    for number in range(45):
        peer = message.closerPeers.add()
        peer.id = b"\x00\x24\x08\x01\x12\x20" + bytes([number]) * 32
        for _ in range(12):
            peer.addrs.append(b"\x04\x7f\x00\x00\x01\x06\x10\x00")
    return message.SerializeToString()


if __name__ == "__main__":
    main()
