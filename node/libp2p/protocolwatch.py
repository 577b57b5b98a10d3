"""Wake tasks when identify (or an identify push) tells what protocols a peer speaks.

py-libp2p has no event for it: identify and identify push write the
peerstore (``update_peerstore_from_identify`` -> ``add_protocols``) and
nothing else hears of it. Tasks that wait for a peer's protocols (mDNS
admitting a neighbour once it serves our DHT, AutoNAT waiting for a first
peer to ask) polled once a second, which on a LAN with no bootstrap put
three such seconds between two strangers and their match.

:func:`protocol_changes` wraps the host's peerstore (``add_protocols`` and
``set_protocols`` of that one instance; the library's own bookkeeping still
runs first) and returns the host's one :class:`ProtocolChanges`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from libp2p.peer.id import ID

logger = logging.getLogger(__name__)

MAX_PENDING = 1024
"""Peers remembered per subscriber between two looks (beyond that: "look at everyone")."""


class Subscription:
    """The peers whose protocols changed since the subscriber last looked."""

    def __init__(self) -> None:
        self._peers: set[ID] = set()
        self._overflow = False
        self._event = trio.Event()

    def _note(self, peer: ID) -> None:
        if len(self._peers) < MAX_PENDING:
            self._peers.add(peer)
        else:
            self._overflow = True
        self._event.set()

    async def wait(self, timeout: float) -> tuple[set[ID], bool]:
        """Wait up to ``timeout`` s for a change; returns (changed peers, overflowed).

        Overflowed means more peers changed than were remembered: look at all of them.
        """
        with trio.move_on_after(timeout):
            await self._event.wait()
        peers, overflow = self._peers, self._overflow
        self._peers, self._overflow, self._event = set(), False, trio.Event()
        return peers, overflow


class ProtocolChanges:
    """One per host: fans peerstore protocol updates out to subscribers."""

    def __init__(self, store) -> None:
        self._subscribers: list[Subscription] = []
        for name in ("add_protocols", "set_protocols"):
            original = getattr(store, name, None)
            if original is not None:
                setattr(store, name, self._wrap(original))

    def _wrap(self, original):
        def wrapped(peer_id, protocols, *args, **kwargs):
            result = original(peer_id, protocols, *args, **kwargs)
            for subscriber in self._subscribers:
                try:
                    subscriber._note(peer_id)
                except Exception as exc:  # never break identify for a listener
                    logger.debug("protocol change not delivered: %r", exc)
            return result

        return wrapped

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    @contextmanager
    def subscribed(self) -> Iterator[Subscription]:
        """A subscription for the length of a ``with`` block."""
        subscription = self.subscribe()
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)


def protocol_changes(host) -> ProtocolChanges:
    """The host's :class:`ProtocolChanges` (made, and the peerstore wrapped, on first use)."""
    changes = getattr(host, "_strangers_protocol_changes", None)
    if changes is None:
        changes = ProtocolChanges(host.get_peerstore())
        host._strangers_protocol_changes = changes
    return changes
