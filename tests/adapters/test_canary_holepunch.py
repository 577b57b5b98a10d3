"""Canaries for ``strangers.node.libp2p.holepunch`` (DCUtR and the path of a stream).

It subclasses py-libp2p's ``DCUtRProtocol`` (no auto-drive, a short dial
timeout), raises the swarm's connections-per-peer limit, tells relayed
connections by their recorded transport facts, and opens a stream on one
given connection with the library's own multistream-select.  The last test
runs it all over real hosts on loopback: a relay, a reserved peer, a circuit,
then a direct connection beside it.
"""

from __future__ import annotations

import contextlib

import trio
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TProtocol
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.swarm import Swarm
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2 import dcutr
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import announcements
from strangers.node.libp2p.holepunch import (
    DIAL_TIMEOUT,
    PUNCH_ATTEMPTS,
    HolePunch,
    StrangersDCUtR,
    conn_is_relayed,
    direct_connection,
    new_stream_on,
    stream_path,
)
from strangers.node.libp2p.host import build_host, running_host

from canary import changed, parameters_of, source_of

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
ECHO = TProtocol("/strangers-canary/holepunch/1.0.0")


def test_dcutr_still_auto_drives_from_run_and_we_replace_that_loop() -> None:
    """StrangersDCUtR overrides ``_auto_drive_loop`` (both sides punching every 2 s)."""
    assert "_auto_drive_loop" in source_of(dcutr.DCUtRProtocol.run), changed(
        "StrangersDCUtR", "DCUtRProtocol.run no longer starts _auto_drive_loop")
    assert "sleep(2.0)" in source_of(dcutr.DCUtRProtocol._auto_drive_loop), changed(
        "StrangersDCUtR", "the auto-drive loop no longer punches every 2 s")
    assert StrangersDCUtR._auto_drive_loop is not dcutr.DCUtRProtocol._auto_drive_loop


def test_dcutr_dials_with_the_timeout_we_pass() -> None:
    """DIAL_TIMEOUT reaches every hole-punch dial (the default 10 s hangs on private addresses)."""
    assert "dial_timeout" in parameters_of(dcutr.DCUtRProtocol.__init__), changed(
        "HolePunch", "DCUtRProtocol no longer takes dial_timeout")
    assert "self.dial_timeout" in source_of(dcutr.DCUtRProtocol._dial_peer), changed(
        "HolePunch", "_dial_peer no longer bounds a dial by self.dial_timeout")
    assert dcutr.DEFAULT_DIAL_TIMEOUT > DIAL_TIMEOUT


def test_the_relay_address_filter_still_reads_the_destination_as_the_relay() -> None:
    """The bug the module docstring describes, pinned: harmless with a short dial timeout,
    because the peerstore's addresses are added back after the filter."""
    source = source_of(dcutr.DCUtRProtocol._perform_hole_punch)
    assert 'split("/p2p-circuit/p2p/")' in source and "peerstore().addrs(peer_id)" in source, changed(
        "HolePunch", "the relay-address filter of _perform_hole_punch changed: re-read it")


def test_the_swarm_reads_its_per_peer_limit_when_a_connection_arrives() -> None:
    """HolePunch.relayed_chat raises ``connection_config.max_connections_per_peer`` at run time,
    and only then: a limit of 2 makes every dial wait for the happy-eyeballs delay."""
    assert "self.connection_config.max_connections_per_peer" in source_of(Swarm.add_conn), changed(
        "HolePunch.relayed_chat", "Swarm.add_conn no longer reads the per-peer limit from its config")
    dial = source_of(Swarm.dial_peer)
    assert "_HAPPY_EYEBALLS_DELAY" in dial and "max_per_peer" in dial, changed(
        "HolePunch.relayed_chat", "dial_peer no longer waits for happy eyeballs unless the"
        " per-peer limit is reached: a limit of 2 may be cheap now")


def test_connections_record_their_type_and_transport_addresses() -> None:
    """conn_is_relayed reads what the swarm records, not the peerstore fallback."""
    assert ConnectionType.RELAYED.value == "relayed"
    assert "_actual_transport_addresses" in source_of(SwarmConn.set_transport_info)
    assert "peerstore" in source_of(SwarmConn.get_transport_addresses), changed(
        "conn_is_relayed", "get_transport_addresses no longer falls back to the peerstore; simplify")
    source = source_of(CircuitV2Protocol.handle_incoming_connection)
    assert "ConnectionType.RELAYED" in source, changed(
        "conn_is_relayed", "the STOP side no longer tags its relayed connections RELAYED")
    # the receiving side's circuit address names itself as the relay (the notes' bug): we
    # never read the relay out of it, only "/p2p-circuit"
    assert "relay_peer_id = self.host.get_id()" in source, changed(
        "conn_is_relayed", "the STOP side builds its circuit address differently: re-read it")


async def _reserve(host, relay_id) -> None:
    stream = await host.new_stream(relay_id, [HOP])
    await write_delimited_msg(stream, HopMessage(
        type=HopMessage.RESERVE, peer=CircuitPeerId(id=host.get_id().to_bytes())))
    answer = await read_delimited_msg(stream, HopMessage)
    await stream.close()
    assert answer.status == 100


async def test_relayed_then_direct_over_real_hosts() -> None:
    """Relay R, peers A and B on loopback: A reaches B through R (both sides see "relayed"),
    HolePunch.upgrade gets a direct connection beside it (B is reachable), and a stream
    opened on that connection is "direct" while the relayed one stays open."""
    hosts = [build_host(fresh_identity()) for _ in range(3)]
    relay, a, b = hosts
    seen: dict[str, str] = {}
    got = trio.Event()

    async def handler(stream) -> None:
        seen[stream_path(stream)] = stream_path(stream)
        await stream.write(await stream.read(5))
        await stream.close()
        got.set()

    with trio.fail_after(30):
        async with running_host(relay, [LOOPBACK]), running_host(a, [LOOPBACK]), \
                running_host(b, [LOOPBACK]):
            protocols = {h: CircuitV2Protocol(h, allow_hop=h is relay) for h in hosts}
            transport = CircuitV2Transport(a, protocols[a], RelayConfig(roles=RelayRole.STOP))
            CircuitV2Transport(b, protocols[b], RelayConfig(roles=RelayRole.STOP))
            b.set_stream_handler(ECHO, handler)
            async with background_trio_service(protocols[relay]), \
                    background_trio_service(protocols[a]), background_trio_service(protocols[b]), \
                    trio.open_nursery() as nursery:
                stack = contextlib.ExitStack()
                punch = HolePunch(b)
                await nursery.start(punch.serve)
                other = HolePunch(a)
                assert a.get_network().connection_config.max_connections_per_peer == 1
                stack.enter_context(punch.relayed_chat())
                stack.enter_context(other.relayed_chat())
                assert a.get_network().connection_config.max_connections_per_peer == 2
                relay_addr = relay.get_addrs()[0]
                for h in (a, b):
                    await h.connect(info_from_p2p_addr(relay_addr))
                await _reserve(b, relay.get_id())
                conn = await transport.dial(Multiaddr(f"{relay_addr}/p2p-circuit/p2p/{b.get_id()}"))
                assert conn_is_relayed(conn), changed("conn_is_relayed", "a circuit dial is not RELAYED")
                stream = await new_stream_on(a, conn, ECHO)
                assert stream_path(stream) == "relayed"
                await stream.write(b"hello")
                assert await stream.read(5) == b"hello"
                await got.wait()
                assert seen == {"relayed": "relayed"}, changed(
                    "stream_path", f"the receiving side of a circuit sees {seen}")
                assert direct_connection(a, b.get_id()) is None
                # B dials A's listen address (the unilateral upgrade: A is reachable here)
                b.get_peerstore().add_addrs(a.get_id(), a.get_transport_addrs(), 600)
                assert await punch.upgrade(a.get_id()), changed(
                    "HolePunch.upgrade", "no direct connection to a reachable peer")
                assert punch.statistics.attempts == 1 and punch.statistics.successes == 1
                with trio.fail_after(5):
                    while direct_connection(a, b.get_id()) is None:
                        await trio.sleep(0.05)
                direct = direct_connection(a, b.get_id())
                # the relayed connection stays beside the direct one
                assert any(conn_is_relayed(c) for c in a.get_network().get_connections(b.get_id()))
                fresh = await new_stream_on(a, direct, ECHO)
                assert stream_path(fresh) == "direct"
                await fresh.write(b"again")
                assert await fresh.read(5) == b"again"
                # Its last stream ends (the chat moved): B closes the relayed connection
                # at once, not 60 s later, and the relay sees the circuit end.
                assert protocols[relay]._active_relays, changed(
                    "HolePunch.close_relayed_when_idle", "the relay no longer lists active circuits")
                await stream.close()
                with trio.fail_after(10):
                    while any(conn_is_relayed(c) for c in a.get_network().get_connections(b.get_id())):
                        await trio.sleep(0.05)
                    while protocols[relay]._active_relays:
                        await trio.sleep(0.05)
                assert punch.relayed_closed == 1
                assert direct_connection(a, b.get_id()) is direct  # the direct one stays
                stack.close()
                assert a.get_network().connection_config.max_connections_per_peer == 1
                nursery.cancel_scope.cancel()


async def test_dcutr_still_reads_its_listen_port_from_get_addrs_which_our_view_restores() -> None:
    """DCUtR's NAT port prediction and the source of its dials come from
    ``host.get_addrs()``; our address book makes that public and relayed only, so
    without :class:`ListenAddressesView` a host behind a NAT sent an empty CONNECT."""
    assert "host.get_addrs()" in source_of(dcutr._local_tcp_listen_addrs), changed(
        "holepunch.ListenAddressesView", "DCUtR finds its listen addresses elsewhere now")
    host = build_host(fresh_identity())
    announcements(host)  # the node installs it: get_addrs() is public and relayed only
    async with running_host(host, [LOOPBACK]):
        assert not dcutr._local_tcp_listen_addrs(host)  # loopback is not public
        protocol = StrangersDCUtR(host, dial_timeout=DIAL_TIMEOUT)
        listen = dcutr._local_tcp_listen_addrs(protocol.host)
        port = int(host.get_transport_addrs()[0].value_for_protocol("tcp"))
        assert listen == [(4, "127.0.0.1", port)]
        assert protocol.host.get_id() == host.get_id()  # everything else is the host's


def test_dcutr_still_allows_as_many_punches_per_peer_as_we_try() -> None:
    assert dcutr.MAX_HOLE_PUNCH_ATTEMPTS >= PUNCH_ATTEMPTS, changed(
        "holepunch.HolePunch.upgrade",
        f"DCUtR refuses a peer after {dcutr.MAX_HOLE_PUNCH_ATTEMPTS} punches, we try {PUNCH_ATTEMPTS}")
