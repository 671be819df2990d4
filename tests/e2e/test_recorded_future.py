"""tq-conn-recorded-future end to end: the installed command against the Recorded Future and Devo stand-ins."""

import csv
import datetime
import io
import ipaddress
import json
import os
import stat
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.recorded_future import TOKEN

pytestmark = pytest.mark.e2e

CMD = "tq-conn-recorded-future"
CONFIG = "tq-conn-recorded-future.yaml"
STATE = "tq-conn-recorded-future.state.json"
FUSION = "PublicUkraineRussiaIps"
FUSION_PATH = "/public/ukraine/ukraine_russia_ip.csv"
LOOKUPS = {
    "ip": ("Recorded_Future_IPv4_Address_Threat_List", "Recorded_Future_IPv6_Address_Threat_List"),
    "hash": ("Recorded_Future_File_Hash_Threat_List",),
    "domain": ("Recorded_Future_Domain_Threat_List",),
    "url": ("Recorded_Future_URL_Threat_List",),
    "vulnerability": ("Recorded_Future_Vulnerability_Threat_List",),
    FUSION: ("Recorded_Future_IPv4_Public_Ukranie_Russia_List", "Recorded_Future_IPv6_Public_Ukranie_Russia_List"),
}
LIST_PATHS = {"ip": "/v2/ip/risklist", "hash": "/v2/hash/risklist", "domain": "/v2/domain/risklist",
              "url": "/v2/url/risklist", "vulnerability": "/v2/vulnerability/risklist"}
HEAD_PATHS = {**LIST_PATHS, FUSION: "/fusion/v3/files/%2Fpublic%2Fukraine%2Fukraine_russia_ip.csv"}
GET_PATHS = {**LIST_PATHS, FUSION: "/v2/fusion/files/"}
T0 = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "rf"
    path.mkdir()
    return path


@pytest.fixture
def configure(folder, sandbox):
    """Write the connector's own config file for the sandbox (Lookups REST transport), with overrides."""
    def write(**overrides):
        values = {"api_token": TOKEN,
                  "base_url": sandbox.url("recorded_future") + "/v2/{0}/risklist?format=csv/splunk",
                  "devo_transport": "rest", "devo_lookups_url": sandbox.url("devo") + "/lookup-api",
                  "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, **overrides}
        (folder / CONFIG).write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not None}))
        return folder
    return write


@pytest.fixture
def rf(cli, folder):
    """Run the installed command on the test's config folder, at a given clock (TQ_CONN_NOW) if asked."""
    def run(*args, at=None, env=None):
        extra = dict(env or {})
        if at is not None:
            extra["TQ_CONN_NOW"] = at.isoformat()
        return cli(CMD, "-c", folder, *args, env=extra)
    return run


def lookup(sandbox, name):
    view = sandbox["devo"].lookup(name)
    return None if view is None else {row["Name"]: row for row in view["rows"]}


def published(sandbox, kind):
    """Return the rows the stand-in serves for a type, read with the csv module (what the lookups must hold)."""
    service = sandbox["recorded_future"]
    body = b"".join(service.risk_list(FUSION_PATH if kind == FUSION else kind).chunks()).decode()
    return list(csv.DictReader(io.StringIO(body)))


def rf_calls(sandbox, method=None):
    return [(r["method"], r["path"]) for r in sandbox["recorded_future"].requests
            if method is None or r["method"] == method]


def uploads(sandbox):
    return [r for r in sandbox["devo"].requests if r["path"].endswith("/deploy-csv")]


def state(folder):
    return json.loads((folder / STATE).read_text())


def forget_requests(sandbox):
    for name in ("recorded_future", "devo"):
        with sandbox[name].lock:
            sandbox[name].requests.clear()


def test_dry_run_fetches_and_maps_everything_delivers_nothing_and_keeps_no_state(configure, rf, sandbox, folder):
    configure()
    result = rf("--dry-run", "-v", "2")
    assert result.code == 0, result
    for names in LOOKUPS.values():
        for name in names:
            assert f" rows would go to lookup {name} (replace); nothing was sent." in result.out, name
            assert lookup(sandbox, name) is None
    assert not (folder / STATE).exists() and "items delivered 0" in result.out
    assert rf().code == 0 and all(lookup(sandbox, n) is not None for names in LOOKUPS.values() for n in names)


# ---- the normal runs ----------------------------------------------------------------------------------------------

def test_first_run_delivers_all_six_types_into_the_seed_lookups(configure, rf, sandbox, folder):
    configure()
    result = rf("-v", "2")
    assert result.code == 0, result
    total = sum(len(published(sandbox, kind)) for kind in LOOKUPS)
    assert f"items received {total}, skipped as invalid 0, duplicates dropped 0, items delivered {total}" in result.out
    for kind, names in LOOKUPS.items():
        served = {row["Name"]: row for row in published(sandbox, kind)}
        delivered = {}
        for name in names:
            rows = lookup(sandbox, name)
            assert rows is not None, f"lookup {name} missing"
            delivered.update(rows)
        assert set(delivered) == set(served), kind
        for key, row in delivered.items():
            source = served[key]
            assert row["Risk"] == int(source["Risk"]) and row["RiskString"] == source["RiskString"]
            rules = [item["Rule"] for item in json.loads(source["EvidenceDetails"])["EvidenceDetails"]]
            assert row["Rules"] == "; ".join(rules) and row["CriticalRule"] in rules
            assert row["CriticalityLabel"] in ("Unusual", "Suspicious", "Malicious", "Very Malicious")
            if kind == "hash":
                assert row["Algorithm"] == source["Algorithm"]
    view = sandbox["devo"].lookup("Recorded_Future_File_Hash_Threat_List")
    assert view["key"] == "Name"
    assert {c["name"]: c["type"] for c in view["columns"]} == {
        "Name": "STRING", "Risk": "INT8", "RiskString": "STRING", "Rules": "STRING", "CriticalRule": "STRING",
        "CriticalityLabel": "STRING", "Algorithm": "STRING"}
    saved = state(folder)["lists"]
    assert set(saved) == set(LOOKUPS)
    assert saved["ip"]["rows"] == {name: len(lookup(sandbox, name)) for name in LOOKUPS["ip"]}
    assert oct(stat.S_IMODE(os.stat(folder / STATE).st_mode)) == "0o600"
    assert ("GET", "/v2/fusion/files/") in rf_calls(sandbox)    # the seed's Fusion v2 endpoint


def test_ip_lists_are_split_into_ipv4_and_ipv6_lookups(configure, rf, sandbox):
    sandbox["recorded_future"].configure("ip", rows=80, ipv6_every=3, cidr_every=10)
    configure(types=["ip", FUSION])
    result = rf()
    assert result.code == 0, result
    for kind in ("ip", FUSION):
        v4, v6 = (lookup(sandbox, name) for name in LOOKUPS[kind])
        assert v4 and v6
        assert all(ipaddress.ip_network(n, strict=False).version == 4 for n in v4)
        assert all(ipaddress.ip_network(n, strict=False).version == 6 for n in v6)
        assert len(v4) + len(v6) == len(published(sandbox, kind))
    assert any("/" in name for name in lookup(sandbox, LOOKUPS["ip"][0]))     # CIDR ranges kept, as IPv4
    # One download per list: the IPv6 rows waited in a temporary file while the IPv4 rows were uploaded.
    assert sorted(rf_calls(sandbox, "GET")) == [("GET", GET_PATHS[FUSION]), ("GET", GET_PATHS["ip"])]


def test_a_list_without_ipv6_rows_empties_the_ipv6_lookup_in_one_download(configure, rf, sandbox):
    configure(types=["ip"])
    assert rf().code == 0
    assert lookup(sandbox, LOOKUPS["ip"][1])
    sandbox["recorded_future"].configure("ip", ipv6_every=0)
    forget_requests(sandbox)
    result = rf("--force")
    assert result.code == 0, result
    assert lookup(sandbox, LOOKUPS["ip"][1]) == {}
    assert len(lookup(sandbox, LOOKUPS["ip"][0])) == 60
    assert rf_calls(sandbox, "GET") == [("GET", "/v2/ip/risklist")]


def test_the_token_stays_out_of_the_output_even_at_verbosity_3(configure, rf):
    configure(types=["vulnerability"])
    result = rf("-v", "3")
    assert result.code == 0, result
    assert TOKEN not in result.both and DEFAULT_TOKEN not in result.both
    assert "X-RFToken" not in result.both or "X-RFToken: ****" in result.both


# ---- refresh times, etag, --force --------------------------------------------------------------------------------

def test_each_run_pulls_only_the_lists_that_are_due(configure, rf, sandbox, folder):
    configure()
    assert rf(at=T0).code == 0
    pulled = state(folder)["lists"]
    assert {entry["pulled_at"] for entry in pulled.values()} == {"2025-03-01T10:00:00+00:00"}

    def checked_at(offset):
        forget_requests(sandbox)
        result = rf("-v", "2", at=T0 + offset)
        assert result.code == 0, result
        return {kind for kind, path in HEAD_PATHS.items() if ("HEAD", path) in rf_calls(sandbox)}

    assert checked_at(datetime.timedelta(minutes=30)) == set()
    assert rf_calls(sandbox) == []
    assert checked_at(datetime.timedelta(hours=1)) == {"ip", FUSION}
    assert checked_at(datetime.timedelta(hours=1, minutes=30)) == set()
    assert checked_at(datetime.timedelta(hours=2)) == {"ip", "domain", FUSION}
    assert checked_at(datetime.timedelta(hours=3)) == {"ip", FUSION}   # domain was checked at 2 h
    assert checked_at(datetime.timedelta(days=1)) == {"ip", "domain", "hash", "url", "vulnerability", FUSION}
    assert rf_calls(sandbox, "GET") == [] and uploads(sandbox) == []      # nothing changed: nothing uploaded


def test_an_unchanged_list_is_not_uploaded_again_a_changed_one_is(configure, rf, sandbox, folder):
    configure(types=["domain", FUSION])
    assert rf(at=T0).code == 0
    before = lookup(sandbox, LOOKUPS["domain"][0])
    forget_requests(sandbox)
    result = rf("-v", "2", at=T0 + datetime.timedelta(hours=2))
    assert result.code == 0, result
    assert "domain: unchanged since 2025-03-01T10:00:00+00:00 (etag" in result.out
    assert rf_calls(sandbox) == [("HEAD", HEAD_PATHS["domain"]), ("HEAD", HEAD_PATHS[FUSION])]
    assert uploads(sandbox) == []
    assert state(folder)["lists"]["domain"]["pulled_at"] == "2025-03-01T12:00:00+00:00"

    sandbox["recorded_future"].touch("domain")
    forget_requests(sandbox)
    assert rf(at=T0 + datetime.timedelta(hours=4)).code == 0
    assert ("GET", GET_PATHS["domain"]) in rf_calls(sandbox) and ("GET", GET_PATHS[FUSION]) not in rf_calls(sandbox)
    after = lookup(sandbox, LOOKUPS["domain"][0])
    assert set(after) != set(before) and len(after) == len(before)
    assert state(folder)["lists"]["domain"]["etag"] == sandbox["recorded_future"].risk_list("domain").etag(variant="gzip")


def test_the_etag_is_asked_of_the_downloaded_url_gzip_included(configure, rf, sandbox):
    # The stand-in gives the gzip=true form its own etag: a HEAD without gzip would never see the list unchanged.
    configure(types=["domain"])
    assert rf(at=T0).code == 0
    forget_requests(sandbox)
    assert rf(at=T0 + datetime.timedelta(hours=2)).code == 0
    heads = [r for r in sandbox["recorded_future"].requests if r["method"] == "HEAD"]
    assert len(heads) == 1 and "gzip=true" in heads[0]["query"]
    assert rf_calls(sandbox, "GET") == [] and uploads(sandbox) == []


def test_another_fusion_file_is_pulled_into_its_own_lookups_without_a_v3_etag(configure, rf, sandbox, folder):
    # OTHER_FUSION: v3 answers 404 for it (no etag, not a failure) and its header spells riskString.
    from tq_conn_sandbox.services.recorded_future import OTHER_FUSION
    names = {"ukraine_russia_ipv4_lookup": "C2_IPv4", "ukraine_russia_ipv6_lookup": "C2_IPv6"}
    configure(types=[FUSION], fusion_path=OTHER_FUSION, **names)
    result = rf("-v", "2", at=T0)
    assert result.code == 0, result
    body = b"".join(sandbox["recorded_future"].risk_list(OTHER_FUSION).chunks()).decode()
    served = {row["Name"]: row for row in csv.DictReader(io.StringIO(body))}
    delivered = {**lookup(sandbox, "C2_IPv4"), **lookup(sandbox, "C2_IPv6")}
    assert set(delivered) == set(served) and any(":" in name for name in delivered)
    assert all(row["RiskString"] == served[name]["riskString"] for name, row in delivered.items())
    assert lookup(sandbox, LOOKUPS[FUSION][0]) is None
    forget_requests(sandbox)
    again = rf("-v", "2", at=T0 + datetime.timedelta(hours=1))   # due again: v3 answers 404, the file is pulled
    assert again.code == 0, again
    assert [m for m, _ in rf_calls(sandbox)] == ["HEAD", "GET"] and "answered HTTP 404" in again.out


def test_changed_settings_upload_again_despite_the_etag(configure, rf, sandbox):
    configure(types=["domain"])
    assert rf(at=T0).code == 0
    configure(types=["domain"], min_risk={"domain": 90})
    forget_requests(sandbox)
    assert rf(at=T0 + datetime.timedelta(hours=2)).code == 0
    assert ("GET", GET_PATHS["domain"]) in rf_calls(sandbox)
    rows = lookup(sandbox, LOOKUPS["domain"][0])
    assert rows and all(row["Risk"] >= 90 for row in rows.values())
    assert len(rows) == sum(int(r["Risk"]) >= 90 for r in published(sandbox, "domain"))


def test_force_pulls_every_list_now(configure, rf, sandbox):
    configure()
    assert rf(at=T0).code == 0
    forget_requests(sandbox)
    result = rf("--force", at=T0 + datetime.timedelta(minutes=5))
    assert result.code == 0, result
    assert {path for method, path in rf_calls(sandbox, "GET")} == set(GET_PATHS.values())
    assert rf_calls(sandbox, "HEAD") == []


def test_risk_list_asks_recorded_future_for_a_named_list(configure, rf, sandbox):
    configure(types=["domain"], risk_list={"domain": "cncSite"})
    assert rf().code == 0
    query = next(r["query"] for r in sandbox["recorded_future"].requests if r["path"] == GET_PATHS["domain"])
    assert "list=cncSite" in query and "gzip=true" in query and "format=csv/splunk" in query
    rows = lookup(sandbox, LOOKUPS["domain"][0])
    assert rows and all(row["Rules"] == "Current C&C Server" for row in rows.values())


def test_plain_download_when_gzip_is_off(configure, rf, sandbox):
    configure(types=["url"], gzip=False)
    assert rf().code == 0
    query = next(r["query"] for r in sandbox["recorded_future"].requests if r["path"] == GET_PATHS["url"])
    assert "gzip" not in query
    assert len(lookup(sandbox, LOOKUPS["url"][0])) == 40


def test_content_encoding_gzip_is_undone(configure, rf, sandbox):
    sandbox["recorded_future"].configure("url", content_encoding=True)
    configure(types=["url"], gzip=False)
    assert rf().code == 0
    assert len(lookup(sandbox, LOOKUPS["url"][0])) == 40


# ---- bad rows ------------------------------------------------------------------------------------------------------

def test_bad_rows_are_counted_and_skipped(configure, rf, sandbox):
    sandbox["recorded_future"].configure("hash", rows=40, bad_every=8, malformed_evidence_every=10)
    configure(types=["hash"])
    result = rf()
    assert result.code == 0, result
    assert "items received 40, skipped as invalid 5," in result.out
    assert "hash: 5 of 40 rows failed validation and were skipped." in result.out
    assert "hash: 4 rows had EvidenceDetails that is not JSON; kept without their rules." in result.out
    assert "not a hex MD5, SHA-1, SHA-256 or SHA-512 hash" in result.out
    assert len(lookup(sandbox, LOOKUPS["hash"][0])) == 35


def test_all_rows_rejected_aborts_and_leaves_the_lookup_as_it_was(configure, rf, sandbox, folder):
    configure(types=["domain", "url"])
    assert rf(at=T0).code == 0
    before = lookup(sandbox, LOOKUPS["domain"][0])
    saved = state(folder)["lists"]["domain"]
    sandbox["recorded_future"].configure("domain", all_bad=True)
    sandbox["recorded_future"].touch("url")
    forget_requests(sandbox)
    result = rf(at=T0 + datetime.timedelta(days=1))
    assert result.code == 1, result
    assert "Error: All lookups have been rejected. ETL aborted!" in result.err
    assert "none of the 50 rows of the domain risk list passed validation (first: not a domain name" in result.err
    assert lookup(sandbox, LOOKUPS["domain"][0]) == before
    assert [u["path"] for u in uploads(sandbox)] == [
        "/lookup-api/lookup/sandbox/Recorded_Future_URL_Threat_List/deploy-csv"]   # url still delivered
    assert state(folder)["lists"]["domain"] == saved


@pytest.mark.parametrize("fault", [{"cut": True}, {"html": True}], ids=["cut", "html"])
def test_a_broken_download_leaves_lookup_and_state_alone(configure, rf, sandbox, folder, fault):
    configure(types=["domain"])
    assert rf(at=T0).code == 0
    before, saved = lookup(sandbox, LOOKUPS["domain"][0]), state(folder)
    sandbox["recorded_future"].touch("domain")
    sandbox.fault("recorded_future", path="^/v2/domain/risklist$", method="GET", **fault)
    result = rf(at=T0 + datetime.timedelta(hours=3))
    assert result.code == 1, result
    expected = "broke off after" if "cut" in fault else "is not a csv/splunk risk list: Recorded Future sent an HTML"
    assert expected in result.err
    assert lookup(sandbox, LOOKUPS["domain"][0]) == before and state(folder) == saved


def test_a_corrupt_gzip_body_fails_the_list(configure, rf, sandbox):
    sandbox["recorded_future"].configure("ip", rows=3000, corrupt_gzip=True)
    configure(types=["ip"])
    result = rf()
    assert result.code == 1, result
    assert "The download of the ip risk list broke off after" in result.err
    assert lookup(sandbox, LOOKUPS["ip"][0]) is None


# ---- the seed's error table ------------------------------------------------------------------------------------------

SEED_ERROR = ("Error: Error retrieving data from API with response code {}. "
              "This pull iteration did not produce any results.")


def test_401_stops_the_run_at_once(configure, rf, sandbox, folder):
    configure(api_token="f" * 32)
    result = rf()
    assert result.code == 2, result
    assert SEED_ERROR.format(401) in result.err
    assert "Fix: try valid credentials: Recorded Future rejected 'Recorded Future API Token' (api_token)" in result.err
    assert "Invalid authentication token" in result.out      # Recorded Future's own words, in the log
    assert rf_calls(sandbox) == [("GET", "/v2/ip/risklist")] and not (folder / STATE).exists()
    assert "f" * 32 not in result.both


def test_403_on_one_list_fails_that_list_only(configure, rf, sandbox, folder):
    sandbox.fault("recorded_future", path="^/v2/vulnerability/", status=403,
                  body={"error": {"status": 403, "message": "Not entitled to vulnerability risk lists"}})
    configure()
    result = rf()
    assert result.code == 2, result
    assert SEED_ERROR.format(403) in result.err
    assert "Fix: try a token with privileges for this request" in result.err
    assert "remove 'vulnerability' from types" in result.err
    assert lookup(sandbox, LOOKUPS["vulnerability"][0]) is None
    assert all(lookup(sandbox, LOOKUPS[kind][0]) for kind in ("ip", "hash", "domain", "url", FUSION))
    assert "vulnerability" not in state(folder)["lists"] and "url" in state(folder)["lists"]


def test_404_names_the_endpoint(configure, rf, sandbox):
    configure(base_url=sandbox.url("recorded_future") + "/v2/{0}/risklists?format=csv/splunk", types=["ip", FUSION])
    result = rf()
    assert result.code == 1, result
    assert SEED_ERROR.format(404) in result.err
    assert "Fix: try a valid endpoint: /v2/ip/risklists was not found; check base_url" in result.err
    assert lookup(sandbox, LOOKUPS[FUSION][0])          # the Fusion file still came through


def test_429_waits_as_retry_after_asks_then_succeeds(configure, rf, sandbox):
    sandbox.fault("recorded_future", path="^/v2/url/risklist$", status=429, retry_after=0.6, count=2)
    configure(types=["url"])
    result = rf()
    assert result.code == 0, result
    times = [r["time"] for r in sandbox["recorded_future"].requests if r["path"] == "/v2/url/risklist"]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.55 and times[2] - times[1] >= 0.55
    assert len(lookup(sandbox, LOOKUPS["url"][0])) == 40


def test_429_that_persists_stops_the_run_with_the_rate_advice(configure, rf, sandbox, folder):
    sandbox.fault("recorded_future", path="^/v2/ip/risklist$", status=429, retry_after=0, count=0)
    configure(types=["ip", "domain"], requests_per_second=5)
    result = rf()
    assert result.code == 1, result
    assert SEED_ERROR.format(429) in result.err
    assert "Fix: set requests_per_second in the config file to a lower value" in result.err
    assert rf_calls(sandbox) == [("GET", "/v2/ip/risklist")] * 6        # 1 + 5 retries, then no other list
    assert not (folder / STATE).exists()


def test_requests_per_second_spaces_the_requests(configure, rf, sandbox):
    configure(types=["domain", "url", "vulnerability"], requests_per_second=4)
    assert rf().code == 0
    times = [r["time"] for r in sandbox["recorded_future"].requests]
    assert len(times) == 3 and times[-1] - times[0] >= 0.45


def test_503_on_one_list_after_retries_keeps_the_others(configure, rf, sandbox):
    sandbox.fault("recorded_future", path="^/v2/hash/risklist$", status=503, count=0)
    configure(types=["hash", "domain"])
    result = rf()
    assert result.code == 1, result
    assert SEED_ERROR.format(503) in result.err and "Recorded Future is failing on its side" in result.err
    assert lookup(sandbox, LOOKUPS["domain"][0]) and lookup(sandbox, LOOKUPS["hash"][0]) is None


# ---- configuration ---------------------------------------------------------------------------------------------------

SEED_YAML = """\
globals:
  debug: false
  id: 1
  name: rf
  persistence:
    type: filesystem
    config:
      directory_name: state
outputs:
  devo_1:
    type: devo_platform
    config:
      address: {host}
      port: {port}
      type: SSL
      chain: chain.crt
      cert: sandbox.crt
      key: sandbox.key
inputs:
  recorded_future:
    id: 100
    enabled: true
    requests_per_second: 100
    base_url: {url}/v2/{{0}}/risklist?format=csv/splunk
    api_token: {token}
    services:
      lookup_puller:
        # Intelligence Types Not Required Can Be Removed / Commented Out
        types:
          - ip
          - hash
          - domain
          - url
          - vulnerabilitiy
          - PublicUkraineRussiaIps
"""


def test_the_devo_collector_config_yaml_as_the_seed_prints_it(cli, sandbox, tmp_path):
    collector = tmp_path / "devo-collectors" / "recorded_future"
    (collector / "config").mkdir(parents=True)
    (collector / "state").mkdir()
    sandbox["devo"].write_client_bundle(str(collector / "certs"), "sandbox")
    host, port = sandbox["devo"].collector_address
    (collector / "config" / "config.yaml").write_text(SEED_YAML.format(
        host=host, port=port, url=sandbox.url("recorded_future"), token=TOKEN))
    result = cli(CMD, "-c", collector / "config", "-v", "2", env={"TQ_CONN_DEVO_TLS_DELAY": "0"}, timeout=300)
    assert result.code == 0, result
    assert "Read the collector configuration" in result.out
    assert "Data source 'vulnerabilitiy' in types is a misspelling; read as 'vulnerability'" in result.out
    for kind, names in LOOKUPS.items():
        delivered = {}
        for name in names:
            delivered.update(lookup(sandbox, name) or {})
        assert set(delivered) == {row["Name"] for row in published(sandbox, kind)}, kind
    assert set(json.loads((collector / "config" / STATE).read_text())["lists"]) == set(LOOKUPS)
    assert not (collector / "config" / CONFIG).exists()


def test_over_x509_a_certificate_expiring_soon_is_told_once_for_all_six_lists(configure, rf, sandbox, folder):
    paths = sandbox["devo"].authority.write_client(str(folder / "certs"), "sandbox", days=10)
    host, port = sandbox["devo"].collector_address
    configure(devo_transport="tls", devo_token=None, devo_domain=None, devo_lookups_url=None, devo_host=host,
              devo_port=port, devo_cert=paths["cert"], devo_key=paths["key"], devo_chain=paths["chain"])
    result = rf(env={"TQ_CONN_DEVO_TLS_DELAY": "0"})
    assert result.code == 0, result
    assert result.both.count("expires on") == 1, result       # the Devo settings are checked once a run
    for kind, names in LOOKUPS.items():
        delivered = {}
        for name in names:
            delivered.update(lookup(sandbox, name) or {})
        assert set(delivered) == {row["Name"] for row in published(sandbox, kind)}, kind


def test_no_config_and_no_terminal_exits_2_naming_the_token(rf, folder):
    result = rf()
    assert result.code == 2, result
    assert "Missing configuration and no terminal to ask: Recorded Future API Token (api_token)." in result.err
    assert not (folder / CONFIG).exists()


@pytest.mark.parametrize("values,problem", [
    ({"types": ["ip", "email"]}, "Data Sources (types): 'email' is not a data source"),
    ({"types": []}, "Data Sources (types): "),
    ({"base_url": "https://api.recordedfuture.com/v2/ip/risklist"}, "Risk List URL (base_url): "),
    ({"requests_per_second": 0}, "Requests per Second (requests_per_second): 0 is below the minimum 1"),
    ({"min_risk": {"ip": "high"}}, "Minimum Risk per Type (min_risk): ip: 'high' is not a whole number"),
])
def test_bad_settings_exit_2_naming_the_parameter(configure, rf, values, problem):
    configure(**values)
    result = rf()
    assert result.code == 2, result
    assert problem in result.err


def test_first_run_on_a_terminal_asks_hides_the_token_and_writes_the_config(sandbox, folder, cli, terminal):
    code, screen = terminal(CMD, ["-c", folder], [
        ("Recorded Future API Token: ", TOKEN), ("Data Sources [ip, hash, domain, url, vulnerability, "
                                                 "PublicUkraineRussiaIps]: ", "ip, vulnerabilitiy"),
        ("Devo API Region [us]: ", ""), ("Devo API Token: ", DEFAULT_TOKEN), ("Devo Domain: ", DEFAULT_DOMAIN)])
    assert code == 0, screen
    assert TOKEN not in screen and DEFAULT_TOKEN not in screen       # secrets are not echoed
    assert "Configuration written to" in screen
    written = yaml.safe_load((folder / CONFIG).read_text())
    assert written["api_token"] == TOKEN and written["devo_token"] == DEFAULT_TOKEN
    assert written["types"] == ["ip", "vulnerability"]
    assert oct(stat.S_IMODE(os.stat(folder / CONFIG).st_mode)) == "0o600"
    # finish the configuration by pointing it at the sandbox, as the README says; cron then delivers
    with open(folder / CONFIG, "a") as fh:
        fh.write(f"base_url: {sandbox.url('recorded_future')}/v2/{{0}}/risklist?format=csv/splunk\n"
                 f"devo_lookups_url: {sandbox.url('devo')}/lookup-api\n")
    result = cli(CMD, "-c", folder)
    assert result.code == 0, result
    assert lookup(sandbox, LOOKUPS["vulnerability"][0]) and lookup(sandbox, LOOKUPS["ip"][0])


# ---- size ----------------------------------------------------------------------------------------------------------

def _peak_rss_mb(folder):
    """Run the installed command once; return (exit code, output, its peak RSS in MB after exec, from /proc)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQ_CONN_")}
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), CMD), "-c", str(folder)], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as fh:
                    peak = max([peak] + [int(line.split()[1]) for line in fh if line.startswith("VmHWM:")])
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), peak / 1024


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak RSS from /proc")
def test_a_large_list_streams_with_flat_memory(configure, sandbox, folder):
    configure(types=["hash"])
    peaks = {}
    for rows in (20_000, 300_000):
        sandbox["recorded_future"].configure("hash", rows=rows)
        code, output, peaks[rows] = _peak_rss_mb(folder)
        assert code == 0, output
        assert f"items delivered {rows}" in output
        assert sandbox["devo"].lookup(LOOKUPS["hash"][0], limit=1)["total"] == rows
        (folder / STATE).unlink()
    assert peaks[300_000] - peaks[20_000] < 15, f"peak RSS grew from {peaks[20_000]:.0f} to {peaks[300_000]:.0f} MB"
    assert peaks[300_000] < 100


def test_workers_sharing_out_a_list_fill_the_same_lookups_as_one_process(configure, rf, sandbox, folder):
    # About 3 MB of list: three blocks of the download, parsed by two workers in turn; what they counted (rows below
    # min_risk, EvidenceDetails that is not JSON, rows skipped) comes back with their pages.
    sandbox["recorded_future"].configure("ip", rows=3000, ipv6_every=3, malformed_evidence_every=10, bad_every=50)
    configure(types=["ip"], min_risk={"ip": 80})
    found = {}
    for workers in ("1", "2"):
        sandbox["devo"].lookups.clear()
        result = rf("-v", "2", "--force", env={"TQ_CONN_WORKERS": workers})
        assert result.code == 0, result
        assert ("read by 2 worker processes, a block of the download a page" in result.out) == (workers == "2")
        counted = [line.split(" INFO ", 1)[-1].split(" WARNING ", 1)[-1] for line in result.out.splitlines()
                   if "rows had EvidenceDetails" in line or "below min_risk" in line or "failed validation" in line]
        found[workers] = ([lookup(sandbox, name) for name in LOOKUPS["ip"]], counted)
    assert found["1"] == found["2"] and len(found["1"][1]) == 3, found["2"][1]
    assert sum(map(len, found["1"][0])) > 1000
