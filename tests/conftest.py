"""Every test runs with its own data directory (``$STRANGERS_HOME``), never the user's.

Nodes and the ``strangers`` executables the end-to-end tests start inherit it,
so blocks, list subscriptions and caches written by one test cannot leak into
another, nor into the real home of whoever runs the tests.
"""

import pytest


@pytest.fixture(autouse=True)
def strangers_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("strangers-home")
    monkeypatch.setenv("STRANGERS_HOME", str(home))
    # The price on identities (crypto/pow.py) off for the suite: a few CPU-seconds per
    # node would cost hours. Tests of the price set their own bits (tests/unit/node/test_safety.py).
    monkeypatch.setenv("STRANGERS_POW_BITS", "0")
    return home


# Hypothesis: no per-example deadline anywhere. These machines are shared and
# noisy: a deadline turns a slow moment into a failure that says nothing about
# the code (tests/fuzz sets its own profiles on top of this default).
from hypothesis import settings  # noqa: E402

settings.register_profile("strangers", deadline=None)
settings.load_profile("strangers")



# A trio cancellation that escapes a test fails it instead of passing it
# (pytest-trio 0.8 counts it as a pass): tests/cancelnet.py.
pytest_plugins = ["pytester", "cancelnet"]
