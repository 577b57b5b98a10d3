"""``strangers.node.libp2p.protocolwatch`` on its own: subscriptions, bounds, failures.

The real identify and identify push are its canaries (``test_canary_protocolwatch.py``).
"""

from __future__ import annotations

import trio

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import protocolwatch
from strangers.node.libp2p.host import build_host
from strangers.node.libp2p.protocolwatch import protocol_changes


async def test_subscribers_get_each_change_once_and_unsubscribed_ones_none(autojump_clock) -> None:
    host = build_host(fresh_identity())
    watch = protocol_changes(host)
    first, second = watch.subscribe(), watch.subscribe()
    peers = [fresh_identity().peer_id for _ in range(3)]
    store = host.get_peerstore()
    store.add_protocols(peers[0], ["/a/1"])
    store.set_protocols(peers[1], ["/b/1"])
    assert store.get_protocols(peers[0]) == ["/a/1"]  # the library's own bookkeeping still ran
    start = trio.current_time()
    assert await first.wait(5) == ({peers[0], peers[1]}, False)
    assert trio.current_time() == start  # at once, not after the timeout
    watch.unsubscribe(second)
    store.add_protocols(peers[2], ["/c/1"])
    assert await first.wait(5) == ({peers[2]}, False)
    assert await first.wait(5) == (set(), False)  # nothing new: the timeout
    assert trio.current_time() == start + 5
    assert await second.wait(5) == ({peers[0], peers[1]}, False)  # what came before it left


async def test_a_burst_beyond_the_bound_says_look_at_everyone(autojump_clock, monkeypatch) -> None:
    monkeypatch.setattr(protocolwatch, "MAX_PENDING", 2)
    host = build_host(fresh_identity())
    changes = protocol_changes(host).subscribe()
    for _ in range(5):
        host.get_peerstore().add_protocols(fresh_identity().peer_id, ["/a/1"])
    peers, overflow = await changes.wait(1)
    assert len(peers) == 2 and overflow


async def test_a_failing_subscriber_never_breaks_identify() -> None:
    host = build_host(fresh_identity())
    changes = protocol_changes(host).subscribe()

    def broken(_peer) -> None:
        raise RuntimeError("a listener's bug")

    changes._note = broken  # type: ignore[method-assign]
    peer = fresh_identity().peer_id
    host.get_peerstore().add_protocols(peer, ["/a/1"])
    assert host.get_peerstore().get_protocols(peer) == ["/a/1"]


async def test_a_with_block_subscription_ends_with_the_block(autojump_clock) -> None:
    host = build_host(fresh_identity())
    watch = protocol_changes(host)
    with watch.subscribed() as changes:
        peer = fresh_identity().peer_id
        host.get_peerstore().add_protocols(peer, ["/a/1"])
        assert await changes.wait(1) == ({peer}, False)
    assert changes not in watch._subscribers
