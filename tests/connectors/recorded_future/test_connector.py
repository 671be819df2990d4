"""The Recorded Future declaration: parameters as seed 000 names them, their checks, lookups and refresh times."""

import datetime

import pytest

from tq_conn_common import ConfigError
from tq_conn_common import config as cfg
from tq_conn_recorded_future import connector
from tq_conn_recorded_future.connector import CONNECTOR, FUSION

PARAMS = {p.key: p for p in CONNECTOR.params}
T0 = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)


def check(key, value):
    return cfg.check_value(PARAMS[key], value)


def test_seed_parameters_and_defaults():
    assert PARAMS["api_token"].secret and PARAMS["api_token"].required
    assert PARAMS["base_url"].default == "https://api.recordedfuture.com/v2/{0}/risklist?format=csv/splunk"
    assert PARAMS["types"].default == ["ip", "hash", "domain", "url", "vulnerability", "PublicUkraineRussiaIps"]
    assert PARAMS["requests_per_second"].default is None


def test_lookup_names_are_the_seed_data_source_table():
    defaults = {p.key: p.default for p in CONNECTOR.params if p.key.endswith("_lookup")}
    assert defaults == {
        "ipv4_lookup": "Recorded_Future_IPv4_Address_Threat_List",
        "ipv6_lookup": "Recorded_Future_IPv6_Address_Threat_List",
        "domain_lookup": "Recorded_Future_Domain_Threat_List",
        "hash_lookup": "Recorded_Future_File_Hash_Threat_List",
        "url_lookup": "Recorded_Future_URL_Threat_List",
        "vulnerability_lookup": "Recorded_Future_Vulnerability_Threat_List",
        "ukraine_russia_ipv4_lookup": "Recorded_Future_IPv4_Public_Ukranie_Russia_List",
        "ukraine_russia_ipv6_lookup": "Recorded_Future_IPv6_Public_Ukranie_Russia_List",
    }


def test_a_lookup_name_may_carry_the_query_prefix():
    assert check("ipv4_lookup", "my.lookuplist.My_IPs") == ("My_IPs", None)
    value, problem = check("ipv4_lookup", "my ips")
    assert value is None and "IPv4 Lookup Name (ipv4_lookup): 'my ips' is not a valid Devo lookup name" in problem


def test_types_accept_the_seed_spellings():
    assert check("types", ["IP", "vulnerabilitiy", "publicukrainerussiaips", "ip"]) == (
        ["ip", "vulnerability", FUSION], None)
    assert check("types", "hash, PublicUkraineRussiaIps") == (["hash", FUSION], None)


@pytest.mark.parametrize("value,text", [
    (["ip", "email"], "'email' is not a data source; use any of ip, hash, domain, url, vulnerability, "
                      "PublicUkraineRussiaIps."),
    ([], "at least one data source is needed"),
])
def test_types_refuse_unknown_and_empty(value, text):
    _, problem = check("types", value)
    assert problem.startswith("Data Sources (types): ") and text in problem


@pytest.mark.parametrize("value,ok", [
    ("https://api.recordedfuture.com/v2/{0}/risklist?format=csv/splunk", True),
    ("http://127.0.0.1:8000/v2/{0}/risklist", True),
    ("https://api.recordedfuture.com/v2/ip/risklist", False),     # no placeholder
    ("api.recordedfuture.com/v2/{0}/risklist", False),            # no scheme
    ("https://api.recordedfuture.com/v2/{0}/{1}", False),         # another placeholder
    ("ftp://api.recordedfuture.com/v2/{0}/risklist", False),
])
def test_base_url_is_validated(value, ok):
    _, problem = check("base_url", value)
    assert (problem is None) == ok, problem
    if not ok:
        assert problem.startswith("Risk List URL (base_url): ")


def test_min_risk_and_risk_list_per_type():
    assert check("min_risk", {"ip": 90, "Domain": "80"}) == ({"ip": 90, "domain": 80}, None)
    assert "ip: 120 is not a risk score" in check("min_risk", {"ip": 120})[1]
    assert "'email' is not a data source" in check("min_risk", {"email": 1})[1]
    assert check("risk_list", {"domain": "cncSite"}) == ({"domain": "cncSite"}, None)
    assert "risk_list does not apply to PublicUkraineRussiaIps" in check("risk_list", {FUSION: "x"})[1]
    assert "is not a risk list name" in check("risk_list", {"ip": "two words"})[1]


def test_requests_per_second_minimum_is_1():
    assert "is below the minimum 1" in check("requests_per_second", 0)[1]
    assert check("requests_per_second", 5) == (5, None)


def test_lookups_are_keyed_by_name_with_typed_risk():
    for kind, specs in connector.SPECS.items():
        assert len(specs) == (2 if kind in ("ip", FUSION) else 1)
        for spec in specs:
            columns = {c.name: c.type for c in spec.columns}
            assert spec.key == "Name" and columns["Risk"] == "int"
            assert {"Rules", "CriticalRule", "CriticalityLabel", "RiskString"} <= set(columns)
            assert ("Algorithm" in columns) == (kind == "hash")


@pytest.mark.parametrize("kind,hours", [("ip", 1), ("hash", 24), ("domain", 2), ("url", 24), ("vulnerability", 24),
                                        (FUSION, 1)])
def test_refresh_times_of_seed_000(kind, hours):
    assert connector.REFRESH[kind] == hours * 3600
