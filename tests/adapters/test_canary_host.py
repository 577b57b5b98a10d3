"""Canaries for ``strangers.node.libp2p.host``: what build_host and running_host rely on."""

from __future__ import annotations

import inspect
import os

import pytest
import trio
from libp2p import new_host
from libp2p.network import swarm as swarm_module
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.swarm import Swarm
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux import yamux
from libp2p.transport.tcp import tcp
from multiaddr import Multiaddr

from strangers.errors import ConfigError, HostFailed
from strangers.node.identity import fresh_identity
from strangers.node.libp2p import host as adapter
from strangers.node.libp2p.host import build_host, ensure_port_free, running_host

from canary import changed, parameters_of, source_of

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


# -- construction ----------------------------------------------------------------------


def test_new_host_takes_the_options_build_host_passes() -> None:
    wanted = {"key_pair", "sec_opt", "muxer_preference", "connection_config", "enable_mDNS"}
    missing = wanted - set(parameters_of(new_host))
    assert not missing, changed("build_host", f"new_host() lost the parameters {sorted(missing)}")
    assert "noise_privkey" in parameters_of(NoiseTransport.__init__), changed(
        "build_host", "Noise Transport() no longer takes noise_privkey"
    )


def test_build_host_gives_the_swarm_we_configure() -> None:
    host = build_host(fresh_identity())
    swarm = host.get_network()
    assert isinstance(swarm, Swarm), changed("build_host", f"get_network() is a {type(swarm)}")
    assert swarm.connection_config.max_connections_per_peer == 1, changed(
        "happy eyeballs", "ConnectionConfig(max_connections_per_peer=1) did not reach the swarm"
    )
    assert isinstance(swarm.retry_config, RetryConfig) and swarm.retry_config.max_retries == 0, changed(
        "RetryConfig", "swarm.retry_config is not the RetryConfig(max_retries=0) build_host set"
    )
    assert swarm.auto_connector.maybe_connect is adapter._no_auto_connect, changed(
        "auto-connector", "swarm.auto_connector.maybe_connect could not be replaced"
    )


# -- happy eyeballs: ConnectionConfig(max_connections_per_peer=1) -------------------------


def test_one_connection_per_peer_still_ends_the_happy_eyeballs_wait() -> None:
    """The swarm waits 250 ms before each further address unless a dial already
    brought max_connections_per_peer connections (then it cancels the rest)."""
    assert hasattr(swarm_module, "_HAPPY_EYEBALLS_DELAY"), changed(
        "happy eyeballs", "swarm._HAPPY_EYEBALLS_DELAY is gone: re-measure the connect time "
        "(252 ms -> 30 ms with max_connections_per_peer=1) and drop the setting if it no longer matters"
    )
    dial = source_of(Swarm.dial_peer)
    assert "_HAPPY_EYEBALLS_DELAY" in dial, changed("happy eyeballs", "Swarm.dial_peer no longer staggers addresses")
    stop = dial.find("if len(connections) >= max_per_peer")
    assert "max_per_peer = (" in dial and stop >= 0 and "cancel_scope.cancel()" in dial[stop : stop + 120], changed(
        "happy eyeballs", "Swarm.dial_peer no longer stops once max_connections_per_peer connections exist"
    )
    assert "max_connections_per_peer" in parameters_of(ConnectionConfig), changed(
        "happy eyeballs", "ConnectionConfig has no max_connections_per_peer"
    )


# -- RetryConfig(max_retries=0) ----------------------------------------------------------


def test_the_swarm_reads_its_retry_config_when_it_dials() -> None:
    assert "max_retries" in parameters_of(RetryConfig), changed("RetryConfig", "RetryConfig has no max_retries")
    dial = getattr(Swarm, "_dial_with_retry", None)
    assert dial is not None, changed("RetryConfig", "Swarm._dial_with_retry is gone: where are retries decided?")
    assert "self.retry_config.max_retries" in source_of(dial), changed(
        "RetryConfig", "Swarm._dial_with_retry no longer reads self.retry_config.max_retries, "
        "so setting swarm.retry_config may not stop the 0.7 s of retries per dead peer"
    )


# -- the auto-connector patch ------------------------------------------------------------


def test_maybe_connect_is_the_auto_connectors_only_way_to_dial() -> None:
    """build_host replaces the instance's maybe_connect; that only works while every
    caller looks the method up on the instance and nothing else in it dials."""
    assert inspect.iscoroutinefunction(AutoConnector.maybe_connect), changed(
        "auto-connector", "AutoConnector.maybe_connect is no longer an async method"
    )
    assert parameters_of(AutoConnector.maybe_connect) == ["self"], changed(
        "auto-connector", f"maybe_connect now takes {parameters_of(AutoConnector.maybe_connect)}"
    )
    assert "self.maybe_connect()" in source_of(AutoConnector._periodic_check_task), changed(
        "auto-connector", "the periodic task no longer calls self.maybe_connect()"
    )
    swarm_source = inspect.getsource(swarm_module)
    callers = swarm_source.count("auto_connector.maybe_connect")
    assert callers == 1, changed(
        "auto-connector", f"the swarm calls auto_connector.maybe_connect in {callers} places (was 1)"
    )
    # Methods of AutoConnector that dial, other than maybe_connect (and the
    # helpers only it calls), would bypass the patch.
    dialing = sorted(
        name
        for name, member in vars(AutoConnector).items()
        if inspect.isfunction(member) and "dial_peer" in inspect.getsource(member)
    )
    assert dialing == ["maybe_connect"], changed(
        "auto-connector", f"AutoConnector methods that call dial_peer: {dialing} (was only maybe_connect)"
    )


# -- PY_YAMUX_RELEASE_ON_READ=0 ----------------------------------------------------------


def test_yamux_still_reads_release_on_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ.get("PY_YAMUX_RELEASE_ON_READ") == "0", changed(
        "PY_YAMUX_RELEASE_ON_READ", "importing node/libp2p/host.py did not set it"
    )
    check = getattr(yamux, "_yamux_release_on_read", None)
    assert check is not None, changed(
        "PY_YAMUX_RELEASE_ON_READ", "yamux._yamux_release_on_read is gone: find the new switch for "
        "the window update sent on every read"
    )
    assert check() is False, changed("PY_YAMUX_RELEASE_ON_READ", "'0' no longer turns it off")
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "1")
    assert check() is True, changed("PY_YAMUX_RELEASE_ON_READ", "the variable is no longer read at call time")
    assert "_yamux_release_on_read()" in inspect.getsource(yamux), changed(
        "PY_YAMUX_RELEASE_ON_READ", "the read path no longer consults the switch"
    )


# -- ensure_port_free (the library binds with SO_REUSEPORT) --------------------------------


def test_the_tcp_listener_still_shares_ports() -> None:
    """If this fails, ensure_port_free is no longer needed (a taken port would fail
    the library's own bind): it may stay, but say so in its docstring."""
    assert "SO_REUSEPORT" in inspect.getsource(tcp), changed(
        "ensure_port_free", "the TCP transport no longer binds with SO_REUSEPORT"
    )


async def test_a_port_held_by_a_running_host_is_refused() -> None:
    host = build_host(fresh_identity())
    async with running_host(host, [LOOPBACK]):
        port = int(host.get_transport_addrs()[0].value_for_protocol("tcp"))
        with pytest.raises(ConfigError, match=f"cannot listen on /ip4/127.0.0.1/tcp/{port}"):
            ensure_port_free(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}"))


# -- running_host (host.run() entered by hand) --------------------------------------------


def test_host_run_is_still_an_async_context_manager_over_listen_addrs() -> None:
    host = build_host(fresh_identity())
    context = host.run([LOOPBACK])
    assert hasattr(context, "__aenter__") and hasattr(context, "__aexit__"), changed(
        "running_host", f"host.run() returned {type(context)}"
    )


async def test_running_host_listens_and_stops() -> None:
    host = build_host(fresh_identity())
    async with running_host(host, [LOOPBACK]):
        addrs = [str(a) for a in host.get_transport_addrs()]
        assert addrs and addrs[0].startswith("/ip4/127.0.0.1/tcp/") and not addrs[0].endswith("/0")
        port = int(addrs[0].rsplit("/", 1)[1])
    # stopped: the port is free again (a plain bind, without SO_REUSEPORT, succeeds)
    ensure_port_free(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}"))


async def test_host_run_still_leaves_its_listener_open() -> None:
    """The library bug running_host works around (it closes the listeners itself).
    If this fails, the library closes them now: _close_listeners may go."""
    host = build_host(fresh_identity())
    async with host.run([LOOPBACK]):
        listeners = list(host.get_network().listeners.values())
    assert listeners and all(hasattr(listener, "close") for listener in listeners), changed(
        "running_host", "the swarm keeps no closable listeners in swarm.listeners"
    )
    still_open = [listener for listener in listeners if not getattr(listener, "_closed", True)]
    assert still_open, changed("running_host", "host.run() now closes its listeners on exit")
    for listener in still_open:
        await listener.close()


async def test_an_error_in_the_body_comes_out_unwrapped() -> None:
    """The reason running_host enters host.run() by hand: the body's errors must not
    travel through the library's nurseries (trio would wrap them in ExceptionGroup)."""

    class Boom(Exception):
        pass

    host = build_host(fresh_identity())
    with pytest.raises(Boom):
        async with running_host(host, [LOOPBACK]):
            raise Boom


async def test_cancellation_of_the_body_ends_the_host_cleanly() -> None:
    host = build_host(fresh_identity())
    with trio.move_on_after(0) as scope:
        async with running_host(host, [LOOPBACK]):
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_a_failure_inside_the_library_comes_out_as_host_failed() -> None:
    """A task of the swarm's service that raises stops the host and cancels the body:
    running_host must say so (HostFailed, naming the error), not pass on a bare
    cancellation (a test would pass on it, a CLI would stop without a word)."""

    async def boom() -> None:
        raise RuntimeError("boom in the library")

    host = build_host(fresh_identity())
    with pytest.raises(HostFailed, match="boom in the library"):
        async with running_host(host, [LOOPBACK]):
            host.get_network().manager.run_task(boom)
            await trio.sleep_forever()


async def test_a_failing_inbound_stream_ends_alone() -> None:
    """guard_inbound_streams: the swarm still hands every inbound stream to
    common_stream_handler, and a failure there no longer stops the host."""
    from libp2p.network.connection.swarm_connection import SwarmConn

    assert "common_stream_handler(" in source_of(SwarmConn._handle_muxed_stream), changed(
        "guard_inbound_streams", "inbound streams no longer go through swarm.common_stream_handler")
    host = build_host(fresh_identity())
    assert getattr(host.get_network().common_stream_handler, "guarded", None) is not None


async def test_the_library_still_swallows_a_failed_listen() -> None:
    """py-libp2p logs a failed bind and runs on without the address: running_host
    checks the addresses it got, and open_node calls ensure_port_free first.
    If this fails, the library raises now: check running_host's message."""
    unbindable = Multiaddr("/ip4/192.0.2.1/tcp/0")  # TEST-NET-1: not an address of this machine
    host = build_host(fresh_identity())
    async with host.run([unbindable]):
        assert host.get_transport_addrs() == [], changed(
            "running_host", "a host listening on an address it cannot bind reports addresses"
        )
    await adapter._close_listeners(host)
    with pytest.raises(ConfigError, match="cannot listen on /ip4/192.0.2.1/tcp/0"):
        async with running_host(build_host(fresh_identity()), [unbindable]):
            pass
    with pytest.raises(ConfigError, match="cannot listen on /ip4/192.0.2.1/tcp/0"):
        ensure_port_free(unbindable)
