"""One run at a time per connector instance (filelock), with take-over of hung runs after N seconds; the lock
parameters every connector offers."""

import json
import logging
import os
import signal
import time

import filelock

from tq_conn_common.config import Param
from tq_conn_common.errors import ConfigError, LockHeldError
from tq_conn_common.files import write_json

log = logging.getLogger(__name__)

# Offered by every connector (Connector adds those it does not declare itself, as the ThreatQ UI connector does).
ALLOW_MULTIPLE_RUNS = Param("allow_multiple_runs", "Allow Multiple Runs", type=bool, default=False,
                            help="true: no lock, runs may overlap. false: one run at a time; a run that finds another "
                                 "still going exits 3.")
KILL_AFTER_SECONDS = Param("kill_after_seconds", "Kill Previous Runs After X Seconds", type=int, default=0,
                           range=(0, 604800), help="A run that finds the previous one holding the lock longer than "
                                                   "this ends it (SIGTERM) and runs (0: never; a lock left by a dead "
                                                   "run is always taken over).")
MAX_RUN_SECONDS = Param("max_run_seconds", "Maximum Run Seconds", type=int, default=14400, range=(60, 604800),
                        help="A run still going after this long stops itself (exit 1, state not advanced past what "
                             "was delivered), and no Retry-After wait goes past it.")
PARAMS = (ALLOW_MULTIPLE_RUNS, KILL_AFTER_SECONDS, MAX_RUN_SECONDS)


class RunLock:
    """The lock of one connector instance: a filelock plus a record of who holds it and since when."""

    def __init__(self, base_path, *, allow_multiple_runs=False, kill_after_seconds=0, grace_seconds=None,
                 settings=("allow_multiple_runs", "kill_after_seconds")):
        self.lock_path = base_path + ".lock"
        self.settings = tuple(settings)  # the lock parameters the connector has: the fix names only these
        self.info_path = base_path + ".pid"
        self.allow_multiple_runs = allow_multiple_runs
        self.kill_after_seconds = kill_after_seconds or 0
        # how long a stopped run gets between SIGTERM and SIGKILL, and to let go of the lock
        self.grace_seconds = _env_float("TQ_CONN_LOCK_GRACE", 10.0) if grace_seconds is None else grace_seconds
        self._lock = filelock.FileLock(self.lock_path, timeout=0)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        """Take the lock, ending a run that held it past kill_after_seconds; raise LockHeldError otherwise."""
        if self.allow_multiple_runs:
            log.info("Multiple runs allowed: no lock taken.")
            return
        if self._try():
            return
        holder = self._holder()
        if not _same_process(holder):
            # The lock is held (the OS frees it when its process dies), so the record is being written by a run
            # that just started, or it is left over from a run that died: look again after a moment.
            if holder.get("pid"):
                log.info("The lock record names process %s, which no longer runs; checking again.", holder["pid"])
            if self._try(timeout=min(1.0, self.grace_seconds)):
                return
            holder = self._holder()
        pid, age = holder.get("pid"), time.time() - holder.get("started", time.time())
        if pid and self.kill_after_seconds and age > self.kill_after_seconds and _same_process(holder):
            log.warning("Run %s has held the lock for %.0f s (limit %s s); stopping it.",
                        pid, age, self.kill_after_seconds)
            _terminate(pid, self.grace_seconds)
            if self._try(timeout=self.grace_seconds):
                log.warning("Lock taken over from run %s.", pid)
                return
        who = f"process {pid}" if pid else "another process"
        fix = ("wait for it to finish"
               + (f", or set Kill Previous Runs After X Seconds (kill_after_seconds) below {age:.0f}"
                  if not self.kill_after_seconds and "kill_after_seconds" in self.settings else "")
               + (", or allow multiple runs (allow_multiple_runs)" if "allow_multiple_runs" in self.settings else "")
               + (f"; if it hangs, stop it (kill {pid}) and run again" if pid and "kill_after_seconds"
                  not in self.settings else "") + ".")
        raise LockHeldError(f"Skipped: {who} has held the lock {self.lock_path} for {age:.0f} s.", fix)

    def release(self):
        """Give the lock back."""
        if self.allow_multiple_runs or not self._lock.is_locked:
            return
        try:
            os.unlink(self.info_path)
        except OSError:
            pass
        self._lock.release(force=True)

    def _try(self, timeout=0):
        try:
            self._lock.acquire(timeout=timeout, poll_interval=0.05)
        except filelock.Timeout:
            return False
        except OSError as exc:   # a read-only or full file system, a folder not ours
            folder = os.path.dirname(os.path.abspath(self.lock_path))
            raise ConfigError(f"Cannot create the lock file {self.lock_path}: {exc.strerror or exc}.",
                              f"make {folder} writable by this user (and free space there), or give another config "
                              "folder with -c.") from None
        try:
            write_json(self.info_path, {"pid": os.getpid(), "started": time.time(),
                                        "process_start": _process_start(os.getpid())})
        except BaseException:
            self._lock.release(force=True)
            raise
        return True

    def _holder(self):
        try:
            with open(self.info_path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _same_process(holder):
    """Return True if the holder's process still runs and is the one that wrote the record (not a reused PID)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not alive(pid):
        return False
    recorded, now = holder.get("process_start"), _process_start(pid)
    return recorded is None or now is None or recorded == now


def _process_start(pid):
    """Return the start time of a process in clock ticks since boot (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    """Return whether process pid runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _terminate(pid, grace):
    """Send SIGTERM, then SIGKILL if the process still runs after grace seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    log.warning("Process %s did not stop after SIGTERM; sending SIGKILL.", pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


__all__ = ["RunLock", "PARAMS", "ALLOW_MULTIPLE_RUNS", "KILL_AFTER_SECONDS", "MAX_RUN_SECONDS"]
