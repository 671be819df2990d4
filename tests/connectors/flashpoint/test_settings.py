"""Validation of the Flashpoint settings: token (SetupError 1 and 2), lookups, lookup names, times, collector form."""

import base64
import datetime
import os

import pytest

from tq_conn_common import ConfigError
from tq_conn_common import config as cfg
from tq_conn_flashpoint import connector
from tq_conn_flashpoint.settings import (lookup_names, parse_lookups, type_label, unknown_type_hint, TypeLookup,
                                         decode_token)

TOKEN = base64.b64encode(b"fp-api-token-123456").decode()
BASE = {"bearer_token_base64": TOKEN, "lookups": [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}}]}


def validate(**raw):
    return cfg.validate(connector.PARAMS, {**BASE, **raw})


def problems(**raw):
    with pytest.raises(ConfigError) as caught:
        validate(**raw)
    return caught.value.problems


def test_defaults_are_those_of_the_collector():
    config = validate()
    assert config.api == "v4"                 # FP Tools API v4 and Alerting API v1, as seed 002
    assert config.indicators_url is None and config.alerts_url is None     # the URLs of the API chosen
    assert config.tag == "threatintel.flashpoint.intelligence.alerts"
    assert config.lookup_name == "Threatintel_Flashpoint_Intelligence_{Type}"
    assert config.alerts_enabled is True and config.indicators_paging == "scroll"
    assert config.lookups == [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}}]


def test_a_blank_token_is_setup_error_1():
    assert problems(bearer_token_base64="   ") == [connector.TOKEN_MISSING]
    assert connector.TOKEN_MISSING == "SetupError 1: Please provide the bearer_token_base64 in the inputs."


@pytest.mark.parametrize("value", ["not base64 at all!", base64.b64encode(b"\x00\xff\x10binary").decode(),
                                   base64.b64encode(b"short").decode(), base64.b64encode(b"two words here").decode(),
                                   ["a", "list"]])
def test_a_token_that_is_not_base64_of_a_token_is_setup_error_2(value):
    found = problems(bearer_token_base64=value)
    assert len(found) == 1 and found[0].startswith("SetupError 2: Please ensure the bearer token is prepared")
    if isinstance(value, str):
        assert value not in found[0]      # a secret is never repeated in a message


def test_the_token_is_decoded_with_or_without_padding_and_line_breaks():
    assert decode_token(TOKEN) == "fp-api-token-123456"
    assert decode_token(TOKEN.rstrip("=")) == "fp-api-token-123456"
    assert decode_token(TOKEN[:8] + "\n" + TOKEN[8:]) == "fp-api-token-123456"


def test_lookups_in_the_collector_form_and_the_prompt_form_are_the_same():
    yaml_form = validate(lookups=[{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}},
                                  {"ip-dst|port": {"lookup_key": "fpid", "lookup_status": "created",
                                                   "lookup_name": "FP_Ports"}}]).lookups
    prompt_form = validate(lookups="domain:value.domain, ip-dst|port:fpid:Created:FP_Ports").lookups
    assert yaml_form == prompt_form
    assert parse_lookups(yaml_form) == (TypeLookup("domain", "value.domain", "New"),
                                        TypeLookup("ip-dst|port", "fpid", "Created", "FP_Ports"))


@pytest.mark.parametrize("lookups,expected", [
    ([], "give at least one indicator type"),
    (":fpid", "':fpid' has no type"),
    ("domain:fpid:New:Name:more", "has too many parts"),
    ([{"domain": {"lookup_key": "fpid"}}], "the type 'domain' has no lookup_status"),
    ([{"domain": {"lookup_key": "fpid", "lookup_status": "Old"}}], "'Old' of 'domain' is not allowed; set New"),
    ([{"domain": {"lookup_key": "fpid", "lookup_status": "New", "lookup_name": "my-lookup"}}], "not valid for Devo"),
    ([{"domain": {"lookup_key": "fpid", "lookup_status": "New", "key": 1}}], "unknown settings key"),
    ([{"domain": "fpid"}], "needs a mapping"),
    ("domain:fpid, domain:value.domain", "the type 'domain' is listed twice"),
    ([42], "is neither"),
])
def test_bad_lookups_name_the_entry_and_the_fix(lookups, expected):
    found = problems(lookups=lookups)
    assert len(found) == 1 and found[0].startswith("Indicator Lookups (lookups):") and expected in found[0], found


def test_a_lookup_key_left_out_is_the_default_of_the_api():
    config = validate(lookups="domain, sha1::Created")
    assert config.lookups == [{"domain": {"lookup_status": "New"}}, {"sha1": {"lookup_status": "Created"}}]
    assert parse_lookups(config.lookups) == (TypeLookup("domain", None, "New"), TypeLookup("sha1", None, "Created"))
    assert validate(lookups=[{"ipv4": {"lookup_status": "New"}}], api="ioc-v2").lookups == [
        {"ipv4": {"lookup_status": "New"}}]


@pytest.mark.parametrize("type_,label", [("domain", "Domain"), ("ip-dst|port", "Ip_dst_port"), ("AS", "AS"),
                                         ("x509-fingerprint-sha1", "X509_fingerprint_sha1"),
                                         ("regkey|value", "Regkey_value"), ("email-src-display-name",
                                                                            "Email_src_display_name")])
def test_type_names_map_to_what_a_devo_lookup_name_can_carry(type_, label):
    assert type_label(type_) == label


def test_lookup_names_follow_the_collector_rule():
    entries = parse_lookups(["domain:fpid", "ip-dst|port:fpid", "sha1:fpid:New:My_Hashes"])
    assert lookup_names(entries, None) == {"domain": "Threatintel_Flashpoint_Intelligence_Domain",
                                           "ip-dst|port": "Threatintel_Flashpoint_Intelligence_Ip_dst_port",
                                           "sha1": "My_Hashes"}
    assert lookup_names(entries, "FP_{Type}")["domain"] == "FP_Domain"
    assert lookup_names(parse_lookups(["domain:fpid"]), "Just_One") == {"domain": "Just_One"}


def test_two_types_in_one_lookup_are_refused():
    with pytest.raises(ConfigError, match="'domain' and 'sha1' would both be delivered to the lookup Shared"):
        lookup_names(parse_lookups(["domain:fpid", "sha1:fpid"]), "Shared")
    with pytest.raises(ConfigError, match="which Devo cannot carry"):
        lookup_names(parse_lookups(["domain:fpid"]), "Bad-{Type}")


def test_unknown_types_get_a_hint():
    assert unknown_type_hint("domain") is None and unknown_type_hint("ip-dst|port") is None
    assert "did you mean 'domain'" in unknown_type_hint("domian")
    assert "did you mean 'AS'" in unknown_type_hint("as")
    assert unknown_type_hint("ipv4", "ioc-v2") is None and unknown_type_hint("file", "ioc-v2") is None
    assert "IOC v2 types: domain, email, extracted_config, file, ipv4, ipv6, url" in unknown_type_hint("ip-dst",
                                                                                                      "ioc-v2")
    assert "did you mean 'url'" in unknown_type_hint("urls", "ioc-v2")
    assert "MISP attribute types" in unknown_type_hint("ipv4")          # v4 and Ignite v1 speak MISP types


def test_initial_start_time_accepts_the_collector_format_and_yaml_datetimes():
    assert validate(initial_start_time="2023-02-07T00:00:00Z").initial_start_time == "2023-02-07T00:00:00Z"
    when = datetime.datetime(2023, 2, 7, tzinfo=datetime.timezone.utc)     # what YAML makes of it unquoted
    assert validate(initial_start_time=when).initial_start_time == "2023-02-07T00:00:00Z"
    assert "is not a UTC time" in problems(initial_start_time="07/02/2023")[0]
    assert "is in the future" in problems(initial_start_time="2999-01-01T00:00:00Z")[0]


@pytest.mark.parametrize("raw,expected", [
    ({"indicators_url": "fp.tools/api/v4"}, "is not an http(s) URL"),
    ({"tag": "alerts"}, "is not a Devo table tag"),
    ({"page_size": 5000}, "above the maximum 1000"),
    ({"alerts_page_size": 0}, "below the minimum 1"),
    ({"indicators_paging": "cursor"}, "set one of scroll, skip"),
    ({"api": "v5"}, "'v5' is not allowed; set one of v4, ignite, ioc-v2"),
])
def test_other_settings_name_the_parameter(raw, expected):
    found = problems(**raw)
    assert len(found) == 1 and expected in found[0]


COLLECTOR = """
globals:
  debug: false
  id: 1234
  name: example_collector
  persistence: {type: filesystem, config: {directory_name: state}}
outputs:
  devo_1:
    type: devo_platform
    config: {address: collector-eu.devo.io, port: 443, type: SSL, chain: chain.crt, cert: x.crt, key: x.key}
inputs:
  flashpoint:
    id: 1234
    enabled: true
    credentials:
      bearer_token_base64: %s
    initial_start_time: 2023-02-07T00:00:00Z
    services:
      indicators:
        lookup_name: FP_{Type}
        lookups:
          - domain: {lookup_key: value.domain, lookup_status: New}
          - ip-dst|port: {lookup_key: fpid, lookup_status: Created, lookup_name: FP_Ports}
      alerts:
        tag: my.app.flashpoint.alerts
"""


def test_the_collector_config_yaml_form_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("TQ_CONN_BEARER_TOKEN_BASE64", raising=False)
    (tmp_path / "config.yaml").write_text(COLLECTOR % TOKEN)
    raw = connector.load_config(str(tmp_path), None)
    config = cfg.validate(connector.PARAMS, raw)
    assert config.bearer_token_base64.reveal() == TOKEN
    assert config.lookup_name == "FP_{Type}" and config.tag == "my.app.flashpoint.alerts"
    assert config.alerts_enabled is True and config.initial_start_time == "2023-02-07T00:00:00Z"
    assert parse_lookups(config.lookups)[1] == TypeLookup("ip-dst|port", "fpid", "Created", "FP_Ports")
    assert config.devo_host == "collector-eu.devo.io" and config.devo_transport == "tls"
    assert config.devo_cert.endswith(os.path.join("certs", "x.crt"))


def test_the_collector_form_without_an_alerts_service_pulls_no_alerts(tmp_path):
    (tmp_path / "config.yaml").write_text((COLLECTOR % TOKEN).split("      alerts:")[0])
    assert connector.load_config(str(tmp_path), None)["alerts_enabled"] is False


def test_the_collector_form_without_the_token_is_setup_error_1(tmp_path, monkeypatch):
    monkeypatch.delenv("TQ_CONN_BEARER_TOKEN_BASE64", raising=False)
    (tmp_path / "config.yaml").write_text(COLLECTOR.replace("bearer_token_base64: %s", "other: 1"))
    with pytest.raises(ConfigError) as caught:
        connector.load_config(str(tmp_path), None)
    assert caught.value.message == "SetupError 1: Please provide the bearer_token_base64 in the inputs."
