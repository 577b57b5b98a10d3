"""Hole punching across two home NATs, and a chat that moves to the direct path mid-conversation.

Topology (tests/netlab.py, namespaces of our own): a WAN switch 10.77.0.0/24
with a public circuit relay; two home routers that masquerade their LAN
(192.168.x.0/24) and drop every unsolicited inbound connection.  The
responder reserves on the relay, the initiator dials it through the relay and
opens the chat there (``tests/e2e/holepunch_peer.py`` runs strangers' own
chat, hole punch and move code in each namespace).  Both send numbered texts
all the while; the test checks that nothing is lost or reordered, that the
chat really ran between the two routers afterwards (a capture on the WAN
switch), that the relay saw no plaintext, and prints the DCUtR figures.

A second topology answers unsolicited SYNs with a reset (iptables REJECT): the
simultaneous open fails there and the chat must go on on the relay.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strangers.testing import Strangers  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

PEER_SCRIPT = Path(__file__).with_name("holepunch_peer.py")
MATCH = "5a" * 16
MESSAGES = 60
INTERVAL = 0.1


class Proc:
    """A holepunch_peer.py process in a namespace; its JSON lines collected as they come."""

    def __init__(self, host, *args: str, log: Path) -> None:
        self.stderr = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.log = log
        self.proc = subprocess.Popen(
            [*host.prefix, sys.executable, str(PEER_SCRIPT), *args, "-v"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, name: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event["event"] == name:
                        return event
                exited = self.proc.poll() is not None
                if time.monotonic() > deadline or exited:
                    if exited:  # the last lines may still be on their way
                        self._cond.wait(0.5)
                        if any(event["event"] == name for event in self.events):
                            continue
                    raise AssertionError(f"no {name} event; got {self.events[-5:]};"
                                         f" log: {self.log.read_text()[-2000:]}")
                self._cond.wait(0.5)

    def of(self, name: str) -> list[dict]:
        with self._cond:
            return [event for event in self.events if event["event"] == name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()


def _wan_interface(router) -> str:
    out = router.run("ip", "-o", "-4", "addr", "show").stdout
    return next(line.split()[1] for line in out.splitlines() if f" {router.wan_ip}/" in line)


def _reject_unsolicited(router) -> None:
    """Turn the router into one whose own stack answers unsolicited SYNs with a reset."""
    wan = _wan_interface(router)
    for chain in ("INPUT", "FORWARD"):
        router.run("iptables", "-I", chain, "1", "-i", wan, "-p", "tcp", "--syn", "-m",
                   "conntrack", "--ctstate", "NEW", "-j", "REJECT", "--reject-with", "tcp-reset")


def _topology(lab, tmp_path, *, reject: bool = False):
    wan = lab.switch("wan", "10.77.0.0/24")
    public = lab.host("pub", wan, "10.77.0.2")
    routers, laptops = [], []
    for index in (1, 2):
        router = lab.nat(f"home{index}", wan, f"10.77.0.{10 + index}", f"192.168.{index}.0/24")
        if reject:
            _reject_unsolicited(router)
        routers.append(router)
        laptops.append(lab.host(f"laptop{index}", router.lan, f"192.168.{index}.2",
                                gateway=router.lan_ip))
    return wan, public, routers, laptops


def _run_chat(lab, tmp_path, wan, public, laptops, procs):
    wire = lab.capture(lab.switch_host(wan), tmp_path / "wan.pcap", interface="br0")
    relay = Proc(public, "relay", "--ip", public.ip, "--port", "4001", log=tmp_path / "relay.log")
    procs.append(relay)
    relay_addr = relay.wait_for("ready")["addr"]
    common = ["--relay", relay_addr, "--match", MATCH, "--messages", str(MESSAGES),
              "--interval", str(INTERVAL)]
    responder = Proc(laptops[1], "responder", "--ip", laptops[1].ip, "--port", "4002", *common,
                     log=tmp_path / "responder.log")
    procs.append(responder)
    reserved = responder.wait_for("reserved")
    initiator = Proc(laptops[0], "initiator", "--ip", laptops[0].ip, "--port", "4003",
                     "--peer", reserved["peer_id"], *common, log=tmp_path / "initiator.log")
    procs.append(initiator)
    for side in (initiator, responder):
        side.wait_for("stats", timeout=MESSAGES * INTERVAL + 60)
    wire.stop()
    return wire, initiator, responder


def _assert_nothing_lost_or_reordered(initiator: Proc, responder: Proc) -> None:
    for side in (initiator, responder):
        texts = [event["text"] for event in side.of("message")]
        assert texts == [f"n:{n}" for n in range(1, MESSAGES + 1)], texts
        assert sorted(event["id"] for event in side.of("delivered")) == list(range(1, MESSAGES + 1))
        assert side.of("error") == []


def _round_trips(side: Proc, moved_at: float) -> tuple[float | None, float | None]:
    """Median send-to-delivered time in ms of ``side``'s texts before and after the move."""
    sent = {event["id"]: event["t"] for event in side.of("sent")}
    before, after = [], []
    for event in side.of("delivered"):
        if event["id"] in sent:
            (before if event["t"] < moved_at else after).append(1000 * (event["t"] - sent[event["id"]]))
    return tuple(round(statistics.median(values), 1) if values else None  # type: ignore[return-value]
                 for values in (before, after))


@pytest.fixture
def peers():
    running: list[Proc] = []
    yield running
    for proc in running:
        proc.stop()


def test_two_nats_that_drop_unsolicited_syns_hole_punch_and_the_chat_moves_mid_conversation(
        lab, tmp_path, peers):
    wan, public, routers, laptops = _topology(lab, tmp_path)
    wire, initiator, responder = _run_chat(lab, tmp_path, wan, public, laptops, peers)
    matched = [side.wait_for("matched") for side in (initiator, responder)]
    assert [m["path"] for m in matched] == ["relayed", "relayed"]
    stats = responder.wait_for("stats")
    upgraded = [side.of("path") for side in (initiator, responder)]
    print(f"\nDCUtR: {stats['successes']} of {stats['attempts']} attempts upgraded the path, "
          f"time to direct {stats['seconds']} s")
    assert stats["attempts"] == 1 and stats["successes"] == 1, stats
    assert upgraded == [[{"event": "path", "t": upgraded[0][0]["t"], "path": "direct"}],
                        [{"event": "path", "t": upgraded[1][0]["t"], "path": "direct"}]]
    # the move happened while texts flowed: some arrived before it, some after
    moved_at = upgraded[1][0]["t"]
    before = [e for e in responder.of("message") if e["t"] < moved_at]
    assert 0 < len(before) < MESSAGES, (len(before), moved_at)
    _assert_nothing_lost_or_reordered(initiator, responder)
    relayed_rtt, direct_rtt = _round_trips(responder, moved_at)
    print(f"round trip (send to delivered) relayed {relayed_rtt} ms, direct {direct_rtt} ms")
    # the direct path is real: the two routers talked to each other, and the relay
    # carried nothing in clear
    r1, r2 = routers
    assert wire.packets_between(public, r1.wan_ip, r2.wan_ip) > 10
    assert b"n:1" not in wire.data() and b"n:42" not in wire.data()


def test_nats_that_reset_unsolicited_syns_keep_the_chat_on_the_relay(lab, tmp_path, peers):
    wan, public, routers, laptops = _topology(lab, tmp_path, reject=True)
    wire, initiator, responder = _run_chat(lab, tmp_path, wan, public, laptops, peers)
    stats = responder.wait_for("stats")
    print(f"\nDCUtR with resetting NATs: {stats['successes']} of {stats['attempts']} attempts")
    assert stats["attempts"] >= 1 and stats["successes"] == 0, stats
    assert initiator.of("path") == responder.of("path") == []
    _assert_nothing_lost_or_reordered(initiator, responder)
    r1, _r2 = routers
    assert wire.packets_between(public, r1.wan_ip, public.ip) > 20  # all of it through the relay


# -- the real strangers executable (needs the relays of node/libp2p/relay.py) -----------------


def _texts(node: Strangers) -> list[str]:
    return [e["text"] for e in node.events if e.get("event") == "message"]


def _cli_event(node: Strangers, name: str, timeout: float = 30.0) -> dict:
    for event in node.events:
        if event.get("event") == name:
            return event
    return node.wait_for(name, timeout=timeout)


def test_strangers_behind_two_nats_match_relayed_and_move_to_a_direct_path_mid_chat(
        lab, tmp_path, procs):
    """``strangers chat`` behind two dropping NATs, a public ``serve`` node: matched says
    relayed, a path event says direct, and texts sent all the while arrive in order."""
    wan, public, routers, laptops = _topology(lab, tmp_path)
    serve = Strangers("serve", "--json", "--listen", f"/ip4/{public.ip}/tcp/4001",
                      "--no-bootstrap", "--no-mdns", prefix=public.prefix)
    procs.append(serve)
    ready = serve.wait_for("ready", timeout=30)
    relay_addr = next(a for a in ready["addrs"] if a.startswith(f"/ip4/{public.ip}/"))
    wire = lab.capture(lab.switch_host(wan), tmp_path / "wan.pcap", interface="br0")
    nodes = []
    for laptop in laptops:
        node = Strangers("chat", "--json", "--listen", f"/ip4/{laptop.ip}/tcp/0", "--no-mdns",
                         "--behind-nat", "--bootstrap", relay_addr, "-i", "holepunch", "-v",
                         prefix=laptop.prefix)
        procs.append(node)
        nodes.append(node)
    matched = [_cli_event(node, "matched", timeout=60) for node in nodes]
    assert [m["path"] for m in matched] == ["relayed", "relayed"], matched
    matched_at = time.monotonic()
    before, after = 40, 20
    count = before + after

    def talk(first: int, last: int) -> None:
        for n in range(first, last + 1):
            for node in nodes:
                node.send({"cmd": "send", "text": f"n:{n}"})
            time.sleep(0.05)

    talk(1, before)  # both sides talk while the punch and the move go on
    paths = []
    for node in nodes:
        try:
            paths.append(_cli_event(node, "path", timeout=60)["path"])  # up to 3 punches
        except AssertionError:
            paths.append(None)
    upgraded_after = time.monotonic() - matched_at
    talk(before + 1, count)  # and after it: nothing lost or reordered across the move
    for node in nodes:
        while len(_texts(node)) < count:  # wait_for reads on (events land in node.events)
            node.wait_for("message", timeout=20)
        assert _texts(node) == [f"n:{n}" for n in range(1, count + 1)], _texts(node)
        assert all(e.get("event") != "error" for e in node.events), node.events
        kinds = [e.get("event") for e in node.events]
        if "path" in kinds:  # messages on both sides of the move
            moved = kinds.index("path")
            assert "message" in kinds[:moved] and "message" in kinds[moved:], kinds
    wire.stop()
    r1, r2 = routers
    direct_packets = wire.packets_between(public, r1.wan_ip, r2.wan_ip)
    punched = [line.split("hole punch to ")[1].split(": ", 1)[1].strip()
               for node in nodes for line in node.stderr.splitlines() if "hole punch to " in line]
    print(f"\nstrangers chat behind two NATs: DCUtR upgraded the path: {paths} ({punched}); "
          f"{direct_packets} packets between the routers; {count} texts each way in order")
    assert paths == ["direct", "direct"], (paths, upgraded_after)
    assert direct_packets > 10
    # Once the chat moved, the side that punched closed the relayed connection
    # (the library would keep it 60 s): the relay carries no idle circuit.
    assert any("relayed connection to" in node.stderr and "closed: the chat moved" in node.stderr
               for node in nodes), [node.stderr[-2000:] for node in nodes]
