"""Canary for ``strangers.node.libp2p.earlymuxer``: the muxer chosen inside Noise.

py-libp2p 0.8.1 carries the Noise spec's ``stream_muxers`` extension in its
payloads but acts on none of it; our hosts list Yamux and, when the peer
listed it too, start it with no multistream-select. These tests run real
hosts on loopback: ours with ours, ours with py-libp2p as it comes (no list:
multistream-select, as before), both ways.
"""

from __future__ import annotations

import functools
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise import patterns
from libp2p.security.noise.messages import NoiseExtensions, NoiseHandshakePayload

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import earlymuxer
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host

from canary import changed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from roundtrips import ECHO, LOOPBACK, echo_handler, request  # noqa: E402

ours = functools.partial(build_host, optimistic=True)
plain = functools.partial(build_host, optimistic=False)
YAMUX = "/yamux/1.0.0"


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


def _session(host, peer_id):
    connections = host.get_network().get_connections(peer_id)
    assert connections, "no connection"
    return connections[0].muxed_conn.secured_conn


async def _pair(dialer_factory, listener_factory):
    """Connect a dialer to a listener; (early muxer on the dialer's side, on the listener's)."""
    dialer, listener = dialer_factory(fresh_identity()), listener_factory(fresh_identity())
    listener.set_stream_handler(ECHO, echo_handler)
    with trio.fail_after(20):
        async with running_host(listener, [LOOPBACK]), running_host(dialer, [LOOPBACK]):
            info = PeerInfo(listener.get_id(), listener.get_transport_addrs())
            await dialer.connect(info)
            assert await request(await dialer.new_stream(info.peer_id, [ECHO])) == b"hello"
            while not listener.get_network().get_connections(dialer.get_id()):
                await trio.sleep(0.01)
            return (getattr(_session(dialer, listener.get_id()), "early_muxer", None),
                    getattr(_session(listener, dialer.get_id()), "early_muxer", None))


async def test_two_strangers_hosts_choose_yamux_inside_the_handshake():
    assert await _pair(ours, ours) == (YAMUX, YAMUX), changed(
        "earlymuxer", "the Noise handshake no longer hands the peer's payload to "
                      "verify_handshake_payload_sig, or our payloads lost their muxer list")


@pytest.mark.parametrize(("dialer", "listener"), [(ours, plain), (plain, ours)])
async def test_a_peer_that_lists_no_muxer_gets_multistream_select(dialer, listener):
    early = await _pair(dialer, listener)
    assert YAMUX not in early  # we did not pick one the peer never offered


def test_the_library_verifies_the_peers_payload_in_both_handshakes():
    code_in = patterns.PatternXX.handshake_inbound.__code__
    code_out = getattr(patterns.PatternXX.handshake_outbound, "original",
                       patterns.PatternXX.handshake_outbound).__code__
    for code in (code_in, code_out):
        assert "verify_handshake_payload_sig" in code.co_names, changed(
            "earlymuxer", "PatternXX no longer verifies the peer's payload through the module's "
                          "verify_handshake_payload_sig")


def _payload(muxers: list[str] | None) -> NoiseHandshakePayload:
    extensions = None if muxers is None else NoiseExtensions(stream_muxers=muxers)
    key = fresh_identity().key_pair.public_key
    return NoiseHandshakePayload(key, b"sig", extensions=extensions)


@pytest.mark.parametrize(("muxers", "chosen"), [
    (None, None), ([], None), ([YAMUX], YAMUX), (["/mplex/6.7.0", YAMUX], YAMUX),
    (["/mplex/6.7.0"], None),
])
def test_the_first_muxer_of_the_peers_list_we_speak_is_chosen(muxers, chosen):
    payload = NoiseHandshakePayload.deserialize(_payload(muxers).serialize())  # as it arrives
    assert earlymuxer.chosen_muxer(payload) == chosen


async def test_an_agreed_muxer_skips_the_negotiation_and_none_keeps_it():
    class Selector:
        handlers = {YAMUX: "yamux class"}

        async def select(self, conn, is_initiator, *args):
            return "negotiated", "by multistream-select"

    selector = Selector()
    earlymuxer._early_select(selector)

    class Session:
        early_muxer = YAMUX

    assert await selector.select(Session(), True) == (YAMUX, "yamux class")
    assert await selector.select(Session(), False) == (YAMUX, "yamux class")
    assert await selector.select(object(), True) == ("negotiated", "by multistream-select")
