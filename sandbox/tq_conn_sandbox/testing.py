"""pytest fixtures: every stand-in started in-process on ephemeral loopback ports."""

import os

import pytest
import requests

from tq_conn_sandbox.server import start_services
from tq_conn_sandbox.services import available


class Result:
    """What a finished command left: exit code, stdout, stderr."""

    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def both(self):
        return self.out + self.err

    def __repr__(self):
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def clean_env(extra=None):
    """Return os.environ without TQ_CONN_* settings, with quick retries, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQ_CONN_")}
    env.update({"TQ_CONN_HTTP_BACKOFF": "0.05", "PYTHONWARNINGS": "ignore"})
    env.update(extra or {})
    return env


class Sandbox:
    """The running stand-ins of a test session: urls, direct access, and fault control."""

    def __init__(self, running):
        self.running = running

    def url(self, name):
        return self.running.url(name)

    def __getitem__(self, name):
        return self.running[name]

    def fault(self, name, **rule):
        """Add a fault rule to one stand-in (over HTTP, as a person would)."""
        requests.post(self.url(name) + "/_sandbox/faults", json=rule, timeout=5).raise_for_status()

    def reset(self):
        for service in self.running.services.values():
            with service.lock:
                service.requests.clear()
                service.faults.clear()
                service.reset()


@pytest.fixture(scope="session")
def sandbox_session():
    running = start_services(available().values())
    yield Sandbox(running)
    running.stop()


@pytest.fixture
def sandbox(sandbox_session):
    """The stand-ins, reset before each test."""
    sandbox_session.reset()
    yield sandbox_session
