"""A stranger who goes silent without a word: frozen with SIGSTOP, or cut off by the network.

Both leave a TCP connection that looks open and carries nothing: only the chat's own keepalive can
notice. The other side must report ``stranger_left`` with reason ``timeout`` within the keepalive
bound, answer ``status``, and match the next stranger. The measured time is printed (``-s``).
"""

from __future__ import annotations

import signal
import time

import pytest
from faultkit import (
    Lab,
    chat_node,
    check_alive_and_status,
    check_matches_new_stranger,
    describe,
    linked_namespaces,
    matched_with,
    serve_node,
)

from strangers.testing import Strangers

pytestmark = pytest.mark.e2e

KEEPALIVE_BOUND = 20.0
"""Issue 7: a frozen or vanished stranger is reported within 20 s."""
LEFT_WAIT = 40.0
"""The generous test timeout for ``stranger_left``; the measured time is printed."""
MATCH_WAIT = 60.0


def _matched_pair(one: Strangers, one_id: str, other: Strangers, other_id: str) -> None:
    one.wait_for(matched_with(other_id), timeout=MATCH_WAIT)
    other.wait_for(matched_with(one_id), timeout=MATCH_WAIT)
    one.send({"cmd": "send", "text": "are you there?"})
    assert other.wait_for("message", timeout=15)["text"] == "are you there?"
    other.send({"cmd": "send", "text": "for now"})
    assert one.wait_for("message", timeout=15)["text"] == "for now"


def _wait_left(victim: Strangers, since: float, what: str) -> float:
    left = victim.wait_for("stranger_left", timeout=LEFT_WAIT)
    noticed = next(t for e, t in zip(victim.events, victim.arrivals) if e is left) - since
    print(f"{what}: stranger_left {left} after {noticed:.1f} s (bound {KEEPALIVE_BOUND:.0f} s)")
    assert left["reason"] == "timeout" and left["by_us"] is False, (left, describe(victim))
    return noticed


def test_a_frozen_stranger_is_reported_and_the_next_one_matched(procs):
    interest = "astronomy"
    serve, bootstrap = serve_node(procs)
    victim, victim_ready = chat_node(procs, bootstrap, interest)
    frozen, frozen_ready = chat_node(procs, bootstrap, interest)
    _matched_pair(victim, victim_ready["peer_id"], frozen, frozen_ready["peer_id"])
    try:
        frozen.kill(signal.SIGSTOP)
        stopped = time.monotonic()
        noticed = _wait_left(victim, stopped, "frozen stranger (SIGSTOP)")
        assert noticed <= KEEPALIVE_BOUND, (
            f"noticed after {noticed:.1f} s, over the {KEEPALIVE_BOUND:.0f} s bound")
        check_alive_and_status(victim)
        lab = Lab(procs, serve, bootstrap, victim, victim_ready["peer_id"],
                  victim_ready["addrs"][0], interest)
        check_matches_new_stranger(lab)
    finally:
        frozen.kill(signal.SIGCONT)


def test_a_stranger_cut_off_by_the_network_is_reported_and_the_next_one_matched(procs):
    """Victim and bootstrap in one namespace, the stranger in another, joined by a veth pair."""
    interest = "sailing"
    with linked_namespaces() as link:
        here = link.prefix(link.left)
        there = link.prefix(link.right)
        listen_here = f"/ip4/{link.left_addr}/tcp/0"
        listen_there = f"/ip4/{link.right_addr}/tcp/0"
        try:
            serve, bootstrap = serve_node(procs, listen_here, here)
            victim, victim_ready = chat_node(procs, bootstrap, interest, listen_here, here)
            remote, remote_ready = chat_node(procs, bootstrap, interest, listen_there, there)
            _matched_pair(victim, victim_ready["peer_id"], remote, remote_ready["peer_id"])
            link.cut()
            cut = time.monotonic()
            noticed = _wait_left(victim, cut, "network cut (veth down)")
            assert noticed <= KEEPALIVE_BOUND, (
                f"noticed after {noticed:.1f} s, over the {KEEPALIVE_BOUND:.0f} s bound")
            check_alive_and_status(victim)
            lab = Lab(procs, serve, bootstrap, victim, victim_ready["peer_id"],
                      victim_ready["addrs"][0], interest, listen_here, here)
            check_matches_new_stranger(lab)
        finally:
            # The namespaces go in linked_namespaces' finally; stop their processes first.
            for proc in procs:
                proc.stop()
