"""Are we reachable from outside? AutoNAT (v1) with a dial-back that proves it.

py-libp2p's ``libp2p.host.autonat.AutoNATService`` answers dial-back requests
with ``host.connect``, which returns at once when *any* connection to the
peer exists: the very connection the request came in on. Every node asking
is then judged public, NAT or not (``tests/adapters/test_canary_reachability.py``
shows it). :class:`FreshDialAutoNAT` dials back on a fresh TCP connection of
its own and completes a Noise handshake on it (the peer id is proven), then
closes it: the swarm's books are not touched.

The client side (:func:`ask_reachability`) asks a few servers (peers that
speak AutoNAT: the bootstrap peers first) and takes the majority of their
answers; py-libp2p wants 4 confirming servers, which a small network
never has.

Observed addresses (:func:`watch_observations`): py-libp2p's identify client
hands each ``observed_addr`` to the host's ``ObservedAddrManager``, which
announces one only once 4 observers agree on IP *and* port; over TCP without
port reuse the port is an outgoing connection's NAT mapping, so that never
happens behind a NAT. We take the observed IPs as they come
(:class:`strangers.discovery.observed.ObservedAddresses`); ``node/nat.py``
offers "observed IP + our listen port" to the AutoNAT servers, and what they
reach (a port forward, a 1:1 NAT) is announced. Canary:
``tests/adapters/test_canary_reachability.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import trio
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID, AutoNATService
from libp2p.host.autonat.pb.autonat_pb2 import Message
from libp2p.host.observed_addr_manager import ObservedAddrManager
from libp2p.peer.id import ID
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited
from multiaddr import Multiaddr

from strangers.discovery.observed import ObservedAddresses

logger = logging.getLogger(__name__)

AUTONAT = AUTONAT_PROTOCOL_ID
DIAL_BACK_TIMEOUT = 3.0
"""Seconds a server gives one dial-back (a NAT that drops SYNs never answers)."""
QUERY_TIMEOUT = 8.0
"""Seconds we wait for one server's verdict (it may try several addresses)."""
SERVERS = 3
MAX_MESSAGE = 4096
"""How many servers we ask at most."""


class FreshDialAutoNAT(AutoNATService):
    """AutoNAT whose dial-back opens a new connection instead of reusing one."""

    async def _try_dial(self, peer_id: ID, addrs: list[bytes]) -> bytes | None:
        for raw in addrs:
            try:
                addr = Multiaddr(raw)
                with trio.fail_after(DIAL_BACK_TIMEOUT):
                    if await fresh_dial(self.host, peer_id, addr):
                        return bytes(raw)
            except Exception as exc:
                logger.debug("dial-back to %s at %s failed: %r", peer_id, raw, exc)
        return None


async def fresh_dial(host, peer_id: ID, addr: Multiaddr) -> bool:
    """Dial ``addr`` on a new TCP connection and prove ``peer_id`` is there (Noise)."""
    swarm = host.get_network()
    transport = swarm.transport_manager.transport_for_dialing(addr)
    if transport is None:
        return False
    raw = await transport.dial(addr)
    try:
        secured = await swarm.upgrader.upgrade_security(raw, True, peer_id)
        await secured.close()
        return True
    finally:
        try:
            await raw.close()
        except Exception:
            pass


async def query(host, server: ID, addrs: list[Multiaddr],
                timeout: float = QUERY_TIMEOUT) -> tuple[int, str, bytes | None]:
    """One AutoNAT DIAL request: (status, status text, the address it reached)."""
    request = Message()
    request.type = Message.DIAL
    request.dial.peer.id = host.get_id().to_bytes()
    for addr in addrs:
        request.dial.peer.addrs.append(addr.to_bytes())
    stream = None
    try:
        with trio.fail_after(timeout):
            stream = await host.new_stream(server, [AUTONAT])
            await stream.write(encode_varint_prefixed(request.SerializeToString()))
            answer = await read_varint_prefixed_bytes_limited(stream, MAX_MESSAGE)
    finally:
        if stream is not None:
            try:
                await stream.close()
            except Exception:
                pass
    response = Message()
    response.ParseFromString(answer)
    reply = response.dialResponse
    return int(reply.status), reply.statusText, bytes(reply.addr) if reply.HasField("addr") else None


OBSERVED_IP_MISMATCH = "observed IP"
"""Part of the refusal text when none of our addresses has the IP the server sees."""


async def ask_reachability(host, servers: Iterable[ID],
                           addrs: list[Multiaddr]) -> tuple[bool | None, list[Multiaddr]]:
    """Ask up to :data:`SERVERS` servers to dial ``addrs`` back.

    Returns (reachable, addresses the servers reached): None when nobody
    answered; otherwise the majority verdict (a tie counts as not
    reachable). A server that refuses because it sees us come from an IP
    none of our addresses has counts as "not reachable": a NAT rewrote it.
    """
    verdicts: list[bool] = []
    reached: list[Multiaddr] = []
    for server in list(servers)[:SERVERS]:
        try:
            status, text, addr = await query(host, server, addrs)
        except Exception as exc:
            logger.info("AutoNAT server %s did not answer: %r", server, exc)
            continue
        logger.info("AutoNAT server %s: status %s %s", server, status, text)
        if status == int(Message.E_DIAL_REFUSED):
            if OBSERVED_IP_MISMATCH in text:
                verdicts.append(False)
            continue
        ok = status == int(Message.OK)
        verdicts.append(ok)
        if ok and addr:
            try:
                reached.append(Multiaddr(addr))
            except Exception:
                pass
    if not verdicts:
        return None, []
    return sum(verdicts) * 2 > len(verdicts), list(dict.fromkeys(reached))


def autonat_servers(host, preferred: Iterable[ID] = ()) -> list[ID]:
    """Connected peers that speak AutoNAT, ``preferred`` (bootstrap peers) first."""
    store = host.get_peerstore()
    connected = list(host.get_connected_peers())
    out: list[ID] = []
    for peer in [*preferred, *connected]:
        if peer in out or peer not in connected:
            continue
        try:
            protocols = store.get_protocols(peer) or []
        except Exception:
            protocols = []
        if AUTONAT in protocols or peer in set(preferred):
            out.append(peer)
    return out


def _ip_of(addr: Multiaddr) -> str | None:
    for protocol in ("ip4", "ip6"):
        try:
            return addr.value_for_protocol(protocol)
        except Exception:  # not this family
            continue
    return None


def watch_observations(host, seen: ObservedAddresses,
                       on_new: Callable[[], None] | None = None) -> None:
    """Record in ``seen`` every address identify says a peer sees us at.

    Wraps ``host._observed_addr_manager.record_observation`` (py-libp2p's
    identify calls it with the connection, the observed multiaddr and our
    transport addresses, for direct connections only); the library's own
    bookkeeping still runs. ``on_new`` is called when an IP or an observer
    network is new.
    """
    manager = getattr(host, "_observed_addr_manager", None)
    if manager is None:  # identify address discovery disabled: nothing to watch
        manager = host._observed_addr_manager = ObservedAddrManager()
    original = manager.record_observation

    def record_observation(conn, observed_addr, local_addrs) -> None:
        try:
            remote = conn.muxed_conn.get_remote_address()
            observer = remote[0] if remote else None
            observed = _ip_of(observed_addr)
            if observer and observed and seen.record(str(observer), observed):
                logger.info("a peer at %s sees us at %s", observer, observed)
                if on_new is not None:
                    on_new()
        except Exception as exc:  # a peer's nonsense, a closing connection
            logger.debug("observation not recorded: %r", exc)
        original(conn, observed_addr, local_addrs)

    manager.record_observation = record_observation  # type: ignore[method-assign]
