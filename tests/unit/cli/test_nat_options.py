"""The NAT options: --behind-nat, --no-relay, --hide-ip reach NodeConfig, with their rules."""

from __future__ import annotations

import pytest

from strangers.cli.main import _config_from, build_parser
from strangers.errors import ConfigError
from strangers.node import NodeConfig

SEED = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzh8T3LSnzJyBQ6Ch5bCzVrBeHXVuN2uLFzvDJ4y8rX3"


def _config(*argv: str) -> NodeConfig:
    return _config_from(build_parser().parse_args(list(argv)))


def test_defaults_leave_reachability_to_autonat_and_relay_when_reachable() -> None:
    config = _config("chat", "--bootstrap", SEED)
    assert (config.behind_nat, config.hide_ip, config.relay) == (False, False, True)
    assert config.reachable_unknown


def test_behind_nat_and_no_relay() -> None:
    config = _config("serve", "--bootstrap", SEED, "--behind-nat", "--no-relay")
    assert config.behind_nat and not config.relay and not config.reachable_unknown


def test_hide_ip_turns_mdns_off_and_decides_reachability() -> None:
    config = _config("chat", "--bootstrap", SEED, "--hide-ip")
    assert config.hide_ip and not config.mdns and not config.reachable_unknown


def test_hide_ip_needs_bootstrap_peers_and_a_chat_node() -> None:
    with pytest.raises(ConfigError, match="bootstrap"):
        _config("chat", "--no-bootstrap", "--hide-ip")
    with pytest.raises(SystemExit):  # serve has no --hide-ip
        _config("serve", "--hide-ip")
    with pytest.raises(ConfigError, match="chat"):
        NodeConfig(chat=False, hide_ip=True, bootstrap=(SEED,))
