"""Validation of the CTCI settings: each SetupError id of the collector's error table, and the collector form."""

import datetime

import pytest

from tq_conn_common import ConfigError
from tq_conn_common import config as cfg
from tq_conn_ctci import connector

BASE = {"api_token": "t0k3n-abcdef"}


def iso(days_ago):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def problems(**raw):
    with pytest.raises(ConfigError) as caught:
        cfg.validate(connector.PARAMS, {**BASE, **raw})
    return caught.value.problems


def test_defaults_are_valid_and_documented():
    config = cfg.validate(connector.PARAMS, BASE)
    assert config.api_base_url == "https://api.ctci.ai"
    assert config.verify_host_ssl_cert is True
    assert config.event_fetch_limit_in_items == 10_000
    assert config.lookup_name == "CTCI_CEWL" and config.cewl_path == "/api/v1/cewl"


@pytest.mark.parametrize("raw,error_id", [
    ({"api_base_url": ["https://api.ctci.ai"]}, "SetupError 2: api_base_url not of expected type: str"),
    ({"api_base_url": "api.ctci.ai"}, "SetupError 3: api_base_url 'api.ctci.ai' must match http[s]://"),
    ({"api_base_url": "https://api.ctci.ai/api/v1"}, "SetupError 3:"),
    ({"api_base_url": "ftp://api.ctci.ai"}, "SetupError 3:"),
    ({"api_base_url": "https://300.1.1.1"}, "SetupError 3:"),
    ({"api_base_url": "https://api.ctci.ai:99999"}, "SetupError 3:"),
    ({"api_token": None}, "SetupError 6: Required setting, api_token not found in user configuration"),
    ({"api_token": {"id": "x"}}, "SetupError 7: Required setting, api_token not of expected type: str"),
    ({"verify_host_ssl_cert": "maybe"}, "SetupError 10: Optional setting, verify_host_ssl_cert not of expected "
                                        "type: bool"),
    ({"event_fetch_limit_in_items": 0}, "SetupError 11: event_fetch_limit_in_items must be greater than or equal "
                                        "to 1 and less than or equal to 100000"),
    ({"event_fetch_limit_in_items": 100_001}, "SetupError 11:"),
    ({"event_fetch_limit_in_items": "lots"}, "SetupError 11:"),
    ({"reset_persistence_auth": ["a"]}, "SetupError 13: Required setting, reset_persistence_auth not of expected "
                                        "type: str"),
    ({"historical_poll_datetime": {"y": 1}}, "SetupError 14: Required setting, historical_poll_datetime not of "
                                             "expected type: str"),
    ({"historical_poll_datetime": "01/02/2025"}, "SetupError 15: historical_poll_datetime '01/02/2025' does not "
                                                 "match expected format YYYY-MM-DDTHH:MM:SSZ"),
    ({"historical_poll_datetime": "2025-02-30T00:00:00Z"}, "SetupError 15:"),
    ({"historical_poll_datetime": iso(-2)}, "SetupError 17: Please enter valid date for historical_poll_datetime "
                                            "less than or equal to the current date"),
])
def test_each_setup_error_carries_its_id_and_a_fix(raw, error_id):
    found = problems(**raw)
    assert len(found) == 1, found
    assert error_id in found[0]
    assert "; set" in found[0] or "; copy" in found[0]   # every message ends with the fix


@pytest.mark.parametrize("value", ["https://api.ctci.ai", "http://10.0.0.5:8080", "https://test-api.ctci.ai/",
                                   "http://localhost:18000"])
def test_valid_base_urls(value):
    assert cfg.validate(connector.PARAMS, {**BASE, "api_base_url": value}).api_base_url == value.rstrip("/")


@pytest.mark.parametrize("value", [iso(3), iso(3)[:10], iso(3).replace("T", " ").replace("Z", "+00:00"),
                                   datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)])
def test_poll_datetime_forms(value):
    # unquoted in YAML the value arrives as a datetime; validation sees its text form
    config = cfg.validate(connector.PARAMS, {**BASE, "historical_poll_datetime": value})
    assert config.historical_poll_datetime.endswith("Z")


def test_every_problem_is_reported_at_once():
    found = problems(api_base_url="x", verify_host_ssl_cert="maybe", event_fetch_limit_in_items=0)
    assert [p.split(":")[0] for p in found] == ["CTCI API Base URL (api_base_url)", "SetupError 10", "SetupError 11"]


def test_obfuscation_settings():
    assert problems(obfuscate_fields=["cve"])[0].endswith("name CEWL fields among year, base_score, base_severity, "
                                                          "cve_date, vendor, product, vulnerability_type, "
                                                          "description, reference, date_added, date_discovered, "
                                                          "honeypot, intel, research, base_metric_v2, "
                                                          "base_metric_v3, id_ref, updated, cwe, external_note, "
                                                          "enabled, processed, notified, notified_date, other_fields.")
    assert "cannot be hashed" in problems(obfuscate_fields="cve")[0]
    assert "'descripton'" in problems(obfuscate_fields="descripton")[0]
    assert "has fewer than 16 characters" in problems(obfuscation_key="x1y2z3")[0]
    config = cfg.validate(connector.PARAMS, {**BASE, "obfuscate_fields": "external_note, vendor, vendor"})
    assert config.obfuscate_fields == ["external_note", "vendor"]


def write(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    return str(tmp_path)


COLLECTOR = """
globals: {debug: false, id: not_used, name: ctci, persistence: {type: filesystem, config: {directory_name: state}}}
outputs:
  devo_1:
    type: devo_platform
    config: {address: collector-eu.devo.io, port: 443, type: SSL, chain: chain.crt, cert: my.crt, key: my.key}
inputs:
  ctci:
    id: 12345
    enabled: true
%s
    services:
      cewl:
        historical_poll_datetime: "%s"
        reset_persistence_auth: "one"
"""


def test_collector_config_yaml_form(tmp_path):
    raw = connector.load_config(write(tmp_path, COLLECTOR % ("    credentials:\n      api_token: abc-123", iso(3))),
                                None)
    assert raw["api_token"] == "abc-123" and "credentials" not in raw
    assert raw["reset_persistence_auth"] == "one" and raw["historical_poll_datetime"] == iso(3)
    assert raw["devo_host"] == "collector-eu.devo.io" and raw["devo_transport"] == "tls"
    assert raw["devo_cert"].endswith("my.crt")


def test_collector_form_without_credentials_is_setup_error_4(tmp_path, monkeypatch):
    monkeypatch.delenv("TQ_CONN_API_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        connector.load_config(write(tmp_path, COLLECTOR % ("", iso(3))), None)
    assert str(caught.value).startswith("SetupError 4: Required setting, credentials not found in user configuration")
    assert "add a credentials section" in str(caught.value)


def test_collector_form_with_credentials_not_a_mapping_is_setup_error_5(tmp_path):
    with pytest.raises(ConfigError) as caught:
        connector.load_config(write(tmp_path, COLLECTOR % ("    credentials: abc-123", iso(3))), None)
    assert str(caught.value).startswith("SetupError 5: Required setting, credentials not of expected type: dict")


def test_no_collector_file_means_our_own_config(tmp_path):
    assert connector.load_config(str(tmp_path), None) is None
