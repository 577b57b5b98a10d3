"""Where the user's data directory is: ``$STRANGERS_HOME`` when set, else platformdirs'.

Kept apart from ``strangers.node.store`` (which reads and writes its files) so
that the executable knows it before it imports the node (``strangers.preconnect``).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "STRANGERS_HOME"


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("strangers", appauthor=False))
