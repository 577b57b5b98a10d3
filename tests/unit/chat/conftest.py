"""Fixtures of the chat protocol tests; the helpers themselves are in chat_helpers.py."""

from __future__ import annotations

import pytest

from strangers.crypto.handshake import Role

from chat_helpers import ConnectionPair


@pytest.fixture(params=list(Role), ids=lambda role: f"from-{role.value}")
def sender(request: pytest.FixtureRequest) -> Role:
    """The side that speaks first in a test; every such test runs in both directions."""
    return request.param


@pytest.fixture
def pair() -> ConnectionPair:
    return ConnectionPair()


@pytest.fixture
def open_pair(pair: ConnectionPair) -> ConnectionPair:
    """A pair whose handshake and ready are done."""
    pair.open()
    return pair
