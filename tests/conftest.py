"""Fixtures shared by every test: the sandbox stand-ins and helpers to run installed commands."""

import os
import shutil
import subprocess
import sys

import pytest

from tq_conn_sandbox.testing import sandbox, sandbox_session  # noqa: F401  (fixtures)

BIN = os.path.dirname(sys.executable)


def command_path(command):
    """Return the path of an installed command in this test environment."""
    path = os.path.join(BIN, command)
    if not os.path.exists(path):
        found = shutil.which(command)
        if not found:
            pytest.fail(f"{command} is not installed in {BIN}; run 'make test' (it installs the wheels)")
        path = found
    return path


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def both(self):
        return self.out + self.err

    def __repr__(self):
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


@pytest.fixture
def cli(tmp_path):
    """Run an installed command with no terminal; return a Result (code, out, err)."""
    def run(command, *args, env=None, timeout=120, cwd=None, input=None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TQ_CONN_")}
        full_env.update({"TQ_CONN_HTTP_BACKOFF": "0.05", "PYTHONWARNINGS": "ignore"})
        full_env.update(env or {})
        proc = subprocess.run([command_path(command), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=full_env, cwd=cwd or tmp_path,
                              stdin=subprocess.DEVNULL if input is None else None, input=input)
        return Result(proc)
    return run
