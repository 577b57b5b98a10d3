"""Canaries for ``strangers.node.libp2p.announce``: what we announce, to whom, what we accept.

Announcements replaces the host's ``_addrs_factory`` (what ``get_addrs()``
returns), its identify handler and its ``_push_identify_to_all_peers``, wraps
the peerstore's ``add_addrs``, and takes peers out of the swarm's negative
cache with ``unblock_peer``. Real hosts on loopback listening on ``0.0.0.0``.
"""

from __future__ import annotations

import inspect
import socket

import trio
from libp2p.host.basic_host import BasicHost
from libp2p.identity.identify.identify import _mk_identify_protobuf, parse_identify_response
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.network.swarm import Swarm, _NegativePeerCache
from libp2p.peer.envelope import consume_envelope
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery.addrscope import Scope, is_dialable, scope_of
from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import addrs_for_peer, announcements, dialable_addrs
from strangers.node.libp2p.announce import IDENTIFY
from strangers.node.libp2p.host import build_host, running_host

from canary import changed, source_of

WILDCARD = Multiaddr("/ip4/0.0.0.0/tcp/0")


def _decode(data: bytes) -> tuple[list[str], list[str]]:
    message = parse_identify_response(data)
    listen = [str(Multiaddr(raw)) for raw in message.listen_addrs]
    _, record = consume_envelope(message.signedPeerRecord, "libp2p-peer-record")
    return listen, [str(addr) for addr in record.addrs]


def test_get_addrs_runs_the_addrs_factory_we_install() -> None:
    source = source_of(BasicHost.get_addrs)
    assert "self._addrs_factory(candidates)" in source, changed(
        "announce.install", "BasicHost.get_addrs no longer calls self._addrs_factory(candidates)"
    )
    host = build_host(fresh_identity())
    book = announcements(host)
    assert host._addrs_factory == book.factory and host.get_addrs == book.host_addrs


def test_the_library_get_addrs_still_cuts_relayed_addresses_short() -> None:
    """Why install() replaces host.get_addrs: the library strips the relay's /p2p/ with ours.
    If this fails, BasicHost.get_addrs keeps circuit addresses whole: _addrs_factory alone would do."""
    host = build_host(fresh_identity())
    relay = fresh_identity().peer_id
    circuit = Multiaddr(f"/ip4/1.2.3.4/tcp/4001/p2p/{relay}/p2p-circuit")
    host._addrs_factory = lambda candidates: [circuit]
    given = [str(a) for a in BasicHost.get_addrs(host)]
    assert given == [f"/ip4/1.2.3.4/tcp/4001/p2p/{host.get_id()}"], changed(
        "announce.install", f"BasicHost.get_addrs now gives {given} for a relayed address"
    )
    assert hasattr(host, "_observed_addr_manager") and callable(host._observed_addr_manager.addrs), changed(
        "Announcements.host_addrs", "host._observed_addr_manager.addrs() is gone"
    )


def test_the_library_identify_message_has_the_fields_we_build() -> None:
    """identify_message builds the message the library's _mk_identify_protobuf builds, field by field."""
    fields = set(Identify.DESCRIPTOR.fields_by_name)
    ours = {"protocol_version", "agent_version", "public_key", "listen_addrs", "observed_addr",
            "protocols", "signedPeerRecord"}
    assert ours <= fields, changed("announce.identify_message", f"Identify has fields {sorted(fields)}")
    source = source_of(_mk_identify_protobuf)
    assert all(f"{name}=" in source for name in ours), changed(
        "announce.identify_message", "the library's identify message sets other fields: build them too")


def test_listen_still_pushes_identify_through_the_host_method_we_replace() -> None:
    assert callable(getattr(BasicHost, "_push_identify_to_all_peers", None)), changed(
        "announce.install", "BasicHost._push_identify_to_all_peers is gone"
    )
    import libp2p.host.basic_host as module

    assert "h._push_identify_to_all_peers()" in inspect.getsource(module), changed(
        "announce.install", "a new listener no longer calls host._push_identify_to_all_peers()"
    )


def test_the_negative_cache_and_its_public_way_out() -> None:
    """A peer whose every address failed is refused for a while; unblock_peer lets it in."""
    assert "_negative_peer_cache.is_blocked" in source_of(Swarm.dial_peer), changed(
        "announce.filter_learned", "Swarm.dial_peer no longer consults the negative cache"
    )
    assert "_negative_peer_cache.evict" in source_of(Swarm.unblock_peer)
    assert {"mark_failed", "is_blocked", "evict"} <= set(vars(_NegativePeerCache))


async def test_learned_addresses_are_filtered_and_a_new_one_unblocks_the_peer() -> None:
    host = build_host(fresh_identity())
    announcements(host)
    store, swarm = host.get_peerstore(), host.get_network()
    peer = fresh_identity().peer_id
    store.add_addrs(peer, [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip4/224.0.0.251/tcp/1")], 60)
    assert not store.peer_data_map.get(peer) or not store.peer_data_map[peer].get_addrs()
    store.add_addrs(peer, [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip4/10.9.8.7/tcp/4001")], 60)
    assert [str(a) for a in store.addrs(peer)] == ["/ip4/10.9.8.7/tcp/4001"]
    swarm._negative_peer_cache.mark_failed(str(peer))
    store.add_addrs(peer, [Multiaddr("/ip4/10.9.8.7/tcp/4001")], 60)  # nothing new
    assert swarm._negative_peer_cache.is_blocked(str(peer))
    store.add_addr(peer, Multiaddr("/ip4/10.9.8.8/tcp/4001"), 60)  # add_addr goes through add_addrs
    assert not swarm._negative_peer_cache.is_blocked(str(peer)), changed(
        "announce.filter_learned", "a new address did not take the peer out of the negative cache"
    )


async def test_identify_over_real_hosts_tells_no_wildcard_and_scopes_per_peer() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    book = announcements(server)
    announcements(client)
    with trio.fail_after(20):
        async with running_host(server, [WILDCARD]), running_host(client, [WILDCARD]):
            port = server.get_transport_addrs()[0].value_for_protocol("tcp")
            everything = [str(a) for a in dialable_addrs(server)]
            assert f"/ip4/127.0.0.1/tcp/{port}" in everything
            assert not any("0.0.0.0" in a for a in everything)
            given = [str(a).split("/p2p/")[0] for a in server.get_addrs()]
            assert all(scope_of(a) is Scope.PUBLIC and is_dialable(a) for a in given), changed(
                "announce.install", f"host.get_addrs() gives {given} (only public ones expected)"
            )
            await client.connect(PeerInfo(server.get_id(), [Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")]))
            stream = await client.new_stream(server.get_id(), [IDENTIFY])
            data = b""
            while True:
                try:
                    chunk = await stream.read(4096)
                except Exception:
                    break
                if not chunk:
                    break
                data += chunk
            listen, signed = _decode(data)
            assert listen == signed and f"/ip4/127.0.0.1/tcp/{port}" in listen
            assert not any("0.0.0.0" in a for a in listen)
            # the library's own identify client stored what we told it
            with trio.fail_after(5):
                while True:
                    try:
                        known = [str(a) for a in client.get_peerstore().addrs(server.get_id())]
                    except Exception:
                        known = []
                    if known:
                        break
                    await trio.sleep(0.02)
            assert not any("0.0.0.0" in a for a in known), known
            assert [str(a) for a in addrs_for_peer(server, client.get_id())][0].startswith("/ip4/127.0.0.1/")
            # a peer across the internet would learn nothing private or loopback
            public, signed = _decode(book.identify_message("198.51.100.9", None))
            assert public == signed
            assert all(scope_of(a) is Scope.PUBLIC for a in public), public
            book.add(Multiaddr("/ip4/1.2.3.4/tcp/4001"))
            public, _ = _decode(book.identify_message("198.51.100.9", None))
            assert "/ip4/1.2.3.4/tcp/4001" in public
            lan, _ = _decode(book.identify_message("10.0.0.9", None))
            assert "/ip4/1.2.3.4/tcp/4001" in lan and not any("/127." in a for a in lan)


async def test_an_added_address_reaches_connected_peers_by_identify_push() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    book = announcements(server)
    announcements(client)
    loop = Multiaddr("/ip4/127.0.0.1/tcp/0")
    with trio.fail_after(20):
        async with running_host(server, [loop]), running_host(client, [loop]):
            async with trio.open_nursery() as nursery:
                await nursery.start(book.serve)
                await client.connect(PeerInfo(server.get_id(), server.get_transport_addrs()))
                store = client.get_peerstore()
                while not store.peer_data_map.get(server.get_id()) or not store.get_protocols(server.get_id()):
                    await trio.sleep(0.02)  # identify is through
                relayed = str(Multiaddr(f"/ip4/1.2.3.4/tcp/4001/p2p/{fresh_identity().peer_id}/p2p-circuit"))
                book.add(Multiaddr(relayed))
                while relayed not in [str(a) for a in store.addrs(server.get_id())] or not book.pushes:
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()



def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def _dial_second_address(wrapped: bool) -> tuple[bool, str]:
    """A peer whose first TCP address is dead and second is live: does dial_peer reach it?"""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    if wrapped:
        announcements(client)
    loopback = Multiaddr("/ip4/127.0.0.1/tcp/0")
    async with running_host(server, [loopback]), running_host(client, [loopback]):
        live = str(server.get_transport_addrs()[0])  # /ip4/127.0.0.1/tcp/PORT
        dead = f"/ip4/127.0.0.1/tcp/{_closed_port()}"
        client.get_peerstore().add_addrs(server.get_id(), [Multiaddr(dead), Multiaddr(live)], 600)
        try:
            with trio.fail_after(10):
                await client.get_network().dial_peer(server.get_id())
        except Exception as exc:
            return False, repr(exc)
        return True, ""


async def test_the_library_dials_only_the_first_tcp_address_of_a_peer() -> None:
    """The fault dial_every_address works around ("at most 1 address per transport class")."""
    reached, why = await _dial_second_address(wrapped=False)
    assert not reached, changed(
        "announce.dial_every_address",
        "Swarm.dial_peer now tries a peer's second TCP address: the fallback may go")
    assert "unable to connect" in why, why


async def test_dial_every_address_reaches_a_peer_at_its_second_address() -> None:
    reached, why = await _dial_second_address(wrapped=True)
    assert reached, why
