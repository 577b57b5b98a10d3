"""Strangers behind home routers meet and chat through a relay (real namespaces, real NAT).

Topology (tests/netlab.py): a WAN switch 10.77.0.0/24 with a public ``serve``
node; home routers that masquerade their LAN (192.168.x.0/24) and silently
drop every unsolicited inbound connection. Nothing leaves the lab's
namespaces. A capture of everything the public node sees shows it relays
ciphertext only.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from strangers.testing import Strangers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netlab import LabUnavailable  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

SERVE_PORT = 4001
SECRET = "the plaintext a relay must never see 7f3a9c"


def _capture(lab, host, path, **kwargs):
    try:
        return lab.capture(host, path, **kwargs)
    except LabUnavailable as exc:
        pytest.skip(f"cannot capture what the relay forwards: {exc}")


def _public_serve(lab, wan, procs):
    public = lab.host("pub", wan, "10.77.0.2")
    node = Strangers("serve", "--json", "--listen", f"/ip4/{public.ip}/tcp/{SERVE_PORT}",
                     "--no-bootstrap", "--no-mdns", "-v", prefix=public.prefix)
    procs.append(node)
    ready = node.wait_for("ready", timeout=30)
    addr = next(a for a in ready["addrs"] if a.startswith(f"/ip4/{public.ip}/"))
    return public, node, addr


def _behind_nat(lab, wan, index, bootstrap, procs, *extra):
    router = lab.nat(f"home{index}", wan, f"10.77.0.{10 + index}", f"192.168.{index}.0/24")
    laptop = lab.host(f"laptop{index}", router.lan, f"192.168.{index}.2", gateway=router.lan_ip)
    node = Strangers("chat", "--json", "--listen", f"/ip4/{laptop.ip}/tcp/0", "--no-mdns",
                     "--bootstrap", bootstrap, "-i", "relays", "-v", *extra, prefix=laptop.prefix)
    procs.append(node)
    return router, laptop, node


def _event(node: Strangers, predicate, timeout: float = 30.0) -> dict:
    """The first event matching ``predicate`` (a name or a test), seen before or to come."""
    if isinstance(predicate, str):
        name = predicate
        predicate = lambda e: e.get("event") == name  # noqa: E731
    for event in node.events:
        if predicate(event):
            return event
    return node.wait_for(predicate, timeout=timeout)


def _relayed(event: dict) -> bool:
    return event.get("event") == "reachability" and event["relays"] >= 1


def _chat_both_ways(a: Strangers, b: Strangers) -> float:
    """One message each way; returns the round trip (send to delivered) in seconds."""
    started = time.monotonic()
    a.send({"cmd": "send", "text": SECRET})
    assert b.wait_for("message", timeout=15)["text"] == SECRET
    a.wait_for("delivered", timeout=15)
    round_trip = time.monotonic() - started
    b.send({"cmd": "send", "text": "and back " + SECRET})
    assert a.wait_for("message", timeout=15)["text"] == "and back " + SECRET
    b.wait_for("delivered", timeout=15)
    return round_trip


def _ms(pattern: str, text: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, text)]


@pytest.mark.parametrize("told", [True, False], ids=["behind-nat", "autonat"])
def test_two_strangers_behind_nats_chat_through_the_public_node(lab, procs, tmp_path, told):
    """``told``: the nodes say --behind-nat; otherwise AutoNAT must find it out."""
    extra = ("--behind-nat",) if told else ()
    wan = lab.switch("wan", "10.77.0.0/24")
    public, relay, relay_addr = _public_serve(lab, wan, procs)
    wire = _capture(lab, lab.switch_host(wan), tmp_path / "wan.pcap", interface="br0")
    at_relay = _capture(lab, public, tmp_path / "relay.pcap")
    r1, _l1, one = _behind_nat(lab, wan, 1, relay_addr, procs, *extra)
    seen = _event(one, _relayed)
    assert seen["reachable"] is False
    assert any("/p2p-circuit" in a and relay_addr.split("/p2p/")[1] in a for a in seen["addrs"])
    _event(one, "advertised")  # a stranger waits, findable through its relayed address
    started = time.monotonic()
    r2, _l2, two = _behind_nat(lab, wan, 2, relay_addr, procs, *extra)
    second = _event(two, "matched", timeout=45)
    time_to_match = time.monotonic() - started
    first = _event(one, "matched", timeout=45)
    assert first["safety_code"] == second["safety_code"]
    round_trips = [_chat_both_ways(one, two) for _ in range(5)]
    wire.stop()
    relayed = at_relay.stop()
    # The path: the chat started on the relay (hole punching may then move it
    # to a direct connection between the two routers: tests/e2e/test_holepunch.py).
    assert first["path"] == second["path"] == "relayed"
    assert wire.packets_between(public, r1.wan_ip, public.ip) > 0
    assert wire.packets_between(public, r2.wan_ip, public.ip) > 0, wire.report
    proposer = one if first["initiator"] else two
    dials = _ms(r"dialled \S+ through \S+ in (\d+) ms", proposer.stderr)
    assert dials, proposer.stderr[-3000:]
    # What the relay forwarded is ciphertext only.
    assert len(relayed) > 1000
    assert SECRET.encode() not in relayed and b"plaintext a relay" not in relayed
    assert SECRET.encode() not in wire.data()
    reservations = _ms(r"reserved on \S+ in (\d+) ms", one.stderr + two.stderr)
    how = "--behind-nat" if told else "AutoNAT"
    print(f"\nbehind two NATs ({how}), relayed: reservation {reservations} ms, circuit dial {dials} ms, "
          f"time to match a waiting stranger {1000 * time_to_match:.0f} ms (process start to matched), "
          f"message round trip (send to delivered) {sorted(round(1000 * r) for r in round_trips)} ms; "
          f"second node's events after start: {_timeline(two, started)}")


def _timeline(node: Strangers, started: float) -> str:
    return ", ".join(f"{e['event']} {1000 * (t - started):.0f}"
                     for e, t in zip(node.events, node.arrivals) if e["event"] != "message")


def test_a_public_stranger_and_one_behind_a_nat_meet(lab, procs, tmp_path):
    wan = lab.switch("wan", "10.77.0.0/24")
    public, relay, relay_addr = _public_serve(lab, wan, procs)
    open_host = lab.host("open", wan, "10.77.0.3")
    reachable = Strangers("chat", "--json", "--listen", f"/ip4/{open_host.ip}/tcp/0", "--no-mdns",
                          "--bootstrap", relay_addr, "-i", "relays", "-v", prefix=open_host.prefix)
    procs.append(reachable)
    # No --behind-nat: AutoNAT (through the public serve node) must find out.
    _router, _laptop, hidden = _behind_nat(lab, wan, 1, relay_addr, procs)
    assert _event(reachable, "reachability")["reachable"] is True
    assert _event(hidden, "reachability")["reachable"] is False
    assert any("/p2p-circuit" in a for a in _event(hidden, _relayed)["addrs"])
    first = _event(reachable, "matched", timeout=45)
    second = _event(hidden, "matched", timeout=45)
    assert first["safety_code"] == second["safety_code"]
    _chat_both_ways(reachable, hidden)
    # A reachable chat node relays too: the node behind the NAT holds a second slot on it.
    both = _event(hidden, lambda e: e.get("event") == "reachability" and e["relays"] >= 2, timeout=30)
    assert any(f"/p2p/{second['peer_id']}/p2p-circuit" in a for a in both["addrs"]), both


def test_hide_ip_chats_through_the_relay_and_never_meets_the_stranger_directly(lab, procs, tmp_path):
    """Both strangers on the WAN (dialable), one with --hide-ip: not one packet between them."""
    wan = lab.switch("wan", "10.77.0.0/24")
    public, relay, relay_addr = _public_serve(lab, wan, procs)
    wire = _capture(lab, lab.switch_host(wan), tmp_path / "wan.pcap", interface="br0")
    hosts = [lab.host(name, wan, ip) for name, ip in (("hider", "10.77.0.3"), ("open", "10.77.0.4"))]
    hider, other = (
        Strangers("chat", "--json", "--listen", f"/ip4/{host.ip}/tcp/0", "--bootstrap", relay_addr,
                  "-i", "relays", "-v", *extra, prefix=host.prefix)
        for host, extra in zip(hosts, (("--hide-ip",), ())))
    procs.extend([hider, other])
    ready = _event(hider, "ready")
    assert all("/p2p-circuit" in a for a in ready["addrs"])  # nothing direct, even at start
    shown = _event(hider, _relayed)
    assert shown["reachable"] is False and all("/p2p-circuit" in a for a in shown["addrs"])
    first = _event(hider, "matched", timeout=45)
    _event(other, "matched", timeout=45)
    assert first["peer_id"]
    _chat_both_ways(other, hider)
    wire.stop()
    assert wire.packets_between(public, hosts[0].ip, hosts[1].ip) == 0
    assert wire.packets_between(public, hosts[0].ip, public.ip) > 0
    assert hosts[0].ip not in "".join(json.dumps(e) for e in other.events)


def test_two_reachable_strangers_talk_directly_beside_the_relayed_figures(lab, procs, tmp_path):
    """The same WAN, no NAT: AutoNAT says reachable, the chat goes direct (figures to compare)."""
    wan = lab.switch("wan", "10.77.0.0/24")
    public, relay, relay_addr = _public_serve(lab, wan, procs)
    hosts = [lab.host(name, wan, ip) for name, ip in (("a", "10.77.0.3"), ("b", "10.77.0.4"))]

    def start(host):
        node = Strangers("chat", "--json", "--listen", f"/ip4/{host.ip}/tcp/0", "--no-mdns",
                         "--bootstrap", relay_addr, "-i", "relays", "-v", prefix=host.prefix)
        procs.append(node)
        return node

    one = start(hosts[0])
    _event(one, "advertised")
    started = time.monotonic()
    two = start(hosts[1])
    _event(two, "matched", timeout=45)
    time_to_match = time.monotonic() - started
    _event(one, "matched", timeout=45)
    round_trips = [_chat_both_ways(one, two) for _ in range(5)]
    for node in (one, two):
        verdict = _event(node, "reachability")
        assert verdict["reachable"] is True and not any("/p2p-circuit" in a for a in verdict["addrs"])
    assert not re.search(r"dialled \S+ through", one.stderr + two.stderr)  # no circuit
    print(f"\ndirect on the same WAN: time to match a waiting stranger {1000 * time_to_match:.0f} ms "
          f"(process start to matched), message round trip {sorted(round(1000 * r) for r in round_trips)} ms; "
          f"second node: {_timeline(two, started)}")


FORWARDED_PORT = 4101  # inside the lab's own namespaces: nothing else listens there


def _forward(router, port: int, to_ip: str) -> None:
    """A port forward on ``router``: TCP ``port`` of its WAN address goes to ``to_ip``."""
    shown = router.run("ip", "-o", "-4", "addr", "show").stdout
    wan_if = next(line.split()[1] for line in shown.splitlines() if f" {router.wan_ip}/" in line)
    router.run("iptables", "-t", "nat", "-A", "PREROUTING", "-i", wan_if, "-p", "tcp",
               "--dport", str(port), "-j", "DNAT", "--to-destination", f"{to_ip}:{port}")
    router.run("iptables", "-I", "FORWARD", "-i", wan_if, "-p", "tcp", "-d", to_ip,
               "--dport", str(port), "-j", "ACCEPT")


def test_a_port_forward_makes_a_stranger_behind_a_nat_reachable_and_matched_directly(lab, procs):
    """A home router forwards one port to the laptop: its interfaces show only
    192.168.1.2, but the public node sees it at the router's WAN IP; AutoNAT
    reaches that IP at the listen port, the laptop announces it, and a stranger
    on the WAN dials it directly (no relay, no hole punch)."""
    wan = lab.switch("wan", "10.77.0.0/24")
    _public, _relay, relay_addr = _public_serve(lab, wan, procs)
    router = lab.nat("home1", wan, "10.77.0.11", "192.168.1.0/24")
    laptop = lab.host("laptop1", router.lan, "192.168.1.2", gateway=router.lan_ip)
    _forward(router, FORWARDED_PORT, laptop.ip)
    forwarded = Strangers("chat", "--json", "--listen", f"/ip4/{laptop.ip}/tcp/{FORWARDED_PORT}",
                          "--no-mdns", "--bootstrap", relay_addr, "-i", "forwards", "--interests-only",
                          "-v", prefix=laptop.prefix)
    procs.append(forwarded)
    public_addr = f"/ip4/{router.wan_ip}/tcp/{FORWARDED_PORT}"
    # First not reachable at 192.168.1.2 (relays meanwhile), then reachable at the forward.
    verdict = _event(forwarded, lambda e: e.get("event") == "reachability" and e["reachable"], timeout=30)
    assert any(a.startswith(public_addr) for a in verdict["addrs"]), verdict
    assert not any("/p2p-circuit" in a for a in verdict["addrs"])  # no relay needed
    _event(forwarded, "advertised")
    open_host = lab.host("open", wan, "10.77.0.3")
    joiner = Strangers("chat", "--json", "--listen", f"/ip4/{open_host.ip}/tcp/0", "--no-mdns",
                       "--bootstrap", relay_addr, "-i", "forwards", "--interests-only", "-v",
                       prefix=open_host.prefix)
    procs.append(joiner)
    first = _event(joiner, "matched", timeout=45)
    second = _event(forwarded, "matched", timeout=45)
    assert first["safety_code"] == second["safety_code"]
    assert first["path"] == second["path"] == "direct"
    # The joiner found the waiting laptop and proposed: it dialled the laptop,
    # which only the forwarded public address makes possible from the WAN.
    assert first["initiator"] is True and second["initiator"] is False, joiner.stderr[-6000:]
    _chat_both_ways(joiner, forwarded)
    assert f"reachable at {public_addr}" in forwarded.stderr
