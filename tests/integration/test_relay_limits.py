"""A relay enforces its limits, end to end, with small limits configured (real hosts on loopback).

Relays are ordinary strangers nodes run by nobody in particular, so what
protects them is the limits they grant (``node/libp2p/relay.py``
``STRANGERS_RELAY_LIMITS``): how many peers may hold a reservation, how many
circuits one reserved peer may take at once, how long and how many bytes one
circuit may carry. Each test configures a relay with tiny limits and checks
the limit from the outside (``docs/protocol.md`` §2: a refused reservation,
a refused circuit, a circuit reset once past its bytes or its time), and
that a node a full relay turns away holds its slot on another relay.
"""

from __future__ import annotations

import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.relay import (
    HOP,
    MIN_CIRCUIT_DATA,
    MIN_CIRCUIT_DURATION,
    RelayClient,
    circuit_addr,
)

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
ECHO = "/strangers-test/echo/1"


def _addr(host) -> Multiaddr:
    return Multiaddr(f"{host.get_transport_addrs()[0]}/p2p/{host.get_id()}")


def _fits_a_chat(**small) -> RelayLimits:
    """Limits our client accepts (circuits long and large enough for a chat), with ``small`` caps."""
    base = {"duration": MIN_CIRCUIT_DURATION, "data": MIN_CIRCUIT_DATA, "max_circuit_conns": 4,
            "max_reservations": 8, "reservation_ttl": 600}
    return RelayLimits(**{**base, **small})


async def test_a_full_relay_refuses_a_reservation_and_the_node_holds_one_on_another_relay() -> None:
    full_host, spare_host, first_host, second_host = (build_host(fresh_identity()) for _ in range(4))
    full = RelayClient(full_host, hop=True, limits=_fits_a_chat(max_reservations=1))
    spare = RelayClient(spare_host, hop=True, limits=_fits_a_chat())
    first = RelayClient(first_host, hop=False)
    second = RelayClient(second_host, hop=False)
    with trio.fail_after(30):
        async with (running_host(full_host, [LOOPBACK]), running_host(spare_host, [LOOPBACK]),
                    running_host(first_host, [LOOPBACK]), running_host(second_host, [LOOPBACK]),
                    background_trio_service(full.protocol), background_trio_service(spare.protocol),
                    trio.open_nursery() as nursery):
            for host in (first_host, second_host):
                for relay in (full_host, spare_host):
                    await host.connect(info_from_p2p_addr(_addr(relay)))
            assert await first.reserve(full_host.get_id()) is not None  # the one slot
            # The second node asks the full relay first, is refused, and goes on.
            order = [full_host.get_id(), spare_host.get_id()]
            nursery.start_soon(lambda: second.keep_reservations(lambda: list(order), wanted=1))
            while not second.reservations:
                await trio.sleep(0.02)
            assert list(second.reservations) == [spare_host.get_id()]
            relayed = second.reservations[spare_host.get_id()].addrs
            assert relayed and all(spare_host.get_id().to_base58() in str(a) for a in relayed)
            # Among connected peers, the full relay is not asked again for a while.
            assert full_host.get_id() not in second.relay_candidates()
            nursery.cancel_scope.cancel()


async def _relay_setup(limits: RelayLimits, sources: int = 1):
    """A relay with ``limits``, a reserved destination that echoes, and ``sources`` dialers."""
    hosts = [build_host(fresh_identity()) for _ in range(2 + sources)]
    relay_host, dest_host, *source_hosts = hosts
    clients = [RelayClient(relay_host, hop=True, limits=limits),
               *(RelayClient(h, hop=False) for h in hosts[1:])]
    return hosts, clients


async def _echo(stream) -> None:
    try:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            await stream.write(data)
    except Exception:  # the circuit was reset under us: the point of these tests
        pass


async def _open_circuit(source_host, source: RelayClient, dest_id, relayed: list[Multiaddr]):
    conn = await source.dial_circuit(dest_id, relayed)
    return await source_host.new_stream(dest_id, [ECHO]), conn


async def _run_circuits(limits: RelayLimits, body, sources: int = 1) -> None:
    hosts, clients = await _relay_setup(limits, sources)
    relay_host, dest_host, *source_hosts = hosts
    dest_host.set_stream_handler(ECHO, _echo)
    with trio.fail_after(30):
        async with (running_host(relay_host, [LOOPBACK]), running_host(dest_host, [LOOPBACK]),
                    background_trio_service(clients[0].protocol), background_trio_service(clients[1].protocol)):
            async with trio.open_nursery() as nursery:
                for host, client in zip(source_hosts, clients[2:]):
                    await nursery.start(_serve_host, host, client)
                await dest_host.connect(info_from_p2p_addr(_addr(relay_host)))
                relayed = await _reserve(dest_host, relay_host)
                for host in source_hosts:
                    await host.connect(info_from_p2p_addr(_addr(relay_host)))
                await body(relay_host, dest_host, list(zip(source_hosts, clients[2:])), relayed)
                nursery.cancel_scope.cancel()


async def _reserve(host, relay_host) -> list[Multiaddr]:
    """A reservation by hand (our client would not reserve on a relay this stingy)."""
    stream = await host.new_stream(relay_host.get_id(), [HOP])
    await write_delimited_msg(stream, HopMessage(
        type=HopMessage.RESERVE, peer=CircuitPeerId(id=host.get_id().to_bytes())))
    answer = await read_delimited_msg(stream, HopMessage)
    await stream.close()
    assert answer.status == 100, answer
    return [circuit_addr(relay_host.get_transport_addrs()[0], relay_host.get_id())]


async def _serve_host(host, client: RelayClient, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with running_host(host, [LOOPBACK]), background_trio_service(client.protocol):
        task_status.started()
        await trio.sleep_forever()


async def _echoes(stream, payload: bytes) -> bool:
    """Whether ``payload`` comes back whole through the circuit (False: the circuit was cut)."""
    try:
        await stream.write(payload)
        got = b""
        with trio.fail_after(5):
            while len(got) < len(payload):
                chunk = await stream.read(65536)
                if not chunk:
                    return False
                got += chunk
        return got == payload
    except Exception:
        return False


async def test_one_reserved_peer_gets_only_its_circuits_at_once() -> None:
    async def body(relay_host, dest_host, sources, relayed) -> None:
        (one_host, one), (two_host, two) = sources
        stream, _conn = await _open_circuit(one_host, one, dest_host.get_id(), relayed)
        assert await _echoes(stream, b"first circuit")
        try:
            await two.dial_circuit(dest_host.get_id(), relayed)
        except Exception as exc:  # the relay answers RESOURCE_LIMIT_EXCEEDED / refuses
            refused = repr(exc)
        else:
            refused = ""
        assert refused, "a second circuit to a peer limited to one was relayed"
        assert await _echoes(stream, b"the first still works")

    await _run_circuits(_fits_a_chat(max_circuit_conns=1), body, sources=2)


async def test_a_circuit_is_reset_past_its_bytes() -> None:
    async def body(relay_host, dest_host, sources, relayed) -> None:
        ((source_host, source),) = sources
        stream, _conn = await _open_circuit(source_host, source, dest_host.get_id(), relayed)
        assert await _echoes(stream, b"x" * 1000)
        # ~8 KiB were allowed in all (Noise and yamux frames count too): 20 KiB cannot pass.
        assert not await _echoes(stream, b"y" * 20_000)

    await _run_circuits(_fits_a_chat(data=8 * 1024), body)


async def test_a_circuit_is_reset_past_its_duration() -> None:
    async def body(relay_host, dest_host, sources, relayed) -> None:
        ((source_host, source),) = sources
        opened = trio.current_time()
        stream, _conn = await _open_circuit(source_host, source, dest_host.get_id(), relayed)
        # DURATION leaves a loaded machine seconds to open the circuit and echo once
        assert await _echoes(stream, b"within its time")
        await trio.sleep_until(opened + DURATION + 0.5)  # the relay checks its deadline as data flows
        assert not await _echoes(stream, b"after its time")

    await _run_circuits(_fits_a_chat(duration=DURATION), body)


DURATION = 4
