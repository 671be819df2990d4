"""tq-conn-flashpoint end to end: the installed command against the Flashpoint stand-in, into the Devo stand-in."""

import base64
import csv
import io
import json
import os
import stat
import time

import pytest
import requests
import yaml

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.flashpoint import TOKEN, TOKEN_BASE64

pytestmark = pytest.mark.e2e

CMD = "tq-conn-flashpoint"
CONFIG = "tq-conn-flashpoint.yaml"
STATE = "tq-conn-flashpoint.state.json"
DOMAINS = "Threatintel_Flashpoint_Intelligence_Domain"
PORTS = "Threatintel_Flashpoint_Intelligence_Ip_dst_port"
TAG = "threatintel.flashpoint.intelligence.alerts"
PER_TYPE = 60         # attributes of each type in the stand-in's default data
ALERTS = 40
LOOKUPS = [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}},
           {"ip-dst|port": {"lookup_key": "fpid", "lookup_status": "Created"}}]
FEW_RETRIES = {"TQ_CONN_HTTP_RETRIES": "1"}   # lasting failures: one retry shows the behaviour
DROP = object()


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "flashpoint"
    path.mkdir()
    return path


def devo_settings(sandbox, folder, transport="rest"):
    """Return the devo_* settings for the Devo stand-in: lookups by REST (or tls), events by the X.509 collector."""
    devo = sandbox["devo"]
    paths = devo.write_client_bundle(str(folder / "certs"))
    host, port = devo.collector_address
    return {"devo_transport": transport, "devo_lookups_url": sandbox.url("devo") + "/lookup-api",
            "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "devo_host": host, "devo_port": port,
            "devo_cert": paths["cert"], "devo_key": paths["key"], "devo_chain": paths["chain"], "devo_tls_delay": 0}


@pytest.fixture
def configure(folder, sandbox):
    """Write the connector's own config file for the sandbox, with overrides (DROP removes a key)."""
    def write(transport="rest", **overrides):
        url = sandbox.url("flashpoint")
        values = {"bearer_token_base64": TOKEN_BASE64, "lookups": LOOKUPS,
                  "indicators_url": f"{url}/api/v4", "alerts_url": f"{url}/api/alerting/v1", "page_size": 25,
                  "alerts_page_size": 15, **devo_settings(sandbox, folder, transport), **overrides}
        (folder / CONFIG).write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not DROP}))
        return folder
    return write


@pytest.fixture
def flashpoint(cli, folder):
    """Run the installed command on the test's config folder."""
    def run(*args, env=None):
        return cli(CMD, "-c", folder, *args, env=env)
    return run


def rows(sandbox, name):
    view = sandbox["devo"].lookup(name)
    return None if view is None else view["rows"]


def events(sandbox, tag=TAG):
    return [json.loads(e["message"]) for e in sandbox["devo"].table(tag)]


def state(folder):
    return json.loads((folder / STATE).read_text())


def fp_requests(sandbox, suffix):
    return [r for r in sandbox["flashpoint"].requests if r["path"].endswith(suffix)]


def next_second():
    """Wait for the next full second: checkpoints have second precision, and a run's window ends at its start."""
    time.sleep(1.02 - time.time() % 1)


def stats(result):
    line = [x for x in result.both.splitlines() if "Run statistics" in x]
    return line[-1] if line else ""


# ---- the normal runs ----------------------------------------------------------------------------------------------

def test_first_run_delivers_each_type_to_its_lookup_and_the_alerts_to_the_table(configure, flashpoint, sandbox,
                                                                                folder):
    configure()
    result = flashpoint("-v", "2")
    assert result.code == 0, result
    assert (f"items received {2 * PER_TYPE + ALERTS}, skipped as invalid 0, duplicates dropped 0, "
            f"items delivered {2 * PER_TYPE + ALERTS}") in stats(result)
    domains = sandbox["devo"].lookup(DOMAINS)
    assert domains["key"] == "value.domain" and domains["total"] == PER_TYPE
    types = {c["name"]: c["type"] for c in domains["columns"]}
    assert types["header_.indexed_at"] == "INT8" and types["header_.is_visible"] == "STRING"   # documented types
    assert types["Event.info"] == "STRING" and types["Event.publish_timestamp"] == "STRING"
    assert not any(name.startswith(("_meta", "enrichments")) for name in types)
    row = next(r for r in domains["rows"] if r["value.domain"] == "quasar-c2-0.example.net")
    assert row["type"] == "domain" and row["Event.info"].startswith('Analysis: quasar "')
    assert json.loads(row["Event.Tag"])[1]["name"] == "malware:quasar"       # a list is one JSON column
    assert json.loads(row["Event.Galaxy"])[0]["GalaxyCluster"][0]["meta"]["external_id"] == ["T1116"]
    assert row["header_.is_visible"] == "true" and isinstance(row["header_.indexed_at"], int)
    ports = sandbox["devo"].lookup(PORTS)
    assert ports["key"] == "fpid" and ports["total"] == PER_TYPE
    assert all("|" in r["value.ip-dst|port"] for r in ports["rows"])
    sent = events(sandbox)
    assert len(sent) == ALERTS and len({a["alert_id"] for a in sent}) == ALERTS
    assert {"github", "chan"} <= {a["source"].get("source", "chan") for a in sent}     # both alert kinds
    saved = state(folder)
    for type_ in ("domain", "ip-dst|port"):
        entry = saved["indicators"][type_]
        assert entry["from_checkpoint_time"] == saved["initial_start_time"]
        assert entry["status"] == "Created"                    # the lookup exists now
        assert abs(time.time() - time.mktime(time.strptime(entry["to_checkpoint_time"], "%Y-%m-%dT%H:%M:%SZ"))
                   + time.timezone) < 60
    assert saved["alerts"]["to_checkpoint_time"] == saved["indicators"]["domain"]["to_checkpoint_time"]
    assert oct(stat.S_IMODE(os.stat(folder / STATE).st_mode)) == "0o600"
    scrolls = [r["method"] for r in fp_requests(sandbox, "/indicators/scroll")]
    assert scrolls.count("DELETE") == 2                       # one scroll session per type, closed
    assert "Type 'domain': 60 rows delivered to lookup Threatintel_Flashpoint_Intelligence_Domain (replace)" in \
        result.both


def test_over_x509_a_certificate_expiring_soon_is_told_once(configure, flashpoint, sandbox, folder):
    paths = sandbox["devo"].authority.write_client(str(folder / "soon"), DEFAULT_DOMAIN, days=10)
    configure("tls", devo_cert=paths["cert"], devo_key=paths["key"], devo_chain=paths["chain"])
    result = flashpoint()
    assert result.code == 0, result
    assert result.both.count("expires on") == 1, result       # lookups and alerts: the settings checked once
    assert len(events(sandbox)) == ALERTS and len(rows(sandbox, DOMAINS)) == PER_TYPE


def test_lookups_travel_through_the_x509_collector_as_well(configure, flashpoint, sandbox):
    configure(transport="tls", alerts_enabled=False, indicators_paging="skip")
    result = flashpoint()
    assert result.code == 0, result
    assert sandbox["devo"].lookup(DOMAINS)["total"] == PER_TYPE
    assert sandbox["devo"].lookup(PORTS)["total"] == PER_TYPE
    assert events(sandbox) == [] and fp_requests(sandbox, "/alerts") == []
    assert all("skip=" in r["query"] for r in fp_requests(sandbox, "/attribute")[1:])


def test_the_second_run_moves_only_what_changed(configure, flashpoint, sandbox, folder):
    configure()
    assert flashpoint().code == 0
    first = state(folder)
    fp = sandbox["flashpoint"]
    new = fp.publish("domain", 3)
    changed = fp.update("domain", 2)
    fp.publish("ip-dst|port", 1)
    fp.raise_alerts(2)
    next_second()
    fp.requests.clear()
    result = flashpoint()
    assert result.code == 0, result
    assert "items received 8, skipped as invalid 0, duplicates dropped 0, items delivered 8" in stats(result)
    domains = {r["value.domain"]: r for r in rows(sandbox, DOMAINS)}
    assert len(domains) == PER_TYPE + 3
    assert {d["value"]["domain"] for d in new} <= set(domains)
    for doc in changed:
        assert domains[doc["value"]["domain"]]["Event.info"].endswith("(revision 1)")
    assert len(rows(sandbox, PORTS)) == PER_TYPE + 1
    assert len(events(sandbox)) == ALERTS + 2
    second = state(folder)
    assert second["indicators"]["domain"]["from_checkpoint_time"] == first["indicators"]["domain"][
        "to_checkpoint_time"]
    since = first["indicators"]["domain"]["to_checkpoint_time"].replace(":", "%3A")
    assert all(f"updated_since={since}" in r["query"] for r in fp_requests(sandbox, "/attribute")[1:])
    # nothing new: a third run moves nothing and still advances the checkpoints
    next_second()
    third = flashpoint()
    assert third.code == 0 and "items delivered 0" in stats(third)
    assert state(folder)["indicators"]["domain"]["from_checkpoint_time"] == second["indicators"]["domain"][
        "to_checkpoint_time"]


# ---- Flashpoint Ignite and the IOC v2 API ---------------------------------------------------------------------------

def ignite(sandbox, api="ignite", **overrides):
    """Return the settings of a run on Ignite: the stand-in serves its paths at the root of the same host."""
    return {"api": api, "indicators_url": sandbox.url("flashpoint"), "alerts_url": sandbox.url("flashpoint"),
            **overrides}


def test_ignite_delivers_the_same_lookups_as_v4_and_the_alerts_as_notifications(configure, flashpoint, sandbox,
                                                                                 folder):
    configure(alerts_enabled=False, reset_persistence_auth="v4")
    assert flashpoint().code == 0
    on_v4 = {name: sorted(rows(sandbox, name), key=json.dumps) for name in (DOMAINS, PORTS)}
    sandbox["flashpoint"].requests.clear()
    configure(reset_persistence_auth="ignite", **ignite(sandbox))      # the same lookups, from the start again
    result = flashpoint("-v", "2")
    assert result.code == 0, result
    assert f"items delivered {2 * PER_TYPE + ALERTS}" in stats(result)
    for name, before in on_v4.items():          # the same documents: lookup_key value.domain and fpid keep working
        assert sorted(rows(sandbox, name), key=json.dumps) == before
    paths = {r["path"] for r in sandbox["flashpoint"].requests}
    assert paths == {"/technical-intelligence/v1/attribute", "/technical-intelligence/v1/scroll",
                     "/alert-management/v1/notifications"}
    sent = events(sandbox)
    assert len(sent) == ALERTS and len({a["id"] for a in sent}) == ALERTS
    assert {"communities", "data_exposure__github"} == {a["source"] for a in sent}      # both alert kinds
    assert all(a["created_at"].endswith("Z") and a["reason"]["origin"] == "searches" for a in sent)
    pages = fp_requests(sandbox, "/notifications")[1:]          # after the setup check: 40 alerts, 15 a page
    assert len(pages) == 3 and all("sort=created_at%3Aasc" in p["query"] and "size=15" in p["query"] for p in pages)
    assert "cursor=" not in pages[0]["query"] and all("cursor=" in p["query"] for p in pages[1:])
    assert all("created_after=" in p["query"] and p["query"].count("Z") >= 2 for p in pages)   # UTC written with Z
    assert state(folder)["alerts"]["to_checkpoint_time"] == state(folder)["indicators"]["domain"][
        "to_checkpoint_time"]


def test_ignite_second_run_moves_only_what_changed_and_drops_repeated_notifications(configure, flashpoint, sandbox,
                                                                                    folder):
    configure(lookups=LOOKUPS[:1], alerts_overlap_seconds=300, **ignite(sandbox))
    fp = sandbox["flashpoint"]
    late = fp.raise_alerts(3, ts=time.time() - 30)              # inside the next window's overlap
    assert flashpoint().code == 0
    assert len(events(sandbox)) == ALERTS + 3
    assert set(state(folder)["alerts"]["recent_alert_ids"]) == {a["alert_id"] for a in late}   # notification ids
    fp.publish("domain", 2)
    fp.raise_alerts(2)
    next_second()
    result = flashpoint()
    assert result.code == 0, result
    assert "duplicates dropped 3, items delivered 4" in stats(result)
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE + 2
    sent = events(sandbox)
    assert len(sent) == ALERTS + 5 and len({a["id"] for a in sent}) == ALERTS + 5


def test_ignite_a_failed_scroll_step_is_not_retried(configure, flashpoint, sandbox, folder):
    configure(**ignite(sandbox))
    sandbox.fault("flashpoint", path="/technical-intelligence/v1/scroll$", method="POST", status=503, count=1)
    result = flashpoint()
    assert result.code == 1, result
    assert result.err.startswith("Error: PullError 102: Api Flashpoint answered HTTP 503 to POST "
                                 "/technical-intelligence/v1/scroll: injected fault.")
    assert [r["method"] for r in fp_requests(sandbox, "/scroll")].count("POST") == 1
    assert not (folder / STATE).exists() and events(sandbox) == []
    assert flashpoint().code == 0 and len(rows(sandbox, DOMAINS)) == PER_TYPE


def test_ignite_notification_errors_name_the_setting(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1], **ignite(sandbox, alerts_url=sandbox.url("flashpoint") + "/api/alerting/v1"))
    result = flashpoint()
    assert result.code == 2, result
    assert result.err.startswith("Error: SetupError 102: Api Flashpoint answered HTTP 404 to GET "
                                 "/api/alerting/v1/alert-management/v1/notifications")
    assert "check alerts_url and api" in result.err
    configure(lookups=LOOKUPS[:1], **ignite(sandbox))
    sandbox["flashpoint"].switches["repeat_next_link"] = True
    result = flashpoint()
    assert result.code == 1, result
    assert result.err.startswith("Error: PullError 101: Error in fetch_alerts Flashpoint repeated an alerts page "
                                 "link; stopped to avoid a loop.")
    assert events(sandbox) == [] and "alerts" not in state(folder)


def test_ioc_v2_delivers_a_lookup_per_ioc_type_with_its_default_lookup_key(configure, flashpoint, sandbox, folder):
    configure(lookups=[{"ipv4": {"lookup_status": "New"}}, {"file": {"lookup_key": "id", "lookup_status": "New"}}],
              **ignite(sandbox, api="ioc-v2"))
    result = flashpoint("-v", "2")
    assert result.code == 0, result
    queries = [r["query"] for r in fp_requests(sandbox, "/technical-intelligence/v2/indicators")[1:]]
    assert all("sort=modified_at%3Aasc" in q and "modified_after=" in q and "modified_before=" in q
               for q in queries)
    assert any("from=175" in q for q in queries)                # from/size pages of 25
    served = requests.get(sandbox.url("flashpoint") + "/technical-intelligence/v2/indicators",
                          params={"ioc_types": "ipv4", "size": 1000},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()["items"]
    addresses = sandbox["devo"].lookup("Threatintel_Flashpoint_Intelligence_Ipv4")
    assert addresses["key"] == "value"                          # the default lookup_key of IOC v2
    assert {r["value"] for r in addresses["rows"]} == {i["value"] for i in served}
    assert len(served) == 3 * PER_TYPE                          # ip-dst, ip-src and ip-dst|port hold IPv4 IOCs
    row = addresses["rows"][0]
    assert row["type"] == "ipv4" and "|" not in row["value"] and row["score.value"] in ("malicious", "suspicious",
                                                                                         "informational")
    assert json.loads(row["mitre_attack_ids"])[0]["id"].startswith("T1")     # a list is one JSON column
    files = sandbox["devo"].lookup("Threatintel_Flashpoint_Intelligence_File")
    assert files["key"] == "id" and files["total"] == 4 * PER_TYPE        # md5, sha1, sha256 and filename
    assert {c["name"] for c in files["columns"]} >= {"hashes.md5", "hashes.sha1", "hashes.sha256", "modified_at"}
    assert len(events(sandbox)) == ALERTS
    fp = sandbox["flashpoint"]
    fp.publish("ip-dst", 2)
    next_second()
    again = flashpoint()
    assert again.code == 0, again
    assert "items received 2," in stats(again)
    assert sandbox["devo"].lookup("Threatintel_Flashpoint_Intelligence_Ipv4")["total"] == 3 * PER_TYPE + 2


def test_ioc_v2_warns_of_a_misp_type_name(configure, flashpoint, sandbox):
    configure(lookups=[{"ip-dst": {"lookup_status": "New"}}], alerts_enabled=False, **ignite(sandbox, api="ioc-v2"))
    result = flashpoint()
    assert "The indicator type 'ip-dst' is not one Flashpoint is known to use; types are spelt as in Flashpoint " \
           "(IOC v2 types: domain, email, extracted_config, file, ipv4, ipv6, url)." in result.both


def _add_manual_row(sandbox, name, key_value):
    """Add one row to a lookup through the Lookups API, as an analyst's own tooling would."""
    view = sandbox["devo"].lookup(name)
    names = [c["name"] for c in view["columns"]]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    writer.writerow([key_value if n == view["key"] else "" for n in names])
    config = {"columns": view["columns"], "hasHeader": True, "key": {"type": "column", "column": view["key"]},
              "append": True}
    answer = requests.put(f"{sandbox.url('devo')}/lookup-api/lookup/{DEFAULT_DOMAIN}/{name}/deploy-csv",
                          json={"deploy-config": config, "csv": text.getvalue()},
                          headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    assert any(r[view["key"]] == key_value for r in rows(sandbox, name))


@pytest.mark.parametrize("status,kept", [("New", False), ("Created", True)])
def test_new_replaces_the_lookup_and_created_adds_to_it(configure, flashpoint, sandbox, folder, status, kept):
    lookups = [{"domain": {"lookup_key": "value.domain", "lookup_status": status}}]
    configure(lookups=lookups, alerts_enabled=False, reset_persistence_auth="one")
    assert flashpoint().code == 0
    _add_manual_row(sandbox, DOMAINS, "added-by-hand.example.org")
    # start over: the type is pulled again from initial_start_time with its configured status
    configure(lookups=lookups, alerts_enabled=False, reset_persistence_auth="two")
    result = flashpoint("-v", "2")
    assert result.code == 0, result
    assert "reset_persistence_auth changed: the checkpoints are forgotten" in result.both
    assert ("(replace)" if status == "New" else "(upsert)") in result.both
    found = {r["value.domain"] for r in rows(sandbox, DOMAINS)}
    assert ("added-by-hand.example.org" in found) is kept
    assert len(found) == PER_TYPE + (1 if kept else 0)


def test_a_type_whose_lookup_key_is_missing_names_the_keys_and_the_others_are_delivered(configure, flashpoint,
                                                                                       sandbox, folder):
    configure(lookups=[{"domain": {"lookup_key": "value.dom", "lookup_status": "New"}},
                       {"sha1": {"lookup_key": "value.sha1", "lookup_status": "New"}}], alerts_enabled=False)
    result = flashpoint()
    assert result.code == 2, result
    assert ("Error: The lookup_key 'value.dom' of the type 'domain' is not in its flattened Flashpoint data; "
            "the keys are: Event.Galaxy, Event.Tag,") in result.err
    assert "value.comment, value.domain." in result.err
    assert "Fix: set lookups.<type>.lookup_key to one of the keys listed" in result.err
    assert "skipped as invalid 0" in stats(result)
    assert rows(sandbox, DOMAINS) is None
    assert len(rows(sandbox, "Threatintel_Flashpoint_Intelligence_Sha1")) == PER_TYPE
    assert set(state(folder)["indicators"]) == {"sha1"}          # the failing type keeps no checkpoint
    configure(lookups=[{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}},
                       {"sha1": {"lookup_key": "value.sha1", "lookup_status": "New"}}], alerts_enabled=False)
    fixed = flashpoint()
    assert fixed.code == 0, fixed
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE
    assert "items delivered 60" in stats(fixed)                  # sha1 went on from its checkpoint


def test_a_type_added_to_the_config_starts_from_initial_start_time(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1], alerts_enabled=False)
    assert flashpoint().code == 0
    initial = state(folder)["initial_start_time"]
    next_second()
    configure(lookups=LOOKUPS + [{"url": {"lookup_key": "value.url", "lookup_status": "New",
                                          "lookup_name": "FP_Urls"}}], alerts_enabled=False)
    result = flashpoint()
    assert result.code == 0, result
    assert "items delivered 120" in stats(result)                # ip-dst|port and url whole, domain nothing
    saved = state(folder)["indicators"]
    assert saved["url"]["from_checkpoint_time"] == initial and saved["ip-dst|port"]["from_checkpoint_time"] == initial
    assert saved["domain"]["from_checkpoint_time"] != initial
    assert len(rows(sandbox, "FP_Urls")) == PER_TYPE


def test_alerts_are_deduped_across_runs(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1], alerts_overlap_seconds=300)
    fp = sandbox["flashpoint"]
    late = fp.raise_alerts(3, ts=time.time() - 30)              # inside the next window's overlap
    assert flashpoint().code == 0
    assert len(events(sandbox)) == ALERTS + 3
    assert set(state(folder)["alerts"]["recent_alert_ids"]) == {a["alert_id"] for a in late}
    fp.raise_alerts(2)
    next_second()
    result = flashpoint()
    assert result.code == 0, result
    assert "duplicates dropped 3, items delivered 2" in stats(result)
    sent = events(sandbox)
    assert len(sent) == ALERTS + 5 and len({a["alert_id"] for a in sent}) == ALERTS + 5
    query = fp_requests(sandbox, "/alerts")[-1]["query"]
    assert "size=15" in query


def test_reset_state_pulls_everything_again(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1], alerts_enabled=False)
    assert flashpoint().code == 0
    next_second()
    assert "items delivered 0" in stats(flashpoint())
    result = flashpoint("--reset-state")
    assert result.code == 0, result
    assert f"items delivered {PER_TYPE}" in stats(result)


def test_devo_refusing_the_upload_leaves_the_checkpoint(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1], alerts_enabled=False)
    sandbox["devo"].settings["job_error"] = "Lookup storage is full"
    result = flashpoint()
    assert result.code == 1, result
    assert "Lookup storage is full" in result.err
    assert not (folder / STATE).exists()
    retry = flashpoint()
    assert retry.code == 0, retry
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE


def test_the_devo_collector_config_yaml_form_works_as_it_is(cli, folder, sandbox):
    devo = sandbox["devo"]
    devo.authority.write_client(str(folder / "certs"), DEFAULT_DOMAIN, prefix="mydomain")
    host, port = devo.collector_address
    url = sandbox.url("flashpoint")
    (folder / "config.yaml").write_text(f"""
globals:
  debug: false
  id: not_used
  name: flashpoint
  persistence: {{type: filesystem, config: {{directory_name: state}}}}
outputs:
  devo_1:
    type: devo_platform
    config: {{address: {host}, port: {port}, type: SSL, chain: chain.crt, cert: mydomain.crt, key: mydomain.key}}
inputs:
  flashpoint:
    id: 12345
    enabled: true
    credentials:
      bearer_token_base64: {TOKEN_BASE64}
    indicators_url: {url}/api/v4
    alerts_url: {url}/api/alerting/v1
    services:
      indicators:
        lookup_name: FP_{{Type}}
        lookups:
          - domain: {{lookup_key: value.domain, lookup_status: New}}
          - ip-dst|port: {{lookup_key: fpid, lookup_status: New, lookup_name: FP_Ports}}
      alerts:
        tag: my.app.flashpoint.alerts
""")
    result = cli(CMD, "-c", folder, env={"TQ_CONN_DEVO_TLS_DELAY": "0"})
    assert result.code == 0, result
    assert len(rows(sandbox, "FP_Domain")) == PER_TYPE and len(rows(sandbox, "FP_Ports")) == PER_TYPE
    assert len(events(sandbox, "my.app.flashpoint.alerts")) == ALERTS
    assert not (folder / CONFIG).exists()


# ---- error ids ------------------------------------------------------------------------------------------------------

def test_setup_error_1_no_token_and_no_terminal(configure, flashpoint, sandbox):
    configure(bearer_token_base64=DROP)
    result = flashpoint()
    assert result.code == 2, result
    assert "Missing configuration and no terminal to ask: Bearer Token (base64) (bearer_token_base64)." in result.err
    assert "SetupError 1: Please provide the bearer_token_base64 in the inputs." in result.err
    assert sandbox["flashpoint"].requests == []


def test_setup_error_1_collector_form_without_the_token(cli, folder, sandbox):
    (folder / "config.yaml").write_text("inputs:\n  flashpoint:\n    credentials: {}\n    services:\n"
                                        "      indicators:\n        lookups: ['domain:fpid']\n")
    result = cli(CMD, "-c", folder)
    assert result.code == 2, result
    assert result.err.startswith("Error: SetupError 1: Please provide the bearer_token_base64 in the inputs.\nFix: "
                                 "add credentials")


def test_setup_error_2_a_token_that_is_not_base64(configure, flashpoint, sandbox):
    configure(bearer_token_base64=TOKEN)          # the plain token, not encoded
    result = flashpoint()
    assert result.code == 2, result
    assert "SetupError 2: Please ensure the bearer token is prepared: bearer_token_base64 must be the Flashpoint " \
           "API token encoded in base64" in result.err
    assert TOKEN not in result.both and sandbox["flashpoint"].requests == []


def test_setup_error_2_a_token_flashpoint_refuses(configure, flashpoint, sandbox, folder):
    wrong = base64.b64encode(b"revoked-token-123456").decode()
    configure(bearer_token_base64=wrong)
    result = flashpoint()
    assert result.code == 2, result
    assert result.err.startswith("Error: SetupError 2: Please ensure the bearer token is prepared: Flashpoint refused "
                                 "it (HTTP 401, Invalid or expired API token)")
    assert "Manage API Tokens" in result.err and "revoked-token-123456" not in result.both
    assert not (folder / STATE).exists()


def test_setup_error_102_a_wrong_api_url(configure, flashpoint, sandbox):
    configure(indicators_url=sandbox.url("flashpoint") + "/api/v3")
    result = flashpoint()
    assert result.code == 2, result
    assert result.err.startswith("Error: SetupError 102: Api Flashpoint answered HTTP 404 to GET "
                                 "/api/v3/indicators/attribute: no such path: /api/v3/indicators/attribute.")
    assert "check indicators_url and api" in result.err


def test_pull_error_101_fetch_indicators(configure, flashpoint, sandbox, folder):
    configure()
    sandbox.fault("flashpoint", path="/indicators/scroll$", method="POST", malformed=True, count=0)
    result = flashpoint(env=FEW_RETRIES)
    assert result.code == 1, result
    assert result.err.startswith("Error: PullError 101: Error in fetch_indicators Flashpoint sent malformed JSON "
                                 "instead of data for POST /api/v4/indicators/scroll.")
    assert not (folder / STATE).exists() and rows(sandbox, DOMAINS) is None


def test_pull_error_101_fetch_alerts(configure, flashpoint, sandbox, folder):
    configure()
    sandbox["flashpoint"].switches["repeat_next_link"] = True
    result = flashpoint()
    assert result.code == 1, result
    assert result.err.startswith("Error: PullError 101: Error in fetch_alerts Flashpoint repeated an alerts page "
                                 "link; stopped to avoid a loop.")
    assert events(sandbox) == [] and "alerts" not in state(folder)
    assert set(state(folder)["indicators"]) == {"domain", "ip-dst|port"}     # delivered before the alerts


def test_pull_error_102_an_api_error_while_pulling(configure, flashpoint, sandbox, folder):
    configure()
    sandbox.fault("flashpoint", path="/indicators/scroll$", method="POST", status=503, count=0)
    result = flashpoint(env=FEW_RETRIES)
    assert result.code == 1, result
    assert result.err.startswith("Error: PullError 102: Api Flashpoint answered HTTP 503 to POST "
                                 "/api/v4/indicators/scroll: injected fault.")
    sandbox["flashpoint"].faults.clear()
    sandbox["flashpoint"].switches["fail_later_pages"] = 400      # a setting Flashpoint refuses: exit 2
    result = flashpoint()
    assert result.code == 2, result
    assert result.err.startswith("Error: PullError 102: Api Flashpoint answered HTTP 400 to GET "
                                 "/api/alerting/v1/alerts: Page refused by the sandbox switch fail_later_pages "
                                 "(HTTP 400).")
    assert "Flashpoint refused the request for the reason shown" in result.err


def test_a_failed_scroll_step_is_not_retried_and_the_next_run_scrolls_again_from_the_checkpoint(
        configure, flashpoint, sandbox, folder):
    configure()
    sandbox.fault("flashpoint", path="/indicators/scroll$", method="POST", status=503, count=1)
    result = flashpoint()                       # retries allowed for other calls; not for a scroll step
    assert result.code == 1, result
    posts = [r for r in fp_requests(sandbox, "/indicators/scroll") if r["method"] == "POST"]
    assert len(posts) == 1 and not (folder / STATE).exists()
    again = flashpoint()
    assert again.code == 0, again
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE


def test_dry_run_fetches_and_maps_everything_delivers_nothing_and_keeps_no_state(configure, flashpoint, sandbox,
                                                                                 folder):
    configure()
    result = flashpoint("--dry-run", "-v", "2")
    assert result.code == 0, result
    assert f"Dry run: {PER_TYPE} rows would go to lookup {DOMAINS} (replace); nothing was sent." in result.out
    assert f"Dry run: {ALERTS} rows would go to {TAG}; nothing was sent." in result.out
    assert rows(sandbox, DOMAINS) is None and events(sandbox) == [] and "items delivered 0" in result.out
    assert not (folder / STATE).exists() or "alerts" not in json.loads((folder / STATE).read_text())
    assert flashpoint().code == 0 and len(rows(sandbox, DOMAINS)) == PER_TYPE and len(events(sandbox)) == ALERTS


# ---- first run ----------------------------------------------------------------------------------------------------

def test_the_first_run_prompts_ask_what_alerts_need_and_the_next_run_works(sandbox, folder, cli, terminal):
    # where the stand-ins listen: what a real installation takes from the defaults
    devo = devo_settings(sandbox, folder)
    env = {"TQ_CONN_INDICATORS_URL": sandbox.url("flashpoint") + "/api/v4",
           "TQ_CONN_ALERTS_URL": sandbox.url("flashpoint") + "/api/alerting/v1",
           "TQ_CONN_DEVO_LOOKUPS_URL": devo["devo_lookups_url"], "TQ_CONN_DEVO_HOST": devo["devo_host"],
           "TQ_CONN_DEVO_PORT": str(devo["devo_port"]), "TQ_CONN_DEVO_TLS_DELAY": "0"}
    code, screen = terminal(CMD, ["-c", folder], [
        ("Bearer Token (base64): ", TOKEN_BASE64), ("Indicator Lookups: ", "domain:value.domain"),
        ("Pull Alerts [yes]: ", ""), ("Devo API Region [us]: ", ""),
        ("Devo API Token: ", DEFAULT_TOKEN), ("Devo Domain: ", DEFAULT_DOMAIN),
        ("Devo X.509 Certificate: ", devo["devo_cert"]), ("Devo X.509 Private Key: ", devo["devo_key"]),
        ("Devo X.509 Chain CA: ", devo["devo_chain"])], env=env)
    assert code == 0, screen
    written = yaml.safe_load((folder / CONFIG).read_text())
    assert written["devo_cert"] == devo["devo_cert"] and written["devo_chain"] == devo["devo_chain"]
    result = cli(CMD, "-c", folder, env=env)   # the first real run after the prompts
    assert result.code == 0, result
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE and len(events(sandbox)) == ALERTS
    # no alerts: the certificates are not asked for
    other = folder / "indicators-only"
    other.mkdir()
    code, screen = terminal(CMD, ["-c", other], [
        ("Bearer Token (base64): ", TOKEN_BASE64), ("Indicator Lookups: ", "domain:value.domain"),
        ("Pull Alerts [yes]: ", "no"), ("Devo API Region [us]: ", ""),
        ("Devo API Token: ", DEFAULT_TOKEN), ("Devo Domain: ", DEFAULT_DOMAIN)], env=env)
    assert code == 0, screen
    assert "X.509" not in screen
    assert cli(CMD, "-c", other, env=env).code == 0


def test_first_run_on_a_terminal_asks_hides_the_token_and_writes_the_config(sandbox, folder, cli, terminal):
    code, screen = terminal(CMD, ["-c", folder], [
        ("Bearer Token (base64): ", "not base64!"),                 # re-asked
        ("Bearer Token (base64): ", TOKEN_BASE64),
        ("Indicator Lookups: ", "domain:value.domain, ip-dst|port:fpid:Created"),
        ("Pull Alerts [yes]: ", ""), ("Devo API Region [us]: ", ""),
        ("Devo API Token: ", "typed-devo-token-5432"), ("Devo Domain: ", DEFAULT_DOMAIN),
        ("Devo X.509 Certificate: ", "cert.pem"), ("Devo X.509 Private Key: ", "key.pem"),
        ("Devo X.509 Chain CA: ", "chain.pem")])
    assert code == 0, screen
    assert TOKEN_BASE64 not in screen and "typed-devo-token-5432" not in screen      # not echoed
    assert "SetupError 2: Please ensure the bearer token is prepared" in screen
    assert "Configuration written to" in screen
    written = yaml.safe_load((folder / CONFIG).read_text())
    assert written["bearer_token_base64"] == TOKEN_BASE64 and written["alerts_enabled"] is True
    assert written["lookups"] == LOOKUPS                         # the collector's form
    assert oct(stat.S_IMODE(os.stat(folder / CONFIG).st_mode)) == "0o600"
    assert "# api: v4" in (folder / CONFIG).read_text()
    # finish the configuration as the README says; then the run from cron delivers
    written.update({k: v for k, v in devo_settings(sandbox, folder).items()},
                   indicators_url=sandbox.url("flashpoint") + "/api/v4",
                   alerts_url=sandbox.url("flashpoint") + "/api/alerting/v1")
    (folder / CONFIG).write_text(yaml.safe_dump(written))
    result = cli(CMD, "-c", folder)
    assert result.code == 0, result
    assert len(rows(sandbox, DOMAINS)) == PER_TYPE and len(events(sandbox)) == ALERTS


def test_no_secret_reaches_the_log_at_verbosity_3(configure, flashpoint, sandbox, folder):
    configure(lookups=LOOKUPS[:1])
    log_dir = folder / "logs"
    log_dir.mkdir()
    result = flashpoint("-v", "3", "-ll", log_dir)
    assert result.code == 0, result
    text = result.both + "".join(p.read_text() for p in log_dir.iterdir())
    assert "Authorization" in text or "Effective config" in text
    for secret in (TOKEN, TOKEN_BASE64, DEFAULT_TOKEN):
        assert secret not in text
