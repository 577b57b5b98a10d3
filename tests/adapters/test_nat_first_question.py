"""AutoNAT's first question goes out when identify shows a peer to ask, not at the next poll.

A chat node with no bootstrap (two laptops on one LAN) has nobody to ask until
mDNS brings a neighbour; the neighbour's record is found only once the waiting
node serves the DHT, and it serves only once AutoNAT says it is reachable.
"""

from __future__ import annotations

from types import SimpleNamespace

import trio
import trio.testing

from strangers.node import nat
from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host
from strangers.node.nat import NatService


def _service(host) -> NatService:
    """Just what ``_decide`` reads: the node's host and config, and the verdict."""
    service = object.__new__(NatService)
    config = SimpleNamespace(reachable_unknown=True, bootstrap_peers=[], chat=True, behind_nat=False)
    service.node = SimpleNamespace(config=config, host=host)  # type: ignore[assignment]
    service.reachable = None
    service.eager = True  # what a node with no bootstrap, or none that answered, sets
    return service


async def test_the_first_question_goes_out_at_the_first_identify(autojump_clock, monkeypatch) -> None:
    host = build_host(fresh_identity())
    neighbour = fresh_identity().peer_id
    connected: list = []
    asked: list[float] = []

    def servers(_host, _seeds):
        return list(connected)

    async def ask(_host, servers, _addrs):
        asked.append(trio.current_time())
        return True, []

    monkeypatch.setattr(nat, "autonat_servers", servers)
    monkeypatch.setattr(nat, "ask_reachability", ask)
    monkeypatch.setattr(nat, "dialable_addrs", lambda _host: [])
    service = _service(host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service._decide)
        await trio.sleep(nat.NO_SERVER_RECHECK * 2.5)  # between two looks
        assert asked == [] and service.reachable is None
        identified = trio.current_time()
        connected.append(neighbour)
        host.get_peerstore().add_protocols(neighbour, ["/libp2p/autonat/1.0.0"])  # identify
        await trio.testing.wait_all_tasks_blocked()
        assert asked == [identified] and service.reachable is True
        nursery.cancel_scope.cancel()


async def test_with_seeds_coming_the_first_question_waits_for_the_next_look(autojump_clock, monkeypatch) -> None:
    """The first search has the seeds to itself: asked at once, AutoNAT cost it round trips."""
    host = build_host(fresh_identity())
    connected: list = []
    asked: list[float] = []

    async def ask(_host, servers, _addrs):
        asked.append(trio.current_time())
        return True, []

    monkeypatch.setattr(nat, "autonat_servers", lambda _host, _seeds: list(connected))
    monkeypatch.setattr(nat, "ask_reachability", ask)
    monkeypatch.setattr(nat, "dialable_addrs", lambda _host: [])
    service = _service(host)
    service.eager = False
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service._decide)
        await trio.sleep(nat.NO_SERVER_RECHECK / 4)
        connected.append(fresh_identity().peer_id)
        host.get_peerstore().add_protocols(connected[0], ["/libp2p/autonat/1.0.0"])
        await trio.sleep(nat.NO_SERVER_RECHECK)
        assert asked == [start + nat.NO_SERVER_RECHECK]
        nursery.cancel_scope.cancel()
