"""The delaying proxy on loopback: it delays, keeps order, stalls on "loss", passes EOF, stops.

Real sockets and the real clock (delays of 50-100 ms): every bound checked
has slack on the late side only, since the proxy must never be early.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from delayproxy import DelayProxy, PathSettings

SLACK = 0.08


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        try:
            async for data in stream:
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass


async def _echo_server(nursery: trio.Nursery) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, _echo, listeners)
    return listeners[0].socket.getsockname()[1]


async def _proxy(nursery: trio.Nursery, settings: PathSettings, target_port: int,
                 rng: random.Random | None = None) -> tuple[DelayProxy, int, trio.CancelScope]:
    proxy = DelayProxy(settings, target=("127.0.0.1", target_port), rng=rng)
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await proxy.serve(task_status=task_status)

    port = await nursery.start(run)
    return proxy, port, scope


async def _round_trip(stream: trio.SocketStream, payload: bytes) -> float:
    started = trio.current_time()
    await stream.send_all(payload)
    got = b""
    while len(got) < len(payload):
        got += await stream.receive_some(65536)
    assert got == payload
    return trio.current_time() - started


async def test_it_delays_each_direction_and_the_handshake():
    delay = 0.05
    async with trio.open_nursery() as nursery:
        echo = await _echo_server(nursery)
        _proxy_, port, _scope = await _proxy(nursery, PathSettings(delay), echo)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        first = await _round_trip(stream, b"ping")
        second = await _round_trip(stream, b"pong")
        await stream.aclose()
        nursery.cancel_scope.cancel()
    # a new connection: one round trip of handshake, then the request's
    assert 4 * delay <= first < 4 * delay + SLACK
    assert 2 * delay <= second < 2 * delay + SLACK


async def test_no_handshake_round_trip_when_switched_off():
    delay = 0.05
    async with trio.open_nursery() as nursery:
        echo = await _echo_server(nursery)
        _proxy_, port, _scope = await _proxy(nursery, PathSettings(delay, handshake=False), echo)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        first = await _round_trip(stream, b"ping")
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert 2 * delay <= first < 2 * delay + SLACK


async def test_jitter_never_reorders_bytes():
    payload = b"".join(b"%06d," % n for n in range(3000))
    async with trio.open_nursery() as nursery:
        echo = await _echo_server(nursery)
        settings = PathSettings(0.02, jitter=0.02, handshake=False)
        proxy, port, _scope = await _proxy(nursery, settings, echo, random.Random(7))
        stream = await trio.open_tcp_stream("127.0.0.1", port)

        async def send() -> None:
            for start in range(0, len(payload), 700):  # many small chunks, each with its own delay
                await stream.send_all(payload[start:start + 700])
                await trio.sleep(0.001)

        nursery.start_soon(send)
        got = b""
        with trio.fail_after(10):
            while len(got) < len(payload):
                got += await stream.receive_some(65536)
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert got == payload
    assert proxy.stats.chunks > 20


class AlwaysLose(random.Random):
    """Every chunk is "lost", no jitter."""

    def random(self) -> float:
        return 0.0


async def test_a_lost_chunk_stalls_its_direction():
    delay, stall = 0.03, 0.1
    async with trio.open_nursery() as nursery:
        echo = await _echo_server(nursery)
        settings = PathSettings(delay, loss=0.5, stall=stall, handshake=False)
        proxy, port, _scope = await _proxy(nursery, settings, echo, AlwaysLose())
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        took = await _round_trip(stream, b"hello")
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert 2 * (delay + stall) <= took < 2 * (delay + stall) + SLACK
    assert proxy.stats.stalls >= 2


async def test_end_of_stream_is_passed_on_in_order():
    received: list[bytes] = []
    done = trio.Event()

    async def sink(stream: trio.SocketStream) -> None:
        async with stream:
            async for data in stream:
                received.append(data)
            done.set()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, sink, listeners)
        target = listeners[0].socket.getsockname()[1]
        _proxy_, port, _scope = await _proxy(nursery, PathSettings(0.02), target)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"last words")
        await stream.send_eof()
        with trio.fail_after(5):
            await done.wait()
            assert await stream.receive_some(10) == b""  # the server closed: EOF back to us
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert b"".join(received) == b"last words"


async def test_it_stops_listening_and_closes_its_connections():
    async with trio.open_nursery() as nursery:
        echo = await _echo_server(nursery)
        _proxy_, port, scope = await _proxy(nursery, PathSettings(0.01), echo)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await _round_trip(stream, b"before")
        scope.cancel()
        with trio.fail_after(5):
            try:
                assert await stream.receive_some(10) == b""
            except trio.BrokenResourceError:
                pass  # a reset is as good as an EOF here
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_refused_onward_connection_resets_the_client():
    async with trio.open_nursery() as nursery:
        with trio.socket.socket() as probe:  # a port nobody listens on
            await probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()[1]
        proxy, port, _scope = await _proxy(nursery, PathSettings(0.01), dead)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(5):
            try:
                assert await stream.receive_some(10) == b""
            except trio.BrokenResourceError:
                pass
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert proxy.stats.failed_connects == 1


@pytest.mark.parametrize("bad", [{"delay": -1.0}, {"delay": 0.1, "loss": 1.0},
                                 {"delay": 0.1, "jitter": -0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="bad path settings"):
        PathSettings(**bad)


def test_settings_for_a_round_trip_time():
    assert PathSettings.for_rtt(0.3, loss=0.01).delay == pytest.approx(0.15)


async def test_an_answer_sent_before_the_request_send_returns_counts_a_flight_deeper(autojump_clock):
    """The flight clock counts a chunk as delivered before it is sent: a peer on loopback can
    answer, and the proxy read that answer, while ``send_all`` has not returned yet (a
    js-libp2p echo did, in CI, and the request counted 1 flight instead of 2)."""
    from delayproxy import CLIENT, SERVER

    proxy = DelayProxy(PathSettings(0.1))
    to_client_sink, client_inbox = trio.testing.memory_stream_pair()
    answers, server_outbox = trio.testing.memory_stream_pair()
    client_outbox, requests = trio.testing.memory_stream_pair()

    class EagerServer:
        """A sink whose peer answers before send_all returns (yields once in between)."""

        async def send_all(self, data: bytes) -> None:
            await server_outbox.send_all(b"re:" + data)
            await trio.sleep(0.001)

        async def send_eof(self) -> None:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(proxy._pipe, requests, EagerServer(), CLIENT)
        nursery.start_soon(proxy._pipe, answers, to_client_sink, SERVER)
        proxy.flights.reset()
        await client_outbox.send_all(b"hi")
        assert await client_inbox.receive_some(100) == b"re:hi"
        assert proxy.flights.depth[CLIENT] == 2
        nursery.cancel_scope.cancel()
