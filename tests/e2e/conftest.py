import sys
from pathlib import Path

import pytest

from strangers.testing import Strangers  # noqa: F401  (tests import the helper module)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/netlab.py
from netlab import Lab, LabUnavailable  # noqa: E402


@pytest.fixture
def procs():
    """Collects Strangers processes and stops them all after the test."""
    started: list = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def lab():
    """A namespace lab (tests/netlab.py): switches, hosts and NAT routers, removed after the test."""
    try:
        built = Lab()
    except LabUnavailable as exc:
        pytest.skip(f"network namespaces with NAT are not available here: {exc}")
    try:
        yield built
    finally:
        built.close()
