"""The strangers node: one facade for the CLI and for programs.

    async with open_node(NodeConfig(interests=("cinema",))) as node:
        async for event in node.events():
            ...
"""

from . import events
from .config import DEFAULT_BOOTSTRAP, NodeConfig
from .identity import fresh_identity, load_or_create_identity
from .libp2p.host import quiet_library_logs
from .node import Node, NodeStatistics, open_node
from .safety import read_blocks, unblock

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "Node",
    "NodeConfig",
    "NodeStatistics",
    "events",
    "fresh_identity",
    "load_or_create_identity",
    "open_node",
    "quiet_library_logs",
    "read_blocks",
    "unblock",
]
