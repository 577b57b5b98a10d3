"""What we tell other peers about our addresses, and what we accept from them.

py-libp2p 0.8.1 announces its listen addresses as given: a node listening on
``/ip4/0.0.0.0/tcp/PORT`` tells everyone (identify, identify push, its signed
peer record) to dial ``0.0.0.0``. On one machine that dial happens to reach
the local host, so loopback tests pass; on a real network it is refused, the
swarm puts the peer in its negative cache ("recently failed all addresses"),
and every later dial of it is refused for a minute, even with a good address
(``../shared/notes``: two reachable strangers on different subnets never match).

:class:`Announcements` fixes the three sides of it:

* **what the host advertises**: wildcards expanded to the interface
  addresses (and loopback), undialable ones dropped, plus the *extra*
  addresses other services learn (:meth:`Announcements.add`: public
  addresses from AutoNAT or observation, relayed ``/p2p-circuit`` addresses).
  ``host.get_addrs()``, which py-libp2p hands to anyone (the signed peer
  record in every DHT answer, relay and DCUtR messages), gives only the
  public and relayed ones of these;
* **what each peer is told**: our identify handler and identify push send a
  peer only the addresses it could reach, judged by the address we see it at
  (:func:`strangers.discovery.addrscope.addresses_for`: loopback only to
  loopback peers, private only to private ones, public to all), with a signed
  peer record of the same addresses;
* **what we accept**: addresses other peers give us (identify, signed records,
  DHT answers, match proposals: everything goes through the peerstore's
  ``add_addrs``) are filtered of unroutable ones (``0.0.0.0``, ``::``,
  multicast, port 0), and a peer that gets a new address is taken out of the
  swarm's negative cache (``swarm.unblock_peer``);
* **how we dial them**: py-libp2p's ``Swarm.dial_peer`` dials at most one
  address per transport class (its "smart address selection"): of a peer's
  TCP addresses only the first is ever tried, so a stranger that announces
  its LAN address and the public one its router forwards is unreachable
  whenever the LAN one comes first. :meth:`Announcements.dial_every_address`
  tries the others, one at a time, when that dial fails.

Addresses change at runtime (an interface comes up, a relay reservation is
made): :meth:`Announcements.serve` notices and pushes identify to every
connected peer.

Canaries: ``tests/adapters/test_canary_announce.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import trio
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TProtocol
from libp2p.identity.identify.identify import AGENT_VERSION, PROTOCOL_VERSION
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.identity.identify_push.identify_push import ID_PUSH
from libp2p.network.exceptions import SwarmDialAllFailedError
from libp2p.peer.id import ID
from libp2p.peer.peerstore import create_signed_peer_record
from libp2p.utils import varint
from libp2p.utils.address_validation import expand_wildcard_address
from multiaddr import Multiaddr

from strangers.discovery import addrscope

logger = logging.getLogger(__name__)

ADDRESS_POLL = 5.0
"""Seconds between two looks at the interfaces (an address that comes or goes)."""
PUSH_TIMEOUT = 3.0
"""Seconds one identify push may take."""
RECORD_CACHE = 16
"""Signed peer records kept (one per distinct address list)."""
DIALABLE_CACHE = 4096
"""Addresses whose dialability is remembered (the cache starts over when full)."""
EXPANSION_TTL = 1.0
"""Seconds a wildcard's expansion to interface addresses is reused (listing the
interfaces takes ~0.5 ms; :meth:`Announcements.serve` looks for changes every
:data:`ADDRESS_POLL` seconds anyway)."""
MORE_ADDRESSES = 4
"""Other direct addresses of a peer tried after the library's one dial failed."""

__all__ = ["Announcements", "IDENTIFY", "ID_PUSH", "expand"]


def expand(addr: Multiaddr) -> list[Multiaddr]:
    """A listen address as others can dial it: a wildcard becomes this machine's addresses."""
    text = str(addr)
    if not addrscope.is_unspecified(text):
        return [addr]
    family = "/ip4/" if text.startswith("/ip4/") else "/ip6/"
    out = [a for a in expand_wildcard_address(addr)
           if str(a).startswith(family) and not addrscope.is_unspecified(str(a))]
    port = addr.value_for_protocol("tcp")
    out.append(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}" if family == "/ip4/" else f"/ip6/::1/tcp/{port}"))
    return out


def _remote_text(remote: tuple[str, int] | None) -> str | None:
    if not remote:
        return None
    ip = remote[0]
    if ip.lower().startswith("::ffff:"):
        ip = ip[7:]
    return ip


def _strip_p2p(addr: Multiaddr) -> Multiaddr:
    text = str(addr)
    # our own /p2p/<id> at the end only; a relayed address keeps its relay's
    if "/p2p/" in text and "/p2p-circuit" not in text.rsplit("/p2p/", 1)[1]:
        return Multiaddr(text.rsplit("/p2p/", 1)[0])
    return addr


class Announcements:
    """The addresses a host announces, and to whom (see the module docstring).

    Other services add what they learn with :meth:`add` (and take it back with
    :meth:`discard`); the change reaches connected peers through identify push.
    """

    def __init__(self, host) -> None:
        self.host = host
        self._extra: dict[str, Multiaddr] = {}
        self._changed = trio.Event()
        self._records: dict[tuple[str, ...], bytes] = {}
        self._relayed_only = False
        self._dialable_seen: dict[bytes, bool] = {}
        self._expansions: dict[bytes, tuple[float, list[Multiaddr]]] = {}
        self._host_addrs: tuple[tuple, float, list[Multiaddr]] | None = None
        self._all: tuple[tuple, float, list[tuple[str, Multiaddr]]] | None = None
        self._scoped: dict[addrscope.Scope | None, list[str]] = {}
        """addresses_for(all(), recipient) per recipient scope, for the current all()."""
        self.pushes = 0
        """Identify pushes sent (statistics, tests)."""

    # -- what we announce ---------------------------------------------------------

    def add(self, addr: Multiaddr) -> None:
        """Announce ``addr`` too (a public, observed or relayed address)."""
        text = str(_strip_p2p(addr))
        if text not in self._extra and addrscope.is_dialable(text):
            self._extra[text] = Multiaddr(text)
            self._changed.set()

    def discard(self, addr: Multiaddr) -> None:
        """Stop announcing an address given to :meth:`add`."""
        if self._extra.pop(str(_strip_p2p(addr)), None) is not None:
            self._changed.set()

    @property
    def relayed_only(self) -> bool:
        """Announce relayed addresses only (``--hide-ip``): no interface, no public address."""
        return self._relayed_only

    @relayed_only.setter
    def relayed_only(self, value: bool) -> None:
        if value != self._relayed_only:
            self._relayed_only = value
            self._changed.set()

    def _expanded(self, candidates: list[Multiaddr]) -> list[Multiaddr]:
        out: dict[str, Multiaddr] = {}
        if self._relayed_only:
            return [addr for text, addr in self._extra.items() if "/p2p-circuit" in text]
        for addr in [*candidates, *self._extra.values()]:
            for concrete in self._expand(addr):
                text = str(concrete)
                if addrscope.is_dialable(text):
                    out.setdefault(text, concrete)
        return list(out.values())

    def _expand(self, addr: Multiaddr) -> list[Multiaddr]:
        """:func:`expand`, reused for :data:`EXPANSION_TTL` seconds."""
        key = addr.to_bytes()
        now = time.monotonic()
        cached = self._expansions.get(key)
        if cached is not None and now - cached[0] < EXPANSION_TTL:
            return cached[1]
        expanded = expand(addr)
        if len(self._expansions) >= RECORD_CACHE:
            self._expansions.clear()
        self._expansions[key] = (now, expanded)
        return expanded

    def factory(self, candidates: list[Multiaddr]) -> list[Multiaddr]:
        """py-libp2p's ``AddrsFactory``: what ``host.get_addrs()`` returns (before ``/p2p``).

        The library hands ``get_addrs()`` to anyone (the signed peer record in
        every DHT answer its server sends, relay and DCUtR messages), so it
        holds only what anyone may be told: public and relayed addresses.
        """
        by_text = {str(addr): addr for addr in self._expanded(candidates)}
        return [by_text[text] for text in addrscope.addresses_for(by_text, None)]

    def host_addrs(self) -> list[Multiaddr]:
        """Replaces ``host.get_addrs()``: :meth:`factory` of the candidates, with ``/p2p/<us>``.

        py-libp2p 0.8.1's ``get_addrs`` strips "any existing /p2p/" before
        appending ours, and for a relayed address that is the *relay's*
        (``/ip4/R/tcp/P/p2p/<relay>/p2p-circuit`` became ``/ip4/R/tcp/P``).
        """
        candidates = list(self.host.get_transport_addrs())
        observed = getattr(self.host, "_observed_addr_manager", None)
        if observed is not None:
            candidates.extend(observed.addrs())
        # get_addrs() runs for every DHT answer (the library signs a record of
        # it): the same answer is reused for EXPANSION_TTL seconds.
        key = (tuple(addr.to_bytes() for addr in candidates), tuple(self._extra), self._relayed_only)
        now = time.monotonic()
        if self._host_addrs is not None and self._host_addrs[0] == key \
                and now - self._host_addrs[1] < EXPANSION_TTL:
            return list(self._host_addrs[2])
        suffix = f"/p2p/{self.host.get_id()}"
        addrs = [Multiaddr(str(addr) + suffix) for addr in self.factory(candidates)]
        self._host_addrs = (key, now, addrs)
        return list(addrs)

    def all(self) -> list[Multiaddr]:
        """Every address we announce to someone (without ``/p2p``), wildcards expanded."""
        return [addr for _text, addr in self._all_texts()]

    def _all_texts(self) -> list[tuple[str, Multiaddr]]:
        """:meth:`all` with each address's text, reused for :data:`EXPANSION_TTL` seconds
        (identify answers and provider records ask for it per peer)."""
        candidates = list(self.host.get_transport_addrs())
        key = (tuple(addr.to_bytes() for addr in candidates), tuple(self._extra), self._relayed_only)
        now = time.monotonic()
        if self._all is not None and self._all[0] == key and now - self._all[1] < EXPANSION_TTL:
            return self._all[2]
        texts = [(str(addr), addr) for addr in self._expanded(candidates)]
        self._all = (key, now, texts)
        self._scoped.clear()
        return texts

    def for_remote(self, remote: str | None) -> list[Multiaddr]:
        """What a peer we see at ``remote`` (IP or multiaddr text; None: unknown) may learn."""
        by_text = dict(self._all_texts())
        scope = addrscope.recipient_scope(remote)
        scoped = self._scoped.get(scope)
        if scoped is None:
            scoped = self._scoped[scope] = addrscope.addresses_for(by_text, remote)
        return [by_text[text] for text in scoped if text in by_text]

    def for_peer(self, peer_id: ID) -> list[Multiaddr]:
        """What a connected peer may learn (public only when not connected or relayed)."""
        return self.for_remote(self.remote_of(peer_id))

    def for_server(self, peer_id: ID) -> list[Multiaddr]:
        """What a provider record we send ``peer_id`` may carry: the scope of the
        connection we have to it, or else of the address we will dial it at."""
        remote = self.remote_of(peer_id)
        if remote is None:
            try:
                known = [str(addr) for addr in self.host.get_peerstore().addrs(peer_id)]
            except Exception:  # nothing known about it
                known = []
            dialable = addrscope.dialable(known)
            remote = dialable[0] if dialable else None
        return self.for_remote(remote)

    def for_local_link(self) -> list[Multiaddr]:
        """What an mDNS record carries (see :func:`addrscope.for_local_link`)."""
        by_text = {str(addr): addr for addr in self.all()}
        return [by_text[text] for text in addrscope.for_local_link(by_text)]

    def remote_of(self, peer_id: ID) -> str | None:
        """The IP we see ``peer_id`` at (None when not connected or only through a relay)."""
        for conn in self.host.get_network().get_connections(peer_id):
            try:
                if conn.get_connection_type() is ConnectionType.RELAYED:
                    continue
                remote = _remote_text(conn.muxed_conn.get_remote_address())
            except Exception:  # a connection closing under us
                continue
            if remote is not None:
                return remote
        return None

    # -- identify, per recipient ---------------------------------------------------------

    def identify_message(self, remote: str | None, observed: Multiaddr | None) -> bytes:
        """Our identify message for a peer at ``remote``, length-prefixed.

        Built here, field by field as the library's ``_mk_identify_protobuf``
        does, but with the scoped addresses and their cached signed record:
        the library's builder signed a fresh record of ``get_addrs()`` for
        every message (~5 ms a connection on a busy node), which we then
        threw away.
        """
        addrs = self.for_remote(remote)
        protocols = tuple(str(p) for p in self.host.get_mux().get_protocols() if p is not None)
        message = Identify(
            protocol_version=PROTOCOL_VERSION,
            agent_version=AGENT_VERSION,
            public_key=self.host.get_public_key().serialize(),
            listen_addrs=[addr.to_bytes() for addr in addrs],
            observed_addr=observed.to_bytes() if observed is not None else b"",
            protocols=protocols,
            signedPeerRecord=self._signed_record(addrs),
        )
        data = message.SerializeToString()
        return varint.encode_uvarint(len(data)) + data

    def _signed_record(self, addrs: list[Multiaddr]) -> bytes:
        key = tuple(str(addr) for addr in addrs)
        record = self._records.get(key)
        if record is None:
            envelope = create_signed_peer_record(self.host.get_id(), list(addrs),
                                                 self.host.get_private_key())
            record = envelope.marshal_envelope()
            if len(self._records) >= RECORD_CACHE:
                self._records.pop(next(iter(self._records)))
            self._records[key] = record
        return record

    async def handle_identify(self, stream) -> None:
        """Replaces py-libp2p's identify handler: scoped addresses, no ``0.0.0.0``."""
        try:
            remote = stream.get_remote_address()
            observed = None
            if remote:
                ip = _remote_text(remote)
                family = "ip6" if ip and ":" in ip else "ip4"
                observed = Multiaddr(f"/{family}/{ip}/tcp/{remote[1]}")
            peer = stream.muxed_conn.peer_id
            relayed = self.remote_of(peer) is None and remote is not None
            where = None if relayed else _remote_text(remote)
            await stream.write(self.identify_message(where, None if relayed else observed))
        except Exception as exc:  # the peer went away: nothing to answer
            logger.debug("identify answer failed: %r", exc)
            try:
                await stream.reset()
            except Exception:
                pass
            return
        try:
            await stream.close()
        except Exception:
            pass

    async def push(self, peers: Iterable[ID] | None = None) -> int:
        """Send identify push (our current addresses, scoped) to ``peers`` (all connected)."""
        targets = list(self.host.get_connected_peers() if peers is None else peers)
        pushed = 0

        async def push_one(peer: ID) -> None:
            nonlocal pushed
            with trio.move_on_after(PUSH_TIMEOUT):
                try:
                    stream = await self.host.new_stream(peer, [ID_PUSH])
                except Exception as exc:  # gone, or no identify push
                    logger.debug("identify push to %s: %r", peer, exc)
                    return
                try:
                    await stream.write(self.identify_message(self.remote_of(peer), None))
                    await stream.close()
                    pushed += 1
                except Exception as exc:
                    logger.debug("identify push to %s: %r", peer, exc)
                    try:
                        await stream.reset()
                    except Exception:
                        pass

        async with trio.open_nursery() as nursery:
            for peer in targets:
                nursery.start_soon(push_one, peer)
        self.pushes += pushed
        return pushed

    # -- what we accept ----------------------------------------------------------------

    def _dialable(self, addr: Multiaddr) -> bool:
        """:func:`addrscope.is_dialable`, remembered per address: a DHT walk hands
        the peerstore the same few addresses again and again, and turning a
        Multiaddr into text costs ~0.2 ms."""
        key = addr.to_bytes()
        known = self._dialable_seen.get(key)
        if known is None:
            try:
                known = addrscope.is_dialable(str(addr))
            except Exception:  # bytes the multiaddr library cannot print
                known = False
            if len(self._dialable_seen) >= DIALABLE_CACHE:
                self._dialable_seen.clear()
            self._dialable_seen[key] = known
        return known

    def filter_learned(self) -> None:
        """Wrap the peerstore's ``add_addrs``: drop unroutable addresses, unblock on new ones."""
        store = self.host.get_peerstore()
        swarm = self.host.get_network()
        original = store.add_addrs

        def add_addrs(peer_id, addrs, ttl: int = 0) -> None:
            kept = [addr for addr in addrs if self._dialable(addr)]
            if not kept:
                return
            try:
                known = set(store.addrs(peer_id))  # Multiaddrs compare and hash by bytes
            except Exception:  # none yet
                known = set()
            original(peer_id, kept, ttl)
            if any(addr not in known for addr in kept):
                swarm.unblock_peer(peer_id)

        store.add_addrs = add_addrs

    def dial_every_address(self) -> None:
        """Wrap ``swarm.dial_peer``: when the library's dial (one address per
        transport class) fails, dial the peer's other direct addresses in turn."""
        swarm = self.host.get_network()
        store = self.host.get_peerstore()
        original = swarm.dial_peer

        async def dial_peer(peer_id: ID):
            try:
                return await original(peer_id)
            except SwarmDialAllFailedError as failure:
                try:
                    known = [str(addr) for addr in store.addrs(peer_id)]
                except Exception:  # nothing known
                    raise failure from None
                direct = [text for text in addrscope.dialable(known) if "/p2p-circuit" not in text]
                remote = [text for text in direct if addrscope.scope_of(text) is not addrscope.Scope.LOOPBACK]
                direct = remote or direct  # as the library does: never our own loopback
                if len(direct) < 2:
                    raise
                # The library tried the first of them (its sort is stable): try the rest.
                for text in direct[1:1 + MORE_ADDRESSES]:
                    try:
                        conn = await swarm.dial_addr(Multiaddr(text), peer_id)
                    except Exception as exc:  # this one fails too
                        logger.debug("dial of %s at %s: %r", peer_id, text, exc)
                        continue
                    swarm.unblock_peer(peer_id)  # the failed dial put it in the negative cache
                    logger.info("dialled %s at %s (the library tried only %s)", peer_id, text, direct[0])
                    return [conn]
                raise

        swarm.dial_peer = dial_peer

    # -- the service ---------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Push identify to connected peers whenever what we announce changes."""
        last = [str(addr) for addr in self.all()]
        task_status.started()
        while True:
            with trio.move_on_after(ADDRESS_POLL):
                await self._changed.wait()
            self._changed = trio.Event()
            now = [str(addr) for addr in self.all()]
            if now != last:
                last = now
                logger.info("our addresses changed: %s", ", ".join(now))
                await self.push()


def install(host) -> Announcements:
    """Put :class:`Announcements` in charge of a built host (before it runs)."""
    book = Announcements(host)
    host._addrs_factory = book.factory
    host.get_addrs = book.host_addrs  # the library's cuts relayed addresses short (see host_addrs)
    host._push_identify_to_all_peers = book.push  # called when a listener opens
    host.set_stream_handler(TProtocol(IDENTIFY), book.handle_identify)
    book.filter_learned()
    book.dial_every_address()
    return book
