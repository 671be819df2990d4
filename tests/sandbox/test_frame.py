"""The sandbox frame over real sockets: routing, streaming, shared faults, the control API, the command."""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tq_conn_sandbox.server import Faults, Response, Service, route, start_services
from tq_conn_sandbox.services import available


def url(sandbox, path):
    return sandbox.url("echo") + path


def test_every_stand_in_is_discovered_and_served(sandbox):
    services = available()
    assert "echo" in services and all(issubclass(cls, Service) for cls in services.values())
    for name in services:
        assert re.fullmatch(r"https?://127\.0\.0\.1:\d+", sandbox.url(name))
        assert sandbox[name].name == name


def test_routes_404_405_and_head(sandbox):
    assert requests.get(url(sandbox, "/echo"), params={"a": "1"}, timeout=5).json()["query"] == {"a": "1"}
    missing = requests.get(url(sandbox, "/nowhere"), timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no such path: /nowhere"
    assert requests.delete(url(sandbox, "/echo"), timeout=5).status_code == 405
    head = requests.head(url(sandbox, "/echo"), timeout=5)
    assert head.status_code == 200 and head.content == b""
    posted = requests.post(url(sandbox, "/echo"), data=b"hello", timeout=5).json()
    assert posted == {"method": "POST", "body": "hello"}


def test_a_streamed_chunked_upload_is_read_whole(sandbox):
    with requests.Session() as session:
        body = session.post(url(sandbox, "/echo"), data=(b"part%d;" % i for i in range(1000)), timeout=5).json()
        assert body["body"] == "".join(f"part{i};" for i in range(1000))
        assert session.get(url(sandbox, "/echo"), timeout=5).status_code == 200  # still in step


def test_authorization_is_not_echoed(sandbox):
    body = requests.get(url(sandbox, "/echo"), headers={"Authorization": "Bearer x"}, timeout=5).json()
    assert "Authorization" not in body["headers"]


def test_a_generator_body_is_streamed_chunked(sandbox):
    response = requests.get(url(sandbox, "/lines"), params={"count": 100000}, stream=True, timeout=10)
    assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
    lines = list(response.iter_lines())
    assert len(lines) == 100000 and lines[-1] == b"line 99999"


def test_keep_alive_stays_in_step_after_unread_bodies(sandbox):
    with requests.Session() as session:
        for _ in range(3):
            assert session.post(url(sandbox, "/nowhere"), data=b"x" * 5000, timeout=5).status_code == 404
            assert session.get(url(sandbox, "/echo"), timeout=5).status_code == 200


def test_the_request_log_and_reset(sandbox):
    requests.get(url(sandbox, "/echo"), params={"q": "1"}, timeout=5)
    requests.get(url(sandbox, "/_sandbox/requests"), timeout=5)  # control calls are not logged
    logged = requests.get(url(sandbox, "/_sandbox/requests"), timeout=5).json()["requests"]
    assert [(r["method"], r["path"], r["query"]) for r in logged] == [("GET", "/echo", "q=1")]
    requests.post(url(sandbox, "/items"), json=[1], timeout=5)
    assert requests.post(url(sandbox, "/_sandbox/reset"), timeout=5).json() == {"ok": True}
    assert sandbox["echo"].requests == [] and sandbox["echo"].items == []


def test_a_stand_in_bug_answers_500(sandbox):
    response = requests.get(url(sandbox, "/lines"), params={"count": "many"}, timeout=5)
    assert response.status_code == 500 and "stand-in failure: ValueError" in response.json()["error"]["message"]


# Faults, shared by every stand-in.

def fault(sandbox, **rule):
    return requests.post(url(sandbox, "/_sandbox/faults"), json=rule, timeout=5)


def test_a_fault_applies_to_the_next_count_requests(sandbox):
    assert fault(sandbox, path="^/echo$", status=503, count=2).status_code == 201
    statuses = [requests.get(url(sandbox, "/echo"), timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_count_0_lasts_until_cleared(sandbox):
    fault(sandbox, path="^/echo$", status=500, count=0)
    assert [requests.get(url(sandbox, "/echo"), timeout=5).status_code for _ in range(5)] == [500] * 5
    assert requests.delete(url(sandbox, "/_sandbox/faults"), timeout=5).status_code == 200
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 200


def test_faults_match_method_and_path_and_spare_the_control_api(sandbox):
    fault(sandbox, path="^/echo$", method="post", status=502, count=0)
    fault(sandbox, path="_sandbox", status=500, count=0)
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 200
    assert requests.post(url(sandbox, "/echo"), timeout=5).status_code == 502
    assert requests.get(url(sandbox, "/numbers"), timeout=5).status_code == 200
    assert requests.get(url(sandbox, "/_sandbox/requests"), timeout=5).status_code == 200


def test_rules_apply_in_order_each_with_its_own_count(sandbox):
    fault(sandbox, path="^/echo$", status=429, retry_after=7, count=1)
    fault(sandbox, path="^/echo$", status=503, count=1)
    first, second, third = (requests.get(url(sandbox, "/echo"), timeout=5) for _ in range(3))
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert second.status_code == 503 and "Retry-After" not in second.headers
    assert third.status_code == 200


def test_fault_status_with_a_custom_body(sandbox):
    fault(sandbox, path="^/echo$", status=400, body={"errors": ["bad"]})
    response = requests.get(url(sandbox, "/echo"), timeout=5)
    assert response.status_code == 400 and response.json() == {"errors": ["bad"]}


def test_fault_delay(sandbox):
    fault(sandbox, path="^/echo$", delay=0.5)
    began = time.monotonic()
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 200
    assert time.monotonic() - began >= 0.5


def test_fault_cut_closes_the_connection_mid_body(sandbox):
    fault(sandbox, path="^/numbers$", cut=True)
    host, port = sandbox.url("echo").rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/numbers")
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
    assert requests.get(url(sandbox, "/numbers"), timeout=5).status_code == 200


def test_fault_malformed_and_html_bodies(sandbox):
    fault(sandbox, path="^/numbers$", malformed=True)
    fault(sandbox, path="^/numbers$", html=True, status=502)
    broken = requests.get(url(sandbox, "/numbers"), timeout=5)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    page = requests.get(url(sandbox, "/numbers"), timeout=5)
    assert page.status_code == 502 and page.headers["Content-Type"] == "text/html" and b"<html>" in page.content


@pytest.mark.parametrize("rule, message", [
    ({"stauts": 500}, "unknown fault key(s) stauts"),
    ({"status": 500, "count": -1}, "count must be 0"),
    ({"status": 500, "count": "many"}, "bad fault rule"),
    ({"status": "five hundred"}, "bad fault rule"),
    ({"path": "("}, "bad fault rule"),
])
def test_a_bad_fault_rule_is_refused_with_400(sandbox, rule, message):
    response = fault(sandbox, **rule)
    assert response.status_code == 400 and message in response.json()["error"]["message"]
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 200
    assert requests.post(url(sandbox, "/_sandbox/faults"), json=[1], timeout=5).status_code == 400


def test_faults_in_process():
    faults = Faults()
    faults.add(path="^/a", count=2, status=500)
    faults.add(path="^/a", method="GET", count=0, delay=0.1)
    assert faults.take("GET", "/b") is None
    assert [faults.take("GET", "/a")["status"] for _ in range(2)] == [500, 500]
    assert faults.take("GET", "/a")["delay"] == 0.1 and faults.take("GET", "/a")["delay"] == 0.1
    assert faults.take("POST", "/a") is None
    faults.clear()
    assert faults.take("GET", "/a") is None


def test_the_sandbox_fixture_fault_helper_and_reset_between_tests(sandbox):
    sandbox.fault("echo", path="^/echo$", status=418, count=0)
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 418
    sandbox.reset()
    assert requests.get(url(sandbox, "/echo"), timeout=5).status_code == 200


def test_a_service_of_its_own_with_options():
    class Greeter(Service):
        name = "greeter"

        def reset(self):
            self.greeting = self.options.get("greeting", "hello")

        @route("GET", r"^/greet/(?P<who>\w+)$")
        def greet(self, request, who):
            return Response(f"{self.greeting} {who}", content_type="text/plain", headers={"X-Who": who})

    running = start_services([Greeter], options={"greeter": {"greeting": "hi"}})
    try:
        response = requests.get(running.url("greeter") + "/greet/ann", timeout=5)
        assert response.text == "hi ann" and response.headers["X-Who"] == "ann"
        assert response.headers["Content-Type"] == "text/plain"
    finally:
        running.stop()


def test_a_port_in_use_stops_what_was_started(monkeypatch):
    from tq_conn_sandbox import server
    from tq_conn_sandbox.services.echo import Echo

    class Other(Echo):
        name = "other"
    started, stopped = [], []
    real_add, real_stop = server.Running.add, server.Running.stop
    monkeypatch.setattr(server.Running, "add", lambda self, service, *a: started.append(service.name)
                        or real_add(self, service, *a))
    monkeypatch.setattr(server.Running, "stop", lambda self: stopped.append(list(self.services)) or real_stop(self))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            start_services([Echo, Other], ports={"other": busy.getsockname()[1]})
    assert started == ["echo", "other"] and stopped == [["echo"]]


# The tq-conn-sandbox command.

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sandbox_command():
    path = os.path.join(os.path.dirname(sys.executable), "tq-conn-sandbox")
    return [path] if os.path.exists(path) else [sys.executable, "-m", "tq_conn_sandbox.cli"]


def test_the_command_help():
    result = subprocess.run([*_sandbox_command(), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for text in ("--only", "--port NAME=PORT", "--base-port", "Stand-ins: ", "echo", "/_sandbox/faults"):
        assert text in result.stdout


def test_the_command_rejects_a_bad_port():
    result = subprocess.run([*_sandbox_command(), "--port", "nope=1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--port takes NAME=PORT" in result.stderr


def test_the_command_serves_on_the_ports_given_prints_urls_and_stops_on_ctrl_c():
    port = _free_port()
    proc = subprocess.Popen([*_sandbox_command(), "--base-port", "0", "--only", "echo", "--port", f"echo={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or "Ctrl-C stops" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"the sandbox ended early: {proc.stderr.read()}"
            lines.append(line)
        assert any(line.split() == ["echo", f"http://127.0.0.1:{port}"] for line in lines), lines
        assert requests.get(f"http://127.0.0.1:{port}/echo", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "Sandbox stopped." in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/echo", timeout=2)


def test_the_command_stops_on_sigterm_and_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*_sandbox_command(), "--only", "echo", "--port", f"echo={port}"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "cannot listen" in result.stderr
    proc = subprocess.Popen([*_sandbox_command(), "--base-port", "0", "--only", "echo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "Ctrl-C stops" not in proc.stdout.readline():
            assert proc.poll() is None
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_the_demo_runner_stops_the_sandbox_even_when_a_demo_fails(monkeypatch, capsys):
    from tq_conn_sandbox import demo
    from tq_conn_sandbox.demos import Step

    def broken(ctx):
        assert ctx.url("echo").startswith("http://127.0.0.1:")
        assert os.path.isdir(ctx.home) and os.path.basename(ctx.home) == "broken"
        raise RuntimeError("demo bug")

    class Broken:
        TITLE = "broken demo"
        COMMAND = sys.executable
        STEPS = (Step("a step that breaks after its command", args=("-c", "print('hi')"), show=(broken,)),)

    class Fine:
        COMMAND = sys.executable
        STEPS = (Step("fine ran", args=("-c", "pass")),)

    monkeypatch.setattr(demo, "services", lambda: {"echo": available()["echo"]})
    monkeypatch.setattr(demo, "demos", lambda: [("broken", Broken), ("fine", Fine)])
    assert demo.main() == 1
    out = capsys.readouterr().out
    assert "=== broken demo ===" in out and "RuntimeError: demo bug" in out and "fine ran" in out
    assert "  hi" in out and "Sandbox stopped." in out and "Failed demos: broken" in out


def test_a_demo_step_sets_runs_shows_and_puts_back_in_order(monkeypatch, capsys):
    from tq_conn_sandbox import demo
    from tq_conn_sandbox.demos import Step, call, config_file

    config = config_file("demo.yaml", lambda ctx: {"url": ctx.url("echo"), "size": 1}, style="lines")

    class Steps:
        COMMAND = sys.executable
        ENV = {"DEMO_A": "a"}
        STEPS = (Step("first", set=(config(size=lambda ctx: 2), lambda ctx: print("set")),
                      args=("-c", "import os; print(open('{home}/demo.yaml').read(), os.environ['DEMO_A'])"),
                      show=(lambda ctx: print("show"),), then=(lambda ctx: print("then"),)),
                 Step(args=("-c", "import sys; sys.exit(3)"), check=False,
                      set=(call("echo", "faults.add", path="^/x$", status=500),)),
                 Step("stops here", args=("-c", "import sys; sys.exit(4)")),
                 Step("never shown", args=("-c", "pass")))

    monkeypatch.setattr(demo, "services", lambda: {"echo": available()["echo"]})
    monkeypatch.setattr(demo, "demos", lambda: [("steps", Steps)])
    assert demo.main() == 1
    out = capsys.readouterr().out
    assert out.index("first") < out.index("set") < out.index("size: 2") < out.index("show") < out.index("then")
    assert "  a" in out and "(exit 3)" in out and "\nstops here" in out and "(exit 4)" in out
    assert "never shown" not in out and "Failed demos: steps" in out
