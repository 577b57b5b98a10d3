"""The strangers node: one facade for the CLI and for programs.

    async with open_node(NodeConfig(interests=("cinema",))) as node:
        async for event in node.events():
            ...
"""

from . import events
from .config import DEFAULT_BOOTSTRAP, NodeConfig
from .contacts import ContactBook, contact_config
from .identity import fresh_identity, load_or_create_identity
from .libp2p.host import quiet_library_logs
from .lists import CuratedLists, config_file, trusted_keys_from_config
from .lists import publish as publish_list
from .node import Node, NodeStatistics, open_node
from .reports import verify_report_file
from .safety import read_blocks, unblock

__all__ = [
    "ContactBook",
    "contact_config",
    "CuratedLists",
    "DEFAULT_BOOTSTRAP",
    "Node",
    "NodeConfig",
    "NodeStatistics",
    "events",
    "fresh_identity",
    "load_or_create_identity",
    "config_file",
    "open_node",
    "publish_list",
    "quiet_library_logs",
    "read_blocks",
    "unblock",
    "trusted_keys_from_config",
    "verify_report_file",
]
