"""HttpClient against the echo stand-in over real sockets: retries, Retry-After, faults, rate limit, TLS, proxies."""

import datetime
import email.utils
import json
import ssl
import time

import pytest
import urllib3

from tq_conn_common.config import Param
from tq_conn_common.errors import EXIT_CONFIG, EXIT_FAILED, AuthError, ConfigError, SourceError
from tq_conn_common import http
from tq_conn_common.http import HttpClient, _retry_after
from tq_conn_common.service import Service
from tq_conn_common.session import Stats
from tq_conn_sandbox.server import Running
from tq_conn_sandbox.services.echo import Echo


@pytest.fixture
def client(sandbox):
    made = []

    def make(**kwargs):
        kwargs.setdefault("backoff", 0.01)
        service = kwargs.pop("service", Service("Echo", credential=kwargs.pop("credential", None)))
        made.append(HttpClient(service, sandbox.url("echo"), **kwargs))
        return made[-1]
    yield make
    for c in made:
        c.close()


def hits(sandbox, path):
    return sum(1 for r in sandbox["echo"].requests if r["path"] == path)


def test_json_and_url_joining(client, sandbox):
    c = client()
    assert c.json("GET", "/numbers", params={"limit": 3})["data"] == [0, 1, 2]
    assert c.json("GET", "numbers", params={"limit": 1})["data"] == [0]
    assert c.url("https://other.example/x") == "https://other.example/x"
    assert HttpClient("Vendor", "http://h/api/").url("/v1/items") == "http://h/api/v1/items"
    assert c.get("/echo").json()["headers"]["User-Agent"] == "tq-conn/1"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_then_succeed(client, sandbox, status):
    stats = Stats()
    sandbox.fault("echo", path="^/numbers$", status=status, count=2)
    assert client(stats=stats).json("GET", "/numbers")["total"] == 100
    assert hits(sandbox, "/numbers") == 3 and stats.requests == 3


def test_retry_after_seconds_is_honoured(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", status=429, retry_after=1)
    began = time.monotonic()
    client(backoff=0).get("/numbers")
    assert 0.9 <= time.monotonic() - began < 3


def test_retry_after_past_max_wait_stops_at_once(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", status=429, retry_after=3600)
    began = time.monotonic()
    with pytest.raises(SourceError, match=r"asked to wait 3600 s \(Retry-After\).*longer than the 300 s") as caught:
        client().get("/numbers")
    assert time.monotonic() - began < 2 and caught.value.kind == "rate_limited"


def test_retry_after_past_the_run_deadline_stops_at_once(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", status=503, retry_after=60)
    http.set_run_deadline(30)
    try:
        with pytest.raises(SourceError, match=r"asked to wait 60 s .*left before the run's deadline"):
            client().get("/numbers")
    finally:
        http.set_run_deadline(None)


def test_retry_after_forms():
    assert _retry_after("7") == 7.0 and _retry_after("0") == 0.0 and _retry_after("-3") == 0.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
    assert 25 < _retry_after(email.utils.format_datetime(when, usegmt=True)) <= 31


def test_backoff_grows_exponentially_with_jitter(monkeypatch, client, sandbox):
    waits = []
    monkeypatch.setattr("tq_conn_common.http.time.sleep", waits.append)
    sandbox.fault("echo", path="^/numbers$", status=500, count=4)
    client(backoff=1.0).get("/numbers")
    assert len(waits) == 4
    for attempt, wait in enumerate(waits):
        assert 0.5 * 2 ** attempt <= wait <= 2 ** attempt


def test_retries_are_bounded_and_429_says_lower_the_rate(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", status=429, count=0)
    with pytest.raises(SourceError) as caught:
        client(retries=2).get("/numbers")
    error = caught.value
    assert hits(sandbox, "/numbers") == 3
    assert error.status == 429 and error.kind == "rate_limited" and error.retryable and error.stops_run
    assert error.exit_code == EXIT_FAILED
    assert str(error) == ("Echo answered HTTP 429 to GET /numbers: injected fault.\n"
                          "Fix: Echo is rate limiting; lower requests_per_second or run less often.")


def test_the_one_table_gives_each_status_its_error_and_fix():
    devo = Service("Devo", credential="'Token' (token)")
    cases = {401: ("credential", AuthError, "rejected 'Token' (token)"), 403: ("permission", AuthError,
             "lacks permission"), 404: ("not_found", SourceError, "URL is wrong"),
             429: ("rate_limited", SourceError, "rate limiting"), 500: ("failing", SourceError, "failing on its side"),
             400: ("refused", SourceError, "settings of Devo")}
    from tq_conn_common.service import kind_of
    for status, (kind, cls, fix) in cases.items():
        error = devo.error(kind_of(status), {"status": status})
        assert error.kind == kind and type(error) is cls and fix in error.fix, status


def test_a_service_words_its_own_failures():
    vendor = Service("CTCI", credential="'T' (t)", messages={"auth": "Id 100: HTTP {status}: {body}"},
                     fixes={"permission": "enable {credential}"}, classes={"tls": ConfigError}, stops=("failing",))
    error = vendor.error("permission", {"status": 403, "body": "no role"})
    assert (error.message, error.fix) == ("Id 100: HTTP 403: no role", "enable 'T' (t)")
    assert isinstance(vendor.error("tls", {"reason": "x"}), ConfigError)
    assert vendor.error("failing", {"status": 502}).stops_run and not vendor.error("refused", {}).stops_run


def test_401_and_403_are_auth_errors_that_name_the_credential(client, sandbox):
    c = client(credential="'API Token' (token)", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(AuthError) as caught:
        c.get("/secure/numbers")
    assert caught.value.status == 401 and caught.value.exit_code == EXIT_CONFIG
    assert "Echo rejected 'API Token' (token)" in caught.value.fix
    assert hits(sandbox, "/secure/numbers") == 1  # not retried
    sandbox.fault("echo", path="^/numbers$", status=403)
    with pytest.raises(AuthError, match="HTTP 403"):
        c.get("/numbers")
    ok = client(headers={"Authorization": "Bearer sandbox-token"}).json("GET", "/secure/numbers")
    assert ok["data"][0] == 0


def test_404_says_check_the_url(client):
    with pytest.raises(SourceError) as caught:
        client().get("/no/such/path")
    assert caught.value.status == 404 and not caught.value.retryable and "URL is wrong" in caught.value.fix


def test_expect_lets_a_caller_take_other_statuses(client, sandbox):
    assert client().get("/no/such", expect=(200, 404)).status_code == 404
    assert client().get("/no/such", expect=()).status_code == 404


def test_a_connection_cut_mid_body_is_retried(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", cut=True, count=2)
    assert client().json("GET", "/numbers")["total"] == 100
    assert hits(sandbox, "/numbers") == 3
    sandbox.fault("echo", path="^/lines$", cut=True)
    assert client().get("/lines", params={"count": 50000}).text.count("\n") == 50000


def test_a_connection_always_cut_ends_in_a_retryable_error(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", cut=True, count=0)
    with pytest.raises(SourceError) as caught:
        client(retries=1).get("/numbers")
    assert "cut the connection mid-response after 2 attempts" in str(caught.value) and caught.value.retryable


def test_a_malformed_or_html_body_is_retried_by_json(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", malformed=True)
    assert client().json("GET", "/numbers")["total"] == 100
    sandbox.fault("echo", path="^/numbers$", html=True)
    assert client().json("GET", "/numbers")["total"] == 100
    assert hits(sandbox, "/numbers") == 4


@pytest.mark.parametrize("fault, kind", [({"malformed": True}, "malformed JSON"), ({"html": True}, "an HTML page")])
def test_a_body_always_unreadable_is_a_source_error(client, sandbox, fault, kind):
    sandbox.fault("echo", path="^/numbers$", count=0, **fault)
    with pytest.raises(SourceError) as caught:
        client().json("GET", "/numbers")
    assert f"Echo sent {kind} instead of data for GET /numbers." in str(caught.value)
    assert hits(sandbox, "/numbers") == 3 and caught.value.retryable


def test_a_slow_answer_times_out_and_is_retried(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", delay=1.0)
    began = time.monotonic()
    assert client(timeout=(2, 0.3)).json("GET", "/numbers")["total"] == 100
    assert time.monotonic() - began < 1.0


def test_a_service_that_always_times_out(client, sandbox):
    sandbox.fault("echo", path="^/numbers$", delay=0.5, count=0)
    with pytest.raises(SourceError, match="timed out after 2 attempts"):
        client(timeout=(2, 0.1), retries=1).get("/numbers")


def test_a_refused_first_request_is_a_wrong_address_after_one_quick_retry(sandbox):
    stats = Stats()
    vendor = Service("Vendor", url=Param("vendor_url", "Vendor URL"))
    c = HttpClient(vendor, "http://127.0.0.1:9", retries=2, backoff=0.01, stats=stats)
    with pytest.raises(ConfigError) as caught:
        c.get("/x")
    assert stats.requests == 2 and caught.value.exit_code == EXIT_CONFIG
    assert str(caught.value) == ("Vendor at 127.0.0.1:9 refused the connection after 2 attempts (connection "
                                 "refused). It was the run's first request to it: the address is most likely wrong.\n"
                                 "Fix: check 'Vendor URL' (vendor_url) (host and port) and run again.")


def test_an_unknown_host_on_the_first_request_is_a_wrong_address():
    with pytest.raises(ConfigError, match=r"at host.invalid:81 is an unknown host after 2 attempts .*first request"):
        HttpClient("Vendor", "http://host.invalid:81", retries=2, backoff=0.01).get("/x")


def test_a_refused_connection_later_in_the_run_is_retried_then_reported(sandbox):
    running = Running()
    running.add(Echo())
    url = running.url("echo")
    stats = Stats()
    c = HttpClient("Vendor", url, retries=2, backoff=0.01, stats=stats)
    assert c.get("/numbers", headers={"Connection": "close"}).status_code == 200   # the address is right
    running.stop()
    with pytest.raises(SourceError) as caught:
        c.get("/numbers")
    assert stats.requests == 4
    assert str(caught.value) == (f"Vendor at {url.split('//')[1]} could not connect after 3 attempts (connection "
                                 "refused).\nFix: check the URL of Vendor, the network and any proxy; run again "
                                 "later.")
    assert caught.value.kind == "unreachable" and caught.value.retryable


def test_an_invalid_url_is_a_config_error():
    with pytest.raises(ConfigError, match="is not valid"):
        HttpClient("Vendor", "").get("api.example/x?token=secret-value")
    with pytest.raises(ConfigError) as caught:
        HttpClient("Vendor", "ftp://h").get("/x?token=secret-value")
    assert "secret-value" not in str(caught.value)


def test_the_rate_limit_spaces_requests(client, sandbox):
    c = client(requests_per_second=20)
    began = time.monotonic()
    for _ in range(11):
        c.get("/numbers")
    elapsed = time.monotonic() - began
    assert 0.5 <= elapsed < 3  # 10 intervals of 1/20 s
    times = [r["time"] for r in sandbox["echo"].requests if r["path"] == "/numbers"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # the server sees them spaced too (arrivals jitter on a loaded machine, so the span counts, not each gap)
    assert len(gaps) == 10 and sum(gaps) >= 0.45 and min(gaps) >= 0.015
    unlimited = client()
    began = time.monotonic()
    for _ in range(11):
        unlimited.get("/numbers")
    assert time.monotonic() - began < elapsed


def _https_echo(tmp_path):
    """Start an echo stand-in over TLS with a fresh self-signed certificate; return (running, ca path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    running = Running()
    running.add(Echo(), ssl_context=context)
    return running, str(cert_path)


def test_tls_is_verified_by_default_and_a_ca_bundle_path_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    running, ca = _https_echo(tmp_path)
    try:
        url = running.url("echo")
        with pytest.raises(SourceError) as caught:
            HttpClient("Echo", url, retries=0).get("/numbers")
        assert "TLS failed talking to Echo" in str(caught.value) and "certificate verify failed" in str(caught.value)
        assert "REQUESTS_CA_BUNDLE" in caught.value.fix
        assert HttpClient("Echo", url, verify=ca).json("GET", "/numbers")["total"] == 100
        # a CA bundle from the environment does not override the configured one (nor verify=False)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "elsewhere.pem"))
        assert HttpClient("Echo", url, verify=ca).json("GET", "/numbers")["total"] == 100
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert HttpClient("Echo", url, verify=False).json("GET", "/numbers")["total"] == 100
    finally:
        running.stop()


def test_a_missing_ca_bundle_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        HttpClient("Devo", "https://h", verify=str(tmp_path / "none.pem"))


def test_requests_go_through_the_configured_proxy(client, sandbox, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the configured proxy wins over the environment
    monkeypatch.setenv("NO_PROXY", "")
    c = HttpClient("Vendor", "http://vendor.invalid", proxies={"http": sandbox.url("echo"), "https": ""})
    body = c.json("GET", "/echo")  # the echo stand-in plays the proxy: it receives the absolute URL
    assert body["headers"]["Host"] == "vendor.invalid" and body["path"] == "/echo"


def test_a_body_decoded_as_a_shape_keeps_only_its_fields_and_another_shape_is_decoded_whole():
    from typing import Any, TypedDict

    from tq_conn_common.http import loads, loads_as

    class Item(TypedDict, total=False):
        id: Any
        name: str

    class Body(TypedDict, total=False):
        data: list[Item]

    shaped = loads_as(Body)
    body = b'{"data": [{"id": 1, "name": "a", "big": {"x": [1, 2]}}, {"id": 123456789012345678901234567890}]}'
    assert shaped(body) == {"data": [{"id": 1, "name": "a"}, {"id": 123456789012345678901234567890}]}
    for other in (b'{"data": [{"id": 1, "name": 5}]}', b'{"data": {}}', b'{"data": [1, {"id": 2}]}',
                  b'{"data": [{"id": Infinity}]}', b'{"data": [{"name": "\\ud800"}]}'):
        assert shaped(other) == loads(other) == json.loads(other)
    with pytest.raises(ValueError):
        shaped(b'{"data": [')
