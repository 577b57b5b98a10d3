"""Canaries for ``streamio``, ``kadpool`` and ``addresses`` in ``strangers.node.libp2p``.

They read streams through ``read(n)`` and its exceptions, drop closed
connection records from the swarm's books, tell a closed connection by its
``is_closed`` property, and expand wildcard addresses with a library helper.
The last test runs the stream helpers over a real pair of hosts on loopback.
"""

from __future__ import annotations

import inspect

import trio
import trio.testing
from libp2p.custom_types import TProtocol
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.stream.exceptions import StreamEOF, StreamError, StreamReset
from libp2p.network.stream.net_stream import NetStream
from libp2p.network.swarm import Swarm
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.utils import address_validation
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import dialable_addrs
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.streamio import (
    StreamEnded,
    StreamFailed,
    forget_closed_connections,
    read_exactly,
)

from canary import changed, parameters_of, source_of

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
ECHO = TProtocol("/strangers-canary/1.0.0")


def test_stream_exceptions_keep_their_family() -> None:
    """streamio catches StreamEOF (a clean end) before StreamError (anything else)."""
    assert issubclass(StreamEOF, StreamError) and issubclass(StreamReset, StreamError), changed(
        "streamio", "StreamEOF / StreamReset no longer derive from StreamError"
    )
    source = source_of(NetStream.read)
    assert "StreamEOF" in source and "StreamReset" in source, changed(
        "streamio", "NetStream.read no longer signals the end with StreamEOF and a reset with StreamReset"
    )
    for name in ("read", "write", "reset", "close", "close_write"):
        assert callable(getattr(NetStream, name, None)), changed("streamio", f"NetStream.{name} is gone")


def test_is_closed_is_still_a_property_on_connections() -> None:
    """forget_closed_connections and kadpool read ``conn.is_closed`` as a value. Were it
    a method again, the bound method would be true and every connection forgotten."""
    for owner in (SwarmConn, Yamux):
        attribute = inspect.getattr_static(owner, "is_closed", None)
        assert isinstance(attribute, property), changed(
            "forget_closed_connections", f"{owner.__name__}.is_closed is {attribute!r}, not a property"
        )


def test_the_swarm_books_we_edit() -> None:
    assert parameters_of(Swarm.get_connections)[:2] == ["self", "peer_id"], changed(
        "forget_closed_connections", f"Swarm.get_connections now takes {parameters_of(Swarm.get_connections)}"
    )
    assert parameters_of(Swarm.remove_conn) == ["self", "swarm_conn"], changed(
        "forget_closed_connections", f"Swarm.remove_conn now takes {parameters_of(Swarm.remove_conn)}"
    )
    assert ".close()" not in source_of(Swarm.remove_conn), changed(
        "forget_closed_connections", "Swarm.remove_conn now closes the connection as well"
    )


def test_expand_wildcard_address_gives_this_machines_addresses() -> None:
    expand = getattr(address_validation, "expand_wildcard_address", None)
    assert expand is not None, changed(
        "dialable_addrs", "libp2p.utils.address_validation.expand_wildcard_address is gone"
    )
    expanded = [str(addr) for addr in expand(Multiaddr("/ip4/0.0.0.0/tcp/4001"))]
    assert expanded and all(text.startswith("/ip4/") and text.endswith("/tcp/4001") for text in expanded), changed(
        "dialable_addrs", f"expand_wildcard_address(/ip4/0.0.0.0/tcp/4001) gave {expanded}"
    )
    assert "/ip4/0.0.0.0/tcp/4001" not in expanded or len(expanded) > 1, changed(
        "dialable_addrs", "expand_wildcard_address no longer lists this machine's interfaces"
    )


async def test_stream_helpers_over_real_hosts() -> None:
    """read(n) on a real yamux stream: data, then StreamEnded at a clean close, and
    the data, then StreamFailed, when the peer resets a stream the client has not written to."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    done = trio.Event()
    close_cleanly = True

    async def handler(stream: NetStream) -> None:
        await stream.write(b"hello")
        if close_cleanly:
            await stream.close()
        else:
            await stream.reset()
        done.set()

    async def ask() -> tuple[bytes, StreamEnded | None]:
        nonlocal done
        done = trio.Event()
        stream = await client.new_stream(server.get_id(), [ECHO])
        await done.wait()
        data = b""
        try:
            data = await read_exactly(stream, 5)
            await read_exactly(stream, 1)
        except StreamEnded as exc:
            return data, exc
        return data, None

    server.set_stream_handler(ECHO, handler)
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
            assert forget_closed_connections(client, server.get_id()) == 0
            assert dialable_addrs(client) and all("/tcp/" in str(a) for a in dialable_addrs(client))

            data, end = await ask()
            assert data == b"hello" and type(end) is StreamEnded, changed(
                "streamio", f"a cleanly closed stream gave {data!r} and ended with {end!r}"
            )
            close_cleanly = False
            data, end = await ask()
            # the bytes sent before the reset come first, then the reset (yamuxreset)
            assert data == b"hello" and isinstance(end, StreamFailed), changed(
                "streamio", f"a reset stream gave {data!r} and ended with {end!r}"
            )


async def test_a_reset_after_we_wrote_is_still_reported_as_eof_but_marked_on_the_stream() -> None:
    """A library fault streamio works around: once the client has written on a stream,
    the peer's reset reaches a read() that is waiting for it as StreamEOF, not StreamReset
    (a reset taken in before the read gives StreamReset: which one is a race); the Yamux stream's
    ``reset_received`` still tells. read_exactly must say StreamFailed (a reset), which
    is what kad's ADD_PROVIDER check relies on (a reset means "not stored").
    If the first check fails, the library reports these resets itself now."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    go = trio.Event()
    mode = "reset"

    async def handler(stream: NetStream) -> None:
        await read_exactly(stream, 1)
        await go.wait()
        if mode == "reset":
            await stream.reset()
        else:
            await stream.close()

    async def ended_while_reading(read) -> tuple[NetStream, Exception | None]:
        """Write, half-close (as ADD_PROVIDER does), and be reading when the RST or FIN
        comes in (so the outcome does not hang on which of the two runs first)."""
        nonlocal go
        go = trio.Event()
        stream = await client.new_stream(server.get_id(), [ECHO])
        await stream.write(b"x")
        await stream.close_write()
        raised: list[Exception] = []

        async def reader() -> None:
            try:
                await read(stream)
            except Exception as exc:  # what the library says, whatever it is
                raised.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            go.set()
        return stream, raised[0] if raised else None

    server.set_stream_handler(ECHO, handler)
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
            stream, raised = await ended_while_reading(lambda stream: stream.read(1))
            assert type(raised) is StreamEOF, changed(
                "streamio._was_reset", f"a reset after a write now ends read() with {raised!r}, not StreamEOF"
            )
            assert getattr(stream.muxed_stream, "reset_received", None) is True, changed(
                "streamio._was_reset", "the Yamux stream no longer records reset_received"
            )
            stream, raised = await ended_while_reading(lambda stream: read_exactly(stream, 1))
            assert isinstance(raised, StreamFailed), raised

            mode = "close"
            stream, raised = await ended_while_reading(lambda stream: read_exactly(stream, 1))
            assert type(raised) is StreamEnded, raised
            assert stream.muxed_stream.reset_received is False
