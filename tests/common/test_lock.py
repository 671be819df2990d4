"""The run lock: real processes of the toy connector competing for it; hung and dead holders."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tq_conn_common.errors import EXIT_LOCKED, LockHeldError
from tq_conn_common.lock import RunLock


def wait_for_holder(toy, proc, timeout=15):
    """Wait until proc holds the lock (its record names it); return the record."""
    path = os.path.join(toy.dir, "tq-conn-toy.pid")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the holder ended early with {proc.returncode}: {proc.communicate()}")
        try:
            with open(path) as fh:
                record = json.load(fh)
            if record.get("pid") == proc.pid:
                return record
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError("the first run never took the lock")


@pytest.fixture
def holder(toy):
    """Start a run that holds the lock while it sleeps; stop it at the end."""
    started = []

    def start(mode="sleep", seconds=30):
        toy.configure(mode=mode, sleep_seconds=seconds)
        proc = toy.spawn()
        started.append(proc)
        wait_for_holder(toy, proc)
        toy.configure()  # the next run is an ordinary one
        return proc
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_second_run_is_skipped_at_once_with_exit_3(toy, holder):
    first = holder(seconds=3)
    second = toy.run()
    assert second.code == EXIT_LOCKED, second
    assert first.poll() is None  # the second run did not wait for the first one
    assert f"Error: Skipped: process {first.pid} has held the lock" in second.err
    assert "allow multiple runs (allow_multiple_runs)" in second.err
    assert "Run statistics: requests made 0," in second.out   # a skipped run ends with its statistics line too
    assert first.wait(timeout=15) == 0
    assert toy.run().code == 0  # free again once the first one ended


def test_a_hung_run_is_terminated_after_kill_after_seconds_and_the_lock_taken_over(toy, holder, sandbox):
    first = holder(seconds=30)
    time.sleep(1.2)
    began = time.monotonic()
    second = toy.run("-v", "2", env={"TQ_CONN_KILL_AFTER_SECONDS": "1", "TQ_CONN_LOCK_GRACE": "5"})
    assert second.code == 0, second
    assert first.wait(timeout=5) == 1   # SIGTERM ends a run like an error: its cleanup ran, the lock was let go
    assert "Error: Stopped by SIGTERM" in first.communicate()[1]
    assert f"Run {first.pid} has held the lock for" in second.out
    assert "stopping it" in second.out and f"Lock taken over from run {first.pid}" in second.out
    assert time.monotonic() - began < 5
    assert len(sandbox["echo"].items) == 22


def test_a_run_that_ignores_sigterm_gets_sigkill_after_the_grace_period(toy, holder):
    first = holder(mode="ignore_term", seconds=30)
    time.sleep(1.2)
    second = toy.run("-v", "2", env={"TQ_CONN_KILL_AFTER_SECONDS": "1", "TQ_CONN_LOCK_GRACE": "0.5"})
    assert second.code == 0, second
    assert first.wait(timeout=5) == -signal.SIGKILL
    assert "did not stop after SIGTERM; sending SIGKILL" in second.out


def test_a_young_run_is_not_killed(toy, holder):
    first = holder(seconds=30)
    second = toy.run(env={"TQ_CONN_KILL_AFTER_SECONDS": "60"})
    assert second.code == EXIT_LOCKED, second
    assert first.poll() is None
    assert "Kill Previous Runs After X Seconds" not in second.err  # already set: the fix does not suggest it


def test_the_lock_of_a_sigkilled_run_is_taken_over_at_once(toy, holder):
    first = holder(seconds=30)
    first.kill()
    first.wait()
    assert os.path.exists(os.path.join(toy.dir, "tq-conn-toy.pid"))  # its record is left behind
    began = time.monotonic()
    second = toy.run()
    assert second.code == 0, second
    assert time.monotonic() - began < 5
    assert not os.path.exists(os.path.join(toy.dir, "tq-conn-toy.pid"))  # released at the end


def test_allow_multiple_runs_takes_no_lock(toy, holder):
    holder(seconds=3)
    second = toy.run("-v", "2", env={"TQ_CONN_ALLOW_MULTIPLE_RUNS": "true"})
    assert second.code == 0, second
    assert "Multiple runs allowed: no lock taken." in second.out


def test_instances_lock_separately(toy, holder):
    holder(seconds=30)
    os.link(toy.config_path, os.path.join(toy.dir, "tq-conn-toy-other.yaml"))
    assert toy.run("-n", "other").code == 0


# In-process checks of the pieces the subprocess tests cannot reach.

def test_lock_record_and_release(tmp_path):
    lock = RunLock(str(tmp_path / "x"))
    with lock:
        record = json.loads((tmp_path / "x.pid").read_text())
        assert record["pid"] == os.getpid() and abs(record["started"] - time.time()) < 5
        assert oct(os.stat(tmp_path / "x.pid").st_mode & 0o777) == "0o600"
    assert not (tmp_path / "x.pid").exists()
    with RunLock(str(tmp_path / "x")):  # free again
        pass


def _other_process_holding(base):
    """Start a process holding the lock at base; return it once it holds it."""
    code = ("import sys, time; from tq_conn_common.lock import RunLock; "
            f"lock = RunLock({base!r}); lock.acquire(); print('held', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_record_naming_a_reused_pid_is_not_trusted_to_kill(tmp_path):
    base = str(tmp_path / "x")
    proc = _other_process_holding(base)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # The record names a live process that never held the lock (its PID was reused by another program
        # since): it must not be killed, whatever the age of the record.
        with open(base + ".pid", "w") as fh:
            json.dump({"pid": bystander.pid, "started": time.time() - 3600, "process_start": 1}, fh)
        lock = RunLock(base, kill_after_seconds=1, grace_seconds=0.2)
        began = time.monotonic()
        with pytest.raises(LockHeldError):
            lock.acquire()
        assert time.monotonic() - began < 3
        assert bystander.poll() is None and proc.poll() is None
    finally:
        for p in (proc, bystander):
            p.kill()
            p.wait()


def test_grace_seconds_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TQ_CONN_LOCK_GRACE", "0.25")
    assert RunLock(str(tmp_path / "x")).grace_seconds == 0.25
    assert RunLock(str(tmp_path / "x"), grace_seconds=3).grace_seconds == 3
