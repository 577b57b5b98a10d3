"""Observed addresses: distinct observer networks per IP, and the candidates a dial-back checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.discovery.observed import (
    CONFIRMING_GROUPS,
    ObservedAddresses,
    candidates,
    observer_group,
)


def test_observers_of_one_network_count_once_and_two_networks_confirm():
    seen = ObservedAddresses()
    assert seen.record("198.51.100.7", "203.0.113.5") is True
    assert seen.record("198.51.100.9", "203.0.113.5") is False  # same /24
    assert seen.ips() == ["203.0.113.5"] and seen.confirmed() == []
    assert seen.record("192.0.2.1", "203.0.113.5") is True
    assert seen.confirmed() == ["203.0.113.5"] and CONFIRMING_GROUPS == 2


def test_the_ip_most_networks_saw_comes_first():
    seen = ObservedAddresses()
    seen.record("198.51.100.7", "203.0.113.5")
    for observer in ("192.0.2.1", "198.51.100.1", "100.64.0.1"):
        seen.record(observer, "203.0.113.6")
    assert seen.ips() == ["203.0.113.6", "203.0.113.5"]


@pytest.mark.parametrize("observer, observed", [
    ("198.51.100.7", "127.0.0.1"), ("198.51.100.7", "169.254.1.1"), ("198.51.100.7", "224.0.0.251"),
    ("198.51.100.7", "0.0.0.0"), ("not an ip", "203.0.113.5"), ("198.51.100.7", "nonsense"),
])
def test_nonsense_and_unroutable_observations_are_ignored(observer, observed):
    seen = ObservedAddresses()
    assert seen.record(observer, observed) is False
    assert seen.ips() == [] and seen.version == 0


def test_an_ipv4_mapped_observation_is_the_ipv4_address():
    seen = ObservedAddresses()
    seen.record("::ffff:198.51.100.7", "::ffff:203.0.113.5")
    assert seen.ips() == ["203.0.113.5"]
    assert observer_group("2001:db8:1:2::5") == observer_group("2001:db8:1:ff::1") == "2001:db8:1::/48"


def test_both_directions_are_bounded():
    seen = ObservedAddresses(max_ips=3, max_observers=2)
    for n in range(5):
        seen.record("198.51.100.7", f"203.0.113.{n + 1}")
    assert sorted(seen.ips()) == ["203.0.113.3", "203.0.113.4", "203.0.113.5"]
    for n in range(10):
        seen.record(f"10.{n}.0.1", "203.0.113.5")
    assert seen.ips(2) == ["203.0.113.5"] and seen.ips(3) == []
    with pytest.raises(ValueError, match="bad bounds"):
        ObservedAddresses(max_ips=0)


@given(st.lists(st.tuples(st.ip_addresses().map(str), st.ip_addresses().map(str)), max_size=200))
def test_any_stream_of_observations_stays_bounded(pairs):
    seen = ObservedAddresses(max_ips=4, max_observers=3)
    for observer, observed in pairs:
        seen.record(observer, observed)
    assert len(seen.ips()) <= 4


def test_candidates_pair_observed_ips_with_our_listen_ports():
    listen = [("192.168.1.2", 4101), ("127.0.0.1", 4101), ("192.168.1.2", 4102), ("fd00::2", 4103)]
    assert candidates(["203.0.113.5", "192.168.1.2", "2001:db8::9"], listen) == [
        "/ip4/203.0.113.5/tcp/4101", "/ip4/203.0.113.5/tcp/4102", "/ip6/2001:db8::9/tcp/4103"]


def test_no_candidates_from_our_own_ips_loopback_or_bad_ports():
    assert candidates(["192.168.1.2", "127.0.0.1", "x"], [("192.168.1.2", 4101)]) == []
    assert candidates(["203.0.113.5"], [("192.168.1.2", 0), ("bad", 4101)]) == []
