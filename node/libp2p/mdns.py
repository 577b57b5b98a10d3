"""Strangers on one LAN find each other with no bootstrap (mDNS, the libp2p way).

Our own service on python-zeroconf, in place of py-libp2p's
(``enable_mDNS``), which announced ``/ip4/0.0.0.0/...`` (useless from another
machine), put extra addresses under ``dnsaddr2=`` (which go and js ignore),
read only the first ``dnsaddr=`` of a record, and registered its service
synchronously inside ``host.run()``: zeroconf's name probing blocked the trio
loop for about 2 s of every start-up.

:class:`LocalDiscovery`:

* announces ``<random name>._p2p._udp.local`` with one ``dnsaddr=`` TXT
  string per address a machine on the link can dial
  (:meth:`.announce.Announcements.for_local_link`), and re-announces when
  they change (:mod:`.mdns_records` builds and reads the records);
* browses for others, reads every ``dnsaddr=`` of every TXT record of a name
  straight from zeroconf's cache (go-libp2p packs them in one record, js-libp2p
  in one record each), and gives the addresses to the peerstore (where the
  announce filter drops unroutable ones);
* lists a local peer in the DHT routing table once identify says it serves
  our DHT protocol (issue 9: only servers enter routing tables; a client,
  for instance a chat node AutoNAT has not yet found reachable, does not
  advertise it). Identify needs a connection: when none came within
  :data:`DIAL_GRACE` (the first search connects to most neighbours anyway),
  the side with the smaller peer id dials, the other only if still none
  came within :data:`DIAL_WAIT` (one handshake per pair, at most
  :data:`DIALS_AT_ONCE` at a time, no walks); a node with no bootstrap, or
  whose bootstrap peers did not answer, has no search to wait for and dials
  at once. A local client is listed the
  moment an identify push says it now serves (AutoNAT found it reachable
  through that very connection; :mod:`.protocolwatch` wakes the watch),
  and looked at again every :data:`WATCH_INTERVAL` all the same. The
  old py-libp2p service dialled every neighbour and then walked the DHT
  twice per neighbour; the first version of this one listed every
  neighbour without asking, clients included.

Zeroconf runs in its own threads (``# type: ignore[call-arg]`` below: the
trio_typing stubs do not know ``abandon_on_cancel``); everything blocking (start, probing,
goodbyes, resolving a name) runs in a worker thread, and the service reports
``started`` at once: mDNS never delays ``ready``.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr
from zeroconf import DNSText, IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.const import _CLASS_IN, _TYPE_TXT

from strangers.discovery import addrscope

from .announce import Announcements
from .kadpool import has_open_connection
from .mdns_records import SERVICE, encode_txt, parse_records, peer_name, txt_strings
from .protocolwatch import protocol_changes

logger = logging.getLogger(__name__)

QUEUE = 256
"""Names waiting to be read (a burst beyond that is dropped: the next announcement will do)."""
RESOLVE_TIMEOUT = 1.0
"""Seconds to ask for a name's TXT record when the announcement did not carry it."""
ADDRESS_POLL = 5.0
"""Seconds between two checks of what our record should say."""
ADDR_TTL = 600
MAX_LOCAL_PEERS = 1024
"""Local peers remembered (listed or waiting to be); beyond that, new ones are ignored."""
DIAL_GRACE = 1.0
"""Seconds the peer with the smaller id waits for a connection (a walk, a bootstrap) before
dialling: with a DHT to join, the first search connects to most neighbours anyway, and
dials at once raced it for the CPU at start-up."""
DIAL_WAIT = 3.0
"""Seconds the peer with the greater id waits for a connection before dialling itself."""
DIAL_TIMEOUT = 10.0
DIALS_AT_ONCE = 4
IDENTIFY_WAIT = 5.0
"""Seconds to wait for identify on a new connection before leaving the peer to the watch."""
WATCH_INTERVAL = 1.0
"""Seconds between two looks at local peers not listed yet (an identify push may list them)."""
STOP_TIMEOUT = 1.0
SRV_PORT = 4001
"""The SRV record needs a port; libp2p reads only the TXT strings (go-libp2p uses 4001 too)."""


def _record_ips(addrs: list[Multiaddr]) -> list[str]:
    """One IPv4 and one IPv6 address for the A/AAAA records (required, unused by libp2p)."""
    ips: list[str] = []
    for family in ("ip4", "ip6"):
        for addr in addrs:
            try:
                ips.append(addr.value_for_protocol(family))
                break
            except Exception:  # not of this family
                continue
    return ips or ["127.0.0.1"]


def _multiaddrs(texts) -> list[Multiaddr]:
    """The texts that parse as multiaddrs (a neighbour may announce anything)."""
    out: list[Multiaddr] = []
    for text in texts:
        try:
            out.append(Multiaddr(text))
        except Exception:  # not a multiaddr py-libp2p can read: skipped, not fatal
            logger.debug("mDNS address %r skipped", text)
    return out


class LocalDiscovery:
    """Announces us on the local link and connects to the peers it hears of."""

    def __init__(self, host, dht, book: Announcements, *, rng: random.Random | None = None,
                 interfaces=None, on_listed: Callable[[], None] | None = None,
                 dial_grace: float = DIAL_GRACE) -> None:
        self.host = host
        self.dial_grace = dial_grace
        """:data:`DIAL_GRACE`, or 0 for a node with no DHT to join (no bootstrap, or none of
        its bootstrap peers answered: the node sets it): no search of ours would connect to
        the neighbour, and nothing races the dial."""
        self._changes = protocol_changes(host).subscribe()
        self.on_listed = on_listed
        """Called when a local peer joins the routing table (the search looks again)."""
        self.dht = dht
        self.book = book
        self.name = f"{peer_name(rng or random.Random())}.{SERVICE}"
        self.interfaces = interfaces
        self.found = 0
        """Local peers listed in the routing table (statistics, tests)."""
        self.heard = 0
        """Announcements of other peers read."""
        self._waiting: dict[ID, float] = {}
        """Local peers heard of, not listed (yet): when we last heard of each."""
        self._listed: set[ID] = set()
        """Local peers we listed (until they leave the routing table)."""
        self._dials = trio.CapacityLimiter(DIALS_AT_ONCE)
        self._zeroconf: Zeroconf | None = None
        self._info: ServiceInfo | None = None

    # -- our record ------------------------------------------------------------------

    def _service_info(self) -> ServiceInfo | None:
        addrs = self.book.for_local_link()
        strings = txt_strings([str(a) for a in addrs], self.host.get_id().to_base58())
        if not strings:
            return None
        return ServiceInfo(
            SERVICE, self.name, port=SRV_PORT, properties=encode_txt(strings),
            server=self.name.split(".", 1)[0] + ".local.", parsed_addresses=_record_ips(addrs),
        )

    def _announce(self, zc: Zeroconf) -> None:  # a worker thread
        info = self._service_info()
        if info is None:
            return
        if self._info is None:
            zc.register_service(info, cooperating_responders=True)
        elif info.text != self._info.text:
            zc.update_service(info)
        self._info = info

    # -- the service -------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # never hold up ready
        send, receive = trio.open_memory_channel[str](QUEUE)
        token = trio.lowlevel.current_trio_token()

        def deliver(name: str) -> None:
            try:
                send.send_nowait(name)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass

        def on_change(zeroconf, service_type, name, state_change) -> None:  # zeroconf's thread
            if name == self.name or state_change is ServiceStateChange.Removed:
                return
            try:
                token.run_sync_soon(deliver, name)
            except trio.RunFinishedError:
                pass

        kwargs = {} if self.interfaces is None else {"interfaces": self.interfaces}
        zc = await trio.to_thread.run_sync(lambda: Zeroconf(ip_version=IPVersion.V4Only, **kwargs))
        self._zeroconf = zc
        browser = None
        try:
            browser = ServiceBrowser(zc, SERVICE, handlers=[on_change])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_announced, zc)
                nursery.start_soon(self._watch)
                async for name in receive:
                    nursery.start_soon(self._read_safely, zc, name)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(STOP_TIMEOUT):
                stop = functools.partial(self._stop, zc, browser)
                await trio.to_thread.run_sync(stop, abandon_on_cancel=True)  # type: ignore[call-arg]

    def _stop(self, zc: Zeroconf, browser) -> None:  # a worker thread
        try:
            if browser is not None:
                browser.cancel()
            zc.close()  # says goodbye for our record
        except Exception as exc:  # shutting down anyway
            logger.debug("mDNS stop: %r", exc)

    async def _keep_announced(self, zc: Zeroconf) -> None:
        while True:
            try:
                announce = functools.partial(self._announce, zc)
                await trio.to_thread.run_sync(announce, abandon_on_cancel=True)  # type: ignore[call-arg]
            except Exception as exc:  # a name conflict, a closed socket: try again later
                logger.info("mDNS announcement failed: %r", exc)
            await trio.sleep(ADDRESS_POLL)

    # -- other peers ---------------------------------------------------------------------

    def _txt_records(self, zc: Zeroconf, name: str) -> list[bytes]:
        records = zc.cache.get_all_by_details(name.lower(), _TYPE_TXT, _CLASS_IN)
        return [record.text for record in records if isinstance(record, DNSText)]

    async def _read_safely(self, zc: Zeroconf, name: str) -> None:
        """:meth:`_read`, where a neighbour's bad record ends the reading of that record only."""
        try:
            await self._read(zc, name)
        except Exception as exc:  # whatever a record makes of us, the listener goes on
            logger.info("mDNS record %r not read: %r", name, exc)

    async def _read(self, zc: Zeroconf, name: str) -> None:
        records = self._txt_records(zc, name)
        if not records:  # the announcement came without its TXT record: ask
            info = ServiceInfo(SERVICE, name)
            ask = functools.partial(info.request, zc, RESOLVE_TIMEOUT * 1000)
            await trio.to_thread.run_sync(ask, abandon_on_cancel=True)  # type: ignore[call-arg]
            records = self._txt_records(zc, name)
        local = self.host.get_id()
        for text, addrs in parse_records(records).items():
            try:
                peer = ID.from_base58(text)
            except Exception:  # not a peer id
                continue
            if peer == local:
                continue
            self.heard += 1
            usable = _multiaddrs(a for a in addrs if addrscope.is_dialable(a))
            if not usable:
                continue
            self.host.get_peerstore().add_addrs(peer, usable, ADDR_TTL)
            if peer in self._listed:
                continue
            known = peer in self._waiting
            if not known and len(self._waiting) + len(self._listed) >= MAX_LOCAL_PEERS:
                continue
            self._waiting[peer] = trio.current_time()
            if not known:
                await self._meet(peer, usable)

    async def _meet(self, peer: ID, addrs: list[Multiaddr]) -> None:
        """Get identify from a new local peer (one connection per pair), then list it if it serves."""
        if not has_open_connection(self.host, peer):
            # the smaller id dials first; the other waits longer for that dial
            smaller = self.host.get_id().to_bytes() < peer.to_bytes()
            heard = trio.current_time()
            # the grace is read again while we wait: the node sets it to 0 when its bootstrap failed
            while not has_open_connection(self.host, peer):
                left = heard + (self.dial_grace if smaller else DIAL_WAIT) - trio.current_time()
                if left <= 0:
                    break
                await trio.sleep(min(0.05, left))
            if not has_open_connection(self.host, peer):
                try:
                    async with self._dials:
                        with trio.fail_after(DIAL_TIMEOUT):
                            await self.host.connect(PeerInfo(peer, addrs))
                except Exception as exc:  # gone, or not dialable from here: the watch may list it later
                    logger.debug("mDNS peer %s not reached: %r", peer, exc)
                    return
        with trio.move_on_after(IDENTIFY_WAIT):
            while self.dht.advertises(peer) is None:
                await trio.sleep(0.05)
        await self._list(peer)

    async def _watch(self) -> None:
        """List waiting peers that have since become servers; forget the stale ones."""
        swept = trio.current_time()
        while True:
            changed, overflow = await self._changes.wait(max(0.0, swept + WATCH_INTERVAL - trio.current_time()))
            # an identify (push) came: look at those peers at once
            for peer in [] if overflow else changed:
                if peer in self._waiting and self.dht.advertises(peer) is True:
                    await self._list(peer)
            now = trio.current_time()
            if not overflow and now < swept + WATCH_INTERVAL:
                continue
            swept = now
            for peer, heard in list(self._waiting.items()):
                if self.dht.advertises(peer) is True:
                    await self._list(peer)
                elif now - heard > ADDR_TTL and not has_open_connection(self.host, peer):
                    self._waiting.pop(peer, None)
            for peer in list(self._listed):
                if not self.dht.routing_table.peer_in_table(peer):  # dead or evicted: met again when heard
                    self._listed.discard(peer)

    async def _list(self, peer: ID) -> None:
        """List a local peer in the routing table if identify says it serves our DHT."""
        if peer not in self._waiting or self.dht.advertises(peer) is not True:
            return
        try:
            listed = await self.dht.add_peer(peer)
        except Exception as exc:  # a full bucket whose oldest peer answered, a peer gone
            logger.debug("mDNS peer %s not listed: %r", peer, exc)
            return
        if not listed:  # a full bucket kept its peers: not asked again every second
            self._waiting.pop(peer, None)
            return
        if peer not in self._waiting:
            return
        del self._waiting[peer]
        self._listed.add(peer)
        self.found += 1
        logger.info("mDNS peer %s listed", peer)
        if self.on_listed is not None:
            self.on_listed()
