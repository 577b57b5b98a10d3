"""Optimistic multistream-select against js-libp2p (``tests/foreign/dialer/``, Node 20+).

Our dials propose the security protocol, the muxer and each stream's
protocol without waiting for the echo; a js-libp2p listener (which knows
nothing of it) must understand them, and answer as fast as our own listener
does. A js-libp2p dialer must reach our handlers. Skipped, with the reason,
where node or npm is missing; ``npm ci`` runs once when the packages are not
installed yet.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers import preconnect
from strangers.node.identity import fresh_identity
from strangers.node.libp2p import multistream, predial
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host
from strangers.node.libp2p.streamio import StreamEnded, read_exactly

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "netsim"))
sys.path.insert(0, str(TESTS / "foreign"))
from jsdialer import ECHO, JsEchoPeer, Unavailable, install  # noqa: E402
from roundtrips import LOOPBACK, echo_handler, measure_phases_to, request  # noqa: E402

DELAY = 0.3


@pytest.fixture(scope="module")
def js_peer():
    try:
        install()
    except Unavailable as exc:
        pytest.skip(str(exc))
    peer = JsEchoPeer()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


async def _warm_up(js_peer) -> None:
    """One exchange without delays first: Node's first connection costs ~0.2 s of compilation."""
    host = build_host(fresh_identity())
    async with running_host(host, [LOOPBACK]):
        info = PeerInfo(ID.from_base58(js_peer.peer_id), [Multiaddr(f"/ip4/127.0.0.1/tcp/{js_peer.port}")])
        with trio.fail_after(20):
            await host.connect(info)
            assert await request(await host.new_stream(info.peer_id, [TProtocol(ECHO)])) == b"hello"


async def test_a_js_listener_answers_our_optimistic_dial_in_three_round_trips(js_peer):
    assert ECHO in js_peer.protocols
    await _warm_up(js_peer)
    phases = await measure_phases_to(build_host(fresh_identity()), ID.from_base58(js_peer.peer_id),
                                     js_peer.port, DELAY, TProtocol(ECHO))
    assert phases.flights() == {"fresh": 6, "stream": 2, "request": 2}


async def test_a_js_listener_takes_the_first_flight_sent_before_the_imports(js_peer):
    """strangers.preconnect sends multistream-select's /noise and Noise's first message as soon
    as the TCP connect completes; a js-libp2p seed answers it, and the host's dial goes on
    from there (predial) to a working connection."""
    await _warm_up(js_peer)
    host = build_host(fresh_identity())
    addr = Multiaddr(f"/ip4/127.0.0.1/tcp/{js_peer.port}/p2p/{js_peer.peer_id}")
    preconnect.close_all()
    try:
        async with running_host(host, [LOOPBACK]):
            with trio.fail_after(20):
                assert preconnect.start([str(addr)]) == 1
                while not all(early.sent for early in preconnect._open.values()):
                    await trio.sleep(0.01)
                await trio.sleep(0.2)  # the imports: the js peer's Noise answer comes in
                info = PeerInfo(ID.from_base58(js_peer.peer_id), [addr])
                await host.connect(info)
                assert predial.handshake_seconds(info.addrs) is not None
                assert await request(await host.new_stream(info.peer_id, [TProtocol(ECHO)])) == b"hello"
    finally:
        preconnect.close_all()


async def test_a_protocol_the_js_peer_refuses_fails_our_stream_cleanly(js_peer, monkeypatch):
    # Sent early whatever identify said: the lazy refusal path (after identify the
    # stream would be negotiated and refused before any data, test_round_trips.py).
    monkeypatch.setattr(multistream, "may_send_early", lambda *_args: True)
    dialer = build_host(fresh_identity())
    async with running_host(dialer, [LOOPBACK]):
        info = PeerInfo(ID.from_base58(js_peer.peer_id), [Multiaddr(f"/ip4/127.0.0.1/tcp/{js_peer.port}")])
        with trio.fail_after(20):
            await dialer.connect(info)
            stream = await dialer.new_stream(info.peer_id, [TProtocol("/strangers/nobody/1.0.0")])
            await stream.write(b"\x00\x00\x00\x02hi")
            # js answers "na", then resets the stream (our request is no protocol name to it):
            # either way the read fails, with no data taken for the protocol's
            with pytest.raises(StreamEnded):
                await read_exactly(stream, 4)
            await stream.reset()
            stream = await dialer.new_stream(info.peer_id, [TProtocol(ECHO)])  # the connection lives on
            assert await request(stream) == b"hello"


async def test_a_js_dialer_reaches_our_handlers(js_peer):
    listener = build_host(fresh_identity())
    listener.set_stream_handler(TProtocol(ECHO), echo_handler)
    async with running_host(listener, [LOOPBACK]):
        addr = f"{listener.get_transport_addrs()[0]}/p2p/{listener.get_id().to_base58()}"
        payload = b"\x00\x00\x00\x05" + os.urandom(5)
        with trio.fail_after(30):
            reply = await trio.to_thread.run_sync(js_peer.echo_from, addr, payload)
        assert reply == {"echo": payload.hex()}
        # js-libp2p lists its muxers in Noise: both sides started Yamux with no
        # multistream-select (earlymuxer), or this connection would not have worked
        connection = listener.get_network().get_connections(ID.from_base58(js_peer.peer_id))[0]
        assert connection.muxed_conn.secured_conn.early_muxer == "/yamux/1.0.0"


async def test_a_js_listener_and_we_choose_the_muxer_inside_noise(js_peer):
    await _warm_up(js_peer)
    host = build_host(fresh_identity())
    async with running_host(host, [LOOPBACK]):
        info = PeerInfo(ID.from_base58(js_peer.peer_id), [Multiaddr(f"/ip4/127.0.0.1/tcp/{js_peer.port}")])
        with trio.fail_after(20):
            await host.connect(info)
            assert await request(await host.new_stream(info.peer_id, [TProtocol(ECHO)])) == b"hello"
        connection = host.get_network().get_connections(info.peer_id)[0]
        assert connection.muxed_conn.secured_conn.early_muxer == "/yamux/1.0.0"
