"""The user's data directory: where it is, and its files.

One directory per user (``platformdirs``' user data dir for ``strangers``, or
``$STRANGERS_HOME`` when set: tests and several users on one account use it).
Each kind of thing has its own file, named by the module that owns it (blocks,
list subscriptions, the cache of known servers, contacts...). Files are small
JSON documents written atomically (a temporary file renamed over the old one)
and readable only by the user (0600). A file that is missing, unreadable, too
large or not JSON reads as the default the caller gives: a damaged file never
stops a node, and the next write replaces it.

Kept outside ``strangers.node`` (whose package imports the whole node), with
the standard library and platformdirs only, so that the executable reads what
it needs before its imports (``strangers.preconnect``: the cached servers).
``strangers.node.store`` re-exports it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

import platformdirs

from strangers.errors import ConfigError

logger = logging.getLogger("strangers.node.store")

ENV_HOME = "STRANGERS_HOME"


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("strangers", appauthor=False))


MAX_FILE_BYTES = 4 * 1024 * 1024
"""A bound on every file read back (a blocklist of ~50,000 peer ids fits)."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class DataDir:
    """Named JSON files in the user's data directory."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_home()

    def path(self, name: str) -> Path:
        """The path of the file ``name`` (a plain lower-case file name, no directories)."""
        if not _NAME.match(name):
            raise ConfigError(f"bad data file name {name!r}")
        return self.root / name

    def read_json(self, name: str, default: Any, *, quiet: bool = False) -> Any:
        """The document in ``name``, or ``default`` when there is none worth reading.

        ``quiet``: what is wrong with the file is logged at debug level, not as a
        warning (a read before logging is configured; the owner warns later).
        """
        path = self.path(name)
        warn = logger.debug if quiet else logger.warning
        try:
            with path.open("rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return default
        except OSError as exc:
            warn("cannot read %s: %s", path, exc)
            return default
        if len(data) > MAX_FILE_BYTES:
            warn("%s is larger than %d bytes; ignored", path, MAX_FILE_BYTES)
            return default
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            warn("%s is not valid JSON; ignored", path)
            return default

    def write_json(self, name: str, document: Any) -> None:
        """Replace ``name`` with ``document``, atomically, readable only by the user.

        Raises :class:`~strangers.errors.ConfigError` when the directory
        cannot be written (a message for the user).
        """
        path = self.path(name)
        data = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(f"{path} would be larger than {MAX_FILE_BYTES} bytes")
        try:
            write_private(path, data)
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file renamed over it), mode
    0600, its folder created 0700 if missing. Raises ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise

