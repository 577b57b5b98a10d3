"""The attacks of issue 7, each one coroutine: get accepted by the victim, then misbehave.

Every attack dials the victim (a ``strangers chat`` node that is searching), proposes under an
interest it shares, and then does its one bad thing on the match or chat stream. It returns an
:class:`Outcome` saying what it saw (how the victim ended the stream, how long that took); the
tests judge the victim by its ``--json`` output, not by this.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from libp2p.peer.id import ID

from .crypto import (
    HostileCryptoError,
    InitiatorV1,
    InitiatorV2,
    Ratchet,
    ResponderV2,
    msg_frame,
    new_x25519,
    open_msg,
    raw_key_from_peer_id,
)
from .peer import (
    DEFAULT_CHAT_PROTOCOL,
    DEFAULT_HANDSHAKE_VERSION,
    MATCH_PROTOCOL,
    Chat,
    FrameStream,
    HostilePeer,
    StreamGone,
    handshake,
)
from .wire import MAX_PROPOSAL_FRAME, WireError, frame, frame_obj, nested_map_body

GARBAGE_FRAME = bytes.fromhex("00000001c1")
"""A one-byte frame holding 0xc1, the one byte msgpack never uses (issue 7, fault 1)."""

NESTING = 1000
"""Nesting depth of the deep frames: under msgpack's 1024, over Python's default repr limit."""

GONE_WAIT = 40.0
"""Longest wait for the victim to drop a stream we broke (its own bounds are 5-20 s)."""


@dataclass
class Target:
    """Who to attack and which chat protocol to speak."""

    addr: str
    interest: str
    protocol: str = DEFAULT_CHAT_PROTOCOL
    version: int = DEFAULT_HANDSHAKE_VERSION
    dht: str | None = None
    """A DHT node the victim searches (for the responder attacks: we advertise there)."""

    @classmethod
    def from_env(cls, addr: str, interest: str, dht: str | None = None) -> Target:
        """Protocol id and handshake version from ``STRANGERS_HOSTILE_CHAT`` / ``..._HANDSHAKE``.

        The defaults are v3 (``/strangers/chat/3.0.0``); set them to ``/strangers/chat/1.0.0`` and
        ``1`` to run the attacks against an executable that still speaks v1.
        """
        return cls(addr, interest,
                   os.environ.get("STRANGERS_HOSTILE_CHAT", DEFAULT_CHAT_PROTOCOL),
                   int(os.environ.get("STRANGERS_HOSTILE_HANDSHAKE", DEFAULT_HANDSHAKE_VERSION)),
                   dht)


@dataclass
class Outcome:
    """What the hostile peer saw."""

    attack: str
    ended: str | None = None
    """How the victim ended our stream (``None``: we ended it, or it never opened)."""
    seconds: float | None = None
    """From the attack's last write to the end of the stream."""
    safety_code: str | None = None
    notes: list[str] = field(default_factory=list)


async def _accepted_chat(peer: HostilePeer, target: Target) -> tuple[object, bytes, FrameStream]:
    victim = await peer.connect(target.addr)
    match_id = await peer.match(victim, [target.interest])
    stream = await peer.open_chat(victim, target.protocol)
    return victim, match_id, stream


async def _until_gone(stream: FrameStream, outcome: Outcome) -> Outcome:
    start = trio.current_time()
    with trio.move_on_after(GONE_WAIT):
        outcome.ended = await stream.wait_gone()
    outcome.seconds = trio.current_time() - start
    if outcome.ended is None:
        outcome.notes.append(f"victim kept the stream open for {GONE_WAIT} s")
        await stream.reset()
    return outcome


async def _established(peer: HostilePeer, target: Target, outcome: Outcome) -> Chat:
    victim, match_id, stream = await _accepted_chat(peer, target)
    chat = await handshake(stream, peer, victim, match_id, target.version)
    outcome.safety_code = chat.keys.safety
    return chat


async def _text_delivered(chat: Chat, text: str) -> bytes:
    """Send a Text and wait for its Delivered (the victim took it); the frame bytes sent."""
    data = await chat.send_text(text)
    with trio.fail_after(15):
        while True:
            message = await chat.receive()
            if message.get("t") == "ping":
                await chat.send({"t": "pong", "n": message["n"]})
            elif message.get("t") == "delivered":
                return data


# -- before the handshake ----------------------------------------------------------------------

async def garbage_frame(peer: HostilePeer, target: Target) -> Outcome:
    """(a) ``00 00 00 01 c1`` instead of the first handshake frame."""
    _, _, stream = await _accepted_chat(peer, target)
    await stream.write(GARBAGE_FRAME)
    return await _until_gone(stream, Outcome("garbage_frame"))


async def nested_frame(peer: HostilePeer, target: Target) -> Outcome:
    """(b) a map nested NESTING levels deep (1 KiB, within every size bound) as the first frame."""
    _, _, stream = await _accepted_chat(peer, target)
    await stream.write(frame(nested_map_body(NESTING)))
    return await _until_gone(stream, Outcome("nested_frame"))


async def nested_proposal(peer: HostilePeer, target: Target) -> Outcome:
    """(b') the same deep map as the Propose on the match stream (issue 7, fault 3)."""
    victim = await peer.connect(target.addr)
    outcome = Outcome("nested_proposal")
    try:
        _, answer = await peer.propose(victim, [target.interest], body=nested_map_body(NESTING))
        outcome.notes.append(f"victim answered {answer!r}"[:200])
    except (StreamGone, WireError) as exc:
        outcome.ended = str(exc)
    return outcome


async def garbage_proposal(peer: HostilePeer, target: Target) -> Outcome:
    """(a') one 0xc1 byte as the Propose."""
    victim = await peer.connect(target.addr)
    outcome = Outcome("garbage_proposal")
    try:
        _, answer = await peer.propose(victim, [target.interest], body=b"\xc1")
        outcome.notes.append(f"victim answered {answer!r}"[:200])
    except (StreamGone, WireError) as exc:
        outcome.ended = str(exc)
    return outcome


async def stall_silent(peer: HostilePeer, target: Target) -> Outcome:
    """(c) open the chat stream and never send a byte."""
    _, _, stream = await _accepted_chat(peer, target)
    return await _until_gone(stream, Outcome("stall_silent"))


async def stall_after_first_frame(peer: HostilePeer, target: Target) -> Outcome:
    """(c) v2: send the commit, read the victim's hello, then nothing. v1: half a hello."""
    victim, match_id, stream = await _accepted_chat(peer, target)
    outcome = Outcome("stall_after_first_frame")
    if target.version == 2:
        v2 = InitiatorV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
        await stream.write_obj(v2.commit())
    else:
        v1 = InitiatorV1(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
        await stream.write(frame_obj(v1.hello())[:70])
    return await _until_gone(stream, outcome)


async def reset_mid_handshake(peer: HostilePeer, target: Target) -> Outcome:
    """(d) v2: commit, read the victim's hello, reset. v1: read the victim's hello, reset."""
    victim, match_id, stream = await _accepted_chat(peer, target)
    outcome = Outcome("reset_mid_handshake")
    if target.version == 2:
        v2 = InitiatorV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
        await stream.write_obj(v2.commit())
    with trio.fail_after(10):
        hello = await stream.read_map()
    outcome.notes.append(f"victim's first frame: {hello.get('t')!r}")
    await stream.reset()
    return outcome


async def frame_too_long(peer: HostilePeer, target: Target) -> Outcome:
    """A length prefix of 65537 (one over MAX_FRAME) and nothing else: rejected on the header."""
    _, _, stream = await _accepted_chat(peer, target)
    await stream.write(bytes.fromhex("00010001"))
    return await _until_gone(stream, Outcome("frame_too_long"))


async def empty_frame(peer: HostilePeer, target: Target) -> Outcome:
    """A zero length prefix."""
    _, _, stream = await _accepted_chat(peer, target)
    await stream.write(bytes(4))
    return await _until_gone(stream, Outcome("empty_frame"))


async def unsolicited_chat(peer: HostilePeer, target: Target) -> Outcome:
    """A chat stream (with a commit) from a peer the victim never accepted."""
    victim = await peer.connect(target.addr)
    try:
        stream = await peer.open_chat(victim, target.protocol)
        v2 = InitiatorV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), os.urandom(16))
        await stream.write_obj(v2.commit())
    except Exception as exc:  # reset during negotiation or at the first write: a fine answer
        return Outcome("unsolicited_chat", ended=f"refused: {type(exc).__name__}")
    return await _until_gone(stream, Outcome("unsolicited_chat"))


async def wrong_match_id(peer: HostilePeer, target: Target) -> Outcome:
    """A commit for a match id the victim never accepted."""
    victim, _, stream = await _accepted_chat(peer, target)
    v2 = InitiatorV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), os.urandom(16))
    await stream.write_obj(v2.commit())
    return await _until_gone(stream, Outcome("wrong_match_id"))


async def _v2_up_to_hello(peer: HostilePeer, target: Target, *, swap_ephemeral: bool = False
                          ) -> tuple[InitiatorV2, FrameStream, Chat]:
    victim, match_id, stream = await _accepted_chat(peer, target)
    v2 = InitiatorV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
    await stream.write_obj(v2.commit())
    if swap_ephemeral:  # what a machine in the middle would like to do: choose eI after eR
        v2.ephemeral = new_x25519(os.urandom)
    with trio.fail_after(10):
        keys = v2.receive_hello(await stream.read_map())
    ratchet = Ratchet.initiator(keys.root, keys.remote_ephemeral, keys.transcript, os.urandom)
    return v2, stream, Chat(stream, ratchet, keys)


async def commit_mismatch(peer: HostilePeer, target: Target) -> Outcome:
    """Reveal, validly signed, an ephemeral other than the committed one (v2's whole point)."""
    v2, stream, chat = await _v2_up_to_hello(peer, target, swap_ephemeral=True)
    head, ciphertext = chat.ratchet.encrypt({"t": "ready"})
    await stream.write(frame_obj(v2.hello()) + frame_obj(v2.finished())
                       + frame_obj(msg_frame(head, ciphertext)))
    return await _until_gone(stream, Outcome("commit_mismatch", safety_code=chat.keys.safety))


async def bad_finished(peer: HostilePeer, target: Target) -> Outcome:
    """A correct hello, then a finished MAC that is not the transcript's."""
    v2, stream, chat = await _v2_up_to_hello(peer, target)
    head, ciphertext = chat.ratchet.encrypt({"t": "ready"})
    await stream.write(frame_obj(v2.hello()) + frame_obj({"t": "finished", "f": os.urandom(32)})
                       + frame_obj(msg_frame(head, ciphertext)))
    return await _until_gone(stream, Outcome("bad_finished", safety_code=chat.keys.safety))


async def msg_before_finished(peer: HostilePeer, target: Target) -> Outcome:
    """A correct hello, then msg(Ready) without the finished frame."""
    v2, stream, chat = await _v2_up_to_hello(peer, target)
    head, ciphertext = chat.ratchet.encrypt({"t": "ready"})
    await stream.write(frame_obj(v2.hello()) + frame_obj(msg_frame(head, ciphertext)))
    return await _until_gone(stream, Outcome("msg_before_finished"))


async def v1_hello_first(peer: HostilePeer, target: Target) -> Outcome:
    """A v1 hello (both hellos at once, no commit) as the first frame: no downgrade."""
    victim, match_id, stream = await _accepted_chat(peer, target)
    v1 = InitiatorV1(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
    await stream.write_obj(v1.hello())
    return await _until_gone(stream, Outcome("v1_hello_first"))


async def stall_proposal(peer: HostilePeer, target: Target) -> Outcome:
    """Open the match stream and never send the Propose."""
    victim = await peer.connect(target.addr)
    stream = await peer.open(victim, MATCH_PROTOCOL, MAX_PROPOSAL_FRAME)
    return await _until_gone(stream, Outcome("stall_proposal"))


async def proposal_too_long(peer: HostilePeer, target: Target) -> Outcome:
    """A Propose whose length prefix says 4 GiB."""
    victim = await peer.connect(target.addr)
    stream = await peer.open(victim, MATCH_PROTOCOL, MAX_PROPOSAL_FRAME)
    await stream.write(b"\xff\xff\xff\xff" + bytes(64))
    return await _until_gone(stream, Outcome("proposal_too_long"))


FLOOD = 64


async def proposal_flood(peer: HostilePeer, target: Target) -> Outcome:
    """FLOOD match streams at once, each stalled: the node must shed them and go on."""
    victim = await peer.connect(target.addr)
    outcome = Outcome("proposal_flood")
    gone: list[str] = []

    async def one() -> None:
        try:
            stream = await peer.open(victim, MATCH_PROTOCOL, MAX_PROPOSAL_FRAME)
        except Exception as exc:  # the victim may refuse streams: that is a fine answer
            gone.append(f"open refused: {type(exc).__name__}")
            return
        with trio.move_on_after(GONE_WAIT):
            gone.append(await stream.wait_gone())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(FLOOD):
            nursery.start_soon(one)
    outcome.seconds = trio.current_time() - start
    outcome.ended = f"{len(gone)} of {FLOOD} streams ended by the victim"
    return outcome


# -- after the handshake -----------------------------------------------------------------------

async def reset_mid_chat(peer: HostilePeer, target: Target) -> Outcome:
    """(d) complete the handshake, get one Text delivered, then reset the stream."""
    outcome = Outcome("reset_mid_chat")
    chat = await _established(peer, target, outcome)
    await _text_delivered(chat, "hello from a stranger who will vanish")
    await chat.stream.reset()
    return outcome


async def stall_after_handshake(peer: HostilePeer, target: Target) -> Outcome:
    """Complete the handshake, get one Text delivered, then never send another byte."""
    outcome = Outcome("stall_after_handshake")
    chat = await _established(peer, target, outcome)
    await _text_delivered(chat, "hello, I am about to go quiet")
    return await _until_gone(chat.stream, outcome)


async def replay(peer: HostilePeer, target: Target) -> Outcome:
    """(e) a valid Text, delivered, then the very same msg frame again."""
    outcome = Outcome("replay")
    chat = await _established(peer, target, outcome)
    data = await _text_delivered(chat, "this message will come twice")
    await chat.stream.write(data)
    return await _until_gone(chat.stream, outcome)


async def forge(peer: HostilePeer, target: Target) -> Outcome:
    """(e) a valid Text, delivered, then a Text whose ciphertext has one bit flipped."""
    outcome = Outcome("forge")
    chat = await _established(peer, target, outcome)
    await _text_delivered(chat, "the next one is forged")
    head, ciphertext = chat.ratchet.encrypt(chat.text("forged"))
    tampered = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
    await chat.stream.write_obj({"t": "msg", "h": head, "c": tampered})
    return await _until_gone(chat.stream, outcome)


async def fake_delivered(peer: HostilePeer, target: Target) -> Outcome:
    """(f) ``Delivered`` for text id 7, which the victim never sent."""
    outcome = Outcome("fake_delivered")
    chat = await _established(peer, target, outcome)
    await chat.send({"t": "delivered", "id": 7})
    return await _until_gone(chat.stream, outcome)


SLOW_READER_TEXTS = 4000
"""Texts sent by the slow reader: their Delivered receipts (~135 bytes each on the wire) are far
more than a Yamux window (256 KiB), so the victim's writes block once it is full."""


async def slow_reader(peer: HostilePeer, target: Target) -> Outcome:
    """Complete the handshake, send SLOW_READER_TEXTS texts and never read again.

    The victim's receipts fill the stream's window and its writes block. This coroutine never
    returns by itself (the connection must stay up): run it in a nursery and cancel it once the
    victim has reported the end of the chat.
    """
    outcome = Outcome("slow_reader")
    chat = await _established(peer, target, outcome)
    await _text_delivered(chat, "I will stop reading now")
    with trio.move_on_after(GONE_WAIT):
        try:
            for number in range(SLOW_READER_TEXTS):
                await chat.send_text(f"unread receipt {number}")
        except StreamGone as exc:  # the victim cut off a stranger sending texts this fast (§5.10)
            outcome.notes.append(f"victim ended the chat: {exc}")
    outcome.notes.append(f"sent {chat.next_id - 1} texts")
    await trio.sleep_forever()
    return outcome  # pragma: no cover


# -- as the responder: the victim finds us on the DHT, proposes and opens the chat ------------

Behaviour = Callable[[ID, bytes, FrameStream, HostilePeer], Awaitable[Outcome]]

RESPONDER_WAIT = 60.0
"""Longest wait for the victim to find us, propose and open the chat stream."""


async def _as_responder(peer: HostilePeer, target: Target, behaviour: Behaviour) -> Outcome:
    if target.dht is None:
        raise ValueError("a responder attack needs Target.dht, the DHT node the victim uses")
    done = trio.Event()
    outcomes: list[Outcome] = []

    async def on_chat(victim: ID, match_id: bytes, stream: FrameStream) -> None:
        if done.is_set():
            await stream.reset()
            return
        try:
            outcomes.append(await behaviour(victim, match_id, stream, peer))
        except Exception as exc:  # report what went wrong on our side, do not hang the test
            outcomes.append(Outcome(behaviour.__name__, notes=[f"hostile side: {exc!r}"]))
        finally:
            done.set()

    peer.answer_proposals(target.interest, target.protocol, on_chat)
    await peer.advertise(target.dht, target.interest)
    with trio.fail_after(RESPONDER_WAIT):
        await done.wait()
    return outcomes[0]


async def _commit(stream: FrameStream, peer: HostilePeer, victim: ID,
                  match_id: bytes) -> ResponderV2:
    responder = ResponderV2(peer.identity, raw_key_from_peer_id(victim.to_bytes()), match_id)
    with trio.fail_after(10):
        responder.receive_commit(await stream.read_map())
    return responder


async def _garbage_hello(victim: ID, match_id: bytes, stream: FrameStream,
                         peer: HostilePeer) -> Outcome:
    await _commit(stream, peer, victim, match_id)
    await stream.write(GARBAGE_FRAME)
    return await _until_gone(stream, Outcome("responder_garbage"))


async def _silent_responder(victim: ID, match_id: bytes, stream: FrameStream,
                            peer: HostilePeer) -> Outcome:
    await _commit(stream, peer, victim, match_id)
    return await _until_gone(stream, Outcome("responder_stall"))


async def _badly_signed_hello(victim: ID, match_id: bytes, stream: FrameStream,
                              peer: HostilePeer) -> Outcome:
    responder = await _commit(stream, peer, victim, match_id)
    hello = responder.hello()
    hello["s"] = bytes([hello["s"][0] ^ 0x01]) + hello["s"][1:]
    await stream.write_obj(hello)
    return await _until_gone(stream, Outcome("responder_bad_signature"))


async def _replaying_responder(victim: ID, match_id: bytes, stream: FrameStream,
                               peer: HostilePeer) -> Outcome:
    responder = await _commit(stream, peer, victim, match_id)
    await stream.write_obj(responder.hello())
    with trio.fail_after(10):
        keys = responder.receive_hello(await stream.read_map())
        responder.receive_finished(await stream.read_map())
        ratchet = responder.ratchet()
        ready = open_msg(ratchet, await stream.read_map())
    if ready != {"t": "ready"}:
        raise HostileCryptoError(f"the initiator's first message is {ready!r}")
    await stream.write_obj(responder.finished())
    chat = Chat(stream, ratchet, keys)
    data = await _text_delivered(chat, "this message will come twice")
    await stream.write(data)
    return await _until_gone(stream, Outcome("responder_replay", safety_code=keys.safety))


async def responder_garbage(peer: HostilePeer, target: Target) -> Outcome:
    """As responder: ``00 00 00 01 c1`` instead of our hello."""
    return await _as_responder(peer, target, _garbage_hello)


async def responder_stall(peer: HostilePeer, target: Target) -> Outcome:
    """As responder: take the commit and never answer it."""
    return await _as_responder(peer, target, _silent_responder)


async def responder_bad_signature(peer: HostilePeer, target: Target) -> Outcome:
    """As responder: a hello whose signature has one bit flipped."""
    return await _as_responder(peer, target, _badly_signed_hello)


async def responder_replay(peer: HostilePeer, target: Target) -> Outcome:
    """As responder: a correct handshake, a delivered Text, then the same msg frame again."""
    return await _as_responder(peer, target, _replaying_responder)


Attack = Callable[[HostilePeer, Target], Awaitable[Outcome]]

ATTACKS: dict[str, Attack] = {
    attack.__name__: attack
    for attack in (garbage_frame, nested_frame, nested_proposal, garbage_proposal, stall_silent,
                   stall_after_first_frame, reset_mid_handshake, frame_too_long, empty_frame,
                   unsolicited_chat, wrong_match_id, commit_mismatch, bad_finished,
                   msg_before_finished, v1_hello_first, stall_proposal, proposal_too_long,
                   proposal_flood, reset_mid_chat, stall_after_handshake, replay, forge,
                   fake_delivered, slow_reader, responder_garbage, responder_stall, responder_bad_signature,
                   responder_replay)
}
