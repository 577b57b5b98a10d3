"""One hostile peer (written from docs/protocol.md) floods a node with proposals while an
honest stranger searches: the honest one still matches, and the victim's buffers stay bounded.

The time the honest stranger takes is printed (``-s``) and only guarded generously here:
the figure is in docs/threat-model.md §3.8.
"""

from __future__ import annotations

import secrets
import time

import pytest
import trio

from hostile.peer import MATCH_PROTOCOL, StreamGone, open_hostile_peer
from hostile.pow import identity_proof, stamp
from hostile.wire import MAX_PROPOSAL_FRAME, frame, pack
from strangers.node import NodeConfig, events, open_node
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.safety import MAX_PENDING_PROPOSALS
from strangers.safety.limits import MAX_TRACKED, PROPOSALS

BITS = 8
LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
WAVES = 40
WAVE = 25


@pytest.fixture(autouse=True)
def price_on(monkeypatch):
    monkeypatch.setenv("STRANGERS_POW_BITS", str(BITS))


def _config(bootstrap=(), **kwargs) -> NodeConfig:
    return NodeConfig(listen=LOOPBACK, bootstrap=tuple(bootstrap), mdns=False, **kwargs)


async def _next(node, kind, timeout):
    with trio.fail_after(timeout):
        async for event in node.events():
            if isinstance(event, kind):
                return event
    raise AssertionError("event stream ended")


async def test_an_honest_stranger_matches_while_one_peer_floods():
    quiet_library_logs()
    outcome = {"sent": 0, "refused": 0, "answered": 0, "peak_pending": 0}
    async with open_node(_config(chat=False)) as server:
        boot = (server.addrs[0],)
        async with open_node(_config(boot, interests=("cinema",))) as victim, \
                open_hostile_peer() as mallory:
            await victim.safety.proof_ready.wait()
            victim_id = await mallory.connect(victim.addrs[0])
            me, target = mallory.peer_id.to_bytes(), victim_id.to_bytes()
            proof = identity_proof(me, BITS)

            async def one(index: int) -> None:
                match_id = secrets.token_bytes(16)
                body = {"t": "propose", "v": 1, "m": match_id, "i": ["zzz"]}
                if index % 2:  # half with a valid proof and stamp (for another interest)
                    body.update(p=proof, s=stamp(me, target, match_id, int(time.time()), BITS))
                outcome["sent"] += 1
                try:
                    stream = await mallory.open(victim_id, MATCH_PROTOCOL, MAX_PROPOSAL_FRAME)
                    await stream.write(frame(pack(body)))
                    with trio.move_on_after(5):
                        await stream.read_map()
                        outcome["answered"] += 1
                        return
                except (StreamGone, Exception) as exc:
                    outcome["refused"] += 1
                    outcome.setdefault("why", set()).add(type(exc).__name__ + str(exc)[:60])

            async def flood() -> None:
                for _ in range(WAVES):
                    async with trio.open_nursery() as wave:
                        for index in range(WAVE):
                            wave.start_soon(one, index)
                    outcome["peak_pending"] = max(outcome["peak_pending"], victim.safety.pending)
                    try:  # a flooding peer is cut off: it dials again, as an attacker would
                        await mallory.connect(victim.addrs[0])
                    except Exception:
                        pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await trio.sleep(0.5)  # the flood is on
                started = trio.current_time()
                async with open_node(_config(boot, interests=("cinema",))) as honest:
                    matched = await _next(honest, events.Matched, timeout=60)
                    took = trio.current_time() - started
                    assert matched.peer_id == victim.peer_id
                nursery.cancel_scope.cancel()
            print(f"\nhonest stranger matched in {took:.2f} s during the flood; {outcome}; "
                  f"victim refused {victim.safety.refused}, floods {victim.safety.proposals.floods}")
            assert outcome["sent"] >= WAVE
            assert victim.safety.proposals.floods >= 1  # found flooding, cut off and cooled
            assert victim.safety.refused >= PROPOSALS.strikes  # refused unread, then cut off
            assert outcome["answered"] <= PROPOSALS.burst
            assert victim.safety.pending <= MAX_PENDING_PROPOSALS
            assert outcome["peak_pending"] <= MAX_PENDING_PROPOSALS
            assert len(victim.safety.proposals) <= MAX_TRACKED
            assert victim.safety.refuses(mallory.peer_id) == "flooding"
