"""Canaries for ``strangers.node.libp2p.relay`` (circuit relay v2 with no operator).

What the adapter relies on or works around in py-libp2p 0.8.1: the swarm
drops ``/p2p-circuit`` addresses before it dials (we wrap ``dial_peer``);
``CircuitV2Transport`` reserves before every dial in the CLIENT role (we give
it STOP only); its refresher renews a reservation only 30 s before expiry
(we renew at half life); the relay's HOP handler and limits. The last test
runs a relay, a node that reserves and a node that dials it, on loopback.
"""

from __future__ import annotations

import time

import pytest
import trio
from libp2p.network.swarm import Swarm, SwarmException
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2 import transport as circuit_transport
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.relay import (
    HOP,
    STRANGERS_RELAY_LIMITS,
    RelayClient,
    connection_path,
    install_circuit_dialing,
    relayed_addrs,
)

from canary import changed, parameters_of, source_of

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


async def test_the_swarm_still_drops_circuit_addresses_before_dialling() -> None:
    host = build_host(fresh_identity())
    peer = fresh_identity().peer_id
    relay = fresh_identity().peer_id
    circuit = Multiaddr(f"/ip4/127.0.0.1/tcp/9/p2p/{relay}/p2p-circuit")
    host.get_peerstore().add_addrs(peer, [circuit], 60)
    with pytest.raises(SwarmException) as raised:
        await Swarm.dial_peer(host.get_network(), peer)
    assert "relay-only" in str(raised.value) or "unusable" in str(raised.value), changed(
        "relay.install_circuit_dialing", f"dial_peer on circuit addresses now says {raised.value!r}")
    assert "is_relay_address" in source_of(Swarm.dial_peer), changed(
        "relay.install_circuit_dialing", "Swarm.dial_peer no longer filters relay addresses")


def test_the_circuit_transport_reserves_before_dialling_in_the_client_role() -> None:
    source = source_of(CircuitV2Transport.dial_peer_info)
    assert "self.config.enable_client" in source and "_make_reservation" in source, changed(
        "relay.RelayClient", "CircuitV2Transport.dial_peer_info no longer reserves when the CLIENT role is on")
    assert parameters_of(CircuitV2Transport.dial) == ["self", "maddr"], changed(
        "relay.RelayClient.dial_circuit", "CircuitV2Transport.dial takes other arguments")


def test_the_library_renews_reservations_only_just_before_expiry() -> None:
    assert circuit_transport.RESERVATION_REFRESH_MARGIN == 30, changed(
        "relay.RelayClient.keep_reservations",
        f"the refresher's margin is now {circuit_transport.RESERVATION_REFRESH_MARGIN}")


def test_the_hop_handler_and_limits_we_use() -> None:
    assert parameters_of(CircuitV2Protocol.__init__)[:4] == ["self", "host", "limits", "allow_hop"], changed(
        "relay.RelayClient", "CircuitV2Protocol takes other arguments")
    assert "self.allow_hop" in source_of(CircuitV2Protocol.run), changed(
        "relay.RelayClient.enable_hop", "CircuitV2Protocol.run no longer reads allow_hop")
    assert callable(getattr(CircuitV2Protocol, "_handle_hop_stream", None)), changed(
        "relay.RelayClient.enable_hop", "CircuitV2Protocol._handle_hop_stream is gone")
    assert set(parameters_of(RelayLimits)) >= {"duration", "data", "max_circuit_conns",
                                               "max_reservations", "reservation_ttl"}
    from libp2p.identity.identify_push.identify_push import push_identify_to_peers

    assert parameters_of(push_identify_to_peers)[:2] == ["host", "peer_ids"], changed(
        "relay.RelayClient.enable_hop", "push_identify_to_peers takes other arguments")
    assert STRANGERS_RELAY_LIMITS.reservation_ttl < 3600 and STRANGERS_RELAY_LIMITS.duration > 3600


def _loopback_addr(host) -> Multiaddr:
    """The host's loopback address with its peer id (``get_addrs()`` gives public
    and relayed addresses only once the address book is installed)."""
    return Multiaddr(f"{host.get_transport_addrs()[0]}/p2p/{host.get_id()}")


async def test_a_node_reserves_on_a_relay_and_is_dialled_through_it() -> None:
    relay_host, dest_host, source_host = (build_host(fresh_identity()) for _ in range(3))
    relay = RelayClient(relay_host, hop=True)
    dest = RelayClient(dest_host, hop=False)
    source = RelayClient(source_host, hop=False)
    install_circuit_dialing(source_host, source)
    from libp2p.tools.anyio_service import background_trio_service

    with trio.fail_after(30):
        async with (running_host(relay_host, [LOOPBACK]), running_host(dest_host, [LOOPBACK]),
                    running_host(source_host, [LOOPBACK]),
                    background_trio_service(relay.protocol), background_trio_service(dest.protocol),
                    background_trio_service(source.protocol)):
            relay_info = info_from_p2p_addr(_loopback_addr(relay_host))
            await dest_host.connect(relay_info)
            started = time.monotonic()
            held = await dest.reserve(relay_info.peer_id)
            reserve_ms = 1000 * (time.monotonic() - started)
            assert held is not None and held.expires > time.time() + 300
            assert relayed_addrs(dest_host) == held.addrs
            assert str(held.addrs[0]).endswith(f"/p2p/{relay_info.peer_id}/p2p-circuit")
            # The source knows the destination only by its relayed address.
            source_host.get_peerstore().add_addrs(dest_host.get_id(), held.addrs, 60)
            started = time.monotonic()
            await source_host.connect(info_from_p2p_addr(
                Multiaddr(f"{held.addrs[0]}/p2p/{dest_host.get_id()}")))
            dial_ms = 1000 * (time.monotonic() - started)
            assert connection_path(source_host, dest_host.get_id()) == "relayed"
            # A relay that does not relay refuses the reservation.
            assert await source.reserve(dest_host.get_id()) is None
            relay_host.remove_stream_handler(HOP)
            print(f"\nloopback: reservation {reserve_ms:.0f} ms, circuit dial {dial_ms:.0f} ms")


async def test_a_relay_whose_limits_would_cut_a_chat_is_not_reserved_on() -> None:
    """The relay's answer carries its circuit limits (go-libp2p's default: 2 min, 128 KiB)."""
    from libp2p.tools.anyio_service import background_trio_service

    stingy_limits = RelayLimits(duration=120, data=128 * 1024, max_circuit_conns=4, max_reservations=8)
    stingy_host, generous_host, client_host = (build_host(fresh_identity()) for _ in range(3))
    stingy = RelayClient(stingy_host, hop=True, limits=stingy_limits)
    generous = RelayClient(generous_host, hop=True)
    client = RelayClient(client_host, hop=False)
    with trio.fail_after(30):
        async with (running_host(stingy_host, [LOOPBACK]), running_host(generous_host, [LOOPBACK]),
                    running_host(client_host, [LOOPBACK]),
                    background_trio_service(stingy.protocol), background_trio_service(generous.protocol)):
            for relay_host in (stingy_host, generous_host):
                await client_host.connect(info_from_p2p_addr(_loopback_addr(relay_host)))
            assert await client.reserve(stingy_host.get_id()) is None, changed(
                "relay.RelayClient.reserve", "the reservation answer no longer carries the relay's limits")
            held = await client.reserve(generous_host.get_id())
            assert held is not None and list(client.reservations) == [generous_host.get_id()]
