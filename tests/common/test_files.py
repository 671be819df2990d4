"""Atomic private writes: the whole new file or the whole old one, mode 0600, nothing left behind."""

import datetime
import json
import os
import stat

import pytest

from tq_conn_common.errors import ConfigError
from tq_conn_common.files import write_json, write_private


def test_write_private_text_and_bytes(tmp_path):
    path = tmp_path / "f"
    write_private(path, "héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    write_private(str(path), b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["f"]


def test_an_existing_file_becomes_private(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private(path, "new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text() == "new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_text("old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ConfigError) as caught:
        write_private(path, "new")
    assert "No space left on device" in str(caught.value) and "nothing was changed" in caught.value.fix
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_private(tmp_path / "f", "new")
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="Cannot write"):
        write_private(tmp_path / "no" / "f", "x")


def test_write_json(tmp_path):
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    write_json(tmp_path / "s.json", {"b": 1, "a": [1, "x"], "when": when})
    text = (tmp_path / "s.json").read_text()
    assert text.index('"a"') < text.index('"b"')  # sorted keys: stable diffs
    assert json.loads(text) == {"a": [1, "x"], "b": 1, "when": "2024-05-01 12:00:00+00:00"}
