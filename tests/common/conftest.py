"""Fixtures of the common tests: a toy connector run as a real command, with or without a terminal."""

import os
import select
import subprocess
import sys
import time

import pytest
import yaml

from tq_conn_sandbox.testing import Result, clean_env  # noqa: F401  (used by the toy tests)

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # the toy connector package lives here
    sys.path.insert(0, HERE)
TOY_CONFIG = "tq-conn-toy.yaml"


class Toy:
    """The toy connector in a config folder: write its config, run it, spawn it, drive it through a terminal."""

    def __init__(self, folder, sandbox=None):
        self.dir = folder
        self.sandbox = sandbox

    @property
    def config_path(self):
        return os.path.join(self.dir, TOY_CONFIG)

    def argv(self, *args):
        return [sys.executable, "-m", "toyconn", "-c", self.dir, *map(str, args)]

    def env(self, extra=None):
        env = clean_env(extra)
        env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def configure(self, **values):
        """Write a working config (pointing at the echo stand-in) with these values on top; return the mapping."""
        config = {"url": self.sandbox.url("echo") if self.sandbox else "http://127.0.0.1:9",
                  "token": "sandbox-token", **values}
        with open(self.config_path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh)
        return config

    def run(self, *args, env=None, timeout=60):
        """Run once with no terminal; return a Result."""
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                              env=self.env(env), cwd=self.dir, stdin=subprocess.DEVNULL)
        return Result(proc)

    def spawn(self, *args, env=None):
        """Start a run in the background (no terminal); return the Popen."""
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(env), cwd=self.dir, stdin=subprocess.DEVNULL)

    def terminal(self, *args, env=None):
        """Start a run on a pseudo-terminal (its controlling terminal); return a Terminal."""
        return Terminal(self.argv(*args), self.env(env), self.dir)

    def state(self):
        import json
        with open(os.path.join(self.dir, "tq-conn-toy.state.json"), encoding="utf-8") as fh:
            return json.load(fh)


_ATTACH = ("import fcntl, runpy, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
           "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


class Terminal:
    """A child process whose stdin, stdout, stderr and controlling terminal are a pseudo-terminal."""

    def __init__(self, argv, env, cwd):
        import pty
        master, slave = pty.openpty()
        assert argv[1] == "-m"
        argv = [argv[0], "-c", _ATTACH, argv[2], *argv[3:]]
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.output = ""

    def read_until(self, text, timeout=15):
        """Read the terminal until text appears; return everything read so far."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} did not appear on the terminal; it shows:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    if self.proc.poll() is not None:
                        raise AssertionError(f"the command ended before {text!r}; the terminal shows:\n{self.output}")
                    continue
                self.output += data.decode("utf-8", "replace")
        return self.output

    def answer(self, prompt, line, timeout=15):
        """Wait for prompt, then type line and Enter."""
        self.read_until(prompt, timeout)
        self._mark = len(self.output)
        os.write(self.master, line.encode("utf-8") + b"\r")

    def since_last_answer(self):
        return self.output[getattr(self, "_mark", 0):]

    def wait(self, timeout=30):
        """Read until the process ends; return its exit code."""
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data:
                    self.output += data.decode("utf-8", "replace")
                    continue
            if self.proc.poll() is not None and not ready:
                break
            if self.proc.poll() is not None and ready and not data:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the command did not end; the terminal shows:\n{self.output}")
        return self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def toy(tmp_path, sandbox, current_install):
    """The toy connector with an empty config folder, talking to the echo stand-in."""
    folder = tmp_path / "conf"
    folder.mkdir()
    return Toy(str(folder), sandbox)
