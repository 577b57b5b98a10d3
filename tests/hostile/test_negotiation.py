"""Hostile multistream-select (docs/protocol.md §2): bytes that are not UTF-8 where a protocol
id belongs, on a new stream and on a new connection, end only that stream or connection.

py-libp2p 0.8.1 decodes every multistream-select message with ``bytes.decode()`` and lets the
UnicodeDecodeError escape the connection's nursery, which stops the whole host (seen in CI: a
test host fell over on the data a lazy proposal sent behind a refused protocol id).
"""

from __future__ import annotations

import trio

from hostile.peer import open_hostile_peer
from strangers.node import NodeConfig, open_node
from strangers.node.libp2p.host import quiet_library_logs

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
HEADER = b"/multistream/1.0.0\n"
NOT_UTF8 = b"\xd6\xff\xfe/not-utf8\n"


def message(body: bytes) -> bytes:
    """One multistream-select message: its length as a uvarint, then the bytes."""
    length, prefix = len(body), b""
    while length >= 0x80:
        prefix += bytes([length & 0x7F | 0x80])
        length >>= 7
    return prefix + bytes([length]) + body


async def _still_matches(victim) -> None:
    async with open_hostile_peer() as honest:
        victim_id = await honest.connect(victim.addrs[0])
        await honest.match(victim_id, ["cinema"])


async def test_a_protocol_id_that_is_not_utf8_ends_only_its_stream():
    quiet_library_logs()
    config = NodeConfig(listen=LOOPBACK, mdns=False, interests=("cinema",))
    async with open_node(config) as victim, open_hostile_peer() as mallory:
        victim_id = await mallory.connect(victim.addrs[0])
        for attack in (message(HEADER) + message(NOT_UTF8),
                       message(HEADER) + message(b"/nope/1.0.0\n") + message(NOT_UTF8)):
            stream = await mallory.host.get_network().new_stream(victim_id)
            await stream.write(attack)
            with trio.fail_after(10):
                answer = b""
                try:
                    while chunk := await stream.read(1024):
                        answer += chunk
                except Exception:  # the victim resets the stream: that is the point
                    pass
            # the victim's header, unless its reset overtook it (the victim's frames leave
            # in one batch, node/libp2p/framebatch.py, and a Yamux drops data a reset follows)
            assert answer == b"" or HEADER in answer, answer
            # only the stream ended: mallory's connection is still up
            assert victim.host.get_network().get_connections(mallory.host.get_id())
        await _still_matches(victim)


async def test_a_security_protocol_id_that_is_not_utf8_ends_only_its_connection():
    quiet_library_logs()
    config = NodeConfig(listen=LOOPBACK, mdns=False, interests=("cinema",))
    async with open_node(config) as victim:
        port = int(victim.addrs[0].split("/tcp/")[1].split("/")[0])
        with trio.fail_after(10):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            async with tcp:
                await tcp.send_all(message(HEADER) + message(NOT_UTF8))
                while await tcp.receive_some(1024):
                    pass
        await _still_matches(victim)
