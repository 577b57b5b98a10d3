"""/dnsaddr resolution against a DNS server of the test's own (tests/dnsfake.py)."""

from __future__ import annotations

import trio
from dnsfake import serving_dns
from multiaddr import Multiaddr

from strangers.node.libp2p import dnsaddr

A = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
B = "QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa"


def _strs(addrs):
    return [str(addr) for addr in addrs]


async def test_a_dnsaddr_resolves_to_the_records_of_its_peer_only():
    records = {"_dnsaddr.boot.test": [
        f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{A}",
        f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{B}",
        f"dnsaddr=/ip6/2001:db8::1/tcp/4001/p2p/{A}",
        "some-other=txt record",
        "dnsaddr=not a multiaddr",
    ]}
    async with serving_dns(records) as dns:
        found = await dnsaddr.resolve(f"/dnsaddr/boot.test/p2p/{A}", resolver=dns.resolver())
    # (a DNS answer's records come in no particular order)
    assert set(_strs(found)) == {f"/ip4/10.0.0.1/tcp/4001/p2p/{A}", f"/ip6/2001:db8::1/tcp/4001/p2p/{A}"}
    assert dns.queries == ["_dnsaddr.boot.test"]


async def test_nested_dnsaddr_records_are_followed():
    records = {
        "_dnsaddr.boot.test": [f"dnsaddr=/dnsaddr/ams.boot.test/p2p/{A}",
                               f"dnsaddr=/dnsaddr/sjc.boot.test/p2p/{B}"],
        "_dnsaddr.ams.boot.test": [f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{A}",
                                   f"dnsaddr=/ip4/10.0.0.1/udp/4001/quic-v1/p2p/{A}"],
        "_dnsaddr.sjc.boot.test": [f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{B}"],
    }
    async with serving_dns(records) as dns:
        found = await dnsaddr.resolve(f"/dnsaddr/boot.test/p2p/{A}", resolver=dns.resolver())
        every = await dnsaddr.resolve("/dnsaddr/boot.test", resolver=dns.resolver())
    assert set(_strs(found)) == {f"/ip4/10.0.0.1/tcp/4001/p2p/{A}",
                                 f"/ip4/10.0.0.1/udp/4001/quic-v1/p2p/{A}"}
    assert "_dnsaddr.sjc.boot.test" in dns.queries  # the unfiltered one went everywhere
    assert set(_strs(every)) == {*_strs(found), f"/ip4/10.0.0.2/tcp/4001/p2p/{B}"}


async def test_depth_and_query_counts_are_bounded():
    # a loop of names (a -> b -> a ...) and a fan-out of 40 names
    records = {"_dnsaddr.a.test": ["dnsaddr=/dnsaddr/b.test"], "_dnsaddr.b.test": ["dnsaddr=/dnsaddr/c.test"],
               "_dnsaddr.c.test": ["dnsaddr=/dnsaddr/d.test"], "_dnsaddr.d.test": ["dnsaddr=/dnsaddr/e.test"],
               "_dnsaddr.e.test": ["dnsaddr=/dnsaddr/f.test"], "_dnsaddr.f.test": ["dnsaddr=/dnsaddr/a.test"],
               "_dnsaddr.wide.test": [f"dnsaddr=/dnsaddr/n{i}.test" for i in range(40)]}
    records.update({f"_dnsaddr.n{i}.test": [f"dnsaddr=/ip4/10.0.1.{i}/tcp/1/p2p/{A}"] for i in range(40)})
    async with serving_dns(records) as dns:
        assert await dnsaddr.resolve("/dnsaddr/a.test", resolver=dns.resolver()) == []
        assert len(dns.queries) == dnsaddr.MAX_DEPTH
        dns.queries.clear()
        wide = await dnsaddr.resolve("/dnsaddr/wide.test", resolver=dns.resolver())
    assert len(dns.queries) == dnsaddr.MAX_QUERIES
    assert len(wide) == dnsaddr.MAX_QUERIES - 1


async def test_unknown_and_silent_names_resolve_to_nothing_in_bounded_time(monkeypatch):
    monkeypatch.setattr(dnsaddr, "QUERY_TIMEOUT", 0.3)
    async with serving_dns({}, silent={"_dnsaddr.quiet.test"}) as dns:
        assert await dnsaddr.resolve(f"/dnsaddr/nowhere.test/p2p/{A}", resolver=dns.resolver()) == []
        with trio.fail_after(5):
            assert await dnsaddr.resolve(f"/dnsaddr/quiet.test/p2p/{A}",
                                         resolver=dns.resolver(lifetime=0.3)) == []


async def test_other_addresses_pass_through_and_strangers_dns_names_the_server(monkeypatch):
    plain = f"/ip4/104.131.131.82/tcp/4001/p2p/{A}"
    assert await dnsaddr.resolve(plain) == [Multiaddr(plain)]
    async with serving_dns({"_dnsaddr.boot.test": [f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{A}"]}) as dns:
        monkeypatch.setenv(dnsaddr.ENV_DNS, dns.address)
        found = await dnsaddr.resolve_all([f"/dnsaddr/boot.test/p2p/{A}", plain, plain])
    assert _strs(found) == [f"/ip4/10.0.0.1/tcp/4001/p2p/{A}", plain]


async def test_a_bad_strangers_dns_setting_resolves_nothing_instead_of_crashing(monkeypatch):
    monkeypatch.setenv(dnsaddr.ENV_DNS, "no-port-here")
    assert await dnsaddr.resolve(f"/dnsaddr/boot.test/p2p/{A}") == []


async def test_a_list_under_one_name_asks_the_dns_once():
    records = {"_dnsaddr.boot.test": [f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{A}",
                                      f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{B}"]}
    async with serving_dns(records) as dns:
        found = await dnsaddr.resolve_all([f"/dnsaddr/boot.test/p2p/{A}", f"/dnsaddr/boot.test/p2p/{B}"],
                                          resolver=dns.resolver())
    assert _strs(found) == [f"/ip4/10.0.0.1/tcp/4001/p2p/{A}", f"/ip4/10.0.0.2/tcp/4001/p2p/{B}"]
    assert dns.queries == ["_dnsaddr.boot.test"]
