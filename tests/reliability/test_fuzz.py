"""Property-based fuzzing of the parsers of vendor data: no input makes them raise anything but BadRecord."""

import ipaddress
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reliability_kit import TALLY
from tq_conn_common import BadRecord, SourceError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["", " ", "1.2.3.4", "::1", "10.0.0.1", "CVE-2021-44228", "cve-2020-0001x",
                              "http://a.example.com/x", "evil.example.com", "=cmd|' /C calc'!A0", "\x00\x1b[0m",
                              "d41d8cd98f00b204e9800998ecf8427e", "2024-01-01T00:00:00Z", "null", "{}"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=25)


def _count():
    TALLY.fuzz_cases += 1


def _only_bad_record(call, *args):
    """Return call(*args), or None for a BadRecord; anything else raised fails the property."""
    try:
        return call(*args)
    except BadRecord:
        return None


# ---- Recorded Future risk list CSV ----------------------------------------------------------------------------------

class _Stats:
    received = skipped = requests = delivered = duplicates = 0


class _Run:
    def __init__(self):
        self.stats = _Stats()

    def skip(self, bad, what="record"):
        assert isinstance(bad, BadRecord)
        self.stats.skipped += 1


RF_HEADERS = [b'"Name","Risk","RiskString","EvidenceDetails"\n',
              b'"Name","Algorithm","Risk","RiskString","EvidenceDetails"\n', b"Name,Risk\n"]
CELL = st.binary(max_size=30) | st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")) | \
    st.sampled_from([b"", b'"', b'""', b",", b"\r\n", b"\n", b"1.2.3.4", b"2001:db8::1", b"10.0.0.0/8", b"90",
                     b"-1", b"100", b"abc", b'{"EvidenceDetails": []}', b"\xff\xfe", b"\x00"])


def _line(cells, quoted):
    if quoted:
        return b",".join(b'"' + c.replace(b'"', b'""') + b'"' for c in cells) + b"\n"
    return b",".join(cells) + b"\n"


@FUZZ
@given(kind=st.sampled_from(["ip", "hash", "domain", "url", "vulnerability", "PublicUkraineRussiaIps"]),
       header=st.sampled_from(RF_HEADERS),
       body=st.lists(st.tuples(st.lists(CELL, max_size=7), st.booleans()), max_size=8),
       tail=st.binary(max_size=40), cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6))
@example(kind="ip", header=RF_HEADERS[0], body=[([b"1.2.3.4", b"90", b"x", b"{not json"], True)], tail=b'"5.6',
         cuts=[1, 7])
@example(kind="ip", header=RF_HEADERS[1], body=[([b"0.0.0.0", b"\x00", b"", b"", b""], False)], tail=b"", cuts=[])
def test_risk_list_rows(kind, header, body, tail, cuts):
    from tq_conn_common.download import read_csv
    from tq_conn_recorded_future import source
    _count()
    data = header + b"".join(_line(cells, quoted) for cells, quoted in body) + tail
    marks = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    blocks = [data[a:b] for a, b in zip(marks, marks[1:])]    # the body as the network hands it over: cut anywhere
    rlist = source.RiskList(None, kind, "", "", 0)
    records = read_csv(iter(blocks), "list", raw="EvidenceDetails")
    try:
        rlist._header(next(records, []))
    except SourceError:     # not a risk list: the list fails, nothing is read
        return
    valid = rejected = total = 0
    for record in records:
        total += 1
        row = None if isinstance(record, BadRecord) else _only_bad_record(rlist.to_row, record)
        if row is None:
            rejected += 1
            continue
        valid += 1
        assert isinstance(row[0], str) and row[0] and all(isinstance(v, str) for v in row)
        if kind in ("ip", "PublicUkraineRussiaIps"):
            ipaddress.ip_network(row[0], strict=False)
    assert valid + rejected == total


@FUZZ
@given(raw=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()) |
       st.lists(JSON, max_size=4).map(lambda items: json.dumps({"EvidenceDetails": items}).encode()))
def test_risk_list_evidence(raw):
    from tq_conn_recorded_future import source
    _count()
    summary = source.evidence_summary(raw.decode("utf-8", "replace").replace('"', '""'))   # the cell's CSV form
    assert summary is None or (isinstance(summary, tuple) and all(isinstance(s, str) for s in summary))


@FUZZ
@given(name=st.text(max_size=80), kind=st.sampled_from(["ip", "hash", "domain", "url", "vulnerability"]))
def test_risk_list_checks(name, kind):
    from tq_conn_recorded_future import source
    _count()
    checked = _only_bad_record(source.RiskList(None, kind, "", "", 0).check, name)
    assert checked is None or isinstance(checked, str)


# ---- Flashpoint flattening ------------------------------------------------------------------------------------------

@FUZZ
@given(doc=st.dictionaries(st.text(max_size=12), JSON, max_size=6))
@example(doc={"Attribute": {"value": {"domain": "a.example.com"}}})
@example(doc={"a": {"": {"": None}}, "a.": 1})
def test_flashpoint_flatten(doc):
    from tq_conn_common.devo.lookup import cell, column_type, kind
    from tq_conn_common.rows import KeyedSpool, flatten
    _count()
    row = _only_bad_record(flatten, doc)
    if row is None:
        return
    assert all(isinstance(k, str) for k in row)
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in row.values())
    for name, value in row.items():
        for type_ in ("str", "int", "float", "bool"):
            out = cell(value, type_)
            assert out is None or isinstance(out, {"str": str, "int": int, "float": float, "bool": bool}[type_])
        assert column_type([kind(value)]) in ("str", "int", "float", "bool")
    with KeyedSpool() as spool:
        spool.note(row)
        spool.add("k", row)
        assert list(spool.rows()) == [json.loads(json.dumps(row))]


def test_flashpoint_flatten_deep_nesting():
    """A document nested as deep as JSON decoding allows is flattened or refused as a BadRecord."""
    from tq_conn_common.rows import flatten
    _count()
    doc = json.loads('{"a":' * 900 + "1" + "}" * 900)
    row = _only_bad_record(flatten, doc)
    assert row is None or list(row.values()) == [1]


# ---- ThreatQ indicator mapping (Devo IOC Exporter) ------------------------------------------------------------------

INDICATOR = st.fixed_dictionaries(
    {"id": st.integers(0, 10**9) | st.none(), "value": st.text(max_size=40) | st.none(),
     "type": st.fixed_dictionaries({"name": st.text(max_size=12)}) | st.text(max_size=12) | st.none(),
     "status": st.fixed_dictionaries({"name": st.text(max_size=12)}) | st.text(max_size=12) | st.none(),
     "score": st.none() | st.integers(0, 10) | st.text(max_size=5) |
     st.fixed_dictionaries({"generated_score": st.text(max_size=5) | st.none(),
                            "manual_score": st.integers(0, 10) | st.none() | st.text(max_size=3)}),
     "attributes": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["Attack Phase", "Threat Type", "Actor",
                                                                            "Related Adversary", "x"]),
                                                   "value": st.text(max_size=20) | st.none()}), max_size=4),
     "adversaries": st.lists(st.fixed_dictionaries({"name": st.text(max_size=12) | st.none()}), max_size=3),
     "created_at": st.text(max_size=20) | st.none(), "updated_at": st.text(max_size=20) | st.none()})


@FUZZ
@given(indicator=INDICATOR)
def test_threatq_indicator_mapping_of_the_documented_shapes(indicator):
    from tq_conn_devo_ioc_exporter.source import to_row
    _count()
    row = _only_bad_record(to_row, indicator, "https://tq.example.com")
    if row is not None:
        assert row["value"] and row["value"] == row["value"].strip()


@FUZZ
@given(indicator=JSON | st.dictionaries(st.sampled_from(["id", "value", "type", "status", "score", "attributes",
                                                         "adversaries", "updated_at"]), JSON, max_size=8))
@example(indicator="a string")
@example(indicator={"value": "a.example.com", "attributes": 5})
def test_threatq_indicator_mapping_of_any_json(indicator):
    from tq_conn_devo_ioc_exporter.source import to_row
    _count()
    _only_bad_record(to_row, indicator, "https://tq.example.com")


# ---- LogRhythm IOC extraction ---------------------------------------------------------------------------------------

FIELD_NAMES = ["impactedIP", "impactedIp", "impactedNATIP", "originIP", "originIp", "originNATIP", "impactedHostName",
               "impactedName", "impactedHost", "originHostName", "originName", "originHost", "domain", "url", "cve",
               "other"]
EVENT = st.dictionaries(st.sampled_from(FIELD_NAMES), SCALARS | JSON, max_size=8)


@FUZZ
@given(events=st.lists(EVENT | JSON, max_size=5))
@example(events=[{"url": "http://[::1", "domain": "a..b", "cve": "CVE-2021-44228 cve-2020-12345",
                  "impactedIP": "::ffff:10.0.0.1"}])
def test_logrhythm_ioc_extraction(events):
    from tq_conn_logrhythm_collective_insights import indicators, insights, source
    _count()
    found, duplicates = indicators.alarm_iocs(events)
    assert duplicates >= 0
    for kind, value, field in found:
        assert kind in ("ip", "domain", "url", "vulnerability") and isinstance(value, str) and value
        assert field in FIELD_NAMES
        if kind == "ip":
            from tq_conn_common.iocs import internal_address
            assert not internal_address(ipaddress.ip_address(value))
    for event in events:
        if isinstance(event, dict):
            list(indicators.iocs(event))
    detail = events[0] if events and isinstance(events[0], dict) else {}
    assert source.risk_based_priority(detail) is None or isinstance(source.risk_based_priority(detail), int)
    import datetime
    for kind, value, field in found:
        det = insights.detection({"alarmId": 1, "alarmRuleName": "r"}, datetime.datetime(2024, 1, 1), kind, value,
                                 field)
        json.dumps(det)


# ---- CTCI CEWL rows -------------------------------------------------------------------------------------------------

@FUZZ
@given(entry=JSON | st.dictionaries(st.sampled_from(["cve", "CVE", "year", "base_score", "date_added", "id_ref",
                                                     "enabled", "vendor", "updated", "extra"]), JSON, max_size=8))
@example(entry={"cve": "CVE-2020-0001", "date_added": 1e300, "year": float("nan"), "id_ref": "7"})
def test_ctci_rows(entry):
    from tq_conn_ctci.source import to_row
    _count()
    row = _only_bad_record(to_row, entry)
    if row is not None:
        assert row["cve"].upper().startswith(("CVE-", "PCVE-", "ICVE-", "HCVE-", "RCVE-"))
        json.dumps(row)
