"""Coverage-guided fuzzing of one target with atheris (libFuzzer); optional.

Not part of the test suite and not needed by CI.  Usage::

    .venv/bin/pip install atheris
    mkdir -p /tmp/fuzz-out
    .venv/bin/python tests/fuzz/atheris_fuzz.py chat-session -max_total_time=60 \\
        /tmp/fuzz-out tests/fuzz/corpus/chat-session

The first directory receives the inputs libFuzzer finds interesting (keep the
committed corpus read-only by naming it second).  The target names and their
properties are those of ``targets.py``; a property violation or any exception
other than the library's own errors stops the run and writes ``crash-*``:
copy that file into ``corpus/<target>/`` as a regression input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["strangers"]):
    import targets

    # imported lazily by their targets; import them here so that they are instrumented
    import strangers.node.libp2p.kad  # noqa: F401
    import strangers.node.libp2p.streamio  # noqa: F401


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        names = ", ".join(targets.TARGETS)
        sys.exit(f"usage: atheris_fuzz.py TARGET [libFuzzer options] [DIR...]; targets: {names}")
    target = targets.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
