"""Kademlia on ``/ipfs/kad/1.0.0``: py-libp2p's server side, our own client side.

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
from dataclasses import dataclass, field, replace

import trio
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT, _encode_key
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.kad_dht.provider_store import ProviderRecord, ProviderStore
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery.lookup import ALPHA, K_VALUE, ClosestPeersQuery
from strangers.discovery.rtt import (
    BOOTSTRAP_DIAL,
    CONNECT_ROUND_TRIPS,
    RPC_CONNECTED,
    RPC_DIAL,
    RttEstimator,
    backoff,
)
from strangers.errors import RemoteProtocolError

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

KAD_PROTOCOL = TProtocol("/ipfs/kad/1.0.0")
MAX_KAD_MESSAGE = 256 * 1024
"""Largest Kademlia reply we read (20 peers with signed records fit easily)."""
MAX_ADDRS_PER_PEER = 8
"""Addresses kept per peer from an answer; the rest are ignored."""
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
    """Provider records that favour the newest announcers.

    py-libp2p keeps the *first* 20 providers of a key and silently drops
    every later one (while still echoing ADD_PROVIDER as if stored). For
    strangers the newest announcers are the ones still looking, so this store
    keeps up to :data:`MAX_RECORDS_PER_KEY` records per key, evicting the
    oldest, and answers GET_PROVIDERS with the newest :data:`K_VALUE`.
    """

    def add_provider(self, key: bytes, provider: PeerInfo) -> None:
        if not provider or not provider.peer_id:
            return
        records = self.providers.setdefault(key, {})
        peer = str(provider.peer_id)
        records.pop(peer, None)  # re-inserted below as the newest
        while len(records) >= MAX_RECORDS_PER_KEY:
            oldest = min(records, key=lambda p: records[p].timestamp)
            del records[oldest]
        records[peer] = ProviderRecord(provider_info=provider, timestamp=time.time())

    def get_providers(self, key: bytes) -> list[PeerInfo]:
        providers = super().get_providers(key)  # drops expired records
        records = self.providers.get(key, {})
        providers.sort(key=lambda info: -records[str(info.peer_id)].timestamp)
        return providers[:K_VALUE]


class StrangersDHT(KadDHT):
    """py-libp2p's KadDHT server with an efficient, fresh client side."""

    def __init__(
        self,
        host,  # libp2p IHost
        mode: DHTMode = DHTMode.SERVER,
        *,
        rpc_timeout: float = 2.0,
        parallelism: int = ALPHA,
        rtt: RttEstimator | None = None,
    ) -> None:
        """``rpc_timeout`` is the floor of a request's timeout; ``rtt`` (shared
        with the match service) raises it from measured round trips."""
        super().__init__(host, mode, enable_random_walk=False)
        self.provider_store = NewestProviderStore(host=host, peer_routing=self.peer_routing)
        # py-libp2p resets inbound DHT streams beyond 12 at once; a bootstrap
        # node that a crowd joins through needs more room than that.
        self._inbound_limiter = trio.CapacityLimiter(INBOUND_STREAMS)
        self.rpc_timeout = rpc_timeout
        self.rtt = rtt if rtt is not None else RttEstimator()
        self._rpc_connected = replace(RPC_CONNECTED, floor=rpc_timeout,
                                      ceiling=max(rpc_timeout, RPC_CONNECTED.ceiling))
        self._rpc_dial = replace(RPC_DIAL, floor=rpc_timeout, ceiling=max(rpc_timeout, RPC_DIAL.ceiling))
        self.parallelism = parallelism
        self.stats = KadStatistics()
        self.streams = StreamPool(host, KAD_PROTOCOL, spawn=self._spawn, rtt=self.rtt)
        self._listing: set[ID] = set()

    def _spawn(self, async_fn, *args) -> None:
        self.manager.run_task(async_fn, *args)

    # -- server ----------------------------------------------------------------

    async def handle_stream(self, stream) -> None:  # wraps KadDHT.handle_stream
        """Serve one inbound stream, for at most :data:`SERVER_STREAM_SECONDS`.

        py-libp2p lists the client in the routing table when its stream opens,
        and only if identify has already given its addresses. On a first
        connection it has not: with a new stream per request the next request
        would list it, but our clients keep their stream open and would never
        be listed. So a client we could not list is listed as soon as
        identify is through (at most :data:`IDENTIFY_WAIT` later), without
        making its requests wait.
        """
        peer = stream.muxed_conn.peer_id
        if peer not in self._listing and not self.routing_table.peer_in_table(peer):
            self._listing.add(peer)
            self._spawn(self._list_when_identified, peer)
        with trio.move_on_after(SERVER_STREAM_SECONDS):
            await super().handle_stream(stream)
            return
        await reset_quietly(stream)

    async def _list_when_identified(self, peer: ID) -> None:
        store = self.host.get_peerstore()
        try:
            with trio.move_on_after(IDENTIFY_WAIT):
                while True:
                    try:
                        if store.addrs(peer):
                            break
                    except Exception:  # py-libp2p raises when it knows no address
                        pass
                    await trio.sleep(0.01)
                await self.routing_table.add_peer(peer, skip_server_mode_check=True)
        finally:
            self._listing.discard(peer)

    # -- service ---------------------------------------------------------------

    async def run(self) -> None:  # replaces KadDHT.run and its refresh storm
        """Maintenance: expire records now and then, refresh the table rarely."""
        next_refresh = trio.current_time() + REFRESH_INTERVAL
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL)
            self.streams.sweep()
            self.provider_store.cleanup_expired()
            self.value_store.cleanup_expired()
            if trio.current_time() >= next_refresh:
                next_refresh = trio.current_time() + REFRESH_INTERVAL
                await self.refresh()

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
        round trips call for (``BOOTSTRAP_DIAL``), and at least the floor
        doubled ``attempt`` times (no sample at start-up: 5 s, then 10, 20, 30).
        """
        reached = 0

        async def connect(seed: PeerInfo) -> None:
            nonlocal reached
            if seed.peer_id == self.local_peer_id:
                return
            limit = timeout if timeout is not None else max(
                backoff(BOOTSTRAP_DIAL, attempt),
                self.rtt.timeout(seed.peer_id.to_bytes(), trio.current_time(), BOOTSTRAP_DIAL))
            with trio.move_on_after(limit):
                started = trio.current_time()
                try:
                    await self.host.connect(seed)
                except Exception as exc:  # any dial failure: report below
                    logger.info("bootstrap peer %s unreachable: %s", seed.peer_id, exc)
                    return
                reached += 1
                # the node's first round-trip sample: later timeouts follow it
                now = trio.current_time()
                self.rtt.observe(seed.peer_id.to_bytes(), now - started, now,
                                 round_trips=CONNECT_ROUND_TRIPS)

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
        return self.rtt.timeout(peer.to_bytes(), trio.current_time(), bounds)

    async def _add_provider_rpc(self, peer: ID, data: bytes) -> None:
        forget_closed_connections(self.host, peer)
        stream = await self.host.new_stream(peer, [KAD_PROTOCOL])
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

    def _learn_peers(self, peers) -> list[PeerInfo]:
        """Validate peers from an answer and remember their addresses."""
        learned: list[PeerInfo] = []
        store = self.host.get_peerstore()
        for item in list(peers)[: 2 * K_VALUE]:
            try:
                peer_id = ID(item.id)
                peer_id.to_base58()
            except Exception:
                continue
            addrs: list[Multiaddr] = []
            for raw in list(item.addrs)[:MAX_ADDRS_PER_PEER]:
                try:
                    addrs.append(Multiaddr(raw))
                except Exception:
                    continue
            if peer_id == self.local_peer_id:
                learned.append(PeerInfo(peer_id, addrs))
                continue
            if addrs:
                store.add_addrs(peer_id, addrs, LEARNED_ADDR_TTL)
            learned.append(PeerInfo(peer_id, addrs))
        return learned

    # -- iterative walks -------------------------------------------------------

    def _seeds(self, key: bytes) -> list[ID]:
        seeds = self.routing_table.find_local_closest_peers(key, K_VALUE)
        if len(seeds) < K_VALUE:
            for peer in self.host.get_connected_peers():
                if peer not in seeds:
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
                        self.routing_table.remove_peer(peer)
                        continue
                    closer = self._learn_peers(reply.closerPeers)
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
                        for info in self._learn_peers(reply.providerPeers):
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
        # The peer answered a Kademlia request, so it is a DHT server.
        await self.routing_table.add_peer(peer, skip_server_mode_check=True)

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
                return
            stored += 1

        async with trio.open_nursery() as nursery:
            for peer in closest[:K_VALUE]:
                if peer != self.local_peer_id:
                    nursery.start_soon(add, peer)
        return stored
