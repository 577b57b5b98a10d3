"""The page's files ship in the package: no CDN, nothing fetched from the internet."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from strangers.cli.web.server import CONTENT_TYPES, load_asset

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "cli" / "web" / "static"


def test_every_static_file_is_package_data():
    """A wheel holds what ``[tool.setuptools.package-data]`` names (checked once with a real wheel build)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["strangers.cli.web"]
    assert "strangers.cli.web" in config["tool"]["setuptools"]["packages"]
    files = sorted(path.relative_to(STATIC.parent).as_posix() for path in STATIC.iterdir())
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_the_server_serves_every_file_and_nothing_from_elsewhere():
    served = {name for name, _kind in CONTENT_TYPES.values()}
    assert served == {path.name for path in STATIC.iterdir()}
    for name in served:
        text = load_asset(name).decode("utf-8")
        # no resource from another origin: every URL in the page is a path of ours
        assert not re.search(r"""(src|href)\s*=\s*["'](?!/|data:,)""", text), name
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
        assert "innerHTML" not in text and "eval(" not in text, name
