"""Fixtures shared by every test: the sandbox stand-ins and helpers to run installed commands."""

import filecmp
import glob
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

from tq_conn_sandbox.testing import Result, clean_env, sandbox, sandbox_session  # noqa: F401  (fixtures)

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command_path(command):
    """Return the path of an installed command in this test environment."""
    path = os.path.join(BIN, command)
    if not os.path.exists(path):
        found = shutil.which(command)
        if not found:
            pytest.fail(f"{command} is not installed in {BIN}; run 'make test' (it installs the wheels)")
        path = found
    return path


def stale_modules(package, source_dir):
    """Return the modules of source_dir/*.py whose installed copy (of package) differs or is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return [f"{package} (not installed)"]
    installed = list(spec.submodule_search_locations)[0]
    stale = []
    for source in sorted(glob.glob(os.path.join(source_dir, "**", "*.py"), recursive=True)):
        relative = os.path.relpath(source, source_dir)
        copy = os.path.join(installed, relative)
        if not os.path.exists(copy) or not filecmp.cmp(source, copy, shallow=False):
            stale.append(relative)
    return stale


_checked = {}


def require_current_install(package="tq_conn_common", source="common/tq_conn_common"):
    """Fail with a clear message if the installed package is not this working tree's code."""
    if package not in _checked:
        _checked[package] = stale_modules(package, os.path.join(ROOT, source))
    stale = _checked[package]
    if stale:
        pytest.fail(f"The installed {package} is not this working tree's code ({', '.join(stale[:8])} differ); "
                    f"reinstall it: 'make test' (wheels) or 'pip install -e {source.split('/')[0]}'.")


@pytest.fixture(scope="session")
def current_install():
    """Fail the test unless the installed tq_conn_common and tq_conn_sandbox are this working tree's."""
    require_current_install("tq_conn_common", "common/tq_conn_common")
    require_current_install("tq_conn_sandbox", "sandbox/tq_conn_sandbox")


@pytest.fixture
def cli(tmp_path, current_install):
    """Run an installed command with no terminal; return a Result (code, out, err)."""
    def run(command, *args, env=None, timeout=120, cwd=None, input=None):
        proc = subprocess.run([command_path(command), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=clean_env(env), cwd=cwd or tmp_path,
                              stdin=subprocess.DEVNULL if input is None else None, input=input)
        return Result(proc)
    return run


def answer_prompts(command, args, replies, env=None, timeout=60):
    """Run an installed command on a pseudo-terminal (its controlling TTY), answering each (prompt, reply) in turn.

    Returns (exit code, everything the terminal showed)."""
    path = command_path(command)
    pid, master = __import__("pty").fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and controlling TTY
        os.execve(path, [path, *map(str, args)], clean_env(env))
    screen, seen, pending = b"", 0, list(replies)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the command ended and closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if pending:
                question = pending[0][0].encode()
                at = screen.find(question, seen)
                if at >= 0:
                    seen = at + len(question)
                    os.write(master, pending.pop(0)[1].encode() + b"\n")
        else:
            os.kill(pid, 9)
            pytest.fail(f"{command} did not finish; the terminal shows:\n{screen.decode(errors='replace')}")
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


@pytest.fixture
def terminal(current_install):
    """answer_prompts(command, args, replies, env=None, timeout=60) -> (exit code, screen): a real TTY run."""
    return answer_prompts
