"""Round trips counted through the delaying proxy: what optimistic multistream-select saves.

The proxy delays every chunk by a fixed ``DELAY`` each way; a phase costs
``floor(elapsed / DELAY)`` one-way flights (``tests/netsim/roundtrips.py``),
exact while the CPU time of a phase stays under ``DELAY``. Two flights are a
round trip. The plain host (py-libp2p as it comes) shows the test counts
what it claims to: it pays the round trips we save.
"""

from __future__ import annotations

import functools
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from multiaddr import Multiaddr

from strangers import preconnect
from strangers.node.identity import fresh_identity
from strangers.node.libp2p import multistream
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host
from strangers.node.libp2p.streamio import StreamEnded, read_exactly

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from delayproxy import CLIENT, DelayProxy, PathSettings  # noqa: E402
from matchtrips import measure_match  # noqa: E402
from roundtrips import (  # noqa: E402
    ECHO,
    LOOPBACK,
    _settle,
    echo_handler,
    measure_phases,
    request,
)

DELAY = 0.2
"""One-way delay: far above the CPU time of a phase on a loaded machine."""
MATCH_DELAY = 0.4
"""For whole nodes in one process: their searches and identify share the CPU with the match."""

optimistic = functools.partial(build_host, optimistic=True)
plain = functools.partial(build_host, optimistic=False)


def _hosts(dialer, listener):
    return {"dialer_factory": lambda: dialer(fresh_identity()),
            "listener_factory": lambda: listener(fresh_identity())}


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


async def test_a_fresh_connection_answers_a_request_in_three_round_trips():
    """TCP; multistream + Noise's first message -> Noise's answer; Noise's last message +
    muxer + stream + request -> answer. A stream on the open connection: one round trip."""
    phases = await measure_phases(DELAY, **_hosts(optimistic, optimistic))
    assert phases.flights() == {"fresh": 6, "stream": 2, "request": 2}


async def test_the_plain_library_pays_nine_round_trips_and_three_per_stream():
    phases = await measure_phases(DELAY, **_hosts(plain, plain))
    flights = phases.flights()
    assert flights["fresh"] >= 16 and flights["stream"] == 6 and flights["request"] == 2


async def test_a_plain_listener_understands_optimistic_proposals():
    """Only the dialer changes: a peer that knows nothing of it (any libp2p) answers as usual."""
    phases = await measure_phases(DELAY, **_hosts(optimistic, plain))
    assert phases.flights() == {"fresh": 6, "stream": 2, "request": 2}


async def test_a_plain_dialer_is_answered():
    phases = await measure_phases(0.01, **_hosts(plain, optimistic))
    assert phases.fresh > 0


@asynccontextmanager
async def _connected():
    """A dialer connected to a listener that answers ECHO: (dialer, the listener's PeerInfo)."""
    dialer, listener = build_host(fresh_identity()), build_host(fresh_identity())
    listener.set_stream_handler(ECHO, echo_handler)
    async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]):
        info = PeerInfo(listener.get_id(), listener.get_transport_addrs())
        with trio.fail_after(10):
            await dialer.connect(info)
            yield dialer, info


async def test_a_refused_protocol_fails_the_stream_cleanly_and_the_connection_lives_on(monkeypatch):
    # Sent early whatever identify said (may_send_early has its own test): the refusal path.
    monkeypatch.setattr(multistream, "may_send_early", lambda *_args: True)
    async with _connected() as (dialer, info):
        stream = await dialer.new_stream(info.peer_id, [TProtocol("/strangers/nobody/1.0.0")])
        assert multistream.echo_pending(stream)
        with pytest.raises(StreamEnded, match="does not support /strangers/nobody/1.0.0"):
            await read_exactly(stream, 4)
        with pytest.raises(StreamEnded, match="does not support"):  # and stays failed
            await read_exactly(stream, 4)
        await stream.reset()
        # A request sent before the refusal is known: the listener reads it as the next
        # protocol name and may reset the stream before its "na" is read; failed either way.
        stream = await dialer.new_stream(info.peer_id, [TProtocol("/strangers/nobody/1.0.0")])
        await stream.write(b"\x00\x00\x00\x02hi")
        with pytest.raises(StreamEnded):
            await read_exactly(stream, 4)
        await stream.reset()
        stream = await dialer.new_stream(info.peer_id, [ECHO])
        assert await request(stream) == b"hello"
        assert not multistream.echo_pending(stream)


async def _identified(host, peer_id, protocol) -> None:
    while protocol not in host.get_peerstore().supports_protocols(peer_id, [protocol]):
        await trio.sleep(0.01)


async def test_data_goes_early_only_to_a_peer_known_to_speak_the_protocol():
    """As go-libp2p does: after identify, a protocol the peer did not list is negotiated
    (its refusal arrives before any data of ours), a listed one is sent early."""
    async with _connected() as (dialer, info):
        await _identified(dialer, info.peer_id, str(ECHO))
        with pytest.raises(StreamFailure, match="failed to open a stream"):  # at once, before any data
            await dialer.new_stream(info.peer_id, [TProtocol("/strangers/nobody/1.0.0")])
        stream = await dialer.new_stream(info.peer_id, [ECHO])
        assert multistream.echo_pending(stream)
        assert await request(stream) == b"hello"


class _Peerstore:
    def __init__(self, known):
        self.known = known

    def get_protocols(self, _peer_id):
        if self.known is None:
            raise KeyError("peer ID not found")
        return self.known


class _Host:
    def __init__(self, known):
        self.store = _Peerstore(known)

    def get_peerstore(self):
        return self.store


@pytest.mark.parametrize(("known", "protocol", "early"), [
    (None, "/strangers/match/2.0.0", True),           # not identified yet: found as a strangers node
    ([], "/strangers/kad/1.0.0", True),
    (None, "/ipfs/kad/1.0.0", False),                 # a foreign protocol: negotiated
    (["/ipfs/id/1.0.0"], "/strangers/kad/1.0.0", False),  # identified, not listed
    (["/ipfs/kad/1.0.0"], "/ipfs/kad/1.0.0", True),   # identified and listed
])
def test_when_data_may_ride_with_the_proposal(known, protocol, early):
    assert multistream.may_send_early(_Host(known), "peer", protocol) is early


async def test_several_protocols_are_negotiated_with_the_first_proposal_pipelined():
    async with _connected() as (dialer, info):
        stream = await dialer.new_stream(info.peer_id, [TProtocol("/strangers/nobody/1.0.0"), ECHO])
        assert stream.get_protocol() == ECHO and not multistream.echo_pending(stream)
        assert await request(stream) == b"hello"
        stream = await dialer.new_stream(info.peer_id, [ECHO, TProtocol("/strangers/nobody/1.0.0")])
        assert await request(stream) == b"hello"


async def _refusing_listener(server: trio.SocketStream) -> None:
    """Speaks multistream-select and refuses every security protocol, as docs/protocol.md §2 allows."""
    async with server:
        await server.send_all(b"\x13/multistream/1.0.0\n")
        try:
            while True:
                data = await server.receive_some(4096)
                if not data:
                    return
                await server.send_all(b"\x03na\n")
        except trio.BrokenResourceError:
            pass


async def test_a_peer_that_refuses_noise_fails_the_dial_at_once():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    dialer = build_host(fresh_identity())
    target = build_host(fresh_identity())  # only for a peer id
    async with trio.open_nursery() as nursery, running_host(dialer, [LOOPBACK]):
        nursery.start_soon(trio.serve_listeners, _refusing_listener, listeners)
        info = PeerInfo(target.get_id(), [Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")])
        with trio.fail_after(5):
            with pytest.raises(Exception) as failure:
                await dialer.connect(info)
        assert not isinstance(failure.value, trio.TooSlowError)
        assert "failed to negotiate the secure protocol" in repr(failure.value.__cause__)
        assert dialer.get_network().get_connections(target.get_id()) == []
        nursery.cancel_scope.cancel()


def test_the_proposal_is_the_header_and_the_protocol_in_one_write():
    assert multistream.proposal("/noise") == b"\x13/multistream/1.0.0\n\x07/noise\n"
    # the flight a launch sends before its imports starts with the same bytes (preconnect)
    assert preconnect.first_flight(bytes(32)).startswith(multistream.proposal(str(NOISE)))


async def _seed_dial_flights(early_flight: bool) -> int:
    """Flights from the host's dial of a seed (through the proxy) to its first answer, when
    the executable started the connection (and, with ``early_flight``, sent its first
    flight) before its imports, simulated by waiting until that work is done."""
    dialer, listener = build_host(fresh_identity()), build_host(fresh_identity())
    listener.set_stream_handler(ECHO, echo_handler)
    preconnect.close_all()
    async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]):
        port = int(listener.get_transport_addrs()[0].value_for_protocol("tcp"))
        async with trio.open_nursery() as nursery:
            proxy = DelayProxy(PathSettings(DELAY), target=("127.0.0.1", port))
            proxy_port = await nursery.start(proxy.serve)
            addr = Multiaddr(f"/ip4/127.0.0.1/tcp/{proxy_port}/p2p/{listener.get_id()}")
            with trio.fail_after(60 * DELAY + 10):
                assert preconnect.start([str(addr)], early_flight=early_flight) == 1
                early = next(iter(preconnect._open.values()))
                # "the imports": until the TCP handshake is through and, with the first
                # flight, the seed's answer to it is in our socket
                while proxy.flights.depth[CLIENT] < 2 or (early_flight and not _readable(early)):
                    await trio.sleep(0.01)
                await _settle(proxy, DELAY)
                await dialer.connect(PeerInfo(listener.get_id(), [addr]))
                stream = await dialer.new_stream(listener.get_id(), [ECHO])
                assert await request(stream) == b"hello"
                flights = proxy.flights.depth[CLIENT]
            nursery.cancel_scope.cancel()
    preconnect.close_all()
    return flights


def _readable(early: preconnect.Early) -> bool:
    try:
        return bool(early.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


async def test_a_first_flight_sent_during_the_imports_leaves_one_round_trip_to_the_first_answer():
    """The executable's early connection (strangers.preconnect): with its first flight sent
    during the imports, Noise's last message + muxer + stream + request -> the answer is all
    the dial still waits for. With the TCP handshake alone done early, Noise's first exchange
    is one round trip more."""
    assert await _seed_dial_flights(early_flight=True) == 2
    assert await _seed_dial_flights(early_flight=False) == 4


async def test_a_waiting_stranger_is_matched_in_four_round_trips_after_the_lookup():
    """TCP; Noise's first exchange; Noise's last message + match stream + Propose (with the chat
    commit) -> Accept (with the responder's hello); chat stream + hello + finished -> finished.
    The responder is matched half a round trip earlier. (py-libp2p as it comes, with the whole
    handshake on the chat stream: ~13.5 round trips, docs/performance.md.)"""
    times = await measure_match(MATCH_DELAY)
    assert times.flights() == {"proposal": 6, "matched": 8, "matched_responder": 7}


class _HeaderThenNothing:
    """A connection whose peer sent the multistream header, then nothing."""

    def __init__(self) -> None:
        self.data = bytearray(b"\x13/multistream/1.0.0\n")

    async def read(self, n: int | None = None) -> bytes:
        if not self.data:
            await trio.sleep_forever()
        count = len(self.data) if n is None else min(n, len(self.data))
        chunk = bytes(self.data[:count])
        del self.data[:count]
        return chunk


async def test_a_read_cancelled_during_the_echo_fails_the_stream_instead_of_misreading_it(autojump_clock):
    conn = _HeaderThenNothing()
    multistream.defer_echo(conn, "/strangers/echo/1.0.0")
    with trio.move_on_after(1):  # the header is read, then the wait for the answer is cancelled
        await conn.read(4)
    assert not conn.data and multistream.echo_pending(conn)
    conn.data += b"\x16/strangers/echo/1.0.0\n"  # the answer arrives: too late, the header is gone
    with pytest.raises(multistream.ProtocolRefused, match="cancelled while the protocol echo came in"):
        await conn.read(4)
