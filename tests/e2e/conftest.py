import pytest

from strangers.testing import Strangers  # noqa: F401  (tests import the helper module)


@pytest.fixture
def procs():
    """Collects Strangers processes and stops them all after the test."""
    started: list = []
    yield started
    for proc in started:
        proc.stop()
