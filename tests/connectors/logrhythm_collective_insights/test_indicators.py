"""IOC extraction from LogRhythm alarm events: fields of both spellings, internal values dropped, per-alarm dedupe."""

import pytest

from tq_conn_common.iocs import internet_domain as domain_name
from tq_conn_logrhythm_collective_insights.indicators import alarm_iocs, iocs


def event(**fields):
    """An Alarm API event with the empty values LogRhythm sends ("" and null)."""
    base = {"impactedHostName": "", "impactedName": "", "impactedIP": None, "impactedNATIP": "",
            "originHostName": "", "originName": "", "originIP": None, "originNATIP": "",
            "domain": "", "url": "", "cve": "", "priority": 91, "logMessage": ""}
    base.update(fields)
    return base


def test_the_reference_example_extracts_exactly_the_public_iocs():
    # reference logrhythm.md 5.2 and its expected extraction
    found = list(iocs(event(impactedHostName="ws-0231.corp.local", impactedName="ws-0231.corp.local",
                            impactedIP="10.20.30.40", originIP="203.0.113.7", domain="bad.example.com",
                            url="http://bad.example.com/gate.php", cve="CVE-2021-44228")))
    assert found == [("ip", "203.0.113.7", "originIP"), ("domain", "bad.example.com", "domain"),
                     ("url", "http://bad.example.com/gate.php", "url"),
                     ("vulnerability", "CVE-2021-44228", "cve")]


@pytest.mark.parametrize("address", ["10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.15",
                                     "127.0.0.1", "169.254.10.1", "0.0.0.0", "::1", "fe80::1", "::",
                                     "fd12:3456:789a::1", "::ffff:192.168.1.1"])
def test_internal_addresses_are_dropped(address):
    assert list(iocs(event(originIP=address, impactedIP=address, originHostName=address))) == []


@pytest.mark.parametrize("address", ["172.32.0.1", "172.15.255.255", "11.0.0.1", "192.169.0.1", "203.0.113.7",
                                     "198.51.100.23", "2001:db8::1", "8.8.8.8"])
def test_public_addresses_are_kept(address):
    assert list(iocs(event(originIP=address))) == [("ip", address, "originIP")]


def test_the_search_api_spelling_is_read_too():
    found = list(iocs({"impactedIp": "198.51.100.1", "originIp": "198.51.100.2", "impactedHost": "a.example.com",
                       "originHost": "192.0.2.9"}))
    assert ("ip", "198.51.100.1", "impactedIp") in found and ("ip", "198.51.100.2", "originIp") in found
    assert ("domain", "a.example.com", "impactedHost") in found and ("ip", "192.0.2.9", "originHost") in found


@pytest.mark.parametrize("name,expected", [
    ("Bad.Example.COM.", "bad.example.com"), ("logr-siem-01", None), ("ws-0231.corp.local", None),
    ("dc01.ad.internal", None), ("printer.lan", None), ("localhost", None), ("1.2.3", None),
    ("-bad-.example.com", None), ("xn--bcher-kva.example", "xn--bcher-kva.example"), ("", None)])
def test_domain_names(name, expected):
    assert domain_name(name) == expected


@pytest.mark.parametrize("url,kept", [
    ("https://portal.example.org/oauth?x=1", True), ("http://203.0.113.9:8080/a", True),
    ("http://10.0.0.8/admin", False), ("http://[fe80::1]/x", False), ("https://intranet.corp/home", False),
    ("javascript:alert(1)", False), ("/relative/path", False), ("not a url", False)])
def test_urls(url, kept):
    assert bool(list(iocs(event(url=url)))) is kept


def test_several_cves_in_one_field_and_case_is_normalised():
    found = list(iocs(event(cve="cve-2023-4966, CVE-2021-44228")))
    assert found == [("vulnerability", "CVE-2023-4966", "cve"), ("vulnerability", "CVE-2021-44228", "cve")]


def test_iocs_are_deduplicated_per_alarm_first_field_kept():
    events = [event(domain="evil.example.net", originIP="198.51.100.23"),
              event(domain="EVIL.example.net", originHostName="evil.example.net", impactedIP="198.51.100.23"),
              "not an event"]
    found, duplicates = alarm_iocs(events)
    assert found == [("ip", "198.51.100.23", "originIP"), ("domain", "evil.example.net", "domain")]
    assert duplicates == 3


def test_an_event_without_iocs_yields_nothing():
    assert alarm_iocs([event(impactedHostName="logr-siem-01")]) == ([], 0)
