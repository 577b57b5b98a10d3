"""Build the py-libp2p host strangers runs on: TCP, Noise only, Yamux.

Choices and the library faults they work around (``../shared/notes``):

* security: Noise only (py-libp2p's default list also offers plaintext and
  secio);
* ``ConnectionConfig(max_connections_per_peer=1)``: without it every dial
  waits 250 ms for "happy eyeballs";
* no dial retries in the swarm (they cost 0.7 s per dead peer);
* no "auto-connector": by default the swarm keeps dialing every peer it has
  heard of until it holds ~200 connections (on a 60-node loopback crowd,
  thousands of Noise handshakes that starve every process of CPU);
* ``PY_YAMUX_RELEASE_ON_READ=0``: otherwise Yamux sends a window update on
  every read, an extra encrypted write per message;
* the library logs ERROR tracebacks on ordinary stream resets and shutdown:
  :func:`quiet_library_logs` keeps them out of the user's terminal.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

from libp2p import new_host  # noqa: E402
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair  # noqa: E402
from libp2p.network.config import ConnectionConfig, RetryConfig  # noqa: E402
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID  # noqa: E402
from libp2p.security.noise.transport import Transport as NoiseTransport  # noqa: E402

from .identity import Identity  # noqa: E402


def build_host(identity: Identity, *, mdns: bool = False):
    """A host ready to ``run(listen_addrs)``."""
    key_pair = identity.key_pair
    noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_preference="YAMUX",
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=mdns,
    )
    # The swarm retries a failed dial 3 times with back-off (0.1+0.2+0.4 s):
    # a dead candidate or DHT peer would cost 0.7 s before we can skip it.
    # Our own layers decide when to try again.
    swarm = host.get_network()
    swarm.retry_config = RetryConfig(max_retries=0)
    # The auto-connector aims at (low + high watermark) / 2 connections, so
    # no watermark setting turns it off without also changing pruning: its
    # one entry point becomes a no-op instead.
    swarm.auto_connector.maybe_connect = _no_auto_connect
    return host


async def _no_auto_connect() -> None:
    """Replaces py-libp2p's AutoConnector.maybe_connect (see build_host)."""


class _BelowLevel(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def quiet_library_logs(level: int = logging.CRITICAL) -> None:
    """Keep py-libp2p's and zeroconf's noisy logs away from the user.

    Their ERROR messages on normal closes are not errors for us; our own
    code reports what matters as events. ``--verbose`` lowers ``level``.
    """
    for name in ("libp2p", "zeroconf", "multiaddr", "async_service"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = level < logging.CRITICAL


def ensure_port_free(addr) -> None:
    """Refuse a listen address we cannot bind: not ours, or its port taken.

    py-libp2p binds with SO_REUSEPORT (for hole punching), so a second node
    on the same port would *succeed* and silently share the port with the
    first one. A plain bind without SO_REUSEPORT tells the truth.
    """
    import socket

    from strangers.errors import ConfigError

    ipv6 = str(addr).startswith("/ip6/")
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    host = addr.value_for_protocol("ip6" if ipv6 else "ip4")
    port = int(addr.value_for_protocol("tcp"))
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {addr}: {exc.strerror or exc}") from None
    finally:
        probe.close()
