"""The defects of the common modules the reliability suite found, each pinned by a test of its fix."""

import json
import subprocess
import time

import filelock
import pytest
import yaml

from reliability_kit import command_path, environment
from tq_conn_common import config as cfg
from tq_conn_common.errors import ConfigError, LockHeldError
from tq_conn_common.lock import RunLock

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BOMB + "token: *i\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"expands to more than 100000 values \(YAML anchors"):
        cfg.read_file(str(path))
    assert time.monotonic() - started < 2


def test_anchors_within_reason_are_still_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {a: 1}\ncopy: *b\n")
    assert cfg.read_file(str(path)) == {"base": {"a": 1}, "copy": {"a": 1}}


def test_a_yaml_file_nested_too_deeply_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nests its values too deeply"):
        cfg.read_file(str(path))


def test_the_message_about_a_nested_value_stays_short_and_quick():
    value = yaml.safe_load(BOMB)["i"]   # 9**9 leaves once expanded
    started = time.monotonic()
    _, problem = cfg.check_value(cfg.Param("url", "URL"), value)
    assert time.monotonic() - started < 1 and len(problem) < 200 and "is not text" in problem


def test_the_lock_names_only_the_settings_the_connector_has(tmp_path):
    base = str(tmp_path / "x")
    holder = filelock.FileLock(base + ".lock", timeout=0)
    holder.acquire()
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with open(base + ".pid", "w") as fh:
            json.dump({"pid": proc.pid, "started": time.time() - 50}, fh)
        with pytest.raises(LockHeldError) as bare:
            RunLock(base, settings=(), grace_seconds=0.1).acquire()
        assert "kill_after_seconds" not in bare.value.fix and "allow_multiple_runs" not in bare.value.fix
        assert f"if it hangs, stop it (kill {proc.pid}) and run again" in bare.value.fix
        with pytest.raises(LockHeldError) as full:
            RunLock(base, grace_seconds=0.1).acquire()
        assert "(kill_after_seconds) below 50" in full.value.fix and "(allow_multiple_runs)" in full.value.fix
    finally:
        proc.kill()
        proc.wait()
        holder.release()


def test_a_run_that_waited_for_the_lock_starts_from_the_state_the_run_before_committed(harness_for):
    """The second of two runs reads the state when it gets the lock, not before: it sends nothing twice."""
    h = harness_for("ctci", reference=False)
    first = h.run(verbosity=1, to_log=False)
    assert first.code == 0, first
    committed = h.state()
    state = h.folder / h.adapter.state_file
    state.unlink()                          # as if the first run were still going and had not committed yet
    holder = filelock.FileLock(str(h.folder / "tq-conn-ctci.lock"), timeout=0)
    holder.acquire()                        # held, its record not written yet: the new run waits up to 1 s
    proc = subprocess.Popen([command_path("tq-conn-ctci"), "-c", str(h.folder), "-v", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment(h.tmpdir), stdin=subprocess.DEVNULL)
    time.sleep(0.4)
    state.write_text(json.dumps(committed))  # the first run commits, then lets go of the lock
    holder.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "No CVE is new on the CEWL since the last run." in out, out + err
    assert "First run" not in out
