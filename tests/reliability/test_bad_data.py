"""The bad-input corpus, vendor data: each bad record is delivered intact or counted as skipped; never a traceback."""

import json
import re

import pytest

from reliability_kit import TALLY

pytestmark = pytest.mark.e2e

CONTROL = "ctl\x01\x07\x1b[31m\tred\r\nnext"
INJECTIONS = ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,2)", "\t=1", "\r=1")
HUGE = "h" * 100_000   # the Devo stand-in reads CSV fields up to 128 KiB (Python csv's limit)


def _skipped(result):
    found = re.search(r"skipped as invalid (\d+)", result.out + result.logs)
    assert found, f"no run statistics: {result!r}"
    return int(found.group(1))


def _nested(depth, leaf="deep"):
    text = leaf if isinstance(leaf, str) else json.dumps(leaf)
    return json.loads('{"a":' * depth + json.dumps(text) + "}" * depth)


# ---- CTCI -----------------------------------------------------------------------------------------------------------

def _ctci_rows(h, *rows):
    service = h.sandbox["ctci"]
    base = max(r["id_ref"] for r in service.rows)
    with service.lock:
        for n, row in enumerate(rows, 1):
            service.rows.append({"id_ref": base + n, **row})


def _ctci_lookup(h):
    view = h.sandbox["devo"].lookup("CTCI_CEWL")
    return {row["cve"]: row for row in view["rows"]}


def ctci_empty_values(h):
    _ctci_rows(h, {"cve": "CVE-2024-1001", "vendor": "", "product": None, "description": "", "year": None,
                   "base_score": "", "date_added": ""})
    return 0, lambda: _ctci_lookup(h)["CVE-2024-1001"]["vendor"] in ("", None)


def ctci_invalid_ids(h):
    _ctci_rows(h, {"cve": "CVE-XX-1"}, {"cve": ""}, {"cve": None}, {"cve": 20201234}, {"vendor": "no id"},
               {"cve": "CVE-2020-1\x00"})
    return 6, None


def ctci_huge_value(h):
    _ctci_rows(h, {"cve": "CVE-2024-1002", "description": HUGE})
    return 0, lambda: _ctci_lookup(h)["CVE-2024-1002"]["description"] == HUGE


def ctci_control_characters(h):
    _ctci_rows(h, {"cve": "CVE-2024-1003", "vendor": CONTROL})
    return 0, lambda: _ctci_lookup(h)["CVE-2024-1003"]["vendor"] == CONTROL.strip()


def ctci_csv_injection(h):
    _ctci_rows(h, *({"cve": f"CVE-2024-20{n:02d}", "vendor": text, "product": text + ",x\"y"}
                    for n, text in enumerate(INJECTIONS)))
    return 0, lambda: all(_ctci_lookup(h)[f"CVE-2024-20{n:02d}"]["vendor"] == text   # as sent, spaces kept
                          for n, text in enumerate(INJECTIONS))


def ctci_unexpected_types(h):
    _ctci_rows(h, {"cve": "CVE-2024-1004", "year": "abc", "base_score": [1, 2], "enabled": "maybe",
                   "date_added": {"when": "now"}, "vendor": 12345, "description": ["a", {"b": 1}]})
    return 0, lambda: _ctci_lookup(h)["CVE-2024-1004"]["year"] is None


def ctci_rows_that_are_not_objects(h):
    h.fault("ctci", path=r"^/api/v1/cewl$", count=1, status=200,
            body={"data": ["CVE-2024-1005", 7, None, ["CVE-2024-1006"], {"cve": "CVE-2024-1012", "id_ref": 5}]})
    return 4, lambda: set(_ctci_lookup(h)) == {"CVE-2024-1012"}


def ctci_duplicate_keys(h):
    # Raw JSON text: an object with the key "cve" twice, then the same CVE in two rows.
    body = ('{"data": [{"cve": "CVE-2024-1007", "cve": "CVE-2024-1008", "id_ref": 1},'
            ' {"cve": "CVE-2024-1009", "id_ref": 2}, {"cve": "CVE-2024-1009", "id_ref": 3}]}')
    h.fault("ctci", path=r"^/api/v1/cewl$", count=1, status=200, body=body)
    return 0, lambda: set(_ctci_lookup(h)) == {"CVE-2024-1008", "CVE-2024-1009"}


def ctci_deeply_nested(h):
    _ctci_rows(h, {"cve": "CVE-2024-1010", "description": _nested(200)})
    return 0, lambda: _ctci_lookup(h)["CVE-2024-1010"]["description"].count('{"a":') == 200


def ctci_too_deeply_nested_document(h):
    body = '{"data": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    h.fault("ctci", path=r"^/api/v1/cewl$", count=0, status=200, body=body)
    return (1, r"nested too deeply"), None


def ctci_million_columns(h):
    # Kept whole, the unknown fields (other_fields) make one 14 MB cell that Devo refuses with the whole lookup:
    # the row must be a counted skip and the rest of the CEWL delivered.
    _ctci_rows(h, {"cve": "CVE-2024-1011", **{f"c{i}": i for i in range(1_000_000)}})
    return 1, lambda: len(_ctci_lookup(h)) == 30


# ---- Recorded Future ------------------------------------------------------------------------------------------------

RF_HEADER = '"Name","Risk","RiskString","EvidenceDetails"\n'
RF_GOOD = '"1.2.3.4","90","3/64","{""EvidenceDetails"": [{""Rule"": ""C2"", ""Criticality"": 3}]}"\n'


def _rf_list(h, body, kind="ip"):
    h.write_config(types=[kind])
    h.fault("recorded_future", path=rf"^/v2/{kind}/risklist", count=0, status=200, body=body)


def _rf_rows(h, name):
    view = h.sandbox["devo"].lookup(name)
    return {row["Name"]: row for row in view["rows"]} if view else {}


def _rf_ipv4(h):
    return _rf_rows(h, "Recorded_Future_IPv4_Address_Threat_List")


def rf_empty_and_invalid_names(h):
    _rf_list(h, RF_HEADER + RF_GOOD + '"","90","",""\n"999.1.1.1","90","",""\n"1.2.3.5\x07","90","",""\n'
             '"not an ip","90","",""\n"1.2.3.6","abc","",""\n"1.2.3.7","150","",""\n"1.2.3.8","","",""\n')
    return 7, lambda: set(_rf_ipv4(h)) == {"1.2.3.4"}


def rf_invalid_hashes(h):
    _rf_list(h, '"Name","Algorithm","Risk","RiskString","EvidenceDetails"\n'
             '"d41d8cd98f00b204e9800998ecf8427e","MD5","80","1/10",""\n"zz-not-hex","MD5","80","",""\n'
             '"d41d8cd98f00b204e9800998ecf8427","MD5","80","",""\n'
             '"da39a3ee5e6b4b0d3255bfef95601890afd80709","MD5","80","",""\n', "hash")
    return 3, lambda: set(_rf_rows(h, "Recorded_Future_File_Hash_Threat_List")) == {"d41d8cd98f00b204e9800998ecf8427e"}


def rf_csv_injection_and_control_characters(h):
    lines = "".join(f'"10.0.0.{n}","80","{text.replace(chr(34), chr(34) * 2)}",""\n'
                    for n, text in enumerate(INJECTIONS + (CONTROL,), 1))
    _rf_list(h, RF_HEADER + lines)
    return 0, lambda: [_rf_ipv4(h)[f"10.0.0.{n}"]["RiskString"] for n in range(1, len(INJECTIONS) + 2)] == \
        list(INJECTIONS) + [CONTROL]


def rf_huge_and_malformed_evidence(h):
    evidence = json.dumps({"EvidenceDetails": [{"Rule": "r" * 100_000, "Criticality": 1}]}).replace('"', '""')
    _rf_list(h, RF_HEADER + f'"1.2.3.4","90","1/64","{evidence}"\n"1.2.3.9","90","1/64","{{not json"\n')
    return 0, lambda: len(_rf_ipv4(h)["1.2.3.4"]["Rules"]) == 100_000 and "1.2.3.9" in _rf_ipv4(h)


def rf_duplicate_rows(h):
    _rf_list(h, RF_HEADER + RF_GOOD + RF_GOOD + '"1.2.3.4","10","","",""\n')
    # Recorded Future lists an entity once; repeats are not de-duplicated (flat memory): the lookup, keyed by Name,
    # holds the entity once.
    return 0, lambda: list(_rf_ipv4(h)) == ["1.2.3.4"]


def rf_truncated_last_row(h):
    # Name and Risk of the cut row are whole: it is kept, without the rules of its cut EvidenceDetails (counted).
    _rf_list(h, RF_HEADER + RF_GOOD + '"1.2.3.10","90","3/64","{""EvidenceDetails"": [{""Ru')
    return 0, lambda: _rf_ipv4(h)["1.2.3.10"]["Rules"] == "" and _rf_ipv4(h)["1.2.3.4"]["Rules"] == "C2"


def rf_million_column_row(h):
    _rf_list(h, RF_HEADER + RF_GOOD + '"1.2.3.11","90","1/64",""' + ',"x"' * 1_000_000 + "\n")
    return 0, lambda: {"1.2.3.4", "1.2.3.11"} <= set(_rf_ipv4(h))


def rf_not_utf8_and_nul(h):
    h.write_config(types=["ip"])
    h.fault("recorded_future", path=r"^/v2/ip/risklist", count=0, status=200,
            body=RF_HEADER.encode() + b'"1.2.3.12","90","caf\xe9\xff",""\n"1.2.3.13\x00","90","",""\n')
    return 1, lambda: "1.2.3.12" in _rf_ipv4(h)


# ---- LogRhythm Collective Insights ----------------------------------------------------------------------------------

def _lr_alarm(h, *events, aie=True):
    from tq_conn_sandbox.services.logrhythm import event
    return h.sandbox["logrhythm"].add_alarm("AIE: Reliability", events=[event(**e) for e in events], hours_ago=1,
                                            aie=aie)


def _lr_iocs(h, alarm_id):
    return {(d["ioc"]["type"], d["ioc"]["value"]) for d in h.sandbox["collective_insights"].detections
            if d["incident"]["id"] == str(alarm_id)}


def lr_invalid_iocs(h):
    alarm = _lr_alarm(h, {"impactedIP": "999.1.1.1", "originIP": "203.0.113.250", "domain": "exa\x00mple.com",
                          "url": "javascript:alert(1)", "cve": "CVE-XXXX-1"},
                      {"originIP": 12345, "domain": ["a.example.com"], "cve": {"id": "CVE-2020-0001"},
                       "url": None, "impactedHostName": 3.5})
    return 0, lambda: _lr_iocs(h, alarm) == {("ip", "203.0.113.250")}


def lr_huge_and_control_values(h):
    alarm = _lr_alarm(h, {"url": "http://big.example.com/" + HUGE, "domain": CONTROL, "originIP": "198.51.100.77",
                          "impactedHostName": "=cmd|' /C calc'!A0.example.com"})
    return 0, lambda: ("ip", "198.51.100.77") in _lr_iocs(h, alarm)


def lr_bad_alarms_in_the_search(h):
    good = _lr_alarm(h, {"originIP": "198.51.100.78"})
    items = [{"alarmId": "abc", "alarmRuleName": "x", "dateInserted": "2024-01-01T00:00:00"},
             {"alarmId": good + 1000, "alarmRuleName": "x", "dateInserted": "not a date"},
             {"alarmId": None}, "not an object", {"alarmId": [1]},
             {"alarmId": good, "alarmRuleName": "AIE: Reliability",
              "dateInserted": h.sandbox["logrhythm"].alarms[good]["inserted"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}]
    h.fault("logrhythm", path=r"^/lr-alarm-api/alarms/?$", count=1, status=200,
            body={"alarmsSearchDetails": items, "statusCode": 200})
    return 5, lambda: ("ip", "198.51.100.78") in _lr_iocs(h, good)


def lr_events_of_unexpected_shape(h):
    alarm = _lr_alarm(h, {"originIP": "198.51.100.79"}, aie=False)      # not an AIE alarm: its events from /events
    h.fault("logrhythm", path=rf"^/lr-alarm-api/alarms/{alarm}/events", count=1, status=200,
            body={"alarmEventsDetails": ["text", 5, None, {"originIP": "198.51.100.80", "nested": _nested(300)}]})
    aie = _lr_alarm(h, {"originIP": "198.51.100.81"})                   # an AIE alarm: its drill-down, odd blocks
    h.fault("logrhythm", path=rf"^/lr-drilldown-cache-api/drilldown/{aie}/?$", count=1, status=200,
            body={"Data": {"DrillDownResults": {"RuleBlocks": [
                None, "text", {"DrillDownLogs": None}, {"DrillDownLogs": '[5, {"originIp": "198.51.100.82"}]'},
                {"DrillDownLogs": [{"originIp": "198.51.100.83", "nested": _nested(300)}]}]}}})
    return 0, lambda: (_lr_iocs(h, alarm) == {("ip", "198.51.100.80")} and
                       _lr_iocs(h, aie) == {("ip", "198.51.100.82"), ("ip", "198.51.100.83")})


# ---- Flashpoint -----------------------------------------------------------------------------------------------------

def _fp_domains(h, docs):
    """The domain type's first page is docs (the token check before it passes through)."""
    h.fault("flashpoint", path=r"^/api/v4/indicators/attribute$", count=1, delay=0.001)
    h.fault("flashpoint", path=r"^/api/v4/indicators/attribute$", count=1, status=200,
            body={"results": docs, "scroll_id": None})


def _fp_lookup(h):
    view = h.sandbox["devo"].lookup("Threatintel_Flashpoint_Intelligence_Domain")
    return {row["value.domain"]: row for row in view["rows"]} if view else {}


def _fp_doc(n, domain, **more):
    return {"fpid": f"rel-{n}", "type": "domain", "value": {"domain": domain}, "header_": {"indexed_at": 1}, **more}


def fp_not_objects_and_keyless(h):
    _fp_domains(h, ["a string", 5, None, [1], _fp_doc(1, None), _fp_doc(2, ""), {"fpid": "x"},
                    _fp_doc(3, "ok.example.com")])
    return 7, lambda: set(_fp_lookup(h)) == {"ok.example.com"}


def fp_odd_values(h):
    values = (CONTROL, HUGE, *INJECTIONS)
    _fp_domains(h, [_fp_doc(n, v, comment=n if n % 2 else str(n)) for n, v in enumerate(values)])
    return 0, lambda: set(_fp_lookup(h)) == set(values)


def fp_deeply_nested(h):
    _fp_domains(h, [_fp_doc(1, "deep.example.com", Event=_nested(400))])
    return 0, lambda: "deep.example.com" in _fp_lookup(h)


def fp_million_columns(h):
    # Flattened as it is, one such document gives the lookup of its type a million columns, every row of it too.
    _fp_domains(h, [_fp_doc(1, "wide.example.com", **{f"k{i}": i for i in range(1_000_000)}),
                    _fp_doc(2, "narrow.example.com")])
    return 1, lambda: set(_fp_lookup(h)) == {"narrow.example.com"}


# ---- Devo IOC Exporter ----------------------------------------------------------------------------------------------

def _tq_page(h, items):
    """Make the collection one page of these items: every page asked for is that page (whichever worker asks
    first), and its total says there is no other."""
    h.fault("threatq", path=r"^/api/indicators/query$", count=0, status=200,
            body={"total": len(items), "data": items})


def _tq_lookup(h):
    view = h.sandbox["devo"].lookup("ThreatQ_IOCs")
    return {row["value"]: row for row in view["rows"]} if view else {}


def _indicator(n, value, **more):
    return {"id": n, "value": value, "type": {"name": "FQDN"}, "status": {"name": "Active"},
            "updated_at": f"2024-01-01 00:00:{60 - n:02d}", **more}


def tq_empty_values_and_odd_types(h):
    _tq_page(h, [_indicator(1, ""), _indicator(2, None), _indicator(3, "   "), _indicator(4, "ok.example.com"),
                 _indicator(5, 12345), _indicator(6, "typed.example.com", score="abc", attributes=None,
                                                  adversaries=None, type="FQDN", status=None)])
    return 3, lambda: {"ok.example.com", "12345", "typed.example.com"} <= set(_tq_lookup(h))


def tq_indicators_that_are_not_objects(h):
    _tq_page(h, ["a string", 5, None, _indicator(1, "ok.example.com")])
    return 3, lambda: set(_tq_lookup(h)) == {"ok.example.com"}


def tq_attributes_of_unexpected_shape(h):
    _tq_page(h, [_indicator(1, "a.example.com", attributes=5), _indicator(2, "b.example.com", attributes="x"),
                 _indicator(3, "c.example.com", attributes=[{"name": {"x": 1}, "value": "v"}, 7]),
                 _indicator(4, "d.example.com", adversaries=[{"name": ["x"]}, 5]),
                 _indicator(5, "e.example.com", score={"manual_score": [1]})])
    return None, lambda: "e.example.com" in _tq_lookup(h)


def tq_control_injection_huge(h):
    values = (CONTROL, "x" + HUGE, *INJECTIONS)
    _tq_page(h, [_indicator(n, v) for n, v in enumerate(values, 1)])
    return 0, lambda: {v.strip() for v in values} == set(_tq_lookup(h))


CASES = {
    "ctci": [ctci_empty_values, ctci_invalid_ids, ctci_huge_value, ctci_control_characters, ctci_csv_injection,
             ctci_unexpected_types, ctci_rows_that_are_not_objects, ctci_duplicate_keys, ctci_deeply_nested,
             ctci_too_deeply_nested_document, ctci_million_columns],
    "recorded_future": [rf_empty_and_invalid_names, rf_invalid_hashes, rf_csv_injection_and_control_characters,
                        rf_huge_and_malformed_evidence, rf_duplicate_rows, rf_truncated_last_row,
                        rf_million_column_row, rf_not_utf8_and_nul],
    "logrhythm_collective_insights": [lr_invalid_iocs, lr_huge_and_control_values, lr_bad_alarms_in_the_search,
                                      lr_events_of_unexpected_shape],
    "flashpoint": [fp_not_objects_and_keyless, fp_odd_values, fp_deeply_nested, fp_million_columns],
    "devo_ioc_exporter": [tq_empty_values_and_odd_types, tq_indicators_that_are_not_objects,
                          tq_attributes_of_unexpected_shape, tq_control_injection_huge],
}
PARAMS = [(connector, case) for connector, cases in CASES.items() for case in cases]
SLOW = {ctci_million_columns, rf_million_column_row, fp_million_columns}
TIMEOUTS = {ctci_million_columns: 20, fp_million_columns: 20}   # handled well, they take 1 to 3 s (CI may be busy)


@pytest.mark.parametrize("connector,case", [pytest.param(c, f, marks=[pytest.mark.slow] if f in SLOW else [])
                                            for c, f in PARAMS], ids=[f.__name__ for _, f in PARAMS])
def test_bad_vendor_data(connector, case, harness_for):
    h = harness_for(connector, reference=False)
    TALLY.bad_inputs += 1
    skips, delivered = case(h)
    result = h.run(verbosity=2, env={"TQ_CONN_HTTP_RETRIES": "1"}, timeout=TIMEOUTS.get(case, 120))
    if isinstance(skips, tuple):
        code, message = skips
        h.assert_clean_exit(result, code, message)
    else:
        h.assert_clean_exit(result, 0)
        if skips is not None:
            assert _skipped(result) == skips, f"expected {skips} counted skips: {result!r}"
    if delivered is not None:
        assert delivered(), f"the good records (or the odd ones, intact) were not delivered: {result!r}"
    assert not h.state_problems()
    TALLY.bad_handled += 1
