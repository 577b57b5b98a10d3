"""Canaries for ``strangers.node.libp2p.multistream`` (pipelined and optimistic multistream-select).

It replaces ``host.new_stream`` and ``host.multiselect_client`` on our host
and the ``select`` of the transport upgrader's two selectors, and makes the
first ``read`` of a connection or stream check the echo of the protocol we
proposed (an instance attribute over the class's ``read``). The listener
side stays py-libp2p's: it must keep reading the header, then the protocol,
and leave what follows in the stream for the next reader.
"""

from __future__ import annotations

import pytest
from libp2p.host.basic_host import BasicHost
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.stream.net_stream import NetStream
from libp2p.network.swarm import Swarm
from libp2p.protocol_muxer.generic_selector import GenericMultistreamSelector
from libp2p.protocol_muxer.multiselect import Multiselect
from libp2p.protocol_muxer.multiselect_client import MultiselectClient
from libp2p.security.secure_session import SecureSession
from libp2p.security.security_multistream import SecurityMultistream
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.transport.upgrader import TransportUpgrader
from libp2p.utils import varint

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import multistream
from strangers.node.libp2p.host import build_host

from canary import changed, parameters_of, source_of

PATCH = "multistream"


def test_the_upgrader_negotiates_through_the_selectors_we_replace() -> None:
    assert "_selector.select" in source_of(SecurityMultistream.select_transport_and_protocol), changed(
        PATCH, "the security upgrade no longer negotiates with self._selector.select")
    assert "self._selector.select(" in source_of(MuxerMultistream.new_conn), changed(
        PATCH, "the muxer upgrade no longer negotiates with self._selector.select")
    assert "conn.is_initiator" in source_of(MuxerMultistream.new_conn), changed(
        PATCH, "the muxer upgrade no longer tells the selector who initiated")
    assert parameters_of(GenericMultistreamSelector.select) == [
        "self", "conn", "is_initiator", "negotiate_timeout"], changed(
        PATCH, "GenericMultistreamSelector.select takes other arguments")
    for name in ("security_multistream", "muxer_multistream"):
        assert name in TransportUpgrader.__annotations__, changed(PATCH, f"TransportUpgrader.{name} is gone")
    assert "upgrader" in Swarm.__annotations__, changed(PATCH, "Swarm.upgrader is gone")


def test_build_host_installs_the_optimistic_negotiation() -> None:
    host = build_host(fresh_identity())
    assert isinstance(host, BasicHost)
    assert isinstance(host.multiselect_client, multistream.PipelinedMultiselectClient)
    upgrader = host.get_network().upgrader
    for selector in (upgrader.security_multistream._selector, upgrader.muxer_multistream._selector):
        assert "select" in vars(selector) and isinstance(selector.multiselect_client,
                                                         multistream.PipelinedMultiselectClient)
        assert list(selector.handlers), changed(PATCH, "a selector without handlers")
    assert "new_stream" in vars(host)
    plain = build_host(fresh_identity(), optimistic=False)
    assert "new_stream" not in vars(plain)


def test_host_new_stream_still_negotiates_on_a_stream_from_the_swarm() -> None:
    source = source_of(BasicHost.new_stream)
    for needle in ("self._network.new_stream(peer_id)", "select_one_of(", "set_protocol(selected_protocol)"):
        assert needle in source, changed(PATCH, f"BasicHost.new_stream no longer calls {needle}")
    assert parameters_of(MultiselectClient.select_one_of) == [
        "self", "protocols", "communicator", "negotiate_timeout"], changed(
        PATCH, "MultiselectClient.select_one_of takes other arguments")


def test_reads_can_be_overridden_per_instance() -> None:
    """defer_echo sets ``read`` on the instance: no ``__slots__``, ``read`` defined on the class."""
    for owner in (RawConnection, SecureSession, NetStream):
        assert "read" in vars(owner) or any("read" in vars(base) for base in owner.__mro__[1:-1]), changed(
            PATCH, f"{owner.__name__} has no read method")
        assert "__dict__" in dir(owner) or not hasattr(owner, "__slots__"), changed(
            PATCH, f"{owner.__name__} has __slots__: its read cannot be replaced per instance")


def test_the_listener_reads_the_header_then_the_protocol_and_nothing_more() -> None:
    """Our data rides behind the proposal: the listener must read exactly the delimited messages."""
    source = source_of(Multiselect.negotiate)
    assert "communicator.read()" in source and "self.handshake(communicator)" in source, changed(
        PATCH, "the listener no longer reads the header, then commands")
    assert "read_varint_prefixed_bytes" in source_of(varint.read_delim), changed(
        PATCH, "read_delim no longer reads one length-prefixed message")



async def test_the_library_still_decodes_protocol_ids_strictly() -> None:
    """Why install_tolerant_reads exists: py-libp2p's communicator decodes with a bare
    ``bytes.decode()``. If this fails, the library handles bad UTF-8 itself now."""
    from libp2p.protocol_muxer.exceptions import MultiselectCommunicatorError
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

    build_host(fresh_identity())  # installs the patch
    patched = MultiselectCommunicator.read
    assert getattr(patched, "tolerant", False)

    class Bytes:
        def __init__(self, data: bytes) -> None:
            self.data = data

        async def read(self, n: int = -1) -> bytes:
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk

    unreadable = bytes([5]) + b"\xd6\xff\xfe!\n"
    original = patched.__closure__[0].cell_contents  # py-libp2p's own read
    try:
        await original(MultiselectCommunicator(Bytes(unreadable)))
    except UnicodeDecodeError:
        pass
    else:
        raise AssertionError(changed(PATCH, "MultiselectCommunicator.read no longer raises UnicodeDecodeError"))
    with pytest.raises(MultiselectCommunicatorError, match="not UTF-8"):
        await patched(MultiselectCommunicator(Bytes(unreadable)))
