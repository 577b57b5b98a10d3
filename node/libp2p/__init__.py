"""The one adapter package for py-libp2p (0.8.1): every reach into the library lives here.

Modules:

* :mod:`.host`: build the host (TCP, Noise only, Yamux), run it
  (:func:`~.host.running_host`), check listen ports, quiet the library's logs;
* :mod:`.kad`: Kademlia under our own id ``/strangers/kad/1.0.0`` (any id:
  also a client of the public ``/ipfs/kad/1.0.0``), py-libp2p's server with our
  client side; :mod:`.kadpool`: request streams kept open and reused;
* :mod:`.streamio`: bounded, EOF-aware reads and the swarm bookkeeping
  around streams;
* :mod:`.addresses` and :mod:`.announce`: the addresses other peers can
  dial, which of them each peer is told, what we accept from others;
* :mod:`.mdns` and :mod:`.mdns_records`: strangers on the same LAN (our own
  mDNS service on zeroconf, libp2p's record format);
* :mod:`.reachability`: AutoNAT with a dial-back on a fresh connection;
* :mod:`.relay`: circuit relay v2 (HOP for others, reservations, circuit dials);
* :mod:`.holepunch`: DCUtR (py-libp2p's, fixed) and the path a stream runs on;
* :mod:`.dnsaddr`: ``/dnsaddr`` bootstrap addresses resolved with dnspython
  (the swarm refuses them: "No supported transport"); no library internal;
* :mod:`.multistream`: pipelined and optimistic multistream-select (fewer
  round trips per connection and per stream); :mod:`.earlymuxer`: the muxer
  chosen inside the Noise handshake (the spec's ``stream_muxers``) where the peer lists one.
* :mod:`.gossip`: GossipSub for lobbies (tuned, and fixed where it lost messages);
  :mod:`.pubsub_guard`: a peer's message that makes pubsub raise is dropped;
* :mod:`.yamuxwindow`: Yamux window updates once per half window read.
* :mod:`.yamuxreset`: a stream's reader gets the bytes its peer sent before a reset,
  then the reset (the library's sized read dropped them).
* :mod:`.identifydefer`: identify on a proposal's connection, after the match exchange;
  :mod:`.protocolwatch`: tasks woken when identify tells a peer's protocols.
* :mod:`.securewrite`: a write on a Noise connection is never left half-done by a
  cancellation (the nonce would desync and the peer drop the connection).
* :mod:`.framebatch`: Yamux frames written together leave in one Noise message and
  one TCP segment (a burst of frames overflowed a new connection's congestion window).
* :mod:`.predial`: a dial takes the TCP connection the executable started before its
  imports (:mod:`strangers.preconnect`).
* :mod:`.lazydns`: the swarm's DNS resolver is made when first used, not when the
  swarm is built (dnspython's modules and ``/etc/resolv.conf``, ~40 ms of a launch).

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
  ``YamuxStream._auto_tune_and_send_window_update`` wrapped (class-wide, once: ``yamuxwindow.install``)
    why: its "partial slack" branch still sent a window update per read; now one per half window
    canary: ``test_lobby_yamuxwindow.py::test_the_library_still_has_the_branch_and_counters_we_rely_on``
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
  ``swarm.common_stream_handler`` wrapped (``guard_inbound_streams``)
    why: an exception while one inbound stream is negotiated or handled
    stopped the whole host (the connection's nursery has nothing around it)
    canary: ``test_canary_host.py::test_a_failing_inbound_stream_ends_alone``;
    attack: ``tests/hostile/test_negotiation.py``
  the swarm service's ``_manager._errors`` read in ``running_host``
    why: a failed host cancels the body with a bare ``Cancelled``; we raise
    ``HostFailed`` naming the library's error instead
    canary: ``test_canary_host.py::test_a_failure_inside_the_library_comes_out_as_host_failed``
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
  ``KadDHT`` built in client mode, our handler registered under ``protocol``
    why: 0.8.1 hard-wires ``/ipfs/kad/1.0.0`` (``common.PROTOCOL_ID``) and ignores ``protocol_prefix``
    canaries: ``test_canary_kad.py::test_the_library_still_hard_wires_the_public_protocol_id``,
    ``::test_strangers_dht_serves_its_own_protocol_only_in_server_mode``
  ``switch_mode`` replaced
    why: the library's registers the hard-wired id and empties the routing table going to client mode
    canary: ``test_canary_kad.py::test_the_library_switch_mode_empties_the_table_and_uses_the_hard_wired_id``
  ``add_peer`` overridden; ``peerstore.get_protocols``
    why: the library lists whoever opens a stream; only peers that advertise our protocol enter the table
    canaries: ``test_canary_kad.py::test_the_library_handler_admits_whoever_opens_a_stream_through_add_peer``,
    ``::test_the_peerstore_gives_the_protocols_identify_told``
  the inbound stream wrapped (``_MeteredStream``): per-peer and total request limits
    why: shed load before the server falls over (``discovery/budget.py``); and a
    ``StreamEOF`` from a read (the client's FIN arrived first) is a clean end: the library
    reset the stream, and a client whose FIN rode with its request lost the answer
    canary: ``test_canary_kad.py::test_the_server_loop_reads_each_request_before_answering_it``;
    test: ``tests/integration/test_kad_streams.py``, the test of a request sent with the close
  the server's request loop (kadpool reuses streams)
    why: several requests per stream, stored in and answered from our store
    canary: ``test_canary_kad.py::test_the_server_reads_requests_in_a_loop_and_uses_our_provider_store``

streamio.py and addresses.py (and kadpool.has_open_connection)
  ``swarm.get_connections`` / ``swarm.remove_conn`` and ``is_closed``
    why: a closed connection left on the swarm's books makes ``new_stream`` fail
    ("No valid connections available"); whether a request must dial sets its
    deadline and how many round trips its time stands for (WAN timing)
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

announce.py
  ``host._addrs_factory`` set to ``Announcements.factory``
    why: ``host.get_addrs()`` (identify push, signed peer records, relay and
    DCUtR code) gave ``/ip4/0.0.0.0/...``; now wildcards expanded, unroutable
    dropped, plus the addresses other services ``add``
    canary: ``test_canary_announce.py::test_get_addrs_runs_the_addrs_factory_we_install``
  ``host.get_addrs`` replaced by ``Announcements.host_addrs`` (reads
  ``host._observed_addr_manager.addrs()``)
    why: the library's strips the relay's ``/p2p/`` from a circuit address
    (``/ip4/R/tcp/P/p2p/<relay>/p2p-circuit`` became ``/ip4/R/tcp/P``)
    canary: ``test_canary_announce.py::test_the_library_get_addrs_still_cuts_relayed_addresses_short``
  the identify handler (``/ipfs/id/1.0.0``) replaced; the message built field by
  field as ``_mk_identify_protobuf`` does, with our ``listen_addrs`` and ``signedPeerRecord``
    why: each peer is told only the addresses in its scope (loopback /
    private / public, ``discovery/addrscope.py``); the library's builder also
    signed a fresh record per message
    canaries: ``test_canary_announce.py::test_the_library_identify_message_has_the_fields_we_build``,
    ``::test_identify_over_real_hosts_tells_no_wildcard_and_scopes_per_peer``
  ``host._push_identify_to_all_peers`` replaced by ``Announcements.push``
    why: the library pushes (unscoped) when a listener opens
    canaries: ``test_canary_announce.py::test_listen_still_pushes_identify_through_the_host_method_we_replace``,
    ``::test_an_added_address_reaches_connected_peers_by_identify_push``
  ``peerstore.add_addrs`` wrapped; ``swarm.unblock_peer`` (``_negative_peer_cache``)
    why: drop 0.0.0.0, multicast, port 0 learned from others; a peer in the
    negative cache ("recently failed all addresses") that gets a new address
    may be dialled again
    canaries: ``test_canary_announce.py::test_the_negative_cache_and_its_public_way_out``,
    ``::test_learned_addresses_are_filtered_and_a_new_one_unblocks_the_peer``
  ``swarm.unblock_peer`` before each proposal's dial (``streamio.allow_redial``)
    why: a walk's failed dial to old addresses refused the proposal to a peer whose record
    had just given the same, good ones (seen in CI behind a port forward)
    test: ``tests/integration/test_node_survives.py::test_a_failed_dial_before_the_proposal_does_not_refuse_it``
  ``swarm.dial_peer`` wrapped (``Announcements.dial_every_address``), ``swarm.dial_addr``
    why: the library dials one address per transport class (a peer's first TCP
    address only): a stranger behind a port forward that lists its LAN address
    first was never reached
    canaries: ``test_canary_announce.py::test_the_library_dials_only_the_first_tcp_address_of_a_peer``,
    ``::test_dial_every_address_reaches_a_peer_at_its_second_address``

mdns.py (zeroconf, not py-libp2p: ``build_host(mdns=False)`` always)
  ``ServiceInfo(properties=<raw TXT bytes>)``, ``DNSCache.get_all_by_details``
  with ``zeroconf.const._TYPE_TXT`` / ``_CLASS_IN``, ServiceBrowser handler keywords
    why: several ``dnsaddr=`` strings out, every TXT record of a name in
    (zeroconf's properties dict keeps one of repeated keys)
    canaries: ``test_canary_mdns.py::test_service_info_sends_our_txt_bytes_as_they_are``,
    ``::test_the_properties_dict_still_keeps_one_of_repeated_keys``,
    ``::test_the_cache_gives_every_txt_record_of_a_name``,
    ``::test_browser_handlers_are_still_called_with_the_keywords_we_take``,
    ``::test_local_discovery_never_reads_the_properties_dict``
  ``dht.routing_table.add_peer(peer, skip_server_mode_check=True)``
    why: list a local peer without dialling it
    canary: ``test_canary_kad.py::test_routing_table_methods_we_call``

py-libp2p's own mDNS service (``enable_mDNS``) is no longer used: it
announced ``0.0.0.0`` under ``dnsaddr2=``-style keys and registered its
record synchronously inside ``host.run()`` (about 2 s of blocked trio loop).

reachability.py
  ``FreshDialAutoNAT._try_dial`` overrides ``AutoNATService._try_dial``
    why: the library dials back with ``host.connect``, which reuses the
    connection the request came on: everybody is judged reachable
    canaries: ``test_canary_reachability.py::test_library_autonat_judges_a_dead_address_reachable``,
    ``::test_our_autonat_dials_back_on_a_fresh_connection``
  ``swarm.transport_manager`` / ``swarm.upgrader.upgrade_security`` (``fresh_dial``)
    why: a Noise handshake on a new TCP connection proves the peer without the swarm's books
    canary: ``test_canary_reachability.py::test_fresh_dial_proves_the_peer_and_leaves_the_swarm_alone``
  the refusal text of ``_handle_dial`` ("observed IP")
    why: a server that sees another IP than ours means a NAT: "not reachable"
    canary: ``test_canary_reachability.py::test_a_server_that_sees_another_ip_counts_as_not_reachable``
  ``host._observed_addr_manager.record_observation`` wrapped (``watch_observations``)
    why: the library's manager announces an observation only once 4 peers agree on
    IP and port; over TCP without port reuse the port never agrees: we take the IPs
    and let AutoNAT check them with our listen ports
    canary: ``test_canary_reachability.py::test_identify_still_hands_the_observed_address_to_the_manager_we_wrap``

relay.py
  ``swarm.dial_peer`` wrapped (``install_circuit_dialing``)
    why: the swarm drops ``/p2p-circuit`` addresses before dialling, transport or not
    canaries: ``test_canary_relay.py::test_the_swarm_still_drops_circuit_addresses_before_dialling``,
    ``::test_a_node_reserves_on_a_relay_and_is_dialled_through_it``
  ``CircuitV2Transport`` with the STOP role only; our own RESERVE
    why: in the CLIENT role it reserves before every dial, and drops the relay's addresses
    canary: ``test_canary_relay.py::test_the_circuit_transport_reserves_before_dialling_in_the_client_role``
  reservations renewed at half life by ``keep_reservations``
    why: the library's refresher renews 30 s before expiry, only while its loop runs
    canary: ``test_canary_relay.py::test_the_library_renews_reservations_only_just_before_expiry``
  ``CircuitV2Protocol.allow_hop`` / ``_handle_hop_stream`` (``enable_hop``), ``RelayLimits``,
  ``identify_push.push_identify_to_peers``
    why: a chat node starts relaying once AutoNAT says it is reachable, and tells its peers
    canary: ``test_canary_relay.py::test_the_hop_handler_and_limits_we_use``
  the ``limit`` of the relay's reservation answer (our own RESERVE reads it)
    why: a relay whose circuits are too short or small for a chat (go-libp2p's
    default: 2 min, 128 KiB) is not reserved on
    canary: ``test_canary_relay.py::test_a_relay_whose_limits_would_cut_a_chat_is_not_reserved_on``

holepunch.py
  ``StrangersDCUtR(DCUtRProtocol)`` with ``_auto_drive_loop`` replaced
    why: both sides punch towards every relayed peer every 2 s; we punch once, when a chat asks
    canary: ``test_canary_holepunch.py::test_dcutr_still_auto_drives_from_run_and_we_replace_that_loop``
  ``HolePunch.upgrade`` punches up to 3 times per relayed chat
    why: a simultaneous open that missed often lines up on a fresh CONNECT/SYNC
    canary: ``test_canary_holepunch.py::test_dcutr_still_allows_as_many_punches_per_peer_as_we_try``
  ``StrangersDCUtR`` runs on ``ListenAddressesView(host)``
    why: DCUtR's NAT port prediction and dial source read ``host.get_addrs()``,
    which our address book makes public and relayed only (an empty CONNECT)
    canary: ``test_canary_holepunch.py::test_dcutr_still_reads_its_listen_port_from_get_addrs_which_our_view_restores``
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
  the relayed connection closed once idle after a punch (``close_relayed_when_idle``)
    why: the library closes it 60 s later (``RELAY_CLOSE_GRACE_PERIOD``): an idle
    circuit on the relay for a minute
    canary: ``test_canary_holepunch.py::test_relayed_then_direct_over_real_hosts``

dnsaddr.py and ../frontdoor.py
  ``/dnsaddr`` bootstrap addresses resolved by us (dnspython), not by the swarm
    why: the swarm refuses them ("No supported transport")
    canary: ``test_canary_frontdoor.py::test_the_swarm_still_refuses_dnsaddr_addresses``
  ``peerstore.get_protocols(peer)`` after identify
    why: tells a strangers node (a ``/strangers/`` protocol) from a plain libp2p node
    canary: ``test_canary_frontdoor.py::test_identify_still_lists_a_connected_peers_protocols``
multistream.py
  ``selector.select`` of ``upgrader.security_multistream`` / ``muxer_multistream`` replaced
  (initiator: the proposal goes out with the first data, the echo is checked by the first read)
    why: 4 of the ~9 round trips of a fresh connection are multistream-select waits
    canaries: ``test_canary_multistream.py::test_the_upgrader_negotiates_through_the_selectors_we_replace``,
    ``::test_build_host_installs_the_optimistic_negotiation``
  ``host.new_stream`` (one protocol: optimistic) and ``host.multiselect_client`` (pipelined) replaced
    why: 2 of the 3 round trips of a new stream
    canary: ``test_canary_multistream.py::test_host_new_stream_still_negotiates_on_a_stream_from_the_swarm``
  ``read`` set per instance on raw connections, secure sessions and streams until the echo is read
    why: the check of an optimistic proposal waits for the first read
    canary: ``test_canary_multistream.py::test_reads_can_be_overridden_per_instance``
  the listener side (``Multiselect.negotiate``) left as it is
    why: it must read exactly the header and the protocol, and leave our data behind them
    canary: ``test_canary_multistream.py::test_the_listener_reads_the_header_then_the_protocol_and_nothing_more``
  ``MultiselectCommunicator.read`` wrapped (class-wide, once: ``install_tolerant_reads``)
    why: its bare ``bytes.decode()`` raised ``UnicodeDecodeError``, which no caller
    catches (on a listener it stopped the host); now a ``MultiselectCommunicatorError``
    canary: ``test_canary_multistream.py::test_the_library_still_decodes_protocol_ids_strictly``
  peerstore protocols read before a stream goes optimistic (``may_send_early``)
    why: a peer that refuses reads our data as its next protocol id
    tests: ``test_round_trips.py::test_data_goes_early_only_to_a_peer_known_to_speak_the_protocol``,
    ``test_round_trips.py::test_when_data_may_ride_with_the_proposal``
earlymuxer.py
  the Noise transport's ``get_pattern`` replaced (per host): ``EarlyMuxerXX``, a ``PatternXX``
  whose payloads list Yamux and whose sessions keep the peer's choice (``early_muxer``)
    why: py-libp2p 0.8.1 reads and writes ``stream_muxers`` but acts on none of it; js-libp2p
    and go-libp2p list their muxers and skip multistream-select when both sides do
    canaries: ``test_canary_earlymuxer.py::test_two_strangers_hosts_choose_yamux_inside_the_handshake``,
    ``::test_a_peer_that_lists_no_muxer_gets_multistream_select``,
    ``::test_the_first_muxer_of_the_peers_list_we_speak_is_chosen``
  ``patterns.verify_handshake_payload_sig`` wrapped (module-wide, once): the peer's payload
  goes to a context variable of the handshake's task
    why: the handshake keeps the peer's payload to itself; it passes it only there
    canary: ``test_canary_earlymuxer.py::test_the_library_verifies_the_peers_payload_in_both_handshakes``
  the muxer selector's ``select`` wrapped (per host): the early muxer, both roles
    canary: ``test_canary_earlymuxer.py::test_an_agreed_muxer_skips_the_negotiation_and_none_keeps_it``;
    against js-libp2p, both ways: ``test_foreign_round_trips.py::test_a_js_dialer_reaches_our_handlers``,
    ``test_foreign_round_trips.py::test_a_js_listener_and_we_choose_the_muxer_inside_noise``
identifydefer.py
  ``BasicHost._schedule_identify`` wrapped per host (``identifydefer.install``), deferred runs
  registered in ``host._identify_tasks``
    why: identify ran from both ends the moment a proposal's connection was up, inside the
    match exchange (~5-15 ms of CPU per end); a chat node now runs it 0.5 s later on such
    connections (``MatchService.identify_delay``)
    canaries: ``test_canary_identify.py::test_the_library_still_schedules_identify_through_the_method_we_wrap``,
    ``::test_a_named_peer_is_identified_only_after_its_delay``,
    ``::test_a_short_delay_still_identifies_the_peer``, ``::test_no_delay_identifies_at_once_as_before``
protocolwatch.py
  the host's peerstore ``add_protocols`` and ``set_protocols`` wrapped (that instance only)
    why: no event says identify (or a push) told a peer's protocols; mDNS admission and
    AutoNAT's first question polled once a second (three such seconds on a LAN with no bootstrap)
    canaries: ``test_canary_protocolwatch.py::test_identify_wakes_a_subscriber_with_the_peer``,
    ``::test_an_identify_push_wakes_a_subscriber``
securewrite.py
  ``SecureSession.write`` replaced (class-wide, once) by a write shielded from cancellation
    why: a task cancelled between Noise's encryption and the socket send burns a nonce; the
    peer's next decryption fails and it closes the connection (a chat lost right after a match)
    canaries: ``test_canary_securewrite.py::test_py_libp2p_loses_the_connection_to_such_a_write``,
    ``::test_a_write_cancelled_after_encrypting_leaves_the_connection_working``,
    ``::test_the_fix_is_installed_by_every_host``
yamuxreset.py
  ``Yamux.read_stream`` wrapped (class-wide, once): buffered bytes first, then the library's read
    why: a sized read raised the reset and dropped the data the peer sent before it whenever
    both were in before the reader ran (one TCP read): a chat's last handshake message
    canaries: ``test_canary_yamuxreset.py::test_the_librarys_sized_read_drops_what_came_before_a_reset``,
    ``::test_with_the_fix_the_data_comes_first_then_the_reset``,
    ``::test_the_fix_is_installed_by_every_host``
framebatch.py
  ``Yamux._write_frame`` replaced (class-wide, once) by a write-behind outbox; its flusher
  runs in the connection's ``Yamux._nursery``; a GO_AWAY (``Yamux.close``) waits for it;
  trio's private run queue (``GLOBAL_RUN_CONTEXT.runner.runq``) read for its length
    why: every frame was its own Noise message and TCP segment, sent under a lock; a seed
    answering a newcomer's first flight sent 13 small segments, and the Kademlia answer
    after them waited a round trip for ACKs (Linux's initial window: 10 segments)
    canaries: ``test_canary_framebatch.py::test_the_library_sends_every_frame_alone``,
    ``::test_trios_run_queue_is_what_its_statistics_count``,
    ``::test_batched_the_burst_leaves_in_fewer_writes_than_frames``,
    ``::test_yamux_writes_through_write_frame_in_a_nursery_and_closes_with_a_go_away``,
    ``::test_a_close_sends_what_was_written_before_it_then_closes``; the round trip it saves:
    ``tests/netsim/test_bursttrips.py`` (real TCP, packet-level delay)
predial.py
  ``TCP._dial_resolved`` wrapped (class-wide, once): a plain dial (no source port) to an
  address ``strangers.preconnect`` started a connection to takes that socket; where the
  first flight went out on it, an ``EarlyRawConnection`` that drops the bytes the dial writes
  again. ``PatternXX.handshake_outbound`` wrapped (class-wide, once): on such a connection
  the handshake state's ephemeral key is the one that flight carried
    why: a launch's first dial paid its TCP handshake and Noise's first exchange after
    ~0.6-0.8 s of imports; the kernel and a sender thread do both meanwhile (two round trips
    of every launch)
    canaries: ``test_canary_predial.py::test_a_dial_takes_the_connection_started_before_and_carries_streams``,
    ``::test_a_connection_that_failed_fails_the_dial_at_once``,
    ``::test_the_library_opens_a_plain_dial_in_dial_resolved``,
    ``::test_a_dial_goes_on_from_the_first_flight_sent_before_and_sends_it_once``,
    ``::test_other_bytes_than_the_flight_fail_the_dial``,
    ``::test_the_library_writes_noises_first_message_with_the_handshakes_ephemeral_key``;
    the round trip it saves, counted through the delaying proxy: ``test_round_trips.py::``
    ``test_a_first_flight_sent_during_the_imports_leaves_one_round_trip_to_the_first_answer``
lazydns.py
  ``multiaddr.resolvers.dns.DNSResolver``: ``__init__`` left empty, ``_resolver`` made
  (the same call) on first read
    why: the swarm makes one when it is built, which made dnspython's resolver at once:
    ~40 ms of every launch before ``ready`` for a resolver a strangers host never asks
    (peers are dialled by IP; /dnsaddr names go through dnsaddr.py)
    canaries: ``test_canary_lazydns.py::test_the_library_makes_its_resolver_when_the_swarm_is_built``,
    ``::test_a_host_starts_without_a_resolver_and_makes_it_on_first_use``

gossip.py
  ``GossipSub(spam_protection_enabled=False, adaptive_gossip_enabled=False, prune_back_off=5,
  degree=3, ...)``, ``Pubsub(strict_signing=True, seen_ttl=, max_inbound_rpc_size=)``, ``ScoreParams``
    why: the library's per-forwarder limit (10 msg/s, our own publishes included) runs after
    the seen-check; adaptive gossip slowed the heartbeat to 60 s; our limits are per sender
    canaries: ``test_canary_gossip.py::test_the_constructors_take_the_settings_we_pass``,
    ``::test_the_library_rate_limit_still_counts_per_forwarder_and_after_the_seen_check``
  ``LobbyGossipSub._emit_idontwant_for_message`` overridden (IDONTWANT only above 1 KiB)
    why: one IDONTWANT per message per mesh peer filled the 32-RPC send queues
    canary: ``test_canary_gossip.py::test_idontwant_is_still_emitted_from_publish_before_its_other_awaits``
  ``LobbyGossipSub._get_peers_to_send`` extended (flood publishing of our own messages)
    why: 0.8.1 has no ``flood_publish``: a message said before the mesh formed reached nobody
    canary: ``test_canary_gossip.py::test_publish_still_picks_its_peers_through_get_peers_to_send``
  a synchronous topic validator (``LobbyRules``)
    why: no await between the seen-check and marking seen: each message delivered once
    canary: ``test_canary_gossip.py::test_validators_run_between_the_seen_check_and_marking_seen``
  ``maybe_consume_signed_record`` and ``env_to_send_in_RPC`` replaced in ``libp2p.pubsub.pubsub``
  and ``libp2p.pubsub.gossipsub`` (``install_record_cache``)
    why: a record verified on every RPC and rebuilt for every RPC sent; and a valid record
    older than the peerstore's (our identify signs newer ones) made the library drop every
    pubsub RPC of that peer, subscriptions included: no mesh ever formed
    canaries: ``test_canary_gossip.py::test_the_pubsub_modules_call_the_record_helpers_by_their_module_names``,
    ``::test_the_peerstore_still_refuses_an_older_record_and_we_take_the_rpc_anyway``
  pubsub's stream handlers replaced by ``guarded_stream_handler``
    why: a message arriving as the pubsub service stops raised "Nursery is closed" into the
    swarm and tore the host down
    canary: ``test_canary_gossip.py::test_the_library_stream_handler_schedules_on_its_service_and_can_raise``
  ``Pubsub.ensure_peer_stream``, blacklist methods, ``Pubsub.counter`` (message ids of our sends)
    why: members connected before we joined; dropping a flooder; the id of what we publish
    canary: ``test_canary_gossip.py::test_the_public_methods_the_lobby_uses_are_there``
  ``LobbyPubsub.write_msg`` and ``.handle_sending_messages`` overridden (``RpcQueue._queue.pop``)
    why: the library sends its own ``senderRecord`` (~160 bytes, a third of a lobby copy) on
    every RPC and wrote each queued RPC alone (a Yamux and a Noise frame each); now no record,
    no message back to a peer that sent it to us, and a peer's waiting RPCs in one write
    canaries: ``test_lobby_gossip.py::test_the_library_takes_an_rpc_without_a_signed_peer_record``,
    ``test_lobby_gossip.py::test_the_outbound_queue_still_has_the_pop_that_does_not_wait``,
    ``test_lobby_gossip.py::test_the_read_loop_is_entered_through_continuously_read_stream_and_writes_through_write_msg``
  ``LobbyGossipSub.gossip_heartbeat`` extended (IHAVE to topic peers in prune back-off too)
    why: the library left them out of gossip (go-libp2p does not): a member pruned by every
    mesh around it lost what its own small mesh did not carry (440 of 600 with D_high = 4)
    canaries: ``test_lobby_gossip.py::test_the_library_still_leaves_peers_in_back_off_out_of_its_gossip``
  ``LobbyPubsub.push_msg``: our messages without ``key`` (the library sets it on every signed message)
    why: 36 bytes per copy that an Ed25519 peer id already carries (go-libp2p leaves it out)
    canary: ``test_lobby_gossip.py::test_our_messages_go_out_without_the_key_our_peer_id_carries``

strangers/lean_imports.py (the executable only, before py-libp2p is imported)
  ``libp2p.transport.quic``, ``libp2p.transport.websocket``, ``libp2p.security.tls`` and
  ``libp2p.discovery.mdns`` and ``libp2p.discovery.bootstrap`` answered by stand-in
  modules; ``aioquic`` and ``cffi`` look absent (dnspython's ``doq`` forced off when
  ``dns._features`` runs; pycryptodome binds its C code with ctypes); the modules of
  ``DEFERRED`` (dnspython's resolver, ``cryptography.x509``, pycryptodome's RSA helpers)
  created empty and run on first use of a name in them
    why: every py-libp2p import loads QUIC, WebSocket, TLS and AutoTLS's ACME client
    (aioquic, pyOpenSSL, requests, httpx, wsproto) and its own mDNS (zeroconf, asyncio):
    ~15-20 % of a launch's import CPU for code a TCP + Noise + Yamux host never runs;
    pycryptodome's cffi binding parsed C declarations at import (pycparser, ~80 ms)
    canaries: ``test_canary_lean_imports.py::test_a_lean_host_carries_a_stream_without_the_left_out``,
    ``::test_rsa_keys_of_public_peers_still_work_without_cffi``,
    ``::test_a_stand_in_refuses_use_and_matches_nothing``, ``::test_the_executable_starts_lean``,
    ``::test_the_full_library_is_one_variable_away``, ``::test_install_refuses_once_py_libp2p_is_imported``,
    ``::test_the_deferred_modules_stay_unloaded_until_used``, ``::test_a_deferred_module_runs_on_first_use``

Not used (and so not patched): ``swarm._negative_peer_cache`` (a peer whose
every address failed is refused for a while, see ``../shared/notes``).
"""
