"""Round trips to match a waiting stranger, after the lookup, through the delaying proxy.

Two whole nodes (``open_node``) in one process; the waiting one (B) is only
reachable through a :class:`~delayproxy.DelayProxy` of fixed one-way delay
``D``. The joining one (A) has just found B (the lookup is over) and has no
connection to it: it proposes, and on B's acceptance opens the chat, exactly
as its search would (``MatchService.propose``, then
``Conversations.start_initiator``), with the node's round-trip estimate as
the lookup left it (one sample of the path's round trip). Timed from the proposal, in one-way
flights: ``floor(elapsed / D)`` (see :mod:`roundtrips`), or fewer when the proxy's
:class:`~delayproxy.FlightClock` counted fewer (CPU time on a loaded machine adds to the
wall clock, not to the flights the chunks actually made):

* ``proposal``: dial + match stream + Propose -> Accept, at A;
* ``matched``: until A's ``matched`` event (chat stream + chat handshake);
* ``matched_responder``: until B's ``matched`` event.

``python tests/netsim/matchtrips.py [--delay 0.1] [--plain]`` prints them as
JSON (``--plain``: hosts without :mod:`strangers.node.libp2p.multistream`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
from dataclasses import dataclass

import trio
from delayproxy import CLIENT, SERVER, DelayProxy, PathSettings
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery.proposal import Accept
from strangers.node import NodeConfig, events, open_node
from strangers.node.libp2p.host import quiet_library_logs

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


@dataclass
class MatchTimes:
    delay: float
    proposal: float
    matched: float
    matched_responder: float
    counted: dict[str, int] | None = None
    """The flights the proxy counted to each moment (None: only the wall clock)."""

    def flights(self) -> dict[str, int]:
        wall = {name: math.floor(getattr(self, name) / self.delay)
                for name in ("proposal", "matched", "matched_responder")}
        if self.counted is None:
            return wall
        return {name: min(flights, self.counted[name]) for name, flights in wall.items()}


async def _next_matched(node) -> float:
    async for event in node.events():
        if isinstance(event, events.Matched):
            return trio.current_time()
    raise AssertionError("events ended before matched")


async def measure_match(delay: float, *, optimistic: bool = True) -> MatchTimes:
    """Time A's proposal to a waiting B across the proxy, and the chat that follows."""
    from strangers.node import node as node_module

    quiet_library_logs()
    original_build_host = node_module.build_host
    if not optimistic:
        node_module.build_host = functools.partial(original_build_host, optimistic=False)
    try:
        # AutoNAT on, as a user runs: each node asks the other to dial it back while the
        # match goes on (a write cancelled then once desynced Noise: node/libp2p/securewrite.py)
        config = NodeConfig(listen=LOOPBACK, bootstrap=(), mdns=False, interests=("tea",))
        async with open_node(config) as waiting, open_node(config) as joining:
            port = int(waiting.host.get_transport_addrs()[0].value_for_protocol("tcp"))
            async with trio.open_nursery() as nursery:
                proxy = DelayProxy(PathSettings(delay), target=("127.0.0.1", port))
                proxy_port = await nursery.start(proxy.serve)
                info = PeerInfo(waiting.identity.peer_id,
                                [Multiaddr(f"/ip4/127.0.0.1/tcp/{proxy_port}")])
                responder_matched = trio.Event()
                times: dict[str, float] = {}
                counted: dict[str, int] = {}

                async def watch_responder() -> None:
                    times["responder"] = await _next_matched(waiting)
                    counted["matched_responder"] = proxy.flights.depth[SERVER]
                    responder_matched.set()

                nursery.start_soon(watch_responder)
                # both identity proofs minted first (proof of work: CPU, not flights)
                with trio.fail_after(600):
                    await waiting.safety.proof_ready.wait()
                    await joining.safety.proof_ready.wait()
                # what the lookup taught the node: the path's round trip (its timeouts follow)
                joining.matching.rtt.observe(None, 2 * delay, trio.current_time(), round_trips=1)
                with trio.fail_after(80 * delay + 20):
                    joining.matcher.stop()
                    joining.matcher.start_search(trio.current_time())
                    joining.matcher.propose(info.peer_id.to_bytes())
                    match_id = os.urandom(16)
                    proxy.flights.reset()
                    started = trio.current_time()
                    answer = await joining.matching.propose(info, match_id, ("tea",))
                    proposed = trio.current_time()
                    counted["proposal"] = proxy.flights.depth[CLIENT]
                    if not isinstance(answer, Accept):
                        raise AssertionError(f"the waiting node answered {answer!r}")
                    joining.matcher.proposal_accepted(info.peer_id.to_bytes())
                    joining.chats.start_initiator(info.peer_id, match_id, answer.interests)
                    matched = await _next_matched(joining)
                    counted["matched"] = proxy.flights.depth[CLIENT]
                    await responder_matched.wait()
                nursery.cancel_scope.cancel()
    finally:
        node_module.build_host = original_build_host
    return MatchTimes(delay, proposed - started, matched - started, times["responder"] - started,
                      counted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.1, help="one-way delay, seconds")
    parser.add_argument("--plain", action="store_true", help="py-libp2p's host without our savings")
    args = parser.parse_args(argv)
    times = trio.run(functools.partial(measure_match, args.delay, optimistic=not args.plain))
    print(json.dumps({"delay": args.delay, "optimistic": not args.plain,
                      "seconds": {"proposal": times.proposal, "matched": times.matched,
                                  "matched_responder": times.matched_responder},
                      "flights": times.flights(), "counted": times.counted}))


if __name__ == "__main__":
    main()
