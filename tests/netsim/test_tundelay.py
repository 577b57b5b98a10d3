"""The TUN delayer's policy (sans-IO: a clock fed by the test)."""

from __future__ import annotations

import random

import pytest
from tundelay import Delayer


def _packet(src: int, dst: int, payload: bytes) -> bytes:
    """An IPv4-looking packet: version nibble, addresses at bytes 12-20."""
    return bytes([0x45]) + bytes(11) + bytes([10, 0, 0, src, 10, 0, 0, dst]) + payload


def test_every_packet_waits_the_delay():
    delayer = Delayer(0.05)
    delayer.arrived(_packet(1, 2, b"a"), now=10.0)
    assert delayer.due(10.049) == []
    assert delayer.next_due() == pytest.approx(10.05)
    assert delayer.due(10.05) == [_packet(1, 2, b"a")]


def test_jitter_never_reorders_a_flow_but_flows_are_independent():
    delayer = Delayer(0.05, jitter=0.04, rng=random.Random(1))
    sent = [_packet(1, 2, bytes([n])) for n in range(200)] + [_packet(3, 4, bytes([n])) for n in range(200)]
    for index, packet in enumerate(sent):
        delayer.arrived(packet, now=index * 0.001)
    out = delayer.due(100.0)
    assert [p for p in out if p[15] == 1] == sent[:200]
    assert [p for p in out if p[15] == 3] == sent[200:]


def test_loss_drops_about_its_share():
    delayer = Delayer(0.0, loss=0.25, rng=random.Random(7))
    for n in range(4000):
        delayer.arrived(_packet(1, 2, n.to_bytes(2, "big")), now=0.0)
    assert 800 < delayer.dropped < 1200
    assert len(delayer.due(0.0)) == 4000 - delayer.dropped


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Delayer(-1.0)
    with pytest.raises(ValueError):
        Delayer(0.1, loss=1.0)
