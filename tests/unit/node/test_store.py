"""The data directory: atomic, private, and a damaged file never stops a node."""

import os
import stat

import pytest

from strangers.errors import ConfigError
from strangers.node.store import ENV_HOME, MAX_FILE_BYTES, DataDir, default_home


def test_written_documents_read_back_and_are_private(tmp_path):
    store = DataDir(tmp_path / "home")
    store.write_json("blocks.json", {"peers": ["a", "b"]})
    assert store.read_json("blocks.json", None) == {"peers": ["a", "b"]}
    mode = stat.S_IMODE(os.stat(store.path("blocks.json")).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "home").st_mode) == 0o700
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["blocks.json"]  # no temporary left


def test_missing_damaged_or_oversized_files_read_as_the_default(tmp_path):
    store = DataDir(tmp_path)
    assert store.read_json("none.json", []) == []
    store.path("bad.json").write_bytes(b"{not json")
    assert store.read_json("bad.json", {"d": 1}) == {"d": 1}
    store.path("bin.json").write_bytes(b"\xff\xfe")
    assert store.read_json("bin.json", 7) == 7
    store.path("big.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    assert store.read_json("big.json", "x") == "x"


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "UPPER"])
def test_file_names_cannot_leave_the_directory(tmp_path, name):
    with pytest.raises(ConfigError):
        DataDir(tmp_path).path(name)


def test_an_unwritable_directory_is_a_message_not_a_crash(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        DataDir(blocker / "home").write_json("x.json", 1)


def test_the_environment_chooses_the_home(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_HOME, str(tmp_path))
    assert default_home() == tmp_path
    monkeypatch.delenv(ENV_HOME)
    assert default_home().name == "strangers"
