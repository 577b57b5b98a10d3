"""``strangers.preconnect``: which addresses a launch connects to early, and the sockets' life."""

from __future__ import annotations

import errno
import json
import socket
import threading

import pytest

from strangers import preconnect
from strangers.discovery.frontdoor import CACHE_TRIES, SERVERS_FILE

PEER = "12D3KooWDRwuXqjMcKGcFb6J7gmsxJ5hP2QFVLEEG3Hf3F71MBar"


@pytest.fixture(autouse=True)
def _nothing_left_open():
    preconnect.close_all()
    yield
    preconnect.close_all()


@pytest.mark.parametrize(("addr", "target"), [
    (f"/ip4/1.2.3.4/tcp/4001/p2p/{PEER}", ("1.2.3.4", 4001)),
    ("/ip4/1.2.3.4/tcp/4001", ("1.2.3.4", 4001)),
    (f"/ip6/::1/tcp/5/p2p/{PEER}", ("::1", 5)),
    (f"/ip6/2001:DB8::1/tcp/5/ipfs/{PEER}", ("2001:db8::1", 5)),
])
def test_direct_tcp_addresses_are_targets(addr: str, target: tuple[str, int]) -> None:
    assert preconnect.tcp_target(addr) == target


@pytest.mark.parametrize("addr", [
    f"/dnsaddr/bootstrap.libp2p.io/p2p/{PEER}",
    f"/dns4/example.org/tcp/4001/p2p/{PEER}",
    "/ip4/1.2.3.4/udp/4001/quic-v1",
    "/ip4/1.2.3.4/tcp/4001/ws",
    f"/ip4/1.2.3.4/tcp/4001/p2p/{PEER}/p2p-circuit/p2p/{PEER}",
    "/ip4/1.2.3.4/tcp/0", "/ip4/1.2.3.4/tcp/70000", "/ip4/1.2.3.4/tcp/x",
    "/ip4/::1/tcp/4001", "/ip6/1.2.3.4/tcp/4001", "/ip4/1.2.3/tcp/4001",
    "/ip4/0.0.0.0/tcp/4001", "/ip4/224.0.0.251/tcp/4001", "", "junk", "/ip4",
])
def test_anything_else_is_not(addr: str) -> None:
    assert preconnect.tcp_target(addr) is None


def _cache(home, servers) -> None:
    document = {"version": 1, "servers": [
        {"peer": peer, "addrs": addrs, "last_seen": seen} for peer, addrs, seen in servers]}
    (home / SERVERS_FILE).write_text(json.dumps(document))


def test_bootstrap_peers_given_are_the_first_dials(tmp_path) -> None:
    given = [f"/ip4/10.0.0.1/tcp/1/p2p/{PEER}"]
    _cache(tmp_path, [("QmPeerA", ["/ip4/10.0.0.9/tcp/9"], 5.0)])
    assert preconnect.launch_addrs(given, tmp_path) == given


def test_with_the_default_list_the_cached_servers_come_first_newest_first(tmp_path) -> None:
    assert preconnect.launch_addrs(None, tmp_path) == []  # no cache yet
    servers = [(f"QmPeer{index}", ["/dnsaddr/x.example", f"/ip4/10.0.0.{index}/tcp/4001"],
                float(index)) for index in range(1, CACHE_TRIES + 4)]
    _cache(tmp_path, servers)
    addrs = preconnect.launch_addrs(None, tmp_path)
    assert len(addrs) == CACHE_TRIES
    assert addrs[0] == f"/ip4/10.0.0.{CACHE_TRIES + 3}/tcp/4001"  # the newest, its TCP address


def test_a_damaged_cache_means_no_early_connection(tmp_path) -> None:
    (tmp_path / SERVERS_FILE).write_bytes(b"\xff{not json")
    assert preconnect.launch_addrs(None, tmp_path) == []


def _listener(ip: str = "127.0.0.1") -> socket.socket:
    server = socket.socket()
    server.bind((ip, 0))
    server.listen(16)
    server.settimeout(5)
    return server


def test_a_started_connection_is_handed_over_once_and_connects() -> None:
    server = _listener()
    port = server.getsockname()[1]
    with server:
        addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{PEER}"
        assert preconnect.start([addr] * 2, early_flight=False) == 1
        assert preconnect.waiting() == [("127.0.0.1", port)]
        accepted, peer = server.accept()  # the kernel finished the handshake on its own
        early = preconnect.take("127.0.0.1", port)
        assert early is not None and preconnect.take("127.0.0.1", port) is None
        assert not early.sent and early.ephemeral is None
        sock = early.sock
        with accepted, sock:
            assert sock.getsockname()[1] == peer[1]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            sock.setblocking(True)
            sock.sendall(b"ping")
            assert accepted.recv(4) == b"ping"
    assert preconnect.waiting() == []


def test_at_most_max_targets_and_what_nobody_took_is_closed() -> None:
    server = _listener("0.0.0.0")  # every 127.0.0.x answers
    port = server.getsockname()[1]
    with server:
        addrs = [f"/ip4/127.0.0.{index}/tcp/{port}" for index in range(1, preconnect.MAX_TARGETS + 3)]
        assert preconnect.start(addrs, early_flight=False) == preconnect.MAX_TARGETS
        assert len(preconnect.waiting()) == preconnect.MAX_TARGETS
        accepted, _ = server.accept()
        with accepted:
            assert preconnect.close_all() == preconnect.MAX_TARGETS
            assert preconnect.waiting() == []
            accepted.settimeout(5)
            assert accepted.recv(1) == b""  # closed: the peer sees the connection end


def test_an_old_connection_is_not_handed_over(monkeypatch) -> None:
    server = _listener()
    port = server.getsockname()[1]
    with server:
        preconnect.start([f"/ip4/127.0.0.1/tcp/{port}"])
        now = preconnect.time.monotonic()
        monkeypatch.setattr(preconnect.time, "monotonic", lambda: now + preconnect.MAX_AGE + 1)
        assert preconnect.take("127.0.0.1", port) is None
        assert preconnect.waiting() == []


def _read_flight(accepted: socket.socket) -> bytes:
    accepted.settimeout(5)
    data = b""
    while len(data) < len(preconnect.first_flight(bytes(32))):
        chunk = accepted.recv(4096)
        assert chunk, "closed before the whole flight came"
        data += chunk
    return data


def test_the_first_flight_is_multistream_select_then_noises_first_message() -> None:
    key = bytes(range(32))
    flight = preconnect.first_flight(key)
    assert flight == (b"\x13/multistream/1.0.0\n" + b"\x07/noise\n" + b"\x00\x20" + key)
    with pytest.raises(ValueError):
        preconnect.first_flight(b"short")


def test_a_connection_sends_its_first_flight_once_connected_with_a_key_of_its_own() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    server = _listener()
    port = server.getsockname()[1]
    with server:
        assert preconnect.start([f"/ip4/127.0.0.1/tcp/{port}/p2p/{PEER}"]) == 1
        accepted, _ = server.accept()
        with accepted:
            flight = _read_flight(accepted)  # sent by the thread, nobody took the socket
            early = preconnect.take("127.0.0.1", port)
            assert early is not None and early.sent and early.ephemeral is not None
            public = X25519PrivateKey.from_private_bytes(early.ephemeral).public_key()
            assert flight == early.flight == preconnect.first_flight(public.public_bytes_raw())
            assert early.connected_after is not None and early.connected_after >= 0
            early.sock.close()


def test_every_connection_gets_its_own_ephemeral_key() -> None:
    server = _listener("0.0.0.0")
    port = server.getsockname()[1]
    with server:
        assert preconnect.start([f"/ip4/127.0.0.{n}/tcp/{port}" for n in (1, 2, 3)]) == 3
        flights = set()
        for _ in range(3):
            accepted, _ = server.accept()
            with accepted:
                flights.add(_read_flight(accepted))
        assert len(flights) == 3


def test_a_connection_taken_before_it_connected_sends_nothing(monkeypatch) -> None:
    taken = threading.Event()
    real_select = preconnect.select.select

    def late_select(r, w, x, timeout):
        taken.wait(5)  # the host takes the socket while the handshake is under way
        return real_select(r, w, x, timeout)

    monkeypatch.setattr(preconnect.select, "select", late_select)
    server = _listener()
    port = server.getsockname()[1]
    with server:
        assert preconnect.start([f"/ip4/127.0.0.1/tcp/{port}"]) == 1
        early = preconnect.take("127.0.0.1", port)
        taken.set()
        assert early is not None
        sender = preconnect._sender
        assert sender is not None
        sender.join(5)
        assert not sender.is_alive()  # nothing left for it to send
        assert not early.sent
        accepted, _ = server.accept()
        with accepted, early.sock:
            accepted.setblocking(False)
            with pytest.raises(BlockingIOError):
                accepted.recv(1)  # the host sends the flight itself


def test_a_refused_connection_sends_no_flight_and_is_handed_over_to_fail() -> None:
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    port = gone.getsockname()[1]
    gone.close()
    assert preconnect.start([f"/ip4/127.0.0.1/tcp/{port}"]) == 1
    sender = preconnect._sender
    assert sender is not None
    sender.join(5)
    early = preconnect.take("127.0.0.1", port)
    assert early is not None and not early.sent
    with early.sock:  # the error the sender read (and cleared) is kept for the adoption
        assert early.error == errno.ECONNREFUSED
