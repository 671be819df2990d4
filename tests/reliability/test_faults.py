"""The fault matrix: every connector through every fault of its services; nothing lost, state never ahead."""

import re
import socket
from dataclasses import dataclass, field
from typing import Callable

import pytest

from reliability_kit import CONNECTORS, RETRIES_FEW, TALLY

pytestmark = pytest.mark.e2e

OK = (0, None)


@dataclass
class Scenario:
    """One fault: how to cause it, the exit code and stderr text expected of the faulted run (per connector)."""

    name: str
    cause: Callable                 # cause(h) -> extra environment of the faulted run (or None)
    expect: tuple = OK              # (exit code, regex of stderr) of the faulted run
    per_connector: dict = field(default_factory=dict)
    check: Callable = None          # check(h, result): more about the faulted run

    def expected(self, connector):
        return self.per_connector.get(connector, self.expect)


def _data(**rule):
    def cause(h):
        h.fault(h.adapter.source, path=h.adapter.data_path, **rule)
        return {"TQ_CONN_HTTP_RETRIES": RETRIES_FEW} if rule.get("count") == 0 else None
    return cause


def _refused(h):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    h.write_config(**{h.adapter.source_url_key: h.adapter.source_url(h, f"http://127.0.0.1:{port}")})
    return {"TQ_CONN_HTTP_RETRIES": RETRIES_FEW}


def _stall(count, timeout):
    def cause(h):
        h.fault(h.adapter.source, path=h.adapter.data_path, count=count, delay=1.0)
        return {"TQ_CONN_HTTP_TIMEOUT": timeout, "TQ_CONN_HTTP_RETRIES": RETRIES_FEW if count == 0 else "5"}
    return cause


def _expire(h):
    h.adapter.expire_midrun(h)
    return None


def _refuse_delivery(h):
    h.adapter.refuse_delivery(h)
    return {"TQ_CONN_HTTP_RETRIES": RETRIES_FEW}


def _job_error(h):
    h.adapter.fail_delivery_job(h)
    return None


def _waited_for_retry_after(h, result):
    assert re.search(r"HTTP 429 on .* retry 1 of \d+ in 1\.0 s", result.logs), \
        f"the run did not wait the 1 s Retry-After asked for: {result!r}"


def _retried(h, result):
    assert result.code != 0 or re.search(r"retry 1 of \d+ in", result.logs), f"no retry was logged: {result!r}"


def _renewed(h, result):
    if result.code == 0:
        assert "renewing it and retrying" in result.logs, f"the token was not renewed: {result!r}"


RETRIED = dict(check=_retried)
SCENARIOS = [
    Scenario("429 with Retry-After", _data(status=429, retry_after=1, count=1), check=_waited_for_retry_after),
    Scenario("429 without Retry-After", _data(status=429, count=2), **RETRIED),
    Scenario("500 then success", _data(status=500, count=1), **RETRIED),
    Scenario("502 then success", _data(status=502, count=2), **RETRIED),
    Scenario("503 then success", _data(status=503, count=1), **RETRIED),
    Scenario("500 for good", _data(status=500, count=0), (1, r"HTTP 500|response code 500")),
    # A refused first request is a wrong address (exit 2 naming the URL setting); the rerun has the right one.
    Scenario("connection refused", _refused, (2, r"refused the connection.*first request to it: the address is "
                                                 r"most likely wrong.*Fix: check \S.*\(host and port\)")),
    # A streamed risk list cannot be asked for again mid-stream: the run fails cleanly and the rerun pulls it.
    Scenario("connection cut mid-body once", _data(cut=True, count=1), **RETRIED,
             per_connector={"recorded_future": (1, r"The download of the ip risk list broke off")}),
    Scenario("truncated body (CSV, JSON) for good", _data(cut=True, count=0),
             (1, r"cut the connection mid-response after 3 attempts|download of the ip risk list broke off")),
    Scenario("stall once past the read timeout", _stall(1, 0.4), **RETRIED),
    Scenario("stall for good past the read timeout", _stall(0, 0.3), (1, r"timed out after 3 attempts")),
    Scenario("malformed JSON", _data(malformed=True, count=0),
             (1, r"sent malformed JSON instead of data|ip risk list is not a csv/splunk risk list")),
    Scenario("HTML error page", _data(html=True, status=200, count=0), (1, r"sent an HTML page")),
    # ThreatQ issues tokens that expire: the exporter logs in again. The other vendors' keys do not expire, so a
    # 401 mid-run is a revoked key: exit 2 naming it.
    Scenario("expired token mid-run", _expire, (2, r"HTTP 401|response code 401"),
             per_connector={"devo_ioc_exporter": OK}, check=_renewed),
    Scenario("Devo refuses the upload", _refuse_delivery,
             (1, r"Devo refused the upload of lookup '\w+' \(HTTP 500|Collective Insights at \S+ answered HTTP 500")),
    Scenario("Devo job ends in error", _job_error,
             (1, r"Devo could not load lookup '\w+' \(job \S+, create.err\): column types do not match|"
                 r"Collective Insights refused the detections as invalid")),
]


@pytest.mark.parametrize("connector", CONNECTORS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault(scenario, connector, harness_for):
    h = harness_for(connector)
    TALLY.scenarios += 1
    ok = False
    try:
        env = scenario.cause(h)
        result = h.run(env=env)
        code, message = scenario.expected(connector)
        h.assert_clean_exit(result, code, message)
        if scenario.check:
            scenario.check(h, result)
        assert not h.state_problems(), f"state ahead of the destination: {h.state_problems()} {result!r}"
        assert h.leftovers() == [], f"temporary files left after the run: {h.leftovers()}"
        if code == 0:
            lost = h.lost()
            TALLY.iocs_lost += sum(len(v) for v in lost.values())
            assert not lost, f"lost after a run that ended well: {lost} {result!r}"
            assert not h.delivered_twice(), f"delivered twice: {h.delivered_twice()[:5]}"
            h.assert_private_files()
            ok = True
            return
        h.clear_faults()
        h.write_config()
        again = h.run(verbosity=1, to_log=False)
        h.assert_clean_exit(again, 0)
        lost = h.lost()
        TALLY.iocs_lost += sum(len(v) for v in lost.values())
        assert not lost, f"the rerun did not deliver what the failed run did not: {lost}"
        assert not h.delivered_twice(), f"delivered twice: {h.delivered_twice()[:5]}"
        assert not h.state_problems()
        assert h.leftovers() == []
        h.assert_private_files()
        ok = True
    finally:
        TALLY.survived += ok
        TALLY.record(connector, scenario.name, ok)
