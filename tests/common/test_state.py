"""State: a JSON document per instance, written atomically and only by an explicit commit."""

import json
import os
import stat

import pytest

from tq_conn_common.errors import ConfigError
from tq_conn_common.state import State


def test_changes_reach_disk_only_on_commit(tmp_path):
    path = str(tmp_path / "s.json")
    state = State(path)
    assert state.get("cursor") is None and "cursor" not in state
    state["cursor"] = "abc"
    state.setdefault("seen", []).append(1)
    assert not os.path.exists(path)
    assert State(path).get("cursor") is None
    state.commit()
    assert json.load(open(path)) == {"cursor": "abc", "seen": [1]}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = State(path)
    assert again["cursor"] == "abc" and again.committed == {"cursor": "abc", "seen": [1]}


def test_rollback_and_reset(tmp_path):
    path = str(tmp_path / "s.json")
    state = State(path)
    state["a"] = {"nested": 1}
    state.commit()
    state["a"]["nested"] = 2  # a change inside a committed value stays pending too
    state["b"] = 1
    state.rollback()
    assert state.get("a") == {"nested": 1} and "b" not in state
    assert state.pop("a") == {"nested": 1} and state.pop("a", "gone") == "gone"
    state.reset()
    assert json.load(open(path)) == {"a": {"nested": 1}}  # reset is pending until commit
    state.commit()
    assert json.load(open(path)) == {}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff"])
def test_an_unreadable_state_file_is_a_config_error_with_the_fix(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(ConfigError) as caught:
        State(str(path))
    assert str(path) in str(caught.value) and "delete it to start over" in caught.value.fix
