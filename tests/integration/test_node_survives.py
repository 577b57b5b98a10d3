"""Integration: one failing walk, announcement, proposal, stream handler, chat or search
ends only itself; the node keeps running and still matches (issue 7, "Supervision").

Whole nodes (open_node) on 127.0.0.1 in one process; the failures are injected
by wrapping the real functions, so everything else is the real thing.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import trio

import strangers.node.conversation as conversation_module
from strangers.discovery.search import SearchPlanner
from strangers.node import NodeConfig, events, open_node
from strangers.node.chat import ChatSession
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.libp2p.kad import StrangersDHT
from strangers.node.matching import MatchService

from dhtnet import next_event

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


class Injected(RuntimeError):
    """The failure a test injects (nothing in the code expects it)."""


def _chat(boot: str, **settings) -> NodeConfig:
    settings.setdefault("interests", ("origami",))
    settings.setdefault("interests_only", True)
    return NodeConfig(listen=LOOPBACK, bootstrap=(boot,), mdns=False, **settings)


@asynccontextmanager
async def _server():
    quiet_library_logs()
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, chat=False)) as server:
        yield server.addrs[0]


def _fail_first(monkeypatch, owner, name: str, times: int, when=lambda *a, **k: True) -> list[int]:
    """Make ``owner.name`` raise :class:`Injected` on its first ``times`` calls that match ``when``."""
    original = getattr(owner, name)
    raised = [0]

    async def failing(*args, **kwargs):
        if raised[0] < times and when(*args, **kwargs):
            raised[0] += 1
            await trio.sleep(0)
            raise Injected(f"{name} failed (injected)")
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return raised


async def _match(a, b, timeout: float = 20) -> None:
    assert (await next_event(a, events.Matched, timeout)).peer_id == b.peer_id
    assert (await next_event(b, events.Matched, timeout)).peer_id == a.peer_id


async def test_failing_dht_walks_and_announcements_do_not_stop_the_search(monkeypatch):
    walks = _fail_first(monkeypatch, StrangersDHT, "lookup", 3,
                        when=lambda *args, **kwargs: kwargs.get("providers"))
    announcements = _fail_first(monkeypatch, StrangersDHT, "provide", 2)
    async with _server() as boot:
        async with open_node(_chat(boot)) as waiter:
            await next_event(waiter, events.Advertised)
            async with open_node(_chat(boot)) as joiner:
                await _match(waiter, joiner)
    assert walks == [3] and announcements == [2]


async def test_a_failing_proposal_is_one_unanswered_candidate(monkeypatch):
    proposals = _fail_first(monkeypatch, MatchService, "propose", 1)
    async with _server() as boot:
        async with open_node(_chat(boot)) as waiter:
            await next_event(waiter, events.Advertised)
            async with open_node(_chat(boot)) as joiner:
                await _match(waiter, joiner)
                assert joiner.statistics().state == "matched"
    assert proposals == [1]


async def test_a_match_stream_handler_that_raises_resets_only_its_stream(monkeypatch):
    handled = _fail_first(monkeypatch, MatchService, "handle_stream", 1)
    async with _server() as boot:
        async with open_node(_chat(boot)) as waiter:
            await next_event(waiter, events.Advertised)
            async with open_node(_chat(boot)) as joiner:
                await _match(waiter, joiner)  # the second proposal, after the skip
    assert handled == [1]


async def test_a_search_that_fails_is_started_again(monkeypatch):
    planned = _fail_first_sync(monkeypatch, SearchPlanner, "next", 1)
    async with _server() as boot:
        async with open_node(_chat(boot)) as waiter:
            await next_event(waiter, events.Advertised)
            async with open_node(_chat(boot)) as joiner:
                await _match(waiter, joiner)
    assert planned == [1]


def _fail_first_sync(monkeypatch, owner, name: str, times: int) -> list[int]:
    original = getattr(owner, name)
    raised = [0]

    def failing(*args, **kwargs):
        if raised[0] < times:
            raised[0] += 1
            raise Injected(f"{name} failed (injected)")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return raised


async def test_a_chat_that_fails_unexpectedly_ends_alone_and_the_node_matches_again(monkeypatch):
    """The chat's own task raises an ExceptionGroup (as trio >= 0.25 nurseries do)
    once the chat is established: that chat ends with stranger_left "error", the
    node searches again and matches the next stranger."""
    victim: list = []  # the node whose first chat fails
    failed: list = []

    class FailingSession(ChatSession):
        def __init__(self, stream, connection, *, on_event, on_established, **options):
            super().__init__(stream, connection, on_event=on_event, on_established=on_established,
                             **options)
            self.fails = getattr(on_event, "__self__", None) in victim and not failed
            if self.fails:
                failed.append(self)

        async def run(self):
            async with trio.open_nursery() as nursery:
                async def fail_once_established():
                    await self.established.wait()
                    raise Injected("the chat failed (injected)")

                if self.fails:
                    nursery.start_soon(fail_once_established)
                end = await super().run()
                nursery.cancel_scope.cancel()
            return end

    monkeypatch.setattr(conversation_module, "ChatSession", FailingSession)
    async with _server() as boot:
        async with open_node(_chat(boot)) as a:
            victim.append(a)
            await next_event(a, events.Advertised)
            async with open_node(_chat(boot, auto_next=False)) as b:
                await _match(a, b)
                error = await next_event(a, events.Error)
                assert "injected" in error.message
                left = await next_event(a, events.StrangerLeft)
                assert (left.reason, left.by_us) == ("error", False)
                assert (await next_event(b, events.StrangerLeft)).reason in ("disconnected", "error")
                assert a.statistics().state in ("searching", "proposing")
                async with open_node(_chat(boot)) as c:
                    await _match(a, c)
    assert len(failed) == 1


async def test_a_failed_dial_before_the_proposal_does_not_refuse_it():
    """py-libp2p refuses every dial to a peer for a while after one failed ("recently failed
    all addresses"), e.g. a DHT walk's dial to an address the peer no longer holds. The
    proposal to that peer, with the addresses its record just gave, still dials (seen in
    CI: a stranger behind a port forward was refused by the joiner's negative cache)."""
    async with _server() as boot:
        async with open_node(_chat(boot)) as waiter:
            await next_event(waiter, events.Advertised)

            async with open_node(_chat(boot)) as joiner:
                # as if a walk had just failed to dial the waiter at the addresses it holds
                joiner.host.get_peerstore().add_addrs(
                    waiter.host.get_id(), waiter.host.get_transport_addrs(), 600)
                joiner.host.get_network()._negative_peer_cache.mark_failed(str(waiter.peer_id))
                matched = await next_event(joiner, events.Matched, 20)
                assert matched.peer_id == waiter.peer_id and matched.initiator
