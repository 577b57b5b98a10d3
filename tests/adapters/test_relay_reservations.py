"""RelayClient.keep_reservations: renew at half life (before expiry), replace lost relays.

Runs on trio's MockClock (autojump): an hour of reservations in milliseconds.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host
from strangers.node.libp2p.relay import WANTED_RELAYS, RelayClient, Reservation, relayed_addrs

TTL = 600.0


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


def _client(alive: set, calls: list):
    client = RelayClient(build_host(fresh_identity()), hop=False)

    async def reserve(relay):
        now = trio.current_time()
        calls.append((now, relay))
        if relay not in alive:
            return None
        held = Reservation(relay, now + TTL, [Multiaddr(f"/ip4/10.0.0.1/tcp/1/p2p/{relay}/p2p-circuit")],
                           reserved_at=now)
        client.reservations[relay] = held
        client._publish()
        return held

    client.reserve = reserve  # type: ignore[method-assign]
    return client


async def test_reservations_are_renewed_at_half_life_and_lost_relays_replaced(clock) -> None:
    relays = [fresh_identity().peer_id for _ in range(4)]
    alive = set(relays[:3])
    calls: list = []
    client = _client(alive, calls)
    book: set = set()

    def on_addrs(added, removed) -> None:
        book.update(added)
        book.difference_update(removed)

    client.on_addrs = on_addrs
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: client.keep_reservations(lambda: list(relays),
                                                            clock=trio.current_time))
        await trio.sleep(1)
        assert len(client.reservations) == WANTED_RELAYS == 2
        assert set(client.reservations) == set(relays[:2])
        assert len(relayed_addrs(client.host)) == 2
        await trio.sleep(TTL * 3)
        first_renewal = [t for t, r in calls if r == relays[0]][1]
        assert TTL * 0.5 - 1 <= first_renewal <= TTL * 0.5 + 2  # long before expiry
        renewals = [t for t, r in calls if r == relays[0]]
        assert len(renewals) >= 6  # every half life, never a gap past expiry
        assert all(b - a <= TTL for a, b in zip(renewals, renewals[1:]))
        # relays[1] stops answering: its slot goes to relays[2] at the next renewal.
        alive.discard(relays[1])
        await trio.sleep(TTL)
        assert set(client.reservations) == {relays[0], relays[2]}
        assert all(str(relays[1]) not in str(a) for a in relayed_addrs(client.host))
        assert book == set(relayed_addrs(client.host))  # an address book kept in step
        nursery.cancel_scope.cancel()


async def test_with_no_relay_it_keeps_looking(clock) -> None:
    calls: list = []
    client = _client(set(), calls)
    relay = fresh_identity().peer_id
    candidates: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: client.keep_reservations(lambda: list(candidates),
                                                            clock=trio.current_time))
        await trio.sleep(30)
        assert client.reservations == {}
        candidates.append(relay)  # a relay shows up later (connected, speaks HOP)
        calls.clear()
        await trio.sleep(15)
        assert calls and calls[0][1] == relay
        nursery.cancel_scope.cancel()
