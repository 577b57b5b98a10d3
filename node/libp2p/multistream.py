"""Fewer round trips in multistream-select: pipelined and optimistic ("lazy") negotiation.

py-libp2p 0.8.1 negotiates every protocol in two round trips: the
initiator writes ``/multistream/1.0.0``, waits for the echo, writes the
protocol, waits for its echo. A fresh connection does it twice (security,
then muxer) and every stream once more: 9 round trips from a TCP connect to
the answer of a first request, 3 for a request on a new stream
(``tests/netsim/roundtrips.py``, ``docs/performance.md`` "Round trips per
phase"). Here, as go-libp2p and js-libp2p do (the multistream-select spec
allows both):

* **pipelined**: the initiator writes the header and its first proposal in
  one flight (one round trip fewer whenever we must wait for the answer,
  e.g. a choice among several protocols);
* **lazy** (optimistic) where the initiator proposes one protocol, which
  either works or fails the stream/connection anyway: it writes the header
  and the protocol and goes on at once, its first data in the same flight;
  the echoes are checked by the first read (:class:`_DeferredEcho`). A
  refusal (``na``) arrives there and fails that read cleanly
  (:class:`ProtocolRefused`, a ``StreamError`` on a stream; on a connection
  an error the upgrader turns into a failed dial). Applied to:

  - the security protocol on connections we dial (Noise's first message
    rides with the proposal),
  - the muxer on connections we dial (Yamux's first frames ride with
    Noise's last message),
  - every stream opened for one protocol (``host.new_stream(peer, [p])``):
    the request rides with the proposal.

  The listener side is py-libp2p's, unchanged: it reads the header, the
  protocol, then the data we sent behind them, from its buffers. A peer that
  speaks plain multistream-select (any libp2p) therefore understands us.

After: 3 round trips from connect to a first answer (TCP, Noise's first
exchange, then Noise's last message + muxer + stream + request), 1 for a
request on a new stream.

Patches (canaries in ``tests/adapters/test_canary_multistream.py``):
``host.new_stream`` and ``host.multiselect_client`` on our host, and the
``select`` of the transport upgrader's security and muxer selectors.

A cancelled write to a Noise session (a walk that ends early cancels its
pooled requests) used to break the whole connection: :mod:`.securewrite`
makes every write atomic under cancellation, whatever the negotiation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.io.exceptions import IOException
from libp2p.network.stream.exceptions import StreamError
from libp2p.protocol_muxer.exceptions import (
    MultiselectClientError,
    MultiselectCommunicatorError,
    ProtocolNotSupportedError,
)
from libp2p.protocol_muxer.multiselect_client import MultiselectClient
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.utils import encode_delim

logger = logging.getLogger(__name__)

MULTISTREAM = "/multistream/1.0.0"
NOT_AVAILABLE = "na"
MAX_MESSAGE = 1024
"""Longest multistream-select message we read back (a protocol id and its newline)."""
NEGOTIATE_TIMEOUT = 30.0


class ProtocolRefused(MultiselectClientError, IOException):
    """The peer answered our optimistic proposal with ``na`` (or not with multistream-select)."""


class StreamProtocolRefused(StreamError):
    """A stream opened optimistically: the peer refused its protocol (``na``) or spoke no multistream-select."""


def proposal(protocol: str) -> bytes:
    """The header and one protocol proposal, as one write."""
    return encode_delim(MULTISTREAM.encode()) + encode_delim(protocol.encode())


async def _read_exactly(read, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await read(count - len(data))
        if not chunk:
            raise ProtocolRefused("the peer closed before answering the protocol proposal")
        data += chunk
    return data


async def _read_message(read) -> str:
    """One multistream-select message (varint length, text, newline) through ``read``."""
    length = 0
    for shift in range(0, 21, 7):
        byte = (await _read_exactly(read, 1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise ProtocolRefused("multistream-select length prefix too long")
    if not 0 < length <= MAX_MESSAGE:
        raise ProtocolRefused(f"multistream-select message of {length} bytes")
    body = await _read_exactly(read, length)
    if not body.endswith(b"\n"):
        raise ProtocolRefused(f"multistream-select message without a newline: {body[:64]!r}")
    return body[:-1].decode("utf-8", "replace")


async def read_echo(read, protocol: str) -> None:
    """Read the peer's header and its answer to ``protocol``; ProtocolRefused unless it is the echo."""
    header = await _read_message(read)
    if header != MULTISTREAM:
        raise ProtocolRefused(f"the peer speaks {header[:64]!r}, not multistream-select")
    answer = await _read_message(read)
    if answer == protocol:
        return
    if answer == NOT_AVAILABLE:
        raise ProtocolRefused(f"the peer does not support {protocol}")
    raise ProtocolRefused(f"the peer answered {answer[:64]!r} to {protocol}")


class _DeferredEcho:
    """Stands in for ``target.read`` until the echo of our optimistic proposal is read and checked.

    Installed as an instance attribute over the class's ``read``; once the
    echo is through (or failed), it removes itself, so later reads cost
    nothing. Every read waits for the check: data only follows the echo.
    """

    def __init__(self, target, protocol: str, error: type[Exception]) -> None:
        self.target = target
        self.protocol = protocol
        self.error = error
        self.original = type(target).read.__get__(target)
        self.lock = trio.Lock()
        self.failure: Exception | None = None
        self.checked = False

    async def __call__(self, n: int | None = None) -> bytes:
        async with self.lock:
            if not self.checked and self.failure is None:
                try:
                    await read_echo(self.original, self.protocol)
                except ProtocolRefused as exc:
                    self.failure = exc
                except Exception as exc:  # the stream or connection broke first
                    self.failure = exc
                    raise
                except BaseException:  # cancelled half-way: what was read is gone, never misparse
                    self.failure = ProtocolRefused("a read was cancelled while the protocol echo came in")
                    raise
                else:
                    self.checked = True
                    self.target.__dict__.pop("read", None)
        if self.failure is not None:
            if isinstance(self.failure, ProtocolRefused):
                raise self.error(str(self.failure)) from self.failure
            raise self.failure
        return await self.original(n)


def defer_echo(target, protocol: str, error: type[Exception] = ProtocolRefused) -> None:
    """Make the first ``target.read`` consume and check the echo of ``protocol`` first."""
    target.read = _DeferredEcho(target, protocol, error)


def echo_pending(target) -> bool:
    """Whether ``target``'s echo has not been read yet (it was opened optimistically)."""
    return isinstance(target.__dict__.get("read"), _DeferredEcho)


class PipelinedMultiselectClient(MultiselectClient):
    """py-libp2p's client, with the header and the first proposal in one write."""

    async def select_one_of(self, protocols: Sequence[TProtocol], communicator,
                            negotiate_timeout: int = int(NEGOTIATE_TIMEOUT)) -> TProtocol:
        if not protocols:
            raise MultiselectClientError("no protocol to propose")
        first, rest = protocols[0], protocols[1:]
        with trio.move_on_after(negotiate_timeout):
            try:
                await communicator.read_writer.write(proposal(str(first)))
                await read_echo(communicator.read_writer.read, str(first))
                return first
            except ProtocolRefused as refused:
                if not str(refused).startswith("the peer does not support"):
                    raise MultiselectClientError(str(refused)) from refused
            except IOException as exc:
                raise MultiselectClientError(f"protocol negotiation failed: {exc}") from exc
            for protocol in rest:
                try:
                    return await self.try_select(communicator, protocol)
                except ProtocolNotSupportedError:
                    continue
            raise MultiselectClientError(f"protocols not supported: {list(protocols)}")
        raise MultiselectClientError(f"protocol negotiation timed out after {negotiate_timeout}s")


def install_tolerant_reads() -> None:
    """A multistream-select message that is not UTF-8 is a failed negotiation, not a crash.

    py-libp2p 0.8.1's ``MultiselectCommunicator.read`` ends in a bare
    ``bytes.decode()``: its ``UnicodeDecodeError`` is none of the errors the
    negotiation catches, so it escapes (on a listener, into the connection's
    nursery: the host stops). Here it becomes the library's own
    ``MultiselectCommunicatorError``, which every caller handles (the stream
    or connection is refused). Patches the class, once per process;
    canary in ``tests/adapters/test_canary_multistream.py``.
    """
    read = MultiselectCommunicator.read
    if getattr(read, "tolerant", False):
        return

    async def tolerant_read(self) -> str:
        try:
            return await read(self)
        except UnicodeDecodeError as exc:
            raise MultiselectCommunicatorError("a multistream-select message that is not UTF-8") from exc

    tolerant_read.tolerant = True  # type: ignore[attr-defined]
    MultiselectCommunicator.read = tolerant_read  # type: ignore[method-assign]


def may_send_early(host, peer_id, protocol: str) -> bool:
    """Whether a stream for ``protocol`` may carry its first data before the peer's echo.

    As go-libp2p decides: only when the peer is known to speak it (identify
    listed it in the peerstore). A peer that refuses answers ``na`` and then
    reads our data as its next multistream-select message, which some
    implementations do not survive (py-libp2p 0.8.1 stopped on it). Before
    identify has told us anything, a strangers protocol is sent early (the
    peer was found as a strangers node); a foreign one is negotiated.
    """
    try:
        known = host.get_peerstore().get_protocols(peer_id)
    except Exception:  # no record of the peer at all
        known = []
    if known:
        return protocol in known
    return protocol.startswith("/strangers/")


def _lazy_initiator_select(selector) -> None:
    """Replace ``selector.select`` (a GenericMultistreamSelector): optimistic when we initiate."""
    negotiate = selector.select

    async def select(conn, is_initiator: bool, negotiate_timeout: int = int(NEGOTIATE_TIMEOUT)):
        if not is_initiator or not selector.handlers:
            return await negotiate(conn, is_initiator, negotiate_timeout)
        protocol = next(iter(selector.handlers))
        try:
            await conn.write(proposal(str(protocol)))
        except IOException as exc:
            raise MultiselectClientError(f"protocol proposal failed: {exc}") from exc
        defer_echo(conn, str(protocol))
        return protocol, selector.handlers[protocol]

    selector.select = select


def install(host) -> None:
    """Pipelined and lazy multistream-select on ``host`` (see the module docstring)."""
    host.multiselect_client = PipelinedMultiselectClient()
    upgrader = host.get_network().upgrader
    for multistream in (upgrader.security_multistream, upgrader.muxer_multistream):
        multistream._selector.multiselect_client = PipelinedMultiselectClient()
        _lazy_initiator_select(multistream._selector)
    host.new_stream = _lazy_new_stream(host, host.new_stream)


def _lazy_new_stream(host, negotiated_new_stream):
    async def new_stream(peer_id, protocol_ids: Sequence[TProtocol]):
        if len(protocol_ids) != 1 or not may_send_early(host, peer_id, str(protocol_ids[0])):
            return await negotiated_new_stream(peer_id, protocol_ids)
        protocol = protocol_ids[0]
        net_stream = await host.get_network().new_stream(peer_id)
        try:
            await net_stream.write(proposal(str(protocol)))
        except Exception as exc:
            with trio.CancelScope(shield=True):
                try:
                    await net_stream.reset()
                except Exception:
                    pass
            raise StreamFailure(f"failed to open a stream to peer {peer_id}: {exc!r}") from exc
        defer_echo(net_stream, str(protocol), StreamProtocolRefused)
        net_stream.set_protocol(protocol)
        return net_stream

    new_stream.negotiated = negotiated_new_stream
    return new_stream


__all__ = [
    "PipelinedMultiselectClient",
    "ProtocolRefused",
    "StreamProtocolRefused",
    "defer_echo",
    "echo_pending",
    "install",
    "install_tolerant_reads",
    "may_send_early",
    "proposal",
    "read_echo",
]
