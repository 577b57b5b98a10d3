"""Addresses other peers can dial (see :mod:`.announce` for who is told which).

:func:`announcements` gives the :class:`~.announce.Announcements` of a host,
installing it on first use (the node does so before the host runs): other
services add the public or relayed addresses they learn with
``announcements(host).add(addr)``.
"""

from __future__ import annotations

import weakref

from libp2p.peer.id import ID
from multiaddr import Multiaddr

from strangers.discovery.addrscope import Scope, scope_of

from .announce import Announcements, install

_BOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def announcements(host) -> Announcements:
    """The host's address book (installed on first call: call it before ``host.run``)."""
    book = _BOOKS.get(host)
    if book is None:
        book = _BOOKS[host] = install(host)
    return book


def dialable_addrs(host) -> list[Multiaddr]:
    """Every address we announce to someone, wildcards expanded: widest scope first.

    What the ``ready`` event shows and what a peer on loopback may learn; a
    given peer is told only :func:`addrs_for_peer`.
    """
    addrs = announcements(host).all()
    return sorted(addrs, key=lambda addr: -(scope_of(str(addr)) or Scope.PUBLIC))


def addrs_for_peer(host, peer_id: ID) -> list[Multiaddr]:
    """The addresses ``peer_id`` (a connected peer) may learn; public ones only otherwise."""
    return announcements(host).for_peer(peer_id)
