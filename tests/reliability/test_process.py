"""Faults of the process and the host: SIGKILL mid-upload, state that cannot be written, two runs, a hung run."""

import re
import shutil
import signal
import time

import pytest

from reliability_kit import CONNECTORS, kill_group, requests_to, rerun_delivers, scenario, wait_for

pytestmark = pytest.mark.e2e


def _scenario(h, name, body):
    """Run body(h) as one scenario of the matrix, counted in the summary."""
    scenario(h.adapter.name, name, lambda: body(h))


@pytest.mark.slow
@pytest.mark.parametrize("connector", CONNECTORS)
def test_sigkill_mid_upload_then_run_again(connector, harness_for):
    def body(h):
        delivery = "collective_insights" if h.adapter.delivery == "ci" else "devo"
        h.fault(delivery, path=h.adapter.delivery_path, count=1, delay=0.6)
        proc = h.spawn()
        assert wait_for(lambda: requests_to(h.sandbox, delivery, h.adapter.delivery_path)), \
            f"the upload never started: {h.finish(proc, timeout=30)!r}"
        kill_group(proc)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.7)   # the stand-in answers the delayed upload to nobody, as a real server would
        assert not h.state_problems(), f"state ahead of the destination after SIGKILL: {h.state_problems()}"
        # The killed run could not clean up its spool; nothing of it may hold a secret in the clear.
        for path in h.tmpdir.rglob("*"):
            if path.is_file():
                assert path.stat().st_mode & 0o077 == 0, f"{path} left readable by others"
        shutil.rmtree(h.tmpdir)
        h.tmpdir.mkdir()
        again = rerun_delivers(h)
        assert "held the lock" not in again.both
    _scenario(harness_for(connector), "SIGKILL mid-upload, run again", body)


@pytest.mark.parametrize("connector", CONNECTORS)
def test_state_cannot_be_written(connector, harness_for):
    """The state path turns into a folder while the run fetches (root ignores permissions): the rename fails."""
    def body(h):
        state = h.folder / h.adapter.state_file
        h.fault(h.adapter.source, path=h.adapter.data_path, count=1, delay=0.5)
        proc = h.spawn()
        assert wait_for(lambda: requests_to(h.sandbox, h.adapter.source, h.adapter.data_path))
        if state.exists():
            state.unlink()
        state.mkdir()
        (state / "blocker").write_text("")
        result = h.finish(proc)
        h.assert_clean_exit(result, 2, rf"Cannot write \S*{re.escape(h.adapter.state_file)}: Is a directory")
        assert "Fix: free space or permissions in" in result.err
        shutil.rmtree(state)
        assert h.leftovers() == [], f"temporary files left after the run: {h.leftovers()}"
        assert not [p.name for p in h.folder.iterdir() if p.name.startswith(".tmp-")], "a temporary state file left"
        rerun_delivers(h)
    _scenario(harness_for(connector), "state cannot be written (disk full)", body)


@pytest.mark.parametrize("connector", CONNECTORS)
def test_two_runs_at_once(connector, harness_for):
    def body(h):
        # Longer than a starting run waits for the lock record of another run that just started (1 s).
        h.fault(h.adapter.source, path=h.adapter.data_path, count=1, delay=1.5)
        first, second = h.spawn(verbosity=1), h.spawn(verbosity=1)
        results = {first.pid: h.finish(first), second.pid: h.finish(second)}
        codes = sorted(r.code for r in results.values())
        assert codes == [0, 3], f"two runs at once ended {codes}: {list(results.values())!r}"
        (winner, done), (_, skipped) = sorted(results.items(), key=lambda item: item[1].code)
        h.assert_clean_exit(skipped, 3)
        assert re.search(rf"^Error: Skipped: process {winner} has held the lock \S+ for \d+ s\.$", skipped.err, re.M), \
            skipped
        assert "Run statistics: requests made 0," in skipped.out   # a skipped run ends with its line too
        assert not h.lost() and not h.delivered_twice()
        rerun_delivers(h)
    _scenario(harness_for(connector), "two runs at once", body)


@pytest.mark.slow
@pytest.mark.parametrize("connector", CONNECTORS)
def test_hung_run(connector, harness_for):
    """A run hangs on its source. With Kill Previous Runs After X Seconds the next run ends it and runs; without
    that parameter the next run skips (exit 3) naming the hung process, and once it is gone a run takes over."""
    def body(h):
        if h.adapter.lock_kill_param:
            h.write_config(kill_after_seconds=1)
        h.fault(h.adapter.source, path=h.adapter.data_path, count=1, delay=8)
        hung = h.spawn(verbosity=1)
        assert wait_for(lambda: requests_to(h.sandbox, h.adapter.source, h.adapter.data_path))
        if h.adapter.lock_kill_param:
            time.sleep(1.2)   # past Kill Previous Runs After X Seconds
            result = h.run(verbosity=1, to_log=False)
            h.assert_clean_exit(result, 0)
            assert re.search(rf"Run {hung.pid} has held the lock for \d+ s \(limit 1 s\); stopping it\.", result.out)
            assert f"Lock taken over from run {hung.pid}." in result.out
            assert hung.wait(timeout=10) == 1   # SIGTERM ends it like an error
            assert "Stopped by SIGTERM" in hung.communicate()[1]
        else:
            result = h.run(verbosity=1, to_log=False)
            h.assert_clean_exit(result, 3, rf"^Error: Skipped: process {hung.pid} has held the lock")
            assert "kill_after_seconds" not in result.err and "allow_multiple_runs" not in result.err, \
                f"the fix names parameters {h.adapter.command} does not have: {result.err}"
            assert f"kill {hung.pid}" in result.err, result.err
            kill_group(hung)
        assert not h.state_problems()
        rerun_delivers(h)
    _scenario(harness_for(connector), "hung run (Kill Previous Runs After X Seconds)", body)
