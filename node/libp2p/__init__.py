"""The one adapter package for py-libp2p (0.8.1): every reach into the library lives here.

Modules:

* :mod:`.host`: build the host (TCP, Noise only, Yamux), run it
  (:func:`~.host.running_host`), check listen ports, quiet the library's logs;
* :mod:`.kad`: Kademlia on ``/ipfs/kad/1.0.0``, py-libp2p's server with our
  client side; :mod:`.kadpool`: request streams kept open and reused;
* :mod:`.streamio`: bounded, EOF-aware reads and the swarm bookkeeping
  around streams;
* :mod:`.addresses`: the addresses other peers can dial;
* :mod:`.mdns`: strangers on the same LAN (py-libp2p's mDNS service).

Outside this package, ``node/`` may import py-libp2p's public names (peer
ids, ``PeerInfo``, ``TProtocol``, ``background_trio_service``), never a
private one; ``crypto/``, ``discovery/`` and ``cli/`` do not import py-libp2p
at all (``tests/unit/test_architecture.py``).

Every patch of a library internal, private name or library fault we rely on,
with the canary test that fails when py-libp2p changes under it (all in
``tests/adapters/``):

======================================  =============================================  ==============================================================
patch or reach                          why                                            canary
======================================  =============================================  ==============================================================
``swarm.auto_connector.maybe_connect``  the auto-connector dials every known peer up   ``test_canary_host.py::test_maybe_connect_is_the_auto_connectors_only_way_to_dial``,
replaced by a no-op (host)              to ~200 connections (CPU storm in a crowd)     ``::test_build_host_gives_the_swarm_we_configure``
``swarm.retry_config =                  3 retries cost 0.7 s per dead peer             ``test_canary_host.py::test_the_swarm_reads_its_retry_config_when_it_dials``
RetryConfig(max_retries=0)`` (host)
``ConnectionConfig(                     every dial waited 250 ms for happy eyeballs    ``test_canary_host.py::test_one_connection_per_peer_still_ends_the_happy_eyeballs_wait``
max_connections_per_peer=1)`` (host)    (``swarm._HAPPY_EYEBALLS_DELAY``)
``PY_YAMUX_RELEASE_ON_READ=0`` (host)   a window update on every read                  ``test_canary_host.py::test_yamux_still_reads_release_on_read_from_the_environment``
                                        (``yamux._yamux_release_on_read``)
``new_host(...)`` options, Noise        Noise only, Yamux first, mDNS switch           ``test_canary_host.py::test_new_host_takes_the_options_build_host_passes``
``Transport(noise_privkey=)`` (host)
``ensure_port_free`` before listening   the TCP listener binds with SO_REUSEPORT (a    ``test_canary_host.py::test_the_tcp_listener_still_shares_ports``,
(host)                                  taken port is shared) and a failed bind is     ``::test_the_library_still_swallows_a_failed_listen``,
                                        only logged                                    ``::test_a_port_held_by_a_running_host_is_refused``
``host.run()`` entered by hand in       the body's errors stay out of the library's    ``test_canary_host.py::test_host_run_is_still_an_async_context_manager_over_listen_addrs``,
``running_host`` (host)                 nurseries (no ``ExceptionGroup``)              ``::test_an_error_in_the_body_comes_out_unwrapped``
``_close_listeners`` after ``host.run`` ``host.run()`` leaves the listening socket     ``test_canary_host.py::test_host_run_still_leaves_its_listener_open``,
(host)                                  open when it ends                              ``::test_running_host_listens_and_stops``
``from ...kad_dht import _encode_key``  CID / hex-multihash strings as DHT keys        ``test_canary_kad.py::test_encode_key_still_turns_hex_multihashes_and_cids_into_bytes``
(kad)
``StrangersDHT(KadDHT)``: constructor,  keep the server, replace the client side       ``test_canary_kad.py::test_kaddht_takes_the_constructor_arguments_we_pass``,
attributes read (kad)                                                                  ``::test_the_attributes_strangers_dht_relies_on_are_there``,
                                                                                       ``::test_routing_table_methods_we_call``, ``::test_kademlia_messages_have_the_fields_we_fill``
``self._inbound_limiter`` replaced      py-libp2p resets inbound DHT streams beyond    ``test_canary_kad.py::test_the_inbound_limit_is_still_a_private_capacity_limiter_of_12``
(kad)                                   12 at once
``handle_stream`` overridden (kad)      list clients once identify is through; end     ``test_canary_kad.py::test_the_host_calls_our_handle_stream``
                                        idle inbound streams
``run`` overridden (kad)                ``refresh_routing_table`` floods the network   ``test_canary_kad.py::test_kaddht_run_is_still_the_refresh_storm_we_replace``,
                                        (~1,900 FIND_NODE per node on 10 nodes)        ``::test_the_service_manager_runs_our_run_and_takes_tasks``
``provider_store`` replaced by          the library keeps the *first* 20 providers     ``test_canary_kad.py::test_the_library_store_still_drops_every_provider_after_the_first_20``,
``NewestProviderStore(ProviderStore)``  of a key; we read and write its                ``::test_provider_store_keeps_records_as_we_read_them``,
(kad)                                   ``providers`` dict and ``ProviderRecord``      ``::test_the_server_reads_requests_in_a_loop_and_uses_our_provider_store``
stream reuse (kadpool)                  the server reads several requests per stream   ``test_canary_kad.py::test_the_server_reads_requests_in_a_loop_and_uses_our_provider_store``
``swarm.get_connections`` /             a closed connection left on the swarm's        ``test_canary_streams.py::test_the_swarm_books_we_edit``,
``swarm.remove_conn``, ``is_closed``    books makes ``new_stream`` fail ("No valid     ``::test_is_closed_is_still_a_property_on_connections``
(streamio, kadpool)                     connections available")
``StreamEOF`` / ``StreamError`` from    a clean end vs a reset                         ``test_canary_streams.py::test_stream_exceptions_keep_their_family``,
``read(n)`` (streamio)                                                                 ``::test_stream_helpers_over_real_hosts``
``stream.muxed_stream.reset_received``  after we wrote, a reset reaches ``read`` as    ``test_canary_streams.py::test_a_reset_after_we_wrote_is_still_reported_as_eof_but_marked_on_the_stream``
(streamio)                              ``StreamEOF``
``expand_wildcard_address``             0.0.0.0 is not an address anyone can dial      ``test_canary_streams.py::test_expand_wildcard_address_gives_this_machines_addresses``
(addresses)
``peerDiscovery`` handler (mdns)        mDNS reports peers through a process-wide      ``test_canary_mdns.py::test_the_process_wide_discovery_callback_is_still_there``,
                                        callback from zeroconf's thread                ``::test_add_service_reports_the_peer_and_records_it``
``host.mDNS.listener.                   ``update_service`` records a peer without      ``test_canary_mdns.py::test_update_service_still_records_the_peer_without_reporting_it``,
discovered_services`` polled (mdns)     calling the handler                            ``::test_the_host_exposes_its_mdns_listener``
======================================  =============================================  ==============================================================

Not used (and so not patched): ``swarm._negative_peer_cache`` (a peer whose
every address failed is refused for a while, see ``../shared/notes``).
"""
