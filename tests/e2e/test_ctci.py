"""tq-conn-ctci end to end: the installed command against the CTCI stand-in, delivering into the Devo stand-in."""

import datetime
import json
import os
import stat
import time

import pytest
import requests
import yaml

from tq_conn_sandbox.services.ctci import DISABLED_TOKEN, NSA_2020, TOKEN, UNSUBSCRIBED_TOKEN
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN

pytestmark = pytest.mark.e2e

CMD = "tq-conn-ctci"
CONFIG = "tq-conn-ctci.yaml"
STATE = "tq-conn-ctci.state.json"
LOOKUP = "CTCI_CEWL"
CURATED = 30          # rows of the stand-in's list
DROP = object()
FEW_RETRIES = {"TQ_CONN_HTTP_RETRIES": "1"}   # lasting failures: one retry shows the behaviour, five only take longer


def iso(days_ago):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "ctci"
    path.mkdir()
    return path


@pytest.fixture
def configure(folder, sandbox):
    """Write the connector's own config file for the sandbox (Lookups REST transport), with overrides."""
    def write(**overrides):
        values = {"api_token": TOKEN, "api_base_url": sandbox.url("ctci"), "verify_host_ssl_cert": True,
                  "reset_persistence_auth": "first", "devo_transport": "rest",
                  "devo_lookups_url": sandbox.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
                  "devo_domain": DEFAULT_DOMAIN, **overrides}
        (folder / CONFIG).write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not DROP}))
        return folder
    return write


@pytest.fixture
def ctci(cli, folder):
    """Run the installed command on the test's config folder."""
    def run(*args, env=None):
        return cli(CMD, "-c", folder, *args, env=env)
    return run


def switch(sandbox, **values):
    requests.post(sandbox.url("ctci") + "/_sandbox/ctci/switches", json=values, timeout=5).raise_for_status()


def lookup_rows(sandbox, name=LOOKUP):
    view = sandbox["devo"].lookup(name)
    return None if view is None else {row["cve"]: row for row in view["rows"]}


def state(folder):
    return json.loads((folder / STATE).read_text())


def ctci_requests(sandbox):
    return [r for r in sandbox["ctci"].requests if r["path"] == "/api/v1/cewl"]


def test_dry_run_fetches_and_maps_everything_delivers_nothing_and_keeps_no_state(configure, ctci, sandbox, folder):
    configure()
    result = ctci("--dry-run", "-v", "2")
    assert result.code == 0, result
    assert f"Dry run: {CURATED} rows would go to lookup {LOOKUP} (replace); nothing was sent." in result.out
    assert sandbox["devo"].lookup(LOOKUP) is None and not (folder / STATE).exists()
    assert "items delivered 0" in result.out
    assert ctci().code == 0 and sandbox["devo"].lookup(LOOKUP)["total"] == CURATED


# ---- the normal runs ----------------------------------------------------------------------------------------------

def test_first_run_delivers_the_cewl_as_a_typed_lookup_keyed_by_cve(configure, ctci, sandbox, folder):
    configure()
    result = ctci("-v", "2")
    assert result.code == 0, result
    assert (f"items received {CURATED}, skipped as invalid 0, duplicates dropped 0, items delivered {CURATED}"
            in result.out)
    assert f"First run: {CURATED} CVEs on the CEWL" in result.out
    view = sandbox["devo"].lookup(LOOKUP)
    assert view["key"] == "cve" and view["total"] == CURATED
    types = {c["name"]: c["type"] for c in view["columns"]}
    # Devo documents STRING and INT8 only: a score with decimals and a boolean travel as text.
    assert types["year"] == "INT8" and types["base_score"] == "STRING" and types["base_metric_v3"] == "STRING"
    assert types["date_added"] == "STRING" and types["other_fields"] == "STRING"
    row = lookup_rows(sandbox)["CVE-2020-5902"]
    assert row["year"] == 2020 and row["base_score"] == "9.8" and row["base_metric_v3"] == "true"
    assert row["date_added"] == "2020-07-06T00:00:00Z" and row["vendor"] == "f5"
    assert "pCVE-2024-0007" in lookup_rows(sandbox)
    saved = state(folder)
    assert saved["last_id_ref"] == max(r["id_ref"] for r in sandbox["ctci"].rows)
    assert saved["reset_persistence_auth"] == "first"
    assert abs(datetime.datetime.strptime(saved["last_polled_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() - time.time()) < 120
    assert oct(stat.S_IMODE(os.stat(folder / STATE).st_mode)) == "0o600"


def test_later_runs_name_the_cves_new_since_the_last_run(configure, ctci, sandbox, folder):
    configure()
    assert ctci().code == 0
    first_id = state(folder)["last_id_ref"]
    quiet = ctci("-v", "2")
    assert "No CVE is new on the CEWL since the last run." in quiet.out
    sandbox["ctci"].add_row("CVE-2025-0282", vendor="ivanti", product="connect secure")
    sandbox["ctci"].add_row("CVE-2025-24813", vendor="apache", product="tomcat")
    result = ctci("-v", "2")
    assert result.code == 0, result
    assert f"2 CVE(s) new on the CEWL since id_ref {first_id}: CVE-2025-0282, CVE-2025-24813" in result.out
    assert len(lookup_rows(sandbox)) == CURATED + 2
    assert state(folder)["last_id_ref"] == first_id + 2


@pytest.mark.parametrize("switches", [{"key_case": "upper"}, {"envelope": "bare"}, {"dates": "iso"},
                                      {"dates": "http"}, {"key_case": "upper", "envelope": "bare", "dates": "iso"}],
                         ids=["upper-case-key", "bare-array", "iso-dates", "http-dates", "all-three"])
def test_every_body_variant_gives_the_same_lookup(configure, ctci, sandbox, switches):
    configure()
    assert ctci().code == 0
    expected = lookup_rows(sandbox)
    switch(sandbox, **switches)
    result = ctci()
    assert result.code == 0, result
    assert "items delivered 0" in result.out and "CTCI_CEWL delta (0 upserted, 0 deleted)" in result.out
    assert lookup_rows(sandbox) == expected


def test_rows_without_a_valid_cve_id_are_skipped_and_counted_and_repeats_dropped(configure, ctci, sandbox):
    configure()
    switch(sandbox, bad_cve=True)
    result = ctci()
    assert result.code == 0, result
    assert (f"items received {CURATED + 5}, skipped as invalid 4, duplicates dropped 1, items delivered {CURATED}"
            in result.out)
    assert "Skipped CEWL row: row without a valid CVE id (cve='CVE-20-1', id_ref=9001)" in result.out
    rows = lookup_rows(sandbox)
    first = sandbox["ctci"].rows[0]
    assert rows[first["cve"]]["id_ref"] == first["id_ref"]         # the newest entry of a repeated CVE wins
    assert rows[first["cve"]]["description"] != "an older entry of the same CVE"


def test_an_unsubscribed_token_gets_the_restricted_list_and_a_warning(configure, ctci, sandbox):
    configure(api_token=UNSUBSCRIBED_TOKEN)
    result = ctci()
    assert result.code == 0, result
    assert "this is the restricted list served to tokens without a CEWL subscription" in result.out
    assert set(lookup_rows(sandbox)) == NSA_2020


def test_obfuscated_fields_arrive_as_keyed_hashes(configure, ctci, sandbox):
    configure(obfuscate_fields=["vendor", "year"], obfuscation_key="0123456789abcdef-sandbox")
    result = ctci()
    assert result.code == 0, result
    view = sandbox["devo"].lookup(LOOKUP)
    assert {c["name"]: c["type"] for c in view["columns"]}["year"] == "STRING"
    row = lookup_rows(sandbox)["CVE-2020-5902"]
    assert len(row["vendor"]) == 64 and row["vendor"] != "f5" and len(row["year"]) == 64
    assert row["product"] == "big-ip" and row["cve"] == "CVE-2020-5902"
    configure(obfuscate_fields=["vendor"])
    missing_key = ctci()
    assert missing_key.code == 2 and "obfuscation_key" in missing_key.err


def test_custom_lookup_name(configure, ctci, sandbox):
    configure(lookup_name="CEWL_Test_1")
    assert ctci().code == 0
    assert len(lookup_rows(sandbox, "CEWL_Test_1")) == CURATED and lookup_rows(sandbox) is None


def test_a_list_longer_than_the_fetch_limit_fails_before_delivery(configure, ctci, sandbox, folder):
    configure(event_fetch_limit_in_items=10)
    result = ctci()
    assert result.code == 2, result
    assert (f"The CEWL has {CURATED} rows, more than event_fetch_limit_in_items (10); nothing was delivered."
            in result.err)
    assert "Fix: raise event_fetch_limit_in_items" in result.err
    assert lookup_rows(sandbox) is None and not (folder / STATE).exists()


@pytest.mark.slow
def test_a_large_list_streams_through(configure, ctci, sandbox):
    configure(event_fetch_limit_in_items=100_000)
    switch(sandbox, rows=50_000)
    result = ctci()
    assert result.code == 0, result
    assert "items delivered 50000" in result.out
    assert sandbox["devo"].lookup(LOOKUP, limit=1)["total"] == 50_000


def test_secrets_never_reach_the_output_at_debug_level(configure, ctci, sandbox):
    configure()
    sandbox["ctci"].tokens["ctci-longer-secret-token-1234"] = "subscribed"
    configure(api_token="ctci-longer-secret-token-1234", obfuscate_fields=["vendor"],
              obfuscation_key="obfuscation-key-never-shown")
    result = ctci("-v", "3")
    assert result.code == 0, result
    for secret in ("ctci-longer-secret-token-1234", DEFAULT_TOKEN, "obfuscation-key-never-shown"):
        assert secret not in result.both


# ---- what CTCI does wrong -----------------------------------------------------------------------------------------

def test_429_is_retried_after_the_retry_after_seconds(configure, ctci, sandbox):
    configure()
    switch(sandbox, throttle=1, retry_after=1)
    started = time.monotonic()
    result = ctci()
    assert result.code == 0, result
    assert time.monotonic() - started >= 1.0
    assert "HTTP 429 on GET /api/v1/cewl from CTCI; retry 1 of 5 in 1.0 s." in result.out
    assert f"items delivered {CURATED}" in result.out


def test_a_passing_500_is_retried(configure, ctci, sandbox):
    configure()
    switch(sandbox, fail=2)
    result = ctci()
    assert result.code == 0, result
    assert len(ctci_requests(sandbox)) == 3


def test_a_lasting_500_is_api_error_400_and_keeps_state_and_lookup(configure, ctci, sandbox, folder):
    configure()
    assert ctci().code == 0
    saved = (folder / STATE).read_text()
    sandbox["ctci"].add_row("CVE-2025-0282")
    switch(sandbox, fail=100)
    result = ctci(env=FEW_RETRIES)
    assert result.code == 1, result
    assert ("ApiError 400: Unexpected status code when fetching the CTCI CEWL: HTTP 500: {\"status\": 500, "
            "\"title\": \"Internal Server Error\"") in result.err
    assert "Fix: CTCI is failing on its side; run again later" in result.err
    assert (folder / STATE).read_text() == saved
    assert len(lookup_rows(sandbox)) == CURATED


def test_an_html_error_page_is_api_error_400_with_its_text(configure, ctci, sandbox):
    configure()
    switch(sandbox, html=100, html_status=502)
    result = ctci(env=FEW_RETRIES)
    assert result.code == 1, result
    assert "ApiError 400: Unexpected status code when fetching the CTCI CEWL: HTTP 502: <!DOCTYPE html>" in result.err
    assert "CEWL is under maintenance" in result.err


def test_an_html_page_with_status_200_is_api_error_400(configure, ctci, sandbox):
    configure()
    switch(sandbox, html=100, html_status=200)
    result = ctci()
    assert result.code == 1, result
    assert ("ApiError 400: Unexpected response when fetching the CTCI CEWL: CTCI sent an HTML page instead of data "
            "for GET /api/v1/cewl.") in result.err
    assert lookup_rows(sandbox) is None


def test_truncated_json_is_retried_then_api_error_400(configure, ctci, sandbox):
    configure()
    switch(sandbox, truncate=1)
    assert ctci().code == 0
    switch(sandbox, truncate=100)
    result = ctci(env=FEW_RETRIES)
    assert result.code == 1, result
    assert "ApiError 400: Unexpected response when fetching the CTCI CEWL: CTCI sent malformed JSON" in result.err


def test_a_wrong_path_is_api_error_400_naming_the_url(configure, ctci, sandbox):
    configure(cewl_path="/api/v1/cewls")
    result = ctci()
    assert result.code == 1, result
    assert "ApiError 400: Unexpected status code when fetching the CTCI CEWL: HTTP 404:" in result.err
    assert "Fix: the URL is wrong" in result.err


@pytest.mark.parametrize("token,status,fix", [
    ("not-a-known-token", 401, "copy a valid token from the CTCI portal (menu API Tokens) into api_token"),
    (DISABLED_TOKEN, 403, "is disabled or lacks the CEWL subscription role"),
])
def test_a_refused_token_is_init_variables_error_100(configure, ctci, sandbox, token, status, fix):
    configure(api_token=token)
    result = ctci()
    assert result.code == 2, result
    assert (f"InitVariablesError 100: Unexpected status code when authenticating to CTCI with api_token: "
            f"HTTP {status}:") in result.err
    assert fix in result.err
    assert token not in result.both
    assert len(ctci_requests(sandbox)) == 1                          # a refused token is not retried


def test_an_unreachable_host_is_init_variables_error_101(configure, ctci):
    configure(api_base_url="http://127.0.0.1:9")
    result = ctci(env=FEW_RETRIES)
    assert result.code == 2, result        # the first request of the run: a wrong address, a configuration error
    assert "InitVariablesError 101: Cannot connect to CTCI at http://127.0.0.1:9:" in result.err
    assert "the address is most likely wrong" in result.err
    assert "Fix: check api_base_url" in result.err


@pytest.fixture
def ctci_https(tmp_path):
    """A second CTCI stand-in, on https with a certificate from a private CA; yields (url, CA file)."""
    from tq_conn_sandbox import pki
    from tq_conn_sandbox.server import Running
    from tq_conn_sandbox.services.ctci import Ctci
    authority = pki.Authority("tq-conn test private CA")
    issued = authority.issue("127.0.0.1", server=True, hosts=("127.0.0.1",))
    running = Running()
    service = running.add(Ctci(), ssl_context=authority.server_context(issued, require_client_cert=False))
    (tmp_path / "private-ca.pem").write_text(authority.cert_pem)
    yield service.url, tmp_path / "private-ca.pem"
    running.stop()


def test_verify_host_ssl_cert(configure, ctci, sandbox, ctci_https):
    url, ca_file = ctci_https
    configure(api_base_url=url)
    refused = ctci()
    assert refused.code == 2, refused
    assert f"InitVariablesError 101: Cannot connect to CTCI at {url}: TLS failed" in refused.err
    assert "certificate verify failed" in refused.err and "Fix: check api_base_url" in refused.err
    trusted = ctci(env={"REQUESTS_CA_BUNDLE": str(ca_file)})   # the CA added to the trust store: verified
    assert trusted.code == 0, trusted
    assert "verification is OFF" not in trusted.both
    configure(api_base_url=url, verify_host_ssl_cert=False)
    unverified = ctci()
    assert unverified.code == 0, unverified
    assert "TLS certificate verification is OFF for CTCI" in unverified.out


def test_a_devo_failure_leaves_the_state_where_it_was(configure, ctci, sandbox, folder):
    configure()
    assert ctci().code == 0
    saved = (folder / STATE).read_text()
    sandbox["ctci"].add_row("CVE-2025-0282")
    sandbox.fault("devo", path="^/lookup-api/", status=503, count=0)
    result = ctci(env=FEW_RETRIES)
    assert result.code == 1, result
    assert (folder / STATE).read_text() == saved
    sandbox["devo"].faults.clear()
    again = ctci("-v", "2")
    assert again.code == 0 and "1 CVE(s) new on the CEWL since id_ref" in again.out   # not lost


# ---- persistence reset --------------------------------------------------------------------------------------------

def test_changing_reset_persistence_auth_resets_the_state(configure, ctci, sandbox, folder):
    configure(reset_persistence_auth="first")
    assert ctci().code == 0
    sandbox["ctci"].add_row("CVE-2025-0282")
    assert ctci().code == 0
    after_two = state(folder)
    configure(reset_persistence_auth="second", historical_poll_datetime=iso(30))
    result = ctci("-v", "2")
    assert result.code == 0, result
    assert ("reset_persistence_auth changed ('first' -> 'second'): the persisted state is reset; this run starts "
            "over.") in result.out
    # with no persisted state, new means added since historical_poll_datetime: only the CVE added today
    assert f"1 CVE(s) new on the CEWL since {iso(30)[:10]}" in result.out and "CVE-2025-0282" in result.out
    assert state(folder)["reset_persistence_auth"] == "second"
    assert state(folder)["last_id_ref"] == after_two["last_id_ref"]
    same = ctci("-v", "2")
    assert "reset_persistence_auth changed" not in same.out and "No CVE is new" in same.out


def test_the_reset_is_repeated_until_a_run_delivers(configure, ctci, sandbox, folder):
    configure(reset_persistence_auth="first")
    assert ctci().code == 0
    configure(reset_persistence_auth="second")
    switch(sandbox, fail=100)
    failed = ctci(env=FEW_RETRIES)
    assert failed.code == 1 and state(folder)["reset_persistence_auth"] == "first"
    switch(sandbox, fail=0)
    result = ctci("-v", "2")
    assert result.code == 0 and "reset_persistence_auth changed ('first' -> 'second')" in result.out
    assert f"First run: {CURATED} CVEs" in result.out


# ---- every misconfiguration of the collector's error table ---------------------------------------------------------

SETUP_ERRORS = [
    ({"api_base_url": ""}, "SetupError 1: api_base_url must be specified.",
     "remove the line to use https://api.ctci.ai"),
    ({"api_base_url": ["https://api.ctci.ai"]}, "SetupError 2: api_base_url not of expected type: str",
     "set api_base_url"),
    ({"api_base_url": "https://api.ctci.ai/api/v1"}, "SetupError 3: api_base_url 'https://api.ctci.ai/api/v1' must "
     "match http[s]://{ip_address_or_domain}{:optional_port}", "set the scheme, host and optional port only"),
    ({"api_token": DROP}, "SetupError 6: Required setting, api_token not found in user configuration",
     "set api_token to the CTCI API token copied from the CTCI portal"),
    ({"api_token": ["a", "b"]}, "SetupError 7: Required setting, api_token not of expected type: str",
     "set api_token to the token text"),
    ({"verify_host_ssl_cert": "perhaps"}, "SetupError 10: Optional setting, verify_host_ssl_cert not of expected "
     "type: bool", "set verify_host_ssl_cert to true or false"),
    ({"event_fetch_limit_in_items": 0}, "SetupError 11: event_fetch_limit_in_items must be greater than or equal to "
     "1 and less than or equal to 100000", "set a whole number in that range"),
    ({"event_fetch_limit_in_items": 1_000_000}, "SetupError 11:", "set a whole number in that range"),
    ({"reset_persistence_auth": {"a": 1}}, "SetupError 13: Required setting, reset_persistence_auth not of expected "
     "type: str", "set reset_persistence_auth to one text value"),
    ({"historical_poll_datetime": [2025]}, "SetupError 14: Required setting, historical_poll_datetime not of "
     "expected type: str", "set historical_poll_datetime to a text date in the format YYYY-MM-DDTHH:MM:SSZ"),
    ({"historical_poll_datetime": "yesterday"}, "SetupError 15: historical_poll_datetime 'yesterday' does not match "
     "expected format YYYY-MM-DDTHH:MM:SSZ", "set a UTC date and time such as"),
    ({"historical_poll_datetime": iso(400)}, "SetupError 16: Please enter valid date for historical_poll_datetime "
     "less than or equal to one year", "set historical_poll_datetime after"),
    ({"historical_poll_datetime": iso(-1)}, "SetupError 17: Please enter valid date for historical_poll_datetime "
     "less than or equal to the current date", "set a past date or leave it empty"),
]


@pytest.mark.parametrize("overrides,message,fix", SETUP_ERRORS,
                         ids=[message.split(":")[0] for _, message, _ in SETUP_ERRORS])
def test_each_setup_error_exits_2_with_its_id_and_fix(configure, ctci, sandbox, overrides, message, fix):
    configure(**overrides)
    result = ctci()
    assert result.code == 2, result
    assert message in result.err
    assert fix in result.err
    assert ctci_requests(sandbox) == []                               # nothing was asked of CTCI


def test_setup_error_16_only_matters_without_persisted_state(configure, ctci):
    configure()
    assert ctci().code == 0
    configure(historical_poll_datetime=iso(400))                      # an old value left in a working config
    assert ctci().code == 0


COLLECTOR_YAML = """\
globals:
  debug: false
  id: not_used
  name: ctci_collector
  persistence: {type: filesystem, config: {directory_name: state}}
outputs:
  devo_1:
    type: devo_platform
    config: {address: %(host)s, port: %(port)s, type: SSL, chain: chain.crt, cert: sandbox.crt, key: sandbox.key}
inputs:
  ctci:
    id: 100001
    enabled: true
%(credentials)s
    api_base_url: %(url)s
    services:
      cewl:
        reset_persistence_auth: "2025-01"
"""


def collector_config(folder, sandbox, credentials=f"    credentials:\n      api_token: {TOKEN}"):
    host, port = sandbox["devo"].collector_address
    sandbox["devo"].write_client_bundle(str(folder / "certs"), "sandbox")
    (folder / "config.yaml").write_text(COLLECTOR_YAML % {"host": host, "port": port, "url": sandbox.url("ctci"),
                                                          "credentials": credentials})


def test_the_devo_collector_config_yaml_delivers_over_tls(ctci, sandbox, folder):
    collector_config(folder, sandbox)
    result = ctci("-v", "2", env={"TQ_CONN_DEVO_TLS_DELAY": "0"})
    assert result.code == 0, result
    assert "Read the collector configuration" in result.out
    rows = lookup_rows(sandbox)
    assert len(rows) == CURATED and rows["CVE-2020-5902"]["base_score"] == 9.8
    assert state(folder)["reset_persistence_auth"] == "2025-01"


@pytest.mark.parametrize("credentials,message", [
    ("", "SetupError 4: Required setting, credentials not found in user configuration."),
    (f"    credentials: {TOKEN}", "SetupError 5: Required setting, credentials not of expected type: dict."),
], ids=["SetupError 4", "SetupError 5"])
def test_collector_form_credential_errors(ctci, sandbox, folder, credentials, message):
    collector_config(folder, sandbox, credentials)
    result = ctci()
    assert result.code == 2, result
    assert message in result.err and "Fix:" in result.err and "credentials" in result.err
    assert ctci_requests(sandbox) == []


# ---- first run ----------------------------------------------------------------------------------------------------

def test_first_run_without_a_terminal_exits_2_naming_the_token(ctci, folder):
    result = ctci()
    assert result.code == 2, result
    assert "Missing configuration and no terminal to ask: CTCI API Token (api_token)." in result.err
    assert "SetupError 6:" in result.err
    assert not (folder / CONFIG).exists()


def test_first_run_on_a_terminal_asks_hides_the_tokens_and_writes_the_config(sandbox, folder, cli, terminal):
    secret = "typed-ctci-token-9876"
    code, screen = terminal(CMD, ["-c", folder], [("CTCI API Token: ", secret), ("Devo API Region [us]: ", "eu"),
                                              ("Devo API Token: ", "typed-devo-token-5432"),
                                              ("Devo Domain: ", "sandbox")])
    assert code == 0, screen
    assert secret not in screen and "typed-devo-token-5432" not in screen     # not echoed
    assert "eu" in screen and "sandbox" in screen                              # plain answers are echoed
    written = yaml.safe_load((folder / CONFIG).read_text())
    assert written["api_token"] == secret and written["devo_token"] == "typed-devo-token-5432"
    assert written["devo_region"] == "eu" and written["devo_domain"] == "sandbox"
    assert oct(stat.S_IMODE(os.stat(folder / CONFIG).st_mode)) == "0o600"
    assert "# api_base_url: https://api.ctci.ai" in (folder / CONFIG).read_text()   # the rest, commented out
    # finish the configuration as the README says, then the next run from cron delivers
    text = (folder / CONFIG).read_text().replace(secret, TOKEN).replace("typed-devo-token-5432", DEFAULT_TOKEN)
    text += f"api_base_url: {sandbox.url('ctci')}\ndevo_lookups_url: {sandbox.url('devo')}/lookup-api\n"
    (folder / CONFIG).write_text(text)
    result = cli(CMD, "-c", folder)
    assert result.code == 0, result
    assert len(lookup_rows(sandbox)) == CURATED
