"""Kademlia under our own protocol id: py-libp2p's server side, our own client side.

Interest records live on ``/strangers/kad/1.0.0`` (:data:`KAD_PROTOCOL`), a
DHT of strangers nodes only, not on the public IPFS DHT (``docs/protocol.md``
§4). The protocol id is a constructor argument, so the same class also talks
to the public ``/ipfs/kad/1.0.0`` network as a client. py-libp2p 0.8.1
hard-wires ``/ipfs/kad/1.0.0`` wherever it registers or dials; this class
registers and dials under its own ``protocol`` instead, and never lets the
library register anything (it is built in client mode, then set up here).

Server or client, as the spec says: a reachable node serves the protocol
(and so lists it in identify); an unreachable one is a client: no handler,
nothing advertised, not in anyone's routing table (:meth:`switch_mode`
follows the AutoNAT verdict and pushes identify). Only peers that list the
protocol in identify, or answered one of our requests under it, enter our
routing table; a peer that merely opens a stream to us does not.

A server keeps provider records for :data:`PRESENCE_TTL` (not the 48 h of
the public DHT), in a store bounded per key and in all, and sheds load per
peer (:class:`~strangers.discovery.budget.ServerLimits`).

py-libp2p 0.8.1's ``KadDHT`` answers requests well (routing table, provider
store, the standard wire format), so we keep it as the *server*. Its client
side is replaced here, because (see ``docs/performance.md`` and
``tests/integration/test_kad_network.py``):

* ``refresh_routing_table`` floods the network (~1,900 FIND_NODE per node on
  10 nodes) at start and every 10 minutes -> :meth:`StrangersDHT.run` does a
  self-lookup and a couple of random lookups instead (:meth:`bootstrap`);
* ``find_providers`` answers from the local provider store whenever it has
  any record, stores what it finds there, and returns duplicates ->
  :meth:`find_providers` always walks the network with GET_PROVIDERS and
  merges answers by peer id;
* ``provide`` sends ADD_PROVIDER fire-and-forget -> :meth:`provide` waits for
  each closest peer to take the record (the echo that py-libp2p servers send,
  or a clean close as go servers do) and reports how many did.

Lookups use the pure :class:`~strangers.discovery.lookup.ClosestPeersQuery`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import trio
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT, _encode_key
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.kad_dht.provider_store import ProviderRecord, ProviderStore
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery import addrscope
from strangers.discovery.budget import ServerLimits
from strangers.discovery.lookup import ALPHA, K_VALUE, ClosestPeersQuery, kad_distance
from strangers.discovery.rtt import (
    CONNECT_ROUND_TRIPS,
    RPC_CONNECTED,
    RPC_DIAL,
    RttEstimator,
    bootstrap_dial_timeout,
)
from strangers.errors import RemoteProtocolError

from . import predial
from .addresses import announcements, dialable_addrs
from .kadpool import StreamPool, has_open_connection
from .streamio import (
    StreamEnded,
    StreamFailed,
    forget_closed_connections,
    read_exactly,
    reset_quietly,
    uvarint,
)

logger = logging.getLogger(__name__)

KAD_PROTOCOL = TProtocol("/strangers/kad/1.0.0")
"""The strangers DHT: strangers servers only."""
PUBLIC_KAD_PROTOCOL = TProtocol("/ipfs/kad/1.0.0")
"""The public libp2p (Amino) DHT, for a client-mode instance (the front door)."""
MAX_KAD_MESSAGE = 4 * 1024 * 1024
"""Largest Kademlia message we read: 4 MiB, the limit of go-libp2p-kad-dht
(``network.MessageSizeMax``) and py-libp2p (``MAX_DHT_MESSAGE_SIZE``). A
popular key's answer from kubo (20 providers with many addresses and signed
records) passes 256 KiB."""
MAX_ADDRS_PER_PEER = 8
"""Addresses kept per peer from an answer (after dropping what we cannot dial)."""
MAX_CLOSER_PEERS = 2 * K_VALUE
"""Closer peers kept from one answer: the closest to the key among all it named."""
MAX_PROVIDERS_PER_REPLY = 100
"""Providers kept from one answer."""
MAX_SCANNED_PEERS = 1000
"""Entries read from one answer's peer list (an honest one names 20)."""
MAX_SCANNED_ADDRS = 64
"""Addresses read per entry, looking for ones we can dial."""
PRESENCE_TTL = 600.0
"""Seconds a server keeps a provider record. A searcher re-announces each
epoch (``topics.EPOCH_SECONDS``, 300 s) within ``READVERTISE_SPREAD`` (120 s),
and searches read the previous epoch's keys for ``PREVIOUS_EPOCH_WINDOW``
(180 s) into the next: a record is useful for at most 300 + 180 = 480 s; 600 s
leaves two minutes for clocks that are behind. A node that left is gone from
every store 10 minutes later (the public DHT: 48 h)."""
DEAD_RECHECK = 0.5
"""Seconds after a failed request before looking again whether its peer's
connection is gone (then it leaves the routing table)."""
TIMEOUT_STRIKES = 3
"""Timeouts in a row after which a peer whose connection is still open leaves
the routing table. A peer that is gone fails at once (its connection closes);
one that only answers late is busy, not dead: evicting it at its first timeout
turned an overloaded network into an empty one (30 nodes in one process,
``tests/integration/test_shards.py``: every timeout hit a live peer, tables
shrank to a third, announcements stored nothing). Each timeout in a row also
doubles the peer's next deadline (RFC 6298 §5.5), up to the ceiling."""
MAX_STRUCK_PEERS = 1024
"""Peers whose timeouts in a row are remembered (the oldest forgotten first)."""
MAX_RECORDS_TOTAL = 50_000
"""Provider records a server keeps in all (the oldest go first): ~15 MB."""
LEARNED_ADDR_TTL = 600
MAINTENANCE_INTERVAL = 60.0
REFRESH_INTERVAL = 600.0
BOOTSTRAP_ATTEMPTS = 5
INBOUND_STREAMS = 256
"""Inbound Kademlia streams served at once (py-libp2p: 12). Clients keep
streams open between requests (``kadpool``), so most of these are idle."""
SERVER_STREAM_SECONDS = 120.0
"""An inbound stream is ended after this long, so that idle clients cannot hold
the slots above for ever (a client reuses a stream for at most 30 s)."""
IDENTIFY_WAIT = 5.0
"""How long the server waits for a new client's addresses (identify) to list it."""
MAX_RECORDS_PER_KEY = 200
"""Provider records kept per key (the newest); py-libp2p keeps the first 20."""
_ADDRESS_PROTOCOLS = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})
_UNSUPPORTED = frozenset({"ws", "wss", "tls", "quic", "quic-v1", "webtransport", "webrtc",
                          "webrtc-direct", "certhash", "udp", "sni", "http", "https", "unix"})


def can_dial(addr: Multiaddr) -> bool:
    """Whether our host could dial ``addr``: TCP (possibly behind a relay) to a routable address.

    ``Multiaddr(bytes)`` parses lazily: bytes from a peer that are not a
    multiaddr fail only here, and are simply not dialable (found by fuzzing).
    """
    try:
        text = str(addr)
    except Exception:
        return False
    if not addrscope.is_dialable(text):
        return False
    parts = text.split("/")[1:]
    return (parts[0] in _ADDRESS_PROTOCOLS and "tcp" in parts
            and not _UNSUPPORTED.intersection(parts))


@dataclass
class KadStatistics:
    """What this node's DHT client has cost so far."""

    lookups: int = 0
    rpcs: dict[str, int] = field(default_factory=dict)
    rpc_failures: int = 0

    def count(self, kind: str) -> None:
        self.rpcs[kind] = self.rpcs.get(kind, 0) + 1

    @property
    def messages(self) -> int:
        return sum(self.rpcs.values())


@dataclass(frozen=True)
class LookupResult:
    """Outcome of one iterative walk."""

    closest: list[ID]
    providers: dict[ID, PeerInfo]
    queried: int


class NewestProviderStore(ProviderStore):
    """Provider records that favour the newest announcers, kept for minutes.

    py-libp2p keeps the *first* 20 providers of a key for 48 h and silently
    drops every later one (while still echoing ADD_PROVIDER as if stored). For
    strangers the newest announcers are the ones still looking, so this store
    keeps up to :data:`MAX_RECORDS_PER_KEY` records per key and
    :data:`MAX_RECORDS_TOTAL` in all, evicting the oldest, drops a record
    ``ttl`` seconds (:data:`PRESENCE_TTL`) after it was stored, and answers
    GET_PROVIDERS with the newest :data:`K_VALUE`.
    """

    def __init__(self, *args, ttl: float = PRESENCE_TTL, max_total: int = MAX_RECORDS_TOTAL,
                 clock=time.time, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ttl = ttl
        self.max_total = max_total
        self._clock = clock
        self._order: OrderedDict[tuple[bytes, str], None] = OrderedDict()
        """Every record, oldest first (for the total bound)."""

    def add_provider(self, key: bytes, provider: PeerInfo) -> None:
        if not provider or not provider.peer_id:
            return
        records = self.providers.setdefault(key, {})
        peer = str(provider.peer_id)
        if records.pop(peer, None) is not None:  # re-inserted below as the newest
            self._order.pop((key, peer), None)
        while len(records) >= MAX_RECORDS_PER_KEY:
            oldest = min(records, key=lambda p: records[p].timestamp)
            self._drop(key, oldest)
        while len(self._order) >= self.max_total:
            old_key, old_peer = next(iter(self._order))
            self._drop(old_key, old_peer)
        records = self.providers.setdefault(key, {})
        records[peer] = ProviderRecord(provider_info=provider, timestamp=self._clock())
        self._order[(key, peer)] = None

    def _drop(self, key: bytes, peer: str) -> None:
        self._order.pop((key, peer), None)
        records = self.providers.get(key)
        if records is None:
            return
        records.pop(peer, None)
        if not records:
            del self.providers[key]

    def get_providers(self, key: bytes) -> list[PeerInfo]:
        now = self._clock()
        records = self.providers.get(key, {})
        for peer in [p for p, record in records.items() if now - record.timestamp >= self.ttl]:
            self._drop(key, peer)
        live = sorted(self.providers.get(key, {}).values(), key=lambda record: -record.timestamp)
        return [record.provider_info for record in live[:K_VALUE]]

    def cleanup_expired(self) -> None:
        now = self._clock()
        expired = [(key, peer) for key, records in self.providers.items()
                   for peer, record in records.items() if now - record.timestamp >= self.ttl]
        for key, peer in expired:
            self._drop(key, peer)

    def size(self) -> int:
        return len(self._order)


def dht_mode(config) -> DHTMode:
    """The mode a node starts in: a serve node (meant to run on a public
    address) serves, whatever AutoNAT says (a wrong "unreachable" verdict
    would take a DHT server away from everyone who bootstraps through it);
    a chat node is a client until AutoNAT calls it reachable
    (``node/nat.py``); ``--behind-nat`` and ``--hide-ip`` stay clients."""
    if not config.chat and not config.behind_nat:
        return DHTMode.SERVER
    return DHTMode.CLIENT


class StrangersDHT(KadDHT):
    """py-libp2p's KadDHT server with an efficient, fresh client side."""

    def __init__(
        self,
        host,  # libp2p IHost
        mode: DHTMode = DHTMode.SERVER,
        *,
        protocol: str = KAD_PROTOCOL,
        rpc_timeout: float = 2.0,
        parallelism: int = ALPHA,
        rtt: RttEstimator | None = None,
    ) -> None:
        """``protocol``: the Kademlia protocol id served (in server ``mode``) and
        dialled; ``rpc_timeout`` is the floor of a request's timeout; ``rtt``
        (shared with the match service) raises it from measured round trips."""
        # Built as a client: the library would register its handler under the
        # hard-wired /ipfs/kad/1.0.0; ours goes under ``protocol`` below.
        super().__init__(host, DHTMode.CLIENT, enable_random_walk=False)
        self.protocol = TProtocol(protocol)
        self.mode = mode
        if mode == DHTMode.SERVER:
            host.set_stream_handler(self.protocol, self.handle_stream)
        self.provider_store = NewestProviderStore(host=host, peer_routing=self.peer_routing)
        # py-libp2p resets inbound DHT streams beyond 12 at once; a bootstrap
        # node that a crowd joins through needs more room than that.
        self._inbound_limiter = trio.CapacityLimiter(INBOUND_STREAMS)
        self.limits = ServerLimits(trio.current_time() if _in_trio() else 0.0)
        """Per-peer and total request rates and stream counts of our server side."""
        self.rpc_timeout = rpc_timeout
        self.rtt = rtt if rtt is not None else RttEstimator()
        self._rpc_connected = replace(RPC_CONNECTED, floor=rpc_timeout,
                                      ceiling=max(rpc_timeout, RPC_CONNECTED.ceiling))
        self._rpc_dial = replace(RPC_DIAL, floor=rpc_timeout, ceiling=max(rpc_timeout, RPC_DIAL.ceiling))
        self.parallelism = parallelism
        self.stats = KadStatistics()
        self.streams = StreamPool(host, self.protocol, spawn=self._spawn, rtt=self.rtt)
        self._listing: set[ID] = set()
        self._strikes: OrderedDict[ID, int] = OrderedDict()
        """Timeouts in a row per peer on a live connection (:data:`TIMEOUT_STRIKES`)."""

    # -- server or client ------------------------------------------------------

    @property
    def serving(self) -> bool:
        """Whether we serve the protocol (server mode)."""
        return self.mode == DHTMode.SERVER

    async def switch_mode(self, new_mode: DHTMode) -> DHTMode:
        """Serve the protocol (SERVER) or not (CLIENT), and tell connected peers.

        Replaces ``KadDHT.switch_mode``, which registers the hard-wired
        protocol id and, going to client mode, empties the routing table (a
        client walks through its table as much as a server does).
        """
        if not isinstance(new_mode, DHTMode):
            raise TypeError(f"new_mode must be a DHTMode, got {new_mode!r}")
        if new_mode == self.mode:
            return self.mode
        self.mode = new_mode
        if new_mode == DHTMode.SERVER:
            self.host.set_stream_handler(self.protocol, self.handle_stream)
        else:
            self.host.remove_stream_handler(self.protocol)
        logger.info("Kademlia %s: now a %s", self.protocol, new_mode.value)
        try:  # identify push: peers add us to (or drop us from) their tables
            await announcements(self.host).push()
        except Exception as exc:  # a push that fails leaves the next identify to tell
            logger.info("identify push after the mode switch failed: %r", exc)
        return self.mode

    async def follow_reachability(self, reachable: bool) -> None:
        """The AutoNAT verdict (or an option) is in: serve if reachable, else be a client."""
        await self.switch_mode(DHTMode.SERVER if reachable else DHTMode.CLIENT)

    def advertises(self, peer: ID) -> bool | None:
        """Whether ``peer`` lists our protocol in identify (None: identify has not told yet)."""
        try:
            protocols = self.host.get_peerstore().get_protocols(peer)
        except Exception:  # py-libp2p raises for a peer it knows nothing of
            return None
        if not protocols:
            return None
        return str(self.protocol) in protocols

    async def add_peer(self, peer_id: ID, *, skip_server_mode_check: bool = False) -> bool:
        """Routing-table admission (replaces ``KadDHT.add_peer``, which the library's
        stream handler calls for whoever opens a stream): servers of our protocol only."""
        if self.advertises(peer_id) is not True:
            return False
        return await self.routing_table.add_peer(peer_id, skip_server_mode_check=True)

    def _spawn(self, async_fn, *args) -> None:
        self.manager.run_task(async_fn, *args)

    # -- server ----------------------------------------------------------------

    async def handle_stream(self, stream) -> None:  # wraps KadDHT.handle_stream
        """Serve one inbound stream, for at most :data:`SERVER_STREAM_SECONDS`.

        Load is shed before it hurts (:class:`~strangers.discovery.budget.ServerLimits`):
        a peer over its stream count, or a request over its peer's or the
        server's rate, gets the stream reset. A client we serve is listed in
        our routing table only once identify says it serves the protocol too
        (at most :data:`IDENTIFY_WAIT` later), without making its requests wait.
        """
        peer = stream.muxed_conn.peer_id
        if not self.serving or not self.limits.open_stream(peer):
            await reset_quietly(stream)
            return
        try:
            if peer not in self._listing and not self.routing_table.peer_in_table(peer):
                self._listing.add(peer)
                self._spawn(self._list_when_identified, peer)
            with trio.move_on_after(SERVER_STREAM_SECONDS):
                await super().handle_stream(_MeteredStream(stream, peer, self.limits))  # type: ignore[arg-type]
                return
            await reset_quietly(stream)
        finally:
            self.limits.close_stream(peer)

    async def _list_when_identified(self, peer: ID) -> None:
        try:
            with trio.move_on_after(IDENTIFY_WAIT):
                while self.advertises(peer) is None:
                    await trio.sleep(0.01)
                await self.add_peer(peer)
        finally:
            self._listing.discard(peer)

    # -- service ---------------------------------------------------------------

    async def run(self) -> None:  # replaces KadDHT.run and its refresh storm
        """Maintenance: expire records now and then, refresh the table rarely."""
        next_refresh = trio.current_time() + REFRESH_INTERVAL
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL)
            self.streams.sweep()
            self.drop_former_servers()
            self.provider_store.cleanup_expired()
            self.value_store.cleanup_expired()
            if trio.current_time() >= next_refresh:
                next_refresh = trio.current_time() + REFRESH_INTERVAL
                await self.refresh()

    def drop_former_servers(self) -> list[ID]:
        """Take out of the routing table every peer whose identify no longer lists our
        protocol (it went behind a NAT and became a client, and told us with an identify
        push); returns them. Peers identify has not told us about stay."""
        gone = [peer for peer in self.routing_table.get_peer_ids() if self.advertises(peer) is False]
        for peer in gone:
            self.routing_table.remove_peer(peer)
        return gone

    async def refresh(self, *, random_lookup: bool = True) -> int:
        """A self-lookup and one random lookup: keeps our buckets populated.

        Returns how many peers answered the self-lookup.
        """
        answered = len((await self.lookup(self.local_peer_id.to_bytes())).closest)
        if random_lookup:
            await self.lookup(os.urandom(32))
        return answered

    async def bootstrap(self, seeds: list[PeerInfo], *, timeout: float = 5.0) -> int:
        """Connect to ``seeds`` and fill the routing table; returns seeds reached."""
        reached = await self.connect_seeds(seeds, timeout=timeout)
        await self.fill_table(reached)
        return reached

    async def connect_seeds(self, seeds: list[PeerInfo], *, timeout: float | None = None,
                            attempt: int = 0) -> int:
        """Dial ``seeds`` in parallel; returns how many answered.

        Each dial may take ``timeout`` seconds, by default what the seed's
        round trips call for (:func:`~strangers.discovery.rtt.bootstrap_dial_timeout`), and at least the floor
        doubled ``attempt`` times (no sample at start-up: 5 s, then 10, 20, 30).
        """
        reached = 0

        async def connect(seed: PeerInfo) -> None:
            nonlocal reached
            if seed.peer_id == self.local_peer_id:
                return
            limit = timeout if timeout is not None else bootstrap_dial_timeout(
                self.rtt, seed.peer_id.to_bytes(), trio.current_time(), attempt)
            with trio.move_on_after(limit):
                started = trio.current_time()
                try:
                    await self.host.connect(seed)
                except Exception as exc:  # any dial failure: report below
                    logger.info("bootstrap peer %s unreachable: %s", seed.peer_id, exc)
                    return
                reached += 1
                # the node's first round-trip sample: later timeouts follow it. A
                # connection the executable started before its imports (predial) had
                # its TCP handshake (or part of it) behind it: one round trip less,
                # never an underestimate. If its first flight went out then too, the
                # dial waited for nothing of its own: the sample is the TCP handshake.
                now = trio.current_time()
                early = predial.handshake_seconds(seed.addrs)
                if early is not None:
                    self.rtt.observe(seed.peer_id.to_bytes(), early, now, round_trips=1)
                else:
                    trips = (CONNECT_ROUND_TRIPS - 1 if predial.adopted(seed.addrs)
                             else CONNECT_ROUND_TRIPS)
                    self.rtt.observe(seed.peer_id.to_bytes(), now - started, now, round_trips=trips)

        async with trio.open_nursery() as nursery:
            for seed in seeds:
                nursery.start_soon(connect, seed)
        return reached

    async def fill_table(self, reached: int = 1, *, random_lookup: bool = True) -> None:
        """A self-lookup (and a random lookup) through the connected seeds.

        Repeated (with jitter) until it reaches someone besides the seeds: a
        busy seed may reset our streams, and a seed that others joined through
        at the same moment lists them only once identify is through with them.
        """
        for attempt in range(BOOTSTRAP_ATTEMPTS):
            if not (reached or self.routing_table.size()):
                break
            if await self.refresh(random_lookup=random_lookup) > reached:
                break
            await trio.sleep(random.uniform(0.05, 0.2) * 2**attempt)

    # -- one RPC -----------------------------------------------------------------

    async def _rpc(self, peer: ID, request: Message, kind: str) -> Message | None:
        """Send ``request`` and read one reply (None for ADD_PROVIDER, which has none).

        Requests with a reply go over a reused stream (:mod:`.kadpool`).
        ADD_PROVIDER gets a stream of its own, closed for writing: py-libp2p
        servers echo the request, go servers just close.
        """
        self.stats.count(kind)
        data = request.SerializeToString()
        with trio.fail_after(self.rpc_timeout_for(peer)):
            if request.type != Message.MessageType.ADD_PROVIDER:
                try:
                    reply_bytes = await self.streams.request(peer, data, MAX_KAD_MESSAGE)
                except Exception:  # this peer's other idle streams are suspect too
                    self.streams.forget(peer)
                    raise
            else:
                await self._add_provider_rpc(peer, data)
                return None
        reply = Message()
        reply = Message()
        try:
            reply.ParseFromString(reply_bytes)
        except Exception:  # protobuf's DecodeError and friends
            raise RemoteProtocolError(f"{kind} reply from {peer} is not a Kademlia message") from None
        if reply.type != request.type:
            raise RemoteProtocolError(f"{kind} answered with message type {reply.type}")
        return reply

    def rpc_timeout_for(self, peer: ID) -> float:
        """The deadline of one request to ``peer``: from its measured round trips
        (the node's when it has none), dial included when we are not connected."""
        bounds = self._rpc_connected if has_open_connection(self.host, peer) else self._rpc_dial
        timeout = self.rtt.timeout(peer.to_bytes(), trio.current_time(), bounds)
        # each timeout in a row doubles the deadline (RFC 6298 §5.5), up to the ceiling
        return min(bounds.ceiling, timeout * 2 ** self._strikes.get(peer, 0))

    async def _add_provider_rpc(self, peer: ID, data: bytes) -> None:
        forget_closed_connections(self.host, peer)
        stream = await self.host.new_stream(peer, [self.protocol])
        try:
            await stream.write(uvarint(len(data)) + data)
            await stream.close_write()  # type: ignore[attr-defined]  # NetStream has it, INetStream not
            try:
                await read_exactly(stream, 1)  # py-libp2p echoes; go closes
            except StreamFailed:
                raise  # a reset (rate limit, overload): not stored
            except StreamEnded:
                pass  # a clean close after reading it
        finally:
            with trio.move_on_after(0.5) as cleanup:
                cleanup.shield = True
                try:
                    await stream.close()
                except Exception:  # the peer may already be gone
                    pass

    def _learn_peers(self, peers, *, key: bytes | None = None,
                     limit: int = MAX_CLOSER_PEERS) -> list[PeerInfo]:
        """Validate peers from an answer and remember their addresses.

        Every entry is read (up to :data:`MAX_SCANNED_PEERS`: far more than
        any honest answer holds) and merged by peer id; each peer keeps the
        first :data:`MAX_ADDRS_PER_PEER` addresses we can dial (:func:`can_dial`),
        so a peer's QUIC, WebSocket or private addresses do not crowd out its
        TCP one. Then the ``limit`` peers closest to ``key`` (in answer order
        without a key) are kept.
        """
        merged: dict[ID, list[Multiaddr]] = {}
        for item in list(peers)[:MAX_SCANNED_PEERS]:
            try:
                peer_id = ID(item.id)
                peer_id.to_base58()
            except Exception:
                continue
            addrs = merged.setdefault(peer_id, [])
            for raw in list(item.addrs)[:MAX_SCANNED_ADDRS]:
                if len(addrs) >= MAX_ADDRS_PER_PEER:
                    break
                try:
                    addr = Multiaddr(raw)
                except Exception:
                    continue
                if can_dial(addr) and addr not in addrs:
                    addrs.append(addr)
        chosen = list(merged)
        if key is not None:
            chosen.sort(key=lambda peer: kad_distance(peer.to_bytes(), key))
        learned: list[PeerInfo] = []
        store = self.host.get_peerstore()
        for peer_id in chosen[:limit]:
            addrs = merged[peer_id]
            if addrs and peer_id != self.local_peer_id:
                store.add_addrs(peer_id, addrs, LEARNED_ADDR_TTL)
            learned.append(PeerInfo(peer_id, addrs))
        return learned

    # -- iterative walks -------------------------------------------------------

    def _seeds(self, key: bytes) -> list[ID]:
        seeds = self.routing_table.find_local_closest_peers(key, K_VALUE)
        if len(seeds) < K_VALUE:
            for peer in self.host.get_connected_peers():
                # a connected peer may serve the protocol unless identify said no
                if peer not in seeds and self.advertises(peer) is not False:
                    seeds.append(peer)
        return seeds

    async def lookup(
        self,
        key: bytes,
        *,
        providers: bool = False,
        enough_providers: int = K_VALUE,
        enough_sources: int = 3,
        num_results: int = K_VALUE,
    ) -> LookupResult:
        """Walk towards ``key`` with FIND_NODE (or GET_PROVIDERS when ``providers``).

        A provider walk stops early once ``enough_providers`` distinct
        providers are known, or once ``enough_sources`` peers have returned
        provider records (they hold the key's replicas; asking more of them
        rarely adds anyone). Any walk ends once the ``num_results`` closest
        live peers have answered: K for a walk whose closest peers are wanted
        (to announce there), fewer for a search of a key that may be empty,
        since its records sit on the K closest peers of whoever announced.
        """
        self.stats.lookups += 1
        kind = "GET_PROVIDERS" if providers else "FIND_NODE"
        msg_type = (
            Message.MessageType.GET_PROVIDERS if providers else Message.MessageType.FIND_NODE
        )
        by_bytes: dict[bytes, ID] = {p.to_bytes(): p for p in self._seeds(key)}
        query = ClosestPeersQuery(
            key,
            list(by_bytes),
            local_id=self.local_peer_id.to_bytes(),
            num_results=num_results,
            parallelism=self.parallelism,
            # every request ends by its own deadline (rpc_timeout_for) and is
            # then reported failed: the walk's is a backstop
            peer_timeout=self._rpc_dial.ceiling + 1.0,
        )
        found: dict[ID, PeerInfo] = {}
        if providers:
            for info in self.provider_store.get_providers(key):
                if info.peer_id != self.local_peer_id:
                    found[info.peer_id] = info
        sources = 0
        send, receive = trio.open_memory_channel[tuple[bytes, Message | None]](math.inf)

        async def ask(peer_bytes: bytes) -> None:
            request = Message()
            request.type = msg_type
            request.key = key
            try:
                reply = await self._rpc(by_bytes[peer_bytes], request, kind)
            except Exception as exc:  # unreachable, reset, timeout, garbage
                self.stats.rpc_failures += 1
                logger.debug("%s to %s failed: %r", kind, by_bytes[peer_bytes], exc)
                self._failed(by_bytes[peer_bytes], exc)
                reply = None
            send.send_nowait((peer_bytes, reply))

        async with trio.open_nursery() as nursery:
            while True:
                for peer_bytes in query.next(trio.current_time()):
                    nursery.start_soon(ask, peer_bytes)
                if query.finished:
                    break
                if providers and (len(found) >= enough_providers or sources >= enough_sources):
                    break
                deadline = query.next_deadline()
                if deadline is None:
                    break
                with trio.move_on_at(deadline):
                    peer_bytes, reply = await receive.receive()
                    peer = by_bytes[peer_bytes]
                    if reply is None:
                        query.on_failure(peer_bytes)
                        continue
                    self._answered(peer)
                    closer = self._learn_peers(reply.closerPeers, key=key)
                    for info in closer:
                        by_bytes.setdefault(info.peer_id.to_bytes(), info.peer_id)
                    query.on_success(
                        peer_bytes,
                        [i.peer_id.to_bytes() for i in closer if i.addrs or
                         i.peer_id in self.host.get_connected_peers()],
                    )
                    # owned by the DHT service: the walk may end (and cancel its
                    # nursery) before the table is updated
                    self.manager.run_task(self._add_to_table, peer)
                    if providers and len(reply.providerPeers):
                        sources += 1
                        for info in self._learn_peers(reply.providerPeers,
                                                      limit=MAX_PROVIDERS_PER_REPLY):
                            if info.peer_id == self.local_peer_id or not info.addrs:
                                continue
                            known = found.get(info.peer_id)
                            if known is None:
                                found[info.peer_id] = info
                            else:
                                merged = list(dict.fromkeys([*known.addrs, *info.addrs]))
                                found[info.peer_id] = PeerInfo(info.peer_id, merged)
            nursery.cancel_scope.cancel()
        closest = [by_bytes[b] for b in query.result()]
        return LookupResult(closest, found, query.statistics().queried)

    async def _add_to_table(self, peer: ID) -> None:
        # The peer answered a request under our protocol, so it serves it
        # (unless identify has since told us it stopped).
        if self.advertises(peer) is not False:
            await self.routing_table.add_peer(peer, skip_server_mode_check=True)

    def _answered(self, peer: ID) -> None:
        """A request to ``peer`` was answered: its timeouts in a row start again."""
        self._strikes.pop(peer, None)

    def _failed(self, peer: ID, exc: BaseException) -> None:
        """A request to ``peer`` failed with ``exc``: it leaves the routing table
        (unreachable, garbage, or no connection left), unless its connection is
        still up and its stream was reset or ended (a live server that shed our
        request, §4.8) or it timed out fewer than :data:`TIMEOUT_STRIKES` times
        in a row (a busy server). A peer that just died may still show its
        connection for a moment: looked at again :data:`DEAD_RECHECK` s later."""
        live = has_open_connection(self.host, peer)
        if live and isinstance(exc, trio.TooSlowError):
            strikes = self._strikes.pop(peer, 0) + 1
            if strikes >= TIMEOUT_STRIKES:
                self.routing_table.remove_peer(peer)
                return
            self._strikes[peer] = strikes  # the newest last
            while len(self._strikes) > MAX_STRUCK_PEERS:
                self._strikes.popitem(last=False)
        elif not live or not isinstance(exc, StreamFailed | StreamEnded):
            self.routing_table.remove_peer(peer)
            return
        if self.routing_table.peer_in_table(peer):
            self._spawn(self._remove_if_dead, peer)

    async def _remove_if_dead(self, peer: ID) -> None:
        await trio.sleep(DEAD_RECHECK)
        if not has_open_connection(self.host, peer):
            self.routing_table.remove_peer(peer)

    # -- the operations the rest of strangers uses -------------------------------

    async def find_providers(self, key, count: int = K_VALUE) -> list[PeerInfo]:
        """Providers of ``key`` (bytes, or a CID/hex string), fresh from the network."""
        raw = key if isinstance(key, bytes) else _encode_key(key)
        result = await self.lookup(raw, providers=True, enough_providers=count)
        return list(result.providers.values())[:count]

    async def provide(self, key, *, closest: list[ID] | None = None) -> int:  # type: ignore[override]
        """Announce ourselves as a provider of ``key``; returns how many peers took it."""
        raw = key if isinstance(key, bytes) else _encode_key(key)
        addrs = dialable_addrs(self.host)
        self.provider_store.add_provider(raw, PeerInfo(self.local_peer_id, addrs))
        if closest is None:
            closest = (await self.lookup(raw)).closest
        request = Message()
        request.type = Message.MessageType.ADD_PROVIDER
        request.key = raw
        stored = 0

        async def add(peer: ID) -> None:
            nonlocal stored
            # Each server is told only the addresses it could reach us at
            # (loopback to loopback, private to private, public to all).
            scoped = Message()
            scoped.CopyFrom(request)
            entry = scoped.providerPeers.add()
            entry.id = self.local_peer_id.to_bytes()
            entry.addrs.extend(addr.to_bytes() for addr in announcements(self.host).for_server(peer))
            try:
                await self._rpc(peer, scoped, "ADD_PROVIDER")
            except Exception as exc:  # unreachable or refused: counted below
                self.stats.rpc_failures += 1
                logger.debug("ADD_PROVIDER to %s failed: %r", peer, exc)
                self._failed(peer, exc)
                return
            self._answered(peer)
            stored += 1

        async with trio.open_nursery() as nursery:
            for peer in closest[:K_VALUE]:
                if peer != self.local_peer_id:
                    nursery.start_soon(add, peer)
        return stored


class _MeteredStream:
    """An inbound Kademlia stream whose every request passes the server's limits.

    The library's request loop reads a message, answers it, reads the next:
    the first byte read after an answer (or on a fresh stream) starts a
    request. Over the limit, that read fails, and the library resets the
    stream (the Kademlia spec's answer to any error).

    A client's clean close is an end, not an error: py-libp2p's stream raises
    ``StreamEOF`` when the client's FIN arrived before the read (it returns
    b"" when the FIN arrives during it), and the library then reset the
    stream. A client whose FIN rode with its request (ADD_PROVIDER, our
    batched frames) got the answer and the reset in one segment, and its
    Yamux dropped the answer.
    """

    def __init__(self, stream, peer: ID, limits: ServerLimits) -> None:
        self._stream = stream
        self._peer = peer
        self._limits = limits
        self._between_requests = True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    async def read(self, n: int | None = None) -> bytes:
        try:
            data = await self._stream.read(n)
        except StreamEOF:  # the client's clean close, already received: an end, not an error
            return b""
        if self._between_requests and data:
            self._between_requests = False
            if not self._limits.allow_request(self._peer, trio.current_time()):
                raise RemoteProtocolError(f"Kademlia requests of {self._peer} over the limit")
        return data

    async def write(self, data: bytes) -> None:
        self._between_requests = True
        await self._stream.write(data)


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
