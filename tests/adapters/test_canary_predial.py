"""Canary for ``strangers.node.libp2p.predial``: a host's dial takes the connection started early.

py-libp2p 0.8.1's TCP transport opens every dial's socket in
``TCP._dial_resolved`` (``trio.open_tcp_stream``), called with no source port
for a plain dial; the wrap there hands it the socket ``strangers.preconnect``
started instead. These tests dial real hosts on loopback.
"""

from __future__ import annotations

import inspect
import socket
import sys
from pathlib import Path

import pytest
import trio
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.exceptions import SwarmException
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.patterns import PatternXX
from libp2p.transport.tcp import tcp as library_tcp
from multiaddr import Multiaddr
from noise.state import HandshakeState

from strangers import preconnect
from strangers.node.identity import fresh_identity
from strangers.node.libp2p import predial
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host

from canary import changed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from roundtrips import ECHO, LOOPBACK, echo_handler, request  # noqa: E402


@pytest.fixture(autouse=True)
def _clean():
    quiet_library_logs()
    preconnect.close_all()
    yield
    preconnect.close_all()


async def test_a_dial_takes_the_connection_started_before_and_carries_streams() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    server.set_stream_handler(ECHO, echo_handler)
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            info = info_from_p2p_addr(server.get_addrs()[0])
            assert preconnect.start([str(server.get_addrs()[0])], early_flight=False) == 1
            early_port = next(iter(preconnect._open.values())).sock.getsockname()[1]
            await client.connect(info)
            assert preconnect.waiting() == [], changed(
                "predial", "the TCP transport no longer dials through TCP._dial_resolved")
            assert predial.adopted(info.addrs)
            while not server.get_network().get_connections(client.get_id()):
                await trio.sleep(0.01)  # the server's side of the upgrade ends a moment later
            connections = server.get_network().get_connections(client.get_id())
            assert len(connections) == 1  # one TCP connection: the early one
            assert connections[0].muxed_conn.get_remote_address()[1] == early_port
            stream = await client.new_stream(server.get_id(), [ECHO])
            assert await request(stream) == b"hello"


async def test_a_connection_that_failed_fails_the_dial_at_once() -> None:
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    port = gone.getsockname()[1]
    gone.close()  # nobody listens there any more
    server_id = fresh_identity().peer_id
    client = build_host(fresh_identity())
    addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{server_id}"
    with trio.fail_after(10):
        async with running_host(client, [LOOPBACK]):
            assert preconnect.start([addr]) == 1  # refused later, in the adoption
            await trio.to_thread.run_sync(_sender_done)  # it read (and cleared) the error
            with pytest.raises(SwarmException):  # the swarm's own error for a refused dial
                await client.connect(info_from_p2p_addr(Multiaddr(addr)))
    assert preconnect.waiting() == []


def _sender_done() -> None:
    if preconnect._sender is not None:
        preconnect._sender.join(5)


async def _flight_sent() -> None:
    """Wait until the sender thread sent every started connection's first flight."""
    while any(not early.sent for early in preconnect._open.values()):
        await trio.sleep(0.01)


async def test_a_dial_goes_on_from_the_first_flight_sent_before_and_sends_it_once() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    server.set_stream_handler(ECHO, echo_handler)
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            info = info_from_p2p_addr(server.get_addrs()[0])
            assert preconnect.start([str(server.get_addrs()[0])]) == 1
            await _flight_sent()
            # the server answered it meanwhile: Noise's second message waits in our socket
            await client.connect(info)
            assert preconnect.waiting() == []
            connection = client.get_network().get_connections(server.get_id())[0]
            raw = connection.muxed_conn.secured_conn.conn.read_writer.read_write_closer
            assert isinstance(raw, predial.EarlyRawConnection), changed(
                "predial", "the secure connection no longer reads and writes the raw one")
            assert raw.already == b"" and raw.early_ephemeral is None  # all of it was dropped
            assert predial.handshake_seconds(info.addrs) is not None
            stream = await client.new_stream(server.get_id(), [ECHO])
            assert await request(stream) == b"hello"


async def test_other_bytes_than_the_flight_fail_the_dial() -> None:
    class Sink:
        written = b""

        async def write(self, data: bytes) -> None:
            self.written += data

    flight = preconnect.first_flight(bytes(32))
    raw = predial.EarlyRawConnection(Sink(), already=flight, ephemeral=bytes(32))
    await raw.write(flight[:10])
    await raw.write(flight[10:] + b"more")
    assert raw.stream.written == b"more"  # the flight once, then what follows it
    raw = predial.EarlyRawConnection(Sink(), already=flight, ephemeral=bytes(32))
    with pytest.raises(RawConnError):
        await raw.write(b"\x13/multistream/1.0.0\n\x08/noise2\n")
    assert raw.stream.written == b""


def test_the_library_writes_noises_first_message_with_the_handshakes_ephemeral_key() -> None:
    predial.install()
    code = PatternXX.handshake_outbound.original.__code__  # type: ignore[attr-defined]
    assert "create_noise_state" in code.co_names and "start_handshake" in code.co_names, changed(
        "predial", "PatternXX.handshake_outbound no longer starts its handshake as the wrap expects")
    handshake = inspect.getsource(HandshakeState.write_message)
    assert "isinstance(self.e, Empty) else self.e" in handshake, changed(
        "predial", "noiseprotocol no longer keeps an ephemeral key set on the handshake state")


def test_the_library_opens_a_plain_dial_in_dial_resolved() -> None:
    predial.install()
    assert predial.installed()
    original = library_tcp.TCP._dial_resolved.original  # type: ignore[attr-defined]
    code = original.__code__
    assert "open_tcp_stream" in code.co_names and "source" in code.co_varnames, changed(
        "predial", "TCP._dial_resolved no longer opens the socket of a dial")
