"""Canaries for ``strangers.node.libp2p.mdns``: the parts of python-zeroconf we rely on.

LocalDiscovery registers a ServiceInfo whose TXT data we encode ourselves
(raw bytes, several ``dnsaddr=`` strings), is told of other peers by a
ServiceBrowser handler (from zeroconf's thread, keyword arguments), and reads
every TXT record of a name from zeroconf's cache. No socket is opened here
(mDNS multicast is sent only inside network namespaces: tests/e2e/test_lan.py).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from zeroconf import DNSCache, DNSText, ServiceInfo
from zeroconf._services import browser
from zeroconf.const import _CLASS_IN, _TYPE_TXT

from strangers.node.libp2p.mdns import LocalDiscovery
from strangers.node.libp2p.mdns_records import SERVICE, encode_txt, parse_records

from canary import changed

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
NAME = "abcdefghijklmnopqrstuvwxyz0123456789." + SERVICE
TWO = encode_txt([f"dnsaddr=/ip4/10.0.0.{n}/tcp/4001/p2p/{PEER}".encode() for n in (1, 2)])


def test_service_info_sends_our_txt_bytes_as_they_are() -> None:
    info = ServiceInfo(SERVICE, NAME, port=4001, properties=TWO, server="abc.local.",
                       parsed_addresses=["10.0.0.1"])
    assert info.text == TWO, changed("LocalDiscovery._service_info", "ServiceInfo(properties=bytes) re-encodes them")
    assert parse_records([info.text]) == {PEER: ["/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001"]}


def test_the_properties_dict_still_keeps_one_of_repeated_keys() -> None:
    """Why we read raw TXT data: zeroconf's dict view loses all but one dnsaddr=."""
    info = ServiceInfo(SERVICE, NAME, port=4001, properties=TWO, server="abc.local.",
                       parsed_addresses=["10.0.0.1"])
    assert len(info.properties) == 1, changed(
        "mdns_records", "ServiceInfo.properties now keeps repeated keys (reading raw TXT is still right)"
    )


def test_the_cache_gives_every_txt_record_of_a_name() -> None:
    """js-libp2p sends one TXT record per address: we need them all, as raw data."""
    assert (_TYPE_TXT, _CLASS_IN) == (16, 1)
    cache = DNSCache()
    one = encode_txt([f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{PEER}".encode()])
    two = encode_txt([f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{PEER}".encode()])
    cache.async_add_records([DNSText(NAME, _TYPE_TXT, _CLASS_IN, 120, one),
                             DNSText(NAME, _TYPE_TXT, _CLASS_IN, 120, two)])
    records = cache.get_all_by_details(NAME.upper(), _TYPE_TXT, _CLASS_IN)
    assert sorted(record.text for record in records) == sorted([one, two]), changed(
        "LocalDiscovery._txt_records", "DNSCache.get_all_by_details no longer gives every TXT record as .text"
    )


def test_browser_handlers_are_still_called_with_the_keywords_we_take() -> None:
    source = (Path(browser.__file__).parent / "browser.py").read_text()  # the module may be compiled
    for keyword in ("zeroconf=", "service_type=", "name=", "state_change="):
        assert keyword in source, changed("LocalDiscovery.serve", f"ServiceBrowser handlers no longer get {keyword}")
    parameters = inspect.signature(browser.ServiceBrowser.__init__).parameters
    assert "handlers" in parameters


def test_local_discovery_never_reads_the_properties_dict() -> None:
    assert ".properties" not in inspect.getsource(LocalDiscovery)
