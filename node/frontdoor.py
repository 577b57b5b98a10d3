"""The front door: how a node finds strangers servers (docs/protocol.md §4.9).

At launch (:meth:`FrontDoor.enter`):

1. the servers of the user's cache (``servers.json``, newest first) are dialled
   first; when one answers and the bootstrap list is the public default, the
   public network is not touched at all;
2. otherwise the bootstrap peers are dialled (``/dnsaddr`` resolved,
   :mod:`.libp2p.dnsaddr`); with the public list, or when no ``--bootstrap``
   peer is a strangers node (identify), the node makes ONE lookup of the
   rendezvous key (:func:`~strangers.discovery.frontdoor.rendezvous_key`)
   on the public DHT, as a client, and dials what it found as seeds of our own
   DHT;
3. every server that answered goes into the cache.

While it runs (:meth:`FrontDoor.serve`): a reachable server provides the
rendezvous key every 22 h; a node that knows no server looks the key up
again with a back-off (1 min doubling to 30 min: the first day of the
network); a node left without any peer dials its cached servers again.

The public DHT is reached through :class:`PublicDirectory` only (closest
peers, get providers, add provider), so that the node's own DHT and the
public one can be two objects (``/strangers/kad/1.0.0`` and a client-mode
``/ipfs/kad/1.0.0``) or, as before our own DHT existed, the same one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from strangers.discovery.addrscope import is_dialable
from strangers.discovery.frontdoor import (
    CACHE_TRIES,
    REPUBLISH_SECONDS,
    SERVERS_FILE,
    Backoff,
    KnownServer,
    ServerCache,
    rendezvous_key,
)
from strangers.errors import StrangersError

from .libp2p import dnsaddr
from .libp2p.protocolwatch import protocol_changes
from .store import DataDir

logger = logging.getLogger(__name__)

FOUND_TRIES = 8
"""Servers found on the public DHT dialled at launch."""
LOOKUP_COUNT = 20
"""Providers of the rendezvous key asked for (the walk stops once it has them)."""
IDENTIFY_WAIT = 3.0
"""How long to wait for a bootstrap peer's protocols (identify) to tell a strangers node."""
STRANGERS_PREFIX = "/strangers/"
"""A peer that speaks a protocol under this prefix is a strangers node."""
WATCH_INTERVAL = 30.0
"""How often a running node checks that it still has peers (and retries, see serve)."""
ANNOUNCE_RETRY = 300.0
"""A failed announcement of the rendezvous key is tried again after this long."""


class PublicDirectory(Protocol):
    """The public libp2p DHT as the front door uses it: a client that asks, never serves."""

    async def connect(self, peers: list[PeerInfo]) -> int:
        """Dial ``peers`` (public bootstrap peers); how many answered."""

    async def find_providers(self, key: bytes, count: int) -> list[PeerInfo]:
        """One walk for the providers of ``key``."""

    async def provide(self, key: bytes) -> int:
        """Announce this node as a provider of ``key``; how many peers took it."""


class KadDirectory:
    """:class:`PublicDirectory` over one of our :class:`~.libp2p.kad.StrangersDHT`.

    The lead switches it to a client-mode ``StrangersDHT(host, protocol="/ipfs/kad/1.0.0")``
    once our own DHT has its protocol id; until then it is the node's DHT itself.
    """

    def __init__(self, dht) -> None:
        self.dht = dht

    async def connect(self, peers: list[PeerInfo]) -> int:
        return await self.dht.connect_seeds(peers)

    async def find_providers(self, key: bytes, count: int) -> list[PeerInfo]:
        return await self.dht.find_providers(key, count)

    async def provide(self, key: bytes) -> int:
        return await self.dht.provide(key)


@dataclass(frozen=True)
class Arrival:
    """What :meth:`FrontDoor.enter` did."""

    from_cache: int
    """Cached servers that answered."""
    bootstrap: int
    """Bootstrap peers that answered."""
    found: int
    """Servers found on the public DHT (0 when no lookup was made)."""
    looked_up: bool
    """Whether the rendezvous key was looked up on the public DHT."""
    servers: int
    """Strangers servers we are connected to now (cache, bootstrap and found)."""

    @property
    def reached(self) -> int:
        """Peers of any kind that answered (0: the node is alone)."""
        return self.from_cache + self.bootstrap + self.found


async def resolve_bootstrap(addrs: Sequence[str], *, resolver=None) -> list[PeerInfo]:
    """The bootstrap list as dialable peers: ``/dnsaddr`` resolved, one entry per peer.

    Only TCP addresses over IP are kept (what our transport dials); a peer
    with none left is dropped.
    """
    resolved = await dnsaddr.resolve_all(list(addrs), resolver=resolver)
    by_peer: dict[ID, list[Multiaddr]] = {}
    for addr in resolved:
        try:
            info = info_from_p2p_addr(addr)
        except Exception:  # no /p2p/<id> at the end: not a peer address
            logger.info("bootstrap address %s has no peer id; skipped", addr)
            continue
        for transport in info.addrs:
            if _tcp_over_ip(transport):
                by_peer.setdefault(info.peer_id, [])
                if transport not in by_peer[info.peer_id]:
                    by_peer[info.peer_id].append(transport)
    return [PeerInfo(peer, addrs_) for peer, addrs_ in by_peer.items() if addrs_]


def _tcp_over_ip(addr: Multiaddr) -> bool:
    names = [proto.name for proto in addr.protocols()]
    return len(names) == 2 and names[0] in ("ip4", "ip6") and names[1] == "tcp" \
        and is_dialable(str(addr))


class FrontDoor:
    """Finds strangers servers: cache first, then one lookup on the public DHT."""

    def __init__(
        self,
        host,
        *,
        own_connect: Callable[[list[PeerInfo]], Awaitable[int]],
        public: PublicDirectory,
        data: DataDir,
        resolver=None,
        wall_clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        search_keys: Sequence[bytes] = (),
    ) -> None:
        """``own_connect`` dials seeds of our own DHT; ``wall_clock`` stamps the cache;
        ``search_keys``: the first search's (``NodeConfig.first_search_keys``), whose
        closest cached servers are dialled first (``ServerCache.first_tries``)."""
        self.host = host
        self.search_keys = tuple(search_keys)
        self._own_connect = own_connect
        self.public = public
        self.data = data
        self.resolver = resolver
        self.wall_clock = wall_clock
        self.backoff = backoff if backoff is not None else Backoff()
        self.cache = ServerCache.from_json(data.read_json(SERVERS_FILE, None))
        self.lookups = 0
        """Rendezvous lookups made on the public DHT (the politeness budget)."""
        self.announcements = 0
        self.on_found: Callable[[int], Awaitable[None]] | None = None
        """Called with the number of servers a later lookup found (to fill our DHT's table)."""
        self.entered_in = 0.0
        """Seconds :meth:`enter` took (cache, DNS, bootstrap dials, the lookup)."""
        self.servers: dict[ID, PeerInfo] = {}
        """Strangers servers met in this run."""
        self.settled = trio.Event()
        """Set once :meth:`settle` has told whether the bootstrap peers are strangers nodes."""
        self._unsettled: list[ID] = []

    # -- launch ----------------------------------------------------------------

    async def enter(self, bootstrap: Sequence[str], *, default_list: bool) -> Arrival:
        """Join: cached servers, then the bootstrap peers and the public DHT if needed.

        With the public default list the cache comes first and, when one of its
        servers answers, the public network is not asked at all. Peers given with
        ``--bootstrap`` come first; the cache serves only when none answers.
        :meth:`arrive` then :meth:`settle`.
        """
        return await self.settle(await self.arrive(bootstrap, default_list=default_list))

    async def arrive(self, bootstrap: Sequence[str], *, default_list: bool) -> Arrival:
        """The part of :meth:`enter` a node waits for before ``ready``: the dials (and,
        with the public list, the rendezvous lookup: its peers are not strangers nodes).

        Whether ``--bootstrap`` peers are strangers nodes (their identify, one round
        trip after the connection) is :meth:`settle`'s: the first search walks through
        them meanwhile, and a peer that is not one fails its requests at once.
        """
        started = trio.current_time()
        try:
            arrival = await self._arrive(bootstrap, default_list=default_list)
        finally:
            self.entered_in = trio.current_time() - started
        if default_list or not arrival.bootstrap:
            self.settled.set()
        return arrival

    async def _arrive(self, bootstrap: Sequence[str], *, default_list: bool) -> Arrival:
        from_cache = 0
        if default_list:
            from_cache = await self._dial_cached()
            if from_cache:  # known servers answered: the public network is spared
                self._save()
                return Arrival(from_cache, 0, 0, False, len(self.servers))
        peers = await resolve_bootstrap(bootstrap, resolver=self.resolver) if bootstrap else []
        reached = await self.public.connect(peers) if peers else 0
        if not reached and not default_list:  # every --bootstrap peer is gone: the cache
            from_cache = await self._dial_cached()
        found = 0
        looked_up = False
        if reached and default_list:
            looked_up = True
            found = await self.look_up()
        else:
            self._unsettled = [peer.peer_id for peer in peers if self._connected(peer.peer_id)]
        self._save()
        return Arrival(from_cache, reached, found, looked_up, len(self.servers))

    async def settle(self, arrival: Arrival) -> Arrival:
        """The rest of :meth:`enter`: the ``--bootstrap`` peers that answered are asked
        (identify) whether they are strangers nodes; if none is, one rendezvous lookup on
        the public DHT (its servers then join our table through :attr:`on_found`)."""
        if self.settled.is_set():
            return arrival
        try:
            peers, self._unsettled = self._unsettled, []
            seeds = [peer for peer in peers if self._connected(peer) and await self._is_strangers_node(peer)]
            for peer_id in seeds:
                self._met(peer_id)
            if seeds or not arrival.bootstrap:
                self._save()
                return replace(arrival, servers=len(self.servers))
            found = await self.look_up()
            self._save()
            if found and self.on_found is not None:
                await self.on_found(found)
            return replace(arrival, found=found, looked_up=True, servers=len(self.servers))
        finally:
            self.settled.set()

    async def _dial_cached(self) -> int:
        # the same servers the executable connected to before its imports (preconnect)
        infos = [_info(server) for server in self.cache.first_tries(self.search_keys, CACHE_TRIES)]
        tries = [info for info in infos if info is not None and info.peer_id != self.host.get_id()]
        if not tries:
            return 0
        await self._own_connect(tries)
        answered = 0
        for info in tries:
            if self._connected(info.peer_id):
                self._met(info.peer_id)
                answered += 1
        return answered

    async def look_up(self) -> int:
        """ONE walk for the rendezvous key; dial what it found as seeds of our own DHT."""
        self.lookups += 1
        try:
            found = await self.public.find_providers(rendezvous_key(), LOOKUP_COUNT)
        except Exception as exc:  # any failure of the walk (library, network): no server found
            logger.warning("rendezvous lookup failed: %r", exc, exc_info=True)
            return 0
        found = [info for info in found if info.peer_id != self.host.get_id()][:FOUND_TRIES]
        if not found:
            return 0
        await self._own_connect(found)
        answered = 0
        for info in found:
            if self._connected(info.peer_id):
                self._met(info.peer_id)
                answered += 1
        self._save()
        return answered

    # -- while running -----------------------------------------------------------

    async def serve(self, *, announce: Callable[[], bool], lonely: bool, recover: bool = True,
                    task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Announce while ``announce()`` says we are a reachable server; look again while
        ``lonely`` (no server found); dial the cache again when every peer is gone
        (unless not ``recover``: a node told to dial no bootstrap peer)."""
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._announce_loop, announce)
            if recover or lonely:
                nursery.start_soon(self._watch, lonely)

    async def _announce_loop(self, announce: Callable[[], bool]) -> None:
        while True:
            if not announce():
                await trio.sleep(WATCH_INTERVAL)
                continue
            self.announcements += 1
            try:
                stored = await self.public.provide(rendezvous_key())
            except Exception as exc:  # any failure of the walk: tried again later
                logger.warning("rendezvous announcement failed: %r", exc, exc_info=True)
                stored = 0
            logger.info("announced on the rendezvous key (%d peers confirmed)", stored)
            await trio.sleep(REPUBLISH_SECONDS if stored else ANNOUNCE_RETRY)

    async def _watch(self, lonely: bool) -> None:
        attempt = 0
        next_lookup = trio.current_time() + self.backoff.delay(0) if lonely else None
        while True:
            await trio.sleep(WATCH_INTERVAL if next_lookup is None
                             else min(WATCH_INTERVAL, max(0.0, next_lookup - trio.current_time())))
            if not self.host.get_connected_peers():  # every peer gone: the cache, again
                if await self._dial_cached():
                    self._save()
                    continue
            if next_lookup is not None and trio.current_time() >= next_lookup:
                found = await self.look_up()
                if found:
                    next_lookup = None
                    if self.on_found is not None:
                        await self.on_found(found)
                    continue
                attempt += 1
                next_lookup = trio.current_time() + self.backoff.delay(attempt)

    # -- bookkeeping ---------------------------------------------------------------

    async def _is_strangers_node(self, peer: ID) -> bool:
        """Whether ``peer`` speaks one of our protocols (waits a little for identify)."""
        store = self.host.get_peerstore()
        # identify's answer wakes us, and a look every 50 ms sees a closed connection
        with protocol_changes(self.host).subscribed() as changes, trio.move_on_after(IDENTIFY_WAIT):
            while True:
                try:
                    protocols = store.get_protocols(peer)
                except Exception:  # py-libp2p raises for a peer it knows nothing of
                    protocols = []
                if protocols:
                    return any(str(proto).startswith(STRANGERS_PREFIX) for proto in protocols)
                if not self._connected(peer):
                    return False
                await changes.wait(0.05)
        return False

    def _connected(self, peer: ID) -> bool:
        return peer in self.host.get_connected_peers()

    def _met(self, peer: ID) -> None:
        """``peer`` is a strangers server we are connected to: cache it with its addresses."""
        try:
            addrs = [str(addr) for addr in self.host.get_peerstore().addrs(peer)]
        except Exception:  # no address known
            addrs = []
        addrs = [addr for addr in addrs if "/p2p-circuit" not in addr and is_dialable(addr)]
        self.servers[peer] = PeerInfo(peer, [Multiaddr(addr) for addr in addrs])
        self.cache.seen(peer.to_base58(), addrs, self.wall_clock())

    def remember(self, peers: Sequence[ID]) -> None:
        """Cache more servers (connected ones), e.g. from our own DHT's routing table."""
        for peer in peers:
            if self._connected(peer):
                self._met(peer)
        self._save()

    def _save(self) -> None:
        try:
            self.cache.forget_older_than(self.wall_clock())
            self.data.write_json(SERVERS_FILE, self.cache.to_json())
        except StrangersError as exc:  # a read-only data directory: the node goes on
            logger.warning("cannot save the server cache: %s", exc)


def _info(server: KnownServer) -> PeerInfo | None:
    try:
        return PeerInfo(ID.from_base58(server.peer), [Multiaddr(addr) for addr in server.addrs])
    except Exception:  # a damaged entry: skipped
        return None
