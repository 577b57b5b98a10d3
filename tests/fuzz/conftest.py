"""The fuzzers' settings and, after a run, how many inputs each target executed.

Profiles (``tests/fuzz/README.md``): the quick default runs inside the normal
test suite; ``STRANGERS_FUZZ=long`` runs many more examples per fuzzer, and
``STRANGERS_FUZZ_EXAMPLES=N`` sets the number outright.
"""

from __future__ import annotations

import os

import pytest
from targets import EXECUTIONS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not EXECUTIONS:
        return
    terminalreporter.section("fuzz inputs executed")
    for target, count in sorted(EXECUTIONS.items()):
        terminalreporter.write_line(f"{target:16} {count:>10,}")
    terminalreporter.write_line(f"{'total':16} {sum(EXECUTIONS.values()):>10,}")
    profile = os.environ.get("STRANGERS_FUZZ", "quick")
    terminalreporter.write_line(f"profile: {profile}")
