"""Canaries for ``strangers.node.libp2p.kad``: what StrangersDHT takes from KadDHT.

StrangersDHT subclasses py-libp2p's KadDHT: it keeps the server (stream
handler, routing table, stores), overrides ``handle_stream`` and ``run``,
replaces ``provider_store`` and the private ``_inbound_limiter``, and imports
the private ``_encode_key``. Each test names one of these.
"""

from __future__ import annotations

import base64
import hashlib
import inspect

import pytest
import trio
from libp2p.kad_dht import kad_dht as kad_dht_module
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.kad_dht.provider_store import ProviderRecord, ProviderStore
from libp2p.kad_dht.routing_table import RoutingTable
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import kad
from strangers.node.libp2p.host import build_host
from strangers.node.libp2p.kad import KAD_PROTOCOL, NewestProviderStore, StrangersDHT

from canary import changed, parameters_of, source_of


def _peer(n: int) -> PeerInfo:
    peer_id = ID(hashlib.sha256(n.to_bytes(4, "big")).digest())
    return PeerInfo(peer_id, [Multiaddr(f"/ip4/127.0.0.1/tcp/{1000 + n}")])


@pytest.fixture
def dht() -> StrangersDHT:
    return StrangersDHT(build_host(fresh_identity()))


# -- the private import -----------------------------------------------------------------


def test_encode_key_still_turns_hex_multihashes_and_cids_into_bytes() -> None:
    encode = getattr(kad_dht_module, "_encode_key", None)
    assert encode is not None, changed("_encode_key", "libp2p.kad_dht.kad_dht._encode_key is gone")
    multihash = "1220" + hashlib.sha256(b"cinema").hexdigest()
    assert encode(multihash) == bytes.fromhex(multihash), changed(
        "_encode_key", "a hex multihash string no longer encodes to its bytes"
    )
    digest = hashlib.sha256(b"cinema").digest()
    cid_v1_raw = "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")
    assert encode(cid_v1_raw) == b"\x12\x20" + digest, changed(
        "_encode_key", "a CIDv1 string no longer encodes to its sha2-256 multihash"
    )


# -- the subclass: constructor, attributes we replace, methods we override ---------------------


def test_kaddht_takes_the_constructor_arguments_we_pass() -> None:
    names = parameters_of(KadDHT.__init__)
    assert names[:3] == ["self", "host", "mode"] and "enable_random_walk" in names, changed(
        "StrangersDHT.__init__", f"KadDHT.__init__ now takes {names}"
    )


def test_the_attributes_strangers_dht_relies_on_are_there(dht: StrangersDHT) -> None:
    for name in ("routing_table", "peer_routing", "value_store", "provider_store", "local_peer_id", "host"):
        assert hasattr(dht, name), changed("StrangersDHT", f"KadDHT instances have no {name!r}")
    assert isinstance(dht.routing_table, RoutingTable), changed("StrangersDHT", "routing_table changed type")
    assert dht.rt_refresh_manager is None, changed(
        "StrangersDHT", "enable_random_walk=False no longer leaves out the refresh manager"
    )
    assert hasattr(dht.value_store, "cleanup_expired"), changed("run", "value_store.cleanup_expired is gone")


def test_the_inbound_limit_is_still_a_private_capacity_limiter_of_12(dht: StrangersDHT) -> None:
    """StrangersDHT replaces ``_inbound_limiter`` (12 streams -> INBOUND_STREAMS)."""
    plain = KadDHT(build_host(fresh_identity()), DHTMode.SERVER)
    limiter = getattr(plain, "_inbound_limiter", None)
    assert isinstance(limiter, trio.CapacityLimiter), changed(
        "_inbound_limiter", "KadDHT no longer limits inbound streams with self._inbound_limiter"
    )
    assert limiter.total_tokens == 12, changed(
        "_inbound_limiter",
        f"the library's limit is now {limiter.total_tokens}, not 12: is INBOUND_STREAMS still needed?",
    )
    assert "self._inbound_limiter" in source_of(KadDHT.handle_stream), changed(
        "_inbound_limiter", "KadDHT.handle_stream no longer reads self._inbound_limiter"
    )
    assert dht._inbound_limiter.total_tokens == kad.INBOUND_STREAMS


def test_the_host_calls_our_handle_stream(dht: StrangersDHT) -> None:
    """KadDHT registers ``self.handle_stream`` in __init__: our override must be it."""
    handler = dht.host.get_mux().handlers.get(KAD_PROTOCOL)
    assert handler is not None, changed("handle_stream", f"KadDHT no longer serves {KAD_PROTOCOL}")
    assert getattr(handler, "__func__", None) is StrangersDHT.handle_stream, changed(
        "handle_stream", f"the registered Kademlia handler is {handler!r}, not StrangersDHT.handle_stream"
    )
    assert parameters_of(KadDHT.handle_stream) == ["self", "stream"], changed(
        "handle_stream", f"KadDHT.handle_stream now takes {parameters_of(KadDHT.handle_stream)}"
    )


def test_the_server_reads_requests_in_a_loop_and_uses_our_provider_store() -> None:
    """kadpool sends several requests on one stream; NewestProviderStore must be
    the store the server writes ADD_PROVIDER into and answers GET_PROVIDERS from."""
    serve = getattr(KadDHT, "_do_handle_stream", None)
    assert serve is not None, changed("handle_stream", "KadDHT._do_handle_stream is gone")
    source = source_of(serve)
    assert "while True" in source, changed("kadpool", "the server no longer reads several requests per stream")
    assert "self.provider_store.add_provider(" in source, changed(
        "NewestProviderStore", "the server no longer stores ADD_PROVIDER through self.provider_store.add_provider"
    )
    assert "self.provider_store.get_providers(" in source, changed(
        "NewestProviderStore", "the server no longer answers GET_PROVIDERS from self.provider_store.get_providers"
    )


def test_kaddht_run_is_still_the_refresh_storm_we_replace() -> None:
    """StrangersDHT.run replaces KadDHT.run wholesale. If the library's run does
    something new besides its refresh loop, we lose it: look at what changed."""
    assert inspect.iscoroutinefunction(KadDHT.run) and parameters_of(KadDHT.run) == ["self"]
    library = source_of(KadDHT.run) + source_of(KadDHT._run_main_loop)
    for expected in ("refresh_routing_table", "start_periodic_refresh", "cleanup_expired", "_run_main_loop"):
        assert expected in library, changed("StrangersDHT.run", f"KadDHT.run no longer does {expected}")
    assert StrangersDHT.run is not KadDHT.run


async def test_the_service_manager_runs_our_run_and_takes_tasks(dht: StrangersDHT) -> None:
    done = trio.Event()

    async def task() -> None:
        done.set()

    async with background_trio_service(dht):
        dht.manager.run_task(task)
        with trio.move_on_after(5):
            await done.wait()
    assert done.is_set(), changed("StrangersDHT._spawn", "manager.run_task did not run the task")


# -- the provider store we subclass -----------------------------------------------------


def test_provider_store_keeps_records_as_we_read_them(dht: StrangersDHT) -> None:
    assert parameters_of(ProviderStore.__init__)[:3] == ["self", "host", "peer_routing"], changed(
        "NewestProviderStore", f"ProviderStore.__init__ now takes {parameters_of(ProviderStore.__init__)}"
    )
    assert parameters_of(ProviderRecord.__init__)[:3] == ["self", "provider_info", "timestamp"], changed(
        "NewestProviderStore", "ProviderRecord(provider_info=, timestamp=) changed"
    )
    store = ProviderStore(host=dht.host, peer_routing=dht.peer_routing)
    store.add_provider(b"key", _peer(1))
    records = store.providers.get(b"key")
    assert isinstance(records, dict) and list(records) == [str(_peer(1).peer_id)], changed(
        "NewestProviderStore", "ProviderStore.providers is no longer {key: {str(peer id): ProviderRecord}}"
    )
    assert isinstance(records[str(_peer(1).peer_id)], ProviderRecord)
    assert [info.peer_id for info in store.get_providers(b"key")] == [_peer(1).peer_id]
    assert hasattr(store, "cleanup_expired")


def test_the_library_store_still_drops_every_provider_after_the_first_20(dht: StrangersDHT) -> None:
    """The bug NewestProviderStore fixes; if this fails, reconsider the subclass."""
    store = ProviderStore(host=dht.host, peer_routing=dht.peer_routing)
    for n in range(21):
        store.add_provider(b"key", _peer(n))
    kept = {info.peer_id for info in store.get_providers(b"key")}
    assert _peer(20).peer_id not in kept, changed(
        "NewestProviderStore", "py-libp2p now keeps providers beyond the first 20"
    )


def test_newest_provider_store_keeps_the_newest(dht: StrangersDHT) -> None:
    store = dht.provider_store
    assert isinstance(store, NewestProviderStore)
    for n in range(kad.MAX_RECORDS_PER_KEY + 5):
        store.add_provider(b"key", _peer(n))
        store.providers[b"key"][str(_peer(n).peer_id)].timestamp += n * 1e-3  # strictly increasing
    assert len(store.providers[b"key"]) == kad.MAX_RECORDS_PER_KEY
    answer = [info.peer_id for info in store.get_providers(b"key")]
    newest = [_peer(n).peer_id for n in range(kad.MAX_RECORDS_PER_KEY + 4, kad.MAX_RECORDS_PER_KEY - 16, -1)]
    assert answer == newest


# -- routing table and wire messages ----------------------------------------------------


def test_routing_table_methods_we_call() -> None:
    assert "skip_server_mode_check" in parameters_of(RoutingTable.add_peer), changed(
        "StrangersDHT", "RoutingTable.add_peer lost skip_server_mode_check"
    )
    for name in ("peer_in_table", "find_local_closest_peers", "remove_peer", "size"):
        assert callable(getattr(RoutingTable, name, None)), changed("StrangersDHT", f"RoutingTable.{name} is gone")


def test_kademlia_messages_have_the_fields_we_fill() -> None:
    request = Message()
    request.type = Message.MessageType.ADD_PROVIDER
    request.key = b"k"
    entry = request.providerPeers.add()
    entry.id = b"peer"
    entry.addrs.extend([Multiaddr("/ip4/127.0.0.1/tcp/1").to_bytes()])
    closer = request.closerPeers.add()
    closer.id = b"other"
    parsed = Message()
    parsed.ParseFromString(request.SerializeToString())
    assert parsed.providerPeers[0].id == b"peer" and parsed.closerPeers[0].id == b"other"
    for name in ("FIND_NODE", "GET_PROVIDERS", "ADD_PROVIDER"):
        assert hasattr(Message.MessageType, name), changed("StrangersDHT", f"Message.MessageType.{name} is gone")


# -- our own protocol id, server/client, admission, load shedding --------------------------


def test_the_library_still_hard_wires_the_public_protocol_id() -> None:
    """StrangersDHT registers and dials under its own ``protocol``; the library
    would use ``/ipfs/kad/1.0.0`` (its ``protocol_prefix`` changes nothing)."""
    from libp2p.kad_dht import common

    assert common.PROTOCOL_ID == "/ipfs/kad/1.0.0"
    init = source_of(KadDHT.__init__)
    assert "set_stream_handler(PROTOCOL_ID" in init and "self.mode == DHTMode.SERVER" in init, changed(
        "StrangersDHT.__init__", "KadDHT no longer registers the hard-wired id, in server mode only"
    )
    host = build_host(fresh_identity())
    KadDHT(host, DHTMode.CLIENT)
    assert common.PROTOCOL_ID not in host.get_mux().handlers, changed(
        "StrangersDHT.__init__", "a client-mode KadDHT now registers a handler: we build ours as a client"
    )


def test_strangers_dht_serves_its_own_protocol_only_in_server_mode() -> None:
    from libp2p.kad_dht import common

    server = StrangersDHT(build_host(fresh_identity()))
    handlers = server.host.get_mux().handlers
    assert KAD_PROTOCOL == "/strangers/kad/1.0.0" and KAD_PROTOCOL in handlers
    assert common.PROTOCOL_ID not in handlers
    client = StrangersDHT(build_host(fresh_identity()), DHTMode.CLIENT, protocol=kad.PUBLIC_KAD_PROTOCOL)
    assert not {KAD_PROTOCOL, kad.PUBLIC_KAD_PROTOCOL} & set(client.host.get_mux().handlers)
    assert client.streams._protocol == kad.PUBLIC_KAD_PROTOCOL


def test_the_library_switch_mode_empties_the_table_and_uses_the_hard_wired_id() -> None:
    """Why StrangersDHT.switch_mode is our own: a client still walks through its table."""
    source = source_of(KadDHT.switch_mode)
    assert "PROTOCOL_ID" in source and "cleanup_routing_table" in source, changed(
        "switch_mode", "KadDHT.switch_mode changed: is our replacement still needed?"
    )


def test_the_library_handler_admits_whoever_opens_a_stream_through_add_peer() -> None:
    """StrangersDHT.add_peer gates admission: the library calls it for every inbound stream."""
    source = source_of(KadDHT._do_handle_stream)
    assert "await self.add_peer(peer_id, skip_server_mode_check=True)" in source, changed(
        "add_peer", "the library's stream handler no longer lists the peer through self.add_peer"
    )
    assert parameters_of(KadDHT.add_peer) == ["self", "peer_id", "skip_server_mode_check"]


def test_the_peerstore_gives_the_protocols_identify_told() -> None:
    """StrangersDHT.advertises reads identify's protocol list from the peerstore."""
    host = build_host(fresh_identity())
    peer = _peer(1).peer_id
    store = host.get_peerstore()
    with pytest.raises(Exception):  # noqa: B017  (the library raises a bare PeerStoreError)
        store.get_protocols(peer)
    store.add_protocols(peer, ["/strangers/kad/1.0.0"])
    assert list(store.get_protocols(peer)) == ["/strangers/kad/1.0.0"], changed(
        "advertises", "peerstore.get_protocols no longer gives the protocols added"
    )


def test_the_server_loop_reads_each_request_before_answering_it() -> None:
    """_MeteredStream counts a request at the first byte read after an answer."""
    source = source_of(KadDHT._do_handle_stream)
    assert "read_varint_prefixed_bytes_limited(" in source and "await stream.write(" in source, changed(
        "_MeteredStream", "the server loop no longer reads a request then writes its answer on the stream"
    )
    assert "should_reset = True" in source.split("except Exception as e:")[1][:400], changed(
        "_MeteredStream", "a failing read no longer resets the stream"
    )
