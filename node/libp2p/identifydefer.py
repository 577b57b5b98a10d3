"""Identify on a new connection, later when a match is being made on it.

py-libp2p 0.8.1 runs identify on every new connection, from both ends, the
moment it is up (``BasicHost._schedule_identify``, reasons ``connect`` and
``notifee-connected``). Each end then answers the other's request (our
:meth:`~.announce.Announcements.handle_identify`: a scoped address list and
a freshly signed peer record) and reads and checks the other's answer (its
signed record, the peerstore's updates): ~5-15 ms of CPU per end on
loopback. When the connection is a proposal's (a joiner dialling the
stranger it found, or a waiting stranger taking that dial), all of it ran in
the middle of the match exchange, on both critical paths (bench/profile_match.py
``--trace``: the waiting stranger answered the identify request before it
read the proposal, and checked the joiner's answer while it wrote its own).

:func:`install` lets the node name connections whose identify can wait
(``delay_for(peer_id)`` returns seconds, or None for at once): a proposal's
target, an inbound connection to a chat node that waits for proposals. The
identify then runs that much later, still exactly once, and never after the
host closed. Nothing in the match or the chat needs it: their streams are
negotiated with multistream-select as before.

Canaries: ``tests/adapters/test_canary_identify.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

logger = logging.getLogger(__name__)


def install(host, delay_for: Callable[[Any], float | None]) -> None:
    """Wrap ``host._schedule_identify``: identify of a peer ``delay_for`` names runs later."""
    original = host._schedule_identify

    def schedule(peer_id, *, reason: str) -> None:
        try:
            delay = delay_for(peer_id)
        except Exception:  # a bug of ours must not cost the peer its identify
            logger.debug("identify delay for %s", peer_id, exc_info=True)
            delay = None
        if not delay or delay <= 0:
            original(peer_id, reason=reason)
            return
        scope = trio.CancelScope()
        host._identify_tasks.add(scope)  # host.close() cancels it with the library's own

        async def later() -> None:
            try:
                with scope:
                    await trio.sleep(delay)
                    if not getattr(host, "_closed", False) and host.get_network().get_connections(peer_id):
                        original(peer_id, reason=reason)
            except Exception:  # a system task must not raise
                logger.debug("deferred identify of %s", peer_id, exc_info=True)
            finally:
                host._identify_tasks.discard(scope)

        trio.lowlevel.spawn_system_task(later)

    host._schedule_identify = schedule


def inbound_direct(host, peer_id) -> bool:
    """Whether our connection to ``peer_id`` was dialled by the peer, not through a relay."""
    from .holepunch import conn_is_relayed

    connections = host.get_network().get_connections(peer_id)
    if not connections:
        return False
    conn = connections[0]
    muxed = getattr(conn, "muxed_conn", None)
    return getattr(muxed, "is_initiator_value", True) is False and not conn_is_relayed(conn)
