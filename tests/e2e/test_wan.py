"""End to end over slow paths: strangers processes in namespaces behind the delay router.

Three hosts, each in its own namespace and subnet, joined by a router
namespace that holds every forwarded packet for the path's delay
(``tests/netsim/delayrouter.py``, a TUN device; sources kept, TCP and UDP
alike): 300 ms round trips (and 450 ms), 20 ms jitter, 1% of packets lost
(TCP retransmits them). A
``serve`` node, a chat node waiting, and a chat node that joins later and must
match it, then chat.

A fresh py-libp2p connection cost ~6 round trips, a stream on it 2 more; with
optimistic multistream-select (``node/libp2p/multistream.py``) a dial is 2
and a stream none of its own. The old fixed timeouts
(``STRANGERS_FIXED_TIMEOUTS=1`` pins them: a 1 s proposal dial, 2 s per
Kademlia request) then fit a dial up to ~450 ms (2 round trips, 0.9 s); at
750 ms (1.5 s per dial) they never meet, while timeouts derived from
measured round trips let them match. (Before the round-trip savings the same
happened from 450 ms: 2.7 s per connection.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from strangers.testing import Strangers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from delayproxy import PathSettings  # noqa: E402
from delayrouter import DelayRouter, NetHost, namespaces_unavailable  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

FIXED = {"STRANGERS_FIXED_TIMEOUTS": "1"}


def _wan(rtt: float):
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    return DelayRouter(PathSettings.for_rtt(rtt, jitter=0.02, loss=0.01, stall=0.5),
                       hosts_wanted=3, seed=8)


@pytest.fixture(params=[0.3, 0.45], ids=["300ms", "450ms"])
def wan(request):
    with _wan(request.param) as net:
        yield net


@pytest.fixture
def wan_750():
    with _wan(0.75) as net:
        yield net


def _listen(host: NetHost) -> str:
    return f"/ip4/{host.ip}/tcp/0"


def _serve(net: DelayRouter, procs: list) -> str:
    host = net.hosts[0]
    node = Strangers("serve", "--json", "--listen", _listen(host), "--no-bootstrap", "--no-mdns",
                     prefix=host.prefix)
    procs.append(node)
    return node.wait_for("ready", timeout=30)["addrs"][0]


def _chat(host: NetHost, bootstrap: str, procs: list, env: dict | None = None) -> Strangers:
    node = Strangers("chat", "--json", "--listen", _listen(host), "--no-mdns", "--bootstrap",
                     bootstrap, "-i", "jazz", prefix=host.prefix, env=env)
    procs.append(node)
    return node


def test_a_stranger_far_away_is_matched_and_chats(wan, procs):
    bootstrap = _serve(wan, procs)
    waiting = _chat(wan.hosts[1], bootstrap, procs)
    waiting.wait_for("advertised", timeout=40)
    joining = _chat(wan.hosts[2], bootstrap, procs)
    joining.wait_for("ready", timeout=30)
    started = time.monotonic()
    first = joining.wait_for("matched", timeout=60)
    second = waiting.wait_for("matched", timeout=30)
    took = time.monotonic() - started
    assert first["safety_code"] == second["safety_code"]
    assert first["common_interests"] == ["jazz"]
    joining.send({"cmd": "send", "text": "hello from far away"})
    sent = joining.wait_for("sent", timeout=10)
    assert waiting.wait_for("message", timeout=30)["text"] == "hello from far away"
    joining.wait_for(lambda e: e.get("event") == "delivered" and e.get("id") == sent["id"],
                     timeout=30)
    waiting.send({"cmd": "send", "text": "hello back"})
    assert joining.wait_for("message", timeout=30)["text"] == "hello back"
    print(f"matched {took:.1f} s after the joiner was ready at {wan.settings.delay * 2000:.0f} ms RTT")


def test_the_old_fixed_timeouts_never_match_750_ms_away(wan_750, procs):
    """The same topology with the loopback-era constants pinned: no match in 45 s."""
    bootstrap = _serve(wan_750, procs)
    waiting = _chat(wan_750.hosts[1], bootstrap, procs, env=FIXED)
    waiting.wait_for("advertised", timeout=40)
    joining = _chat(wan_750.hosts[2], bootstrap, procs, env=FIXED)
    joining.wait_for("ready", timeout=30)
    joining.assert_no_event(lambda e: e.get("event") == "matched", 45)
    waiting.assert_no_event(lambda e: e.get("event") == "matched", 0.1)
