"""Helpers of the lobby integration tests: whole nodes in one process, each watched."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from strangers.node import NodeConfig, events, open_node
from strangers.node.libp2p.host import quiet_library_logs

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


def _config(bootstrap=(), **kwargs) -> NodeConfig:
    return NodeConfig(listen=LOOPBACK, bootstrap=tuple(bootstrap), mdns=False, chat=False,
                      **kwargs)


class Watch:
    """Every event of one node, kept (the node's one event consumer)."""

    def __init__(self, node) -> None:
        self.node = node
        self.events: list = []
        self.received: list[tuple[float, events.LobbyMessage]] = []
        self.changed = trio.Event()

    async def pump(self) -> None:
        async for event in self.node.events():
            self.events.append(event)
            if isinstance(event, events.LobbyMessage):
                self.received.append((time.perf_counter(), event))
            self.changed.set()
            self.changed = trio.Event()

    async def until(self, predicate, timeout: float) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await self.changed.wait()

    def members(self) -> int:
        counts = [e.count for e in self.events if isinstance(e, events.LobbyMembers)]
        return counts[-1] if counts else 0


@asynccontextmanager
async def lobby_network(*lobbies: str):
    """A serve node, then one lobby node per interest in ``lobbies``, each watched."""
    quiet_library_logs()
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(open_node(_config()))
        boot = (server.addrs[0],)
        nursery = await stack.enter_async_context(trio.open_nursery())
        watches = []
        for interest in lobbies:
            node = await stack.enter_async_context(
                open_node(_config(boot), lobby=(interest, "general")))
            watch = Watch(node)
            nursery.start_soon(watch.pump)
            watches.append(watch)
        yield watches
        nursery.cancel_scope.cancel()


async def meshed(watches, topic: str, timeout: float = 40.0) -> None:
    """Until every member's GossipSub mesh of ``topic`` holds 2 peers (or all others)."""
    want = min(2, len(watches) - 1)
    try:
        with trio.fail_after(timeout):
            while not all(len(w.node.lobby.pubsub.router.mesh.get(topic, ())) >= want
                          for w in watches):
                await trio.sleep(0.1)
    except trio.TooSlowError:
        raise trio.TooSlowError("meshes (mesh, topic peers, connected) " + repr([
            (len(w.node.lobby.pubsub.router.mesh.get(topic, ())),
             len(w.node.lobby.pubsub.peer_topics.get(topic, ())),
             len(w.node.lobby.host.get_connected_peers())) for w in watches])) from None


async def send_at(node, tag: str, count: int, rate: float) -> list[str]:
    """``count`` messages at ``rate`` per second; each carries its send time."""
    texts = []
    start = trio.current_time()
    for k in range(count):
        await trio.sleep_until(start + k / rate)
        text = f"{tag} {k} {time.perf_counter():.6f}"
        await node.send_lobby(text)
        texts.append(text)
    return texts
