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
from collections.abc import Iterable

import trio
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TProtocol
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.identity.identify.identify import _mk_identify_protobuf
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
            for concrete in expand(addr):
                text = str(concrete)
                if addrscope.is_dialable(text):
                    out.setdefault(text, concrete)
        return list(out.values())

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
        suffix = f"/p2p/{self.host.get_id()}"
        return [Multiaddr(str(addr) + suffix) for addr in self.factory(candidates)]

    def all(self) -> list[Multiaddr]:
        """Every address we announce to someone (without ``/p2p``), wildcards expanded."""
        return self._expanded(list(self.host.get_transport_addrs()))

    def for_remote(self, remote: str | None) -> list[Multiaddr]:
        """What a peer we see at ``remote`` (IP or multiaddr text; None: unknown) may learn."""
        by_text = {str(addr): addr for addr in self.all()}
        return [by_text[text] for text in addrscope.addresses_for(by_text, remote)]

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
        """Our identify message for a peer at ``remote``, length-prefixed."""
        message = _mk_identify_protobuf(self.host, observed)
        addrs = self.for_remote(remote)
        del message.listen_addrs[:]
        message.listen_addrs.extend(addr.to_bytes() for addr in addrs)
        message.signedPeerRecord = self._signed_record(addrs)
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

    def filter_learned(self) -> None:
        """Wrap the peerstore's ``add_addrs``: drop unroutable addresses, unblock on new ones."""
        store = self.host.get_peerstore()
        swarm = self.host.get_network()
        original = store.add_addrs

        def add_addrs(peer_id, addrs, ttl: int = 0) -> None:
            kept = [addr for addr in addrs if addrscope.is_dialable(str(addr))]
            if not kept:
                return
            try:
                known = {str(addr) for addr in store.addrs(peer_id)}
            except Exception:  # none yet
                known = set()
            original(peer_id, kept, ttl)
            if any(str(addr) not in known for addr in kept):
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
