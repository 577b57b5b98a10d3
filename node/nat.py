"""Reachability and relays for a node: who can dial us, and how the others reach us.

:func:`serve_nat` runs for the node's whole life (one supervised task):

1. the circuit relay services start at once (STOP: we can be reached through
   a relay; HOP on a serve node unless ``--no-relay``), and peers that
   announce relayed addresses are dialled through the relay;
2. unless an option decided it (``--behind-nat``, ``--hide-ip``), AutoNAT
   asks the bootstrap peers (then other connected peers) to dial us back on
   a fresh connection, at our interface addresses and at each IP peers
   observed us at (identify) with our listen ports: a port forward or a 1:1
   NAT makes the latter reachable, and what a server reached is announced
   (identify push, records stored again);
3. reachable: a chat node starts relaying for others too; not reachable: we
   keep reservations on :data:`~.libp2p.relay.WANTED_RELAYS` relays and
   announce the relayed addresses they give us;
4. each verdict and each change of the announced addresses is a
   ``reachability`` event.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio
from multiaddr import Multiaddr

from strangers.discovery.observed import ObservedAddresses, candidates

from . import events
from .libp2p.addresses import announcements, dialable_addrs
from .libp2p.announce import expand
from .libp2p.protocolwatch import Subscription, protocol_changes
from .libp2p.reachability import (
    FreshDialAutoNAT,
    ask_reachability,
    autonat_servers,
    watch_observations,
)
from .libp2p.relay import RelayClient, install_circuit_dialing
from .supervision import supervised

if TYPE_CHECKING:
    from .node import Node

logger = logging.getLogger(__name__)

AUTONAT_RETRY = 30.0
"""Seconds before asking again when no server answered."""
READVERTISE_TIMEOUT = 10.0
NO_SERVER_RECHECK = 1.0
"""Seconds between two looks for an AutoNAT server when none is connected (identify wakes it sooner)."""
OBSERVATION_WAIT = 1.0
"""Before the first AutoNAT question, how long to wait for a peer's identify to
say what IP it sees us at (the servers' identify is usually through by then)."""
FIRST_RESERVATION_WAIT = 3.0
"""How long a node that is not reachable delays its first search for a relayed address."""


class NatService:
    """State shared with the node: the relay client, the verdict, the first reservation."""

    def __init__(self, node: Node) -> None:
        config = node.config
        self.node = node
        self.reachable: bool | None = None if config.reachable_unknown else False
        hop = config.relay and not config.chat and not config.behind_nat
        self.client = RelayClient(node.host, hop=hop, hide_ip=config.hide_ip,
                                  on_change=self._addrs_changed,
                                  direct_ok=[info.peer_id for info in config.bootstrap_peers])
        # A --hide-ip node dials back no one: that would show its address.
        self.autonat = FreshDialAutoNAT(node.host, serve=not config.hide_ip)
        self.eager = not config.bootstrap_peers
        """Ask the first peer identify shows us at once (no bootstrap, or none answered: the
        node sets it). With seeds, the first question waits a second: asked at once it fell
        inside the first search and cost a round trip or two at 100 ms (``bench/run.py``)."""
        self.node_ready = trio.Event()
        """Set by open_node once ``ready`` is out: our events come after it."""
        self.addresses_known = trio.Event()
        """Set once we know what to announce: reachable, or a first relay reserved."""
        self._changed = trio.Event()
        self.observed = ObservedAddresses()
        """The IPs peers see us at (identify's observed addresses)."""
        self._observation = trio.Event()
        watch_observations(node.host, self.observed, self._observation.set)
        install_circuit_dialing(node.host, self.client)

    def _addrs_changed(self) -> None:
        self._changed.set()
        if self.client.reservations:
            self.addresses_known.set()

    async def _report(self) -> None:
        await self.node_ready.wait()
        if self.reachable is None:
            return
        await self.node.emit(events.Reachability(self.reachable, tuple(self.node.addrs),
                                                 len(self.client.reservations)))

    async def _decide(self) -> None:
        """AutoNAT at our interface addresses (a NAT's refusal comes at once)."""
        config = self.node.config
        if not config.reachable_unknown:
            return
        seeds = [info.peer_id for info in config.bootstrap_peers]
        with protocol_changes(self.node.host).subscribed() as changes:
            await self._ask_until_decided(seeds, changes)

    async def _ask_until_decided(self, seeds: list, changes: Subscription) -> None:
        config = self.node.config
        while self.reachable is None:
            servers = autonat_servers(self.node.host, seeds)
            if servers:
                verdict, reached = await ask_reachability(self.node.host, servers,
                                                          dialable_addrs(self.node.host))
                logger.info("AutoNAT verdict: %s (reached at %s)", verdict, reached)
                if verdict is not None:
                    self.reachable = verdict
                    break
            if not config.chat and not config.behind_nat:
                # A serve node with nobody to ask is taken as reachable (it
                # is meant to run on a public address).
                self.reachable = True
                break
            if servers:
                await trio.sleep(AUTONAT_RETRY)
            elif self.eager:  # nobody to ask yet: ask as soon as identify shows a peer that serves AutoNAT
                await changes.wait(NO_SERVER_RECHECK)
            else:  # the seeds are coming: the first search has them to itself for a second
                await trio.sleep(NO_SERVER_RECHECK)

    def _observed_candidates(self) -> list[Multiaddr]:
        """Each IP peers observed us at, with our listen ports (none we announce already)."""
        host = self.node.host
        listen: list[tuple[str, int]] = []
        for addr in host.get_transport_addrs():
            for concrete in expand(addr):
                text = str(concrete)
                try:
                    ip = concrete.value_for_protocol("ip4" if text.startswith("/ip4/") else "ip6")
                    listen.append((ip, int(concrete.value_for_protocol("tcp"))))
                except Exception:  # not TCP over IP: nothing to pair
                    continue
        known = {str(addr) for addr in dialable_addrs(host)}
        return [Multiaddr(text) for text in candidates(self.observed.ips(), listen) if text not in known]

    async def _check_forwarded(self, forwarded: trio.Event) -> None:
        """Not reachable at our interface addresses: maybe at an observed IP
        (a port forward, a 1:1 NAT). Asked beside the relays, since a NAT
        that drops the dial-back takes the server its whole dial timeout."""
        if not self.observed.ips():
            with trio.move_on_after(OBSERVATION_WAIT):
                await self._observation.wait()
        extra = self._observed_candidates()
        if not extra:
            return
        servers = autonat_servers(self.node.host, [info.peer_id for info in self.node.config.bootstrap_peers])
        logger.info("AutoNAT: asking for %s (observed IPs, our listen ports)",
                    ", ".join(str(addr) for addr in extra))
        verdict, reached = await ask_reachability(self.node.host, servers, extra)
        logger.info("AutoNAT verdict for observed addresses: %s (reached at %s)", verdict, reached)
        if verdict and reached:
            book = announcements(self.node.host)
            for addr in reached:
                book.add(addr)
            logger.info("reachable at %s (observed, confirmed by AutoNAT): announced",
                        ", ".join(str(addr) for addr in reached))
            forwarded.set()

    async def _relayed(self) -> None:
        """Not reachable: hold reservations, report and re-announce as relayed addresses change."""
        seeds = [info.peer_id for info in self.node.config.bootstrap_peers]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.client.keep_reservations,
                               lambda: self.client.relay_candidates(seeds))
            await self._report()
            while True:
                await self._changed.wait()
                self._changed = trio.Event()
                await trio.sleep(0.05)  # several reservations at once: one event
                await self._report()
                nursery.start_soon(self._readvertise)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.tools.anyio_service import background_trio_service

        async with background_trio_service(self.client.protocol), trio.open_nursery() as nursery:
            task_status.started()
            await self._decide()
            await self._follow()
            if not self.reachable:
                forwarded = trio.Event()
                with trio.CancelScope() as relaying:
                    if self.node.config.reachable_unknown:  # AutoNAT decided: check observed IPs too
                        async def check() -> None:
                            try:
                                await self._check_forwarded(forwarded)
                            except Exception as exc:  # stays relayed: what it was before the check
                                logger.info("checking observed addresses failed: %r", exc)
                            if forwarded.is_set():
                                relaying.cancel()
                        nursery.start_soon(check)
                    await self._relayed()
                # A port forward or 1:1 NAT: reachable after all, no relay needed.
                self.reachable = True
                await self._follow()
                for relay in list(self.client.reservations):
                    self.client.drop(relay)
                nursery.start_soon(self._readvertise)
            self.addresses_known.set()
            if self.node.config.relay:
                await self.client.enable_hop()
            await self._report()
            await trio.sleep_forever()

    async def _follow(self) -> None:
        """Reachable chat nodes serve the DHT, others are clients (a serve node
        serves unless --behind-nat: kad.dht_mode)."""
        if self.reachable is not None and self.node.config.chat:
            await self.node.dht.follow_reachability(self.reachable)

    async def _readvertise(self) -> None:
        """Our records name the addresses of the moment they were stored: when
        our relayed addresses change, store the records again (the search
        re-announces only once per epoch)."""
        node = self.node
        if not node.config.chat:
            return
        keys = set(node.search.planner.advertised)
        if not keys:
            return

        async def one(key: bytes) -> None:
            with trio.move_on_after(READVERTISE_TIMEOUT):
                try:
                    await node.dht.provide(key)
                except Exception as exc:
                    logger.info("re-announcing a record failed: %r", exc)

        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(one, key)
        logger.info("re-announced %d record(s) with our new addresses", len(keys))


async def serve_nat(node: Node, service: NatService, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run ``service`` supervised: if it fails the node goes on, reachable directly only."""
    started = trio.Event()

    class Status:
        def started(self, value=None) -> None:
            started.set()
            task_status.started(value)

    async def lost(_exc: BaseException) -> None:
        await node.emit(events.Warning("relays and reachability checks stopped working"))

    await supervised("reachability and relays", functools.partial(service.run, task_status=Status()),
                     on_crash=lost)
    if not started.is_set():
        task_status.started()
