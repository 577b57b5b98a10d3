"""One host of the hole-punching test (tests/e2e/test_holepunch.py), run inside a namespace.

    python holepunch_peer.py relay --ip IP --port P
    python holepunch_peer.py responder --ip IP --port P --relay ADDR --match HEX --messages N
    python holepunch_peer.py initiator --ip IP --port P --relay ADDR --peer ID --match HEX --messages N

The relay is a circuit relay v2 (py-libp2p's ``CircuitV2Protocol`` with HOP).
The responder reserves a slot on it; the initiator dials the responder through
it and opens the chat stream there.  From then on both run strangers' own chat
(``ChatSession``) with the same wiring as ``node/conversation.py``: the
responder hole-punches (``HolePunch.upgrade``), the initiator moves the chat to
a stream on the direct connection once there is one.  Both send ``--messages``
numbered texts at ``--interval`` all the while.  Everything is printed as JSON
lines on stdout: ready, reserved, matched (with its path), path, message,
delivered, stranger_left, stats (the hole punch's attempts and time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.crypto.handshake import Role
from strangers.crypto.session import ChatConnection
from strangers.node import events
from strangers.node.chat import CHAT_PROTOCOL, ChatSession
from strangers.node.identity import fresh_identity
from strangers.node.libp2p.holepunch import (
    HolePunch,
    new_stream_on,
    stream_path,
    wait_for_direct,
)
from strangers.node.libp2p.host import build_host, running_host

started = time.monotonic()


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic() - started, 3), **fields}),
          flush=True)


def to_json(event: events.Event) -> dict:
    if isinstance(event, events.MessageReceived):
        return {"event": "message", "id": event.id, "text": event.text}
    if isinstance(event, events.Delivered):
        return {"event": "delivered", "id": event.id}
    if isinstance(event, events.PathChanged):
        return {"event": "path", "path": event.path}
    if isinstance(event, events.Error):
        return {"event": "error", "message": event.message}
    return {"event": type(event).__name__.lower()}


async def relay(args) -> None:
    identity = fresh_identity()
    host = build_host(identity)
    listen = Multiaddr(f"/ip4/{args.ip}/tcp/{args.port}")
    async with running_host(host, [listen]):
        protocol = CircuitV2Protocol(host, allow_hop=True)
        async with background_trio_service(protocol):
            say("ready", peer_id=host.get_id().to_base58(),
                addr=f"{listen}/p2p/{host.get_id().to_base58()}")
            await trio.sleep_forever()


async def reserve(host, relay_id: ID) -> None:
    stream = await host.new_stream(relay_id, [HOP])
    await write_delimited_msg(stream, HopMessage(
        type=HopMessage.RESERVE, peer=CircuitPeerId(id=host.get_id().to_bytes())))
    answer = await read_delimited_msg(stream, HopMessage)
    await stream.close()
    if answer.status != 100:
        raise RuntimeError(f"reservation refused: {answer.status}")


class Peer:
    def __init__(self, args, identity, host, holepunch: HolePunch) -> None:
        self.args = args
        self.identity = identity
        self.host = host
        self.holepunch = holepunch
        self.session: ChatSession | None = None
        self.established = trio.Event()
        self.received = 0
        self.delivered = 0
        self.all_in = trio.Event()

    async def emit(self, event: events.Event) -> None:
        say(**to_json(event))
        if isinstance(event, events.MessageReceived):
            self.received += 1
        if isinstance(event, events.Delivered):
            self.delivered += 1
        if self.received >= self.args.messages and self.delivered >= self.args.messages:
            self.all_in.set()

    async def chat(self, stream, role: Role, peer_id: ID) -> None:
        connection = ChatConnection(
            role=role, match_id=bytes.fromhex(self.args.match),
            local_identity=self.identity.signing_key,
            remote_identity=peer_id.extract_public_key().to_bytes(), rng=os.urandom)
        path = stream_path(stream)

        async def established(code: str) -> None:
            say("matched", path=session.path, safety_code=code, initiator=role is Role.INITIATOR)
            self.established.set()

        async def open_direct():
            conn = await wait_for_direct(self.host, peer_id, 60)
            return None if conn is None else await new_stream_on(self.host, conn, CHAT_PROTOCOL)

        relayed = path == "relayed"
        session = ChatSession(
            stream, connection, on_event=self.emit, on_established=established, path=path,
            path_of=stream_path,
            while_relayed=((lambda: self.holepunch.upgrade(peer_id))
                           if relayed and role is Role.RESPONDER else None),
            open_move_stream=open_direct if relayed and role is Role.INITIATOR else None)
        self.session = session
        with contextlib.ExitStack() as stack:
            await self._chat(stack, session, role, relayed)
        stats = self.holepunch.statistics
        say("stats", attempts=stats.attempts, successes=stats.successes,
            seconds=[round(s, 3) for s in stats.seconds], received=self.received,
            delivered=self.delivered)

    async def _chat(self, stack, session, role: Role, relayed: bool) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.talk)

            async def run() -> None:
                end = await session.run()
                say("stranger_left", reason=end.reason, by_us=end.by_us)
                nursery.cancel_scope.cancel()

            if relayed:
                stack.enter_context(self.holepunch.relayed_chat())
            nursery.start_soon(run)
            if role is Role.INITIATOR:
                with trio.move_on_after(self.args.messages * self.args.interval + 30):
                    await self.all_in.wait()
                await trio.sleep(0.5)
                await session.close("quit")

    async def talk(self) -> None:
        await self.established.wait()
        assert self.session is not None
        await trio.sleep(0.2)
        for n in range(1, self.args.messages + 1):
            message_id = await self.session.send_text(f"n:{n}")
            say("sent", id=message_id)
            await trio.sleep(self.args.interval)


async def endpoint(args) -> None:
    identity = fresh_identity()
    host = build_host(identity)
    listen = Multiaddr(f"/ip4/{args.ip}/tcp/{args.port}")
    async with running_host(host, [listen]):
        protocol = CircuitV2Protocol(host, allow_hop=False)
        transport = CircuitV2Transport(host, protocol, RelayConfig(roles=RelayRole.STOP))
        holepunch = HolePunch(host)
        peer = Peer(args, identity, host, holepunch)
        relay_info = info_from_p2p_addr(Multiaddr(args.relay))
        async with background_trio_service(protocol), trio.open_nursery() as nursery:
            await nursery.start(holepunch.serve)
            await host.connect(relay_info)
            if args.role == "responder":
                done = trio.Event()

                async def handler(stream) -> None:
                    remote = stream.muxed_conn.peer_id
                    if peer.session is None:
                        await peer.chat(stream, Role.RESPONDER, remote)
                        done.set()
                    else:
                        await peer.session.adopt_move_stream(stream)

                host.set_stream_handler(TProtocol(CHAT_PROTOCOL), handler)
                await reserve(host, relay_info.peer_id)
                say("reserved", peer_id=host.get_id().to_base58())
                await done.wait()
            else:
                target = ID.from_base58(args.peer)
                circuit = Multiaddr(f"{args.relay}/p2p-circuit/p2p/{args.peer}")
                t0 = time.monotonic()
                conn = await transport.dial(circuit)
                say("dialled", ms=round(1000 * (time.monotonic() - t0)))
                stream = await new_stream_on(host, conn, CHAT_PROTOCOL)
                await peer.chat(stream, Role.INITIATOR, target)
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay", "responder", "initiator"])
    parser.add_argument("--ip", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--relay")
    parser.add_argument("--peer")
    parser.add_argument("--match", default="00" * 16)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("-v", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.v else logging.WARNING, stream=sys.stderr,
                        format="%(relativeCreated)7.0f %(name)s %(levelname)s %(message)s")
    if not args.v:
        logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    trio.run(relay if args.role == "relay" else endpoint, args)


if __name__ == "__main__":
    main()
