"""The one adapter package for py-libp2p (0.8.1): every reach into the library lives here.

Modules:

* :mod:`.host`: build the host (TCP, Noise only, Yamux), run it
  (:func:`~.host.running_host`), check listen ports, quiet the library's logs;
* :mod:`.kad`: Kademlia on ``/ipfs/kad/1.0.0``, py-libp2p's server with our
  client side; :mod:`.kadpool`: request streams kept open and reused;
* :mod:`.streamio`: bounded, EOF-aware reads and the swarm bookkeeping
  around streams;
* :mod:`.addresses`: the addresses other peers can dial;
* :mod:`.mdns`: strangers on the same LAN (py-libp2p's mDNS service);
* :mod:`.holepunch`: DCUtR (py-libp2p's, fixed) and the path a stream runs on.

Outside this package, ``node/`` may import py-libp2p's public names (peer
ids, ``PeerInfo``, ``TProtocol``, ``background_trio_service``), never a
private one; ``crypto/``, ``discovery/`` and ``cli/`` do not import py-libp2p
at all (``tests/unit/test_architecture.py``).

Every patch of a library internal, private name or library fault we rely on:
what, why, and the canary tests (in ``tests/adapters/``) that fail when
py-libp2p changes under it.

host.py
  ``swarm.auto_connector.maybe_connect`` replaced by a no-op
    why: the auto-connector dials every peer it has heard of, up to ~200
    connections (thousands of Noise handshakes in a crowd)
    canaries: ``test_canary_host.py::test_maybe_connect_is_the_auto_connectors_only_way_to_dial``,
    ``::test_build_host_gives_the_swarm_we_configure``
  ``swarm.retry_config = RetryConfig(max_retries=0)``
    why: 3 retries cost 0.7 s per dead peer
    canary: ``test_canary_host.py::test_the_swarm_reads_its_retry_config_when_it_dials``
  ``ConnectionConfig(max_connections_per_peer=1)``
    why: otherwise every dial waits 250 ms (``swarm._HAPPY_EYEBALLS_DELAY``)
    canary: ``test_canary_host.py::test_one_connection_per_peer_still_ends_the_happy_eyeballs_wait``
  ``PY_YAMUX_RELEASE_ON_READ=0``
    why: otherwise Yamux sends a window update on every read (``yamux._yamux_release_on_read``)
    canary: ``test_canary_host.py::test_yamux_still_reads_release_on_read_from_the_environment``
  ``new_host(...)`` options and Noise ``Transport(noise_privkey=)``
    why: Noise only, Yamux first, mDNS on request
    canary: ``test_canary_host.py::test_new_host_takes_the_options_build_host_passes``
  ``ensure_port_free`` before listening
    why: the TCP listener binds with SO_REUSEPORT (a taken port is shared), and
    a failed bind is only logged
    canaries: ``test_canary_host.py::test_the_tcp_listener_still_shares_ports``,
    ``::test_the_library_still_swallows_a_failed_listen``,
    ``::test_a_port_held_by_a_running_host_is_refused``
  ``host.run()`` entered by hand in ``running_host``
    why: the body's errors stay out of the library's nurseries (no ``ExceptionGroup``)
    canaries: ``test_canary_host.py::test_host_run_is_still_an_async_context_manager_over_listen_addrs``,
    ``::test_an_error_in_the_body_comes_out_unwrapped``
  ``_close_listeners`` after ``host.run()``
    why: ``host.run()`` leaves the listening socket open when it ends
    canaries: ``test_canary_host.py::test_host_run_still_leaves_its_listener_open``,
    ``::test_running_host_listens_and_stops``

kad.py and kadpool.py
  ``from libp2p.kad_dht.kad_dht import _encode_key``
    why: CID and hex-multihash strings as DHT keys, as the library reads them
    canary: ``test_canary_kad.py::test_encode_key_still_turns_hex_multihashes_and_cids_into_bytes``
  ``StrangersDHT(KadDHT)``: the constructor, the attributes and methods it uses
    why: keep the library's server, replace its client side
    canaries: ``test_canary_kad.py::test_kaddht_takes_the_constructor_arguments_we_pass``,
    ``::test_the_attributes_strangers_dht_relies_on_are_there``,
    ``::test_routing_table_methods_we_call``, ``::test_kademlia_messages_have_the_fields_we_fill``
  ``self._inbound_limiter`` replaced
    why: py-libp2p resets inbound DHT streams beyond 12 at once
    canary: ``test_canary_kad.py::test_the_inbound_limit_is_still_a_private_capacity_limiter_of_12``
  ``handle_stream`` overridden
    why: list clients once identify is through; end idle inbound streams
    canary: ``test_canary_kad.py::test_the_host_calls_our_handle_stream``
  ``run`` overridden
    why: ``refresh_routing_table`` floods the network (~1,900 FIND_NODE per node on 10 nodes)
    canaries: ``test_canary_kad.py::test_kaddht_run_is_still_the_refresh_storm_we_replace``,
    ``::test_the_service_manager_runs_our_run_and_takes_tasks``
  ``provider_store`` replaced by ``NewestProviderStore(ProviderStore)``
    why: the library keeps the *first* 20 providers of a key; we read and write
    its ``providers`` dict and ``ProviderRecord``
    canaries: ``test_canary_kad.py::test_the_library_store_still_drops_every_provider_after_the_first_20``,
    ``::test_provider_store_keeps_records_as_we_read_them``
  the server's request loop (kadpool reuses streams)
    why: several requests per stream, stored in and answered from our store
    canary: ``test_canary_kad.py::test_the_server_reads_requests_in_a_loop_and_uses_our_provider_store``

streamio.py and addresses.py
  ``swarm.get_connections`` / ``swarm.remove_conn`` and ``is_closed``
    why: a closed connection left on the swarm's books makes ``new_stream`` fail
    ("No valid connections available")
    canaries: ``test_canary_streams.py::test_the_swarm_books_we_edit``,
    ``::test_is_closed_is_still_a_property_on_connections``
  ``StreamEOF`` / ``StreamError`` from ``read(n)``
    why: a clean end vs a reset
    canaries: ``test_canary_streams.py::test_stream_exceptions_keep_their_family``,
    ``::test_stream_helpers_over_real_hosts``
  ``stream.muxed_stream.reset_received``
    why: once we wrote on a stream, the peer's reset reaches ``read`` as ``StreamEOF``
    canary: ``test_canary_streams.py::test_a_reset_after_we_wrote_is_still_reported_as_eof_but_marked_on_the_stream``
  ``libp2p.utils.address_validation.expand_wildcard_address``
    why: 0.0.0.0 is not an address anyone can dial
    canary: ``test_canary_streams.py::test_expand_wildcard_address_gives_this_machines_addresses``

mdns.py
  the process-wide ``peerDiscovery`` handler
    why: mDNS reports peers through a callback, from zeroconf's thread
    canaries: ``test_canary_mdns.py::test_the_process_wide_discovery_callback_is_still_there``,
    ``::test_add_service_reports_the_peer_and_records_it``
  ``host.mDNS.listener.discovered_services``, polled
    why: ``update_service`` records a peer without calling the handler
    canaries: ``test_canary_mdns.py::test_update_service_still_records_the_peer_without_reporting_it``,
    ``::test_the_host_exposes_its_mdns_listener``

holepunch.py
  ``StrangersDCUtR(DCUtRProtocol)`` with ``_auto_drive_loop`` replaced
    why: both sides punch towards every relayed peer every 2 s; we punch once, when a chat asks
    canary: ``test_canary_holepunch.py::test_dcutr_still_auto_drives_from_run_and_we_replace_that_loop``
  ``DCUtRProtocol(dial_timeout=2)``
    why: the default 10 s hangs on the peer's private addresses before the punch
    canary: ``test_canary_holepunch.py::test_dcutr_dials_with_the_timeout_we_pass``
  the relay-address filter of ``_perform_hole_punch`` (reads the destination as the relay)
    why: tolerated, not patched: the peerstore's addresses come back after it
    canary: ``test_canary_holepunch.py::test_the_relay_address_filter_still_reads_the_destination_as_the_relay``
  ``swarm.connection_config.max_connections_per_peer`` raised to 2 while a relayed chat runs
    why: the direct connection must sit beside the relayed one that carries the chat (not
    always: with 2, every dial waits 250 ms for happy eyeballs)
    canary: ``test_canary_holepunch.py::test_the_swarm_reads_its_per_peer_limit_when_a_connection_arrives``
  ``SwarmConn.get_connection_type()`` / ``_actual_transport_addresses``
    why: a relayed connection, told apart without ``get_transport_addresses()``'s peerstore
    fallback (and the STOP side's own id in its circuit address)
    canaries: ``test_canary_holepunch.py::test_connections_record_their_type_and_transport_addresses``,
    ``::test_relayed_then_direct_over_real_hosts``

Not used (and so not patched): ``swarm._negative_peer_cache`` (a peer whose
every address failed is refused for a while, see ``../shared/notes``).
"""
