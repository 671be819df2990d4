"""to_row, rows_of and the date and id handling of the CTCI connector, on CTCI's published sample and its variants."""

import csv
import datetime
import hashlib
import hmac
import json
import os
import re

import pytest
import yaml

from tq_conn_common import MAX_CELL, BadRecord, SourceError
from tq_conn_ctci import source
from tq_conn_sandbox.services.ctci import TOKEN
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def sample():
    with open(os.path.join(SAMPLES, "cewl_download_example_record.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_the_published_example_row_maps_to_typed_columns():
    row = source.to_row(sample())   # upper-case "CVE", epoch-ms dates, severity as a label
    assert row["cve"] == "CVE-2020-5902"
    assert row["year"] == 2020 and row["id_ref"] == 320
    assert row["base_score"] == 9.8 and row["base_severity"] == "Critical"
    assert row["cve_date"] == "2020-07-06T00:00:00Z"
    assert row["date_added"] == "2020-06-30T00:00:00Z"
    assert row["base_metric_v2"] is False and row["base_metric_v3"] is True
    assert row["external_note"] == "This is an example CVE"
    assert row["date_discovered"] is None and row["research"] is None   # missing dates are normal
    assert row["other_fields"] is None
    assert set(row) == {name for name, _ in source.FIELDS} | {source.OTHER}


def test_lower_case_key_gives_the_same_row():
    entry = {("cve" if k == "CVE" else k): v for k, v in sample().items()}
    assert source.to_row(entry) == source.to_row(sample())


@pytest.mark.parametrize("value,expected", [
    (1593993600000, "2020-07-06T00:00:00Z"),              # epoch ms (the example)
    (1593993600, "2020-07-06T00:00:00Z"),                 # epoch seconds
    ("1593993600000", "2020-07-06T00:00:00Z"),            # digits as text (the schema says string)
    ("2020-07-06T00:00:00Z", "2020-07-06T00:00:00Z"),
    ("2020-07-06T02:00:00+02:00", "2020-07-06T00:00:00Z"),
    ("2020-07-06T00:00:00.000Z", "2020-07-06T00:00:00Z"),
    ("2020-07-06", "2020-07-06T00:00:00Z"),
    ("Mon, 06 Jul 2020 00:00:00 GMT", "2020-07-06T00:00:00Z"),
    (None, None), ("", None), (True, None),
    ("sometime in July", "sometime in July"),             # unknown form: kept as text, not lost
])
def test_dates_in_every_known_form_become_iso_utc(value, expected):
    entry = dict(sample(), cve_date=value)
    assert source.to_row(entry)["cve_date"] == expected


@pytest.mark.parametrize("value", ["CVE-2019-0708", "cve-2019-0708", " CVE-2019-0708 "])
def test_cve_ids_are_normalised(value):
    assert source.cve_id(value) == "CVE-2019-0708"


@pytest.mark.parametrize("value,expected", [
    ("pCVE-2024-0007", "pCVE-2024-0007"), ("iCVE-2023-12345", "iCVE-2023-12345"),
    ("hcve-2022-0001", "hCVE-2022-0001"), ("RCVE-2021-99999", "rCVE-2021-99999"),
])
def test_ctci_provisional_ids_are_valid(value, expected):
    assert source.to_row(dict(sample(), CVE=value))["cve"] == expected


@pytest.mark.parametrize("value", [None, "", "CVE-20-1", "CVE-2020-12", "not a cve", "xCVE-2020-1234", 2020,
                                   ["CVE-2020-5902"], "CVE-2020-5902x"])
def test_a_row_without_a_valid_cve_id_is_a_bad_record(value):
    with pytest.raises(BadRecord) as caught:
        source.to_row(dict(sample(), CVE=value))
    assert "without a valid CVE id" in str(caught.value)
    assert "id_ref=320" in str(caught.value)


def test_a_row_that_is_not_an_object_is_a_bad_record():
    with pytest.raises(BadRecord, match="not a JSON object"):
        source.to_row(["CVE-2020-5902"])


def test_loose_types_are_converted_and_nonsense_left_empty():
    row = source.to_row(dict(sample(), year="2020", base_score="9.8", id_ref=320.0, enabled="true",
                             processed=0, notified="maybe", base_severity=9.8, vendor=None))
    assert (row["year"], row["base_score"], row["id_ref"]) == (2020, 9.8, 320)
    assert row["enabled"] is True and row["processed"] is False and row["notified"] is None
    assert row["base_severity"] == "9.8" and row["vendor"] is None
    bad = source.to_row(dict(sample(), year="twenty", base_score=float("nan"), id_ref=True))
    assert bad["year"] is None and bad["base_score"] is None and bad["id_ref"] is None


def test_unknown_columns_are_kept_as_json():
    row = source.to_row(dict(sample(), exploit_maturity="high", Tags=["a"]))
    assert json.loads(row["other_fields"]) == {"exploit_maturity": "high", "tags": ["a"]}


@pytest.mark.parametrize("body,count", [
    ({"status": 200, "title": "CEWL", "detail": "", "data": [{"cve": "CVE-2020-5902"}]}, 1),   # the envelope
    ([{"cve": "CVE-2020-5902"}, {"cve": "CVE-2019-0708"}], 2),                                 # the spec's array
    ({"Data": []}, 0),
    ({"status": 200, "data": None}, 0),
])
def test_both_body_forms_are_accepted(body, count):
    assert len(source.rows_of(body)) == count


@pytest.mark.parametrize("body", [{"status": 401, "title": "Unauthorized"}, "CEWL", None, {"data": "x"}])
def test_a_body_without_rows_is_api_error_400(body):
    with pytest.raises(SourceError) as caught:
        source.rows_of(body)
    assert str(caught.value).startswith("ApiError 400: Unexpected response when fetching the CTCI CEWL")


def test_obfuscation_is_a_keyed_hash_of_the_value():
    row = source.to_row(sample())
    out = source.obfuscated(row, ["external_note", "year", "research"], b"k" * 16)
    assert out["external_note"] == hmac.new(b"k" * 16, b"This is an example CVE", hashlib.sha256).hexdigest()
    assert out["year"] == hmac.new(b"k" * 16, b"2020", hashlib.sha256).hexdigest()
    assert out["research"] is None                        # nothing to hide stays empty
    assert out["cve"] == row["cve"] and row["external_note"] == "This is an example CVE"   # input untouched
    other_key = source.obfuscated(row, ["external_note"], b"j" * 16)
    assert other_key["external_note"] != out["external_note"]


# ---- the limits of one row: over them a row is a counted skip, never a refused upload ------------------------------

def test_a_row_with_more_fields_than_the_limit_is_a_bad_record_naming_the_count():
    entry = dict(sample(), **{f"c{i}": i for i in range(source.MAX_FIELDS)})
    with pytest.raises(BadRecord, match=rf"row has {len(entry)} fields, more than the {source.MAX_FIELDS}") as caught:
        source.to_row(entry)
    assert caught.value.context == {"cve": "CVE-2020-5902", "id_ref": 320}


def test_a_row_at_the_field_limit_keeps_its_unknown_fields():
    entry = sample()
    entry.update({f"c{i}": i for i in range(source.MAX_FIELDS - len(entry))})
    assert len(entry) == source.MAX_FIELDS
    assert len(json.loads(source.to_row(entry)["other_fields"])) == source.MAX_FIELDS - len(sample())


def test_the_context_of_a_skipped_row_stays_short():
    entry = {"cve": "x" * 10_000, "id_ref": {"a": 1}, **{f"c{i}": i for i in range(source.MAX_FIELDS)}}
    with pytest.raises(BadRecord) as caught:
        source.to_row(entry)
    assert len(str(caught.value)) < 200 and "id_ref='<dict>'" in str(caught.value)


def test_a_value_nested_too_deep_to_write_is_a_bad_record():
    depth = 600
    entry = dict(sample(), description=json.loads('{"a":' * depth + "1" + "}" * depth))

    def deep(n):  # the rest of the run sits on the stack when to_row writes the value as JSON text
        return deep(n - 1) if n else source.to_row(entry)

    with pytest.raises(BadRecord, match="nested too deeply"):
        deep(500)


@pytest.mark.e2e
def test_rows_over_the_limits_are_skipped_and_the_rest_delivered(sandbox, cli, tmp_path):
    at_limit = ('say "a,b"\n' * MAX_CELL)[:MAX_CELL]     # quotes and commas: CSV escaping at work
    sandbox["ctci"].add_row(cve="CVE-2024-0001", description=at_limit)
    sandbox["ctci"].add_row(cve="CVE-2024-0002", description="d" * (MAX_CELL + 1))
    sandbox["ctci"].add_row(cve="CVE-2024-0003", **{f"c{i}": i for i in range(source.MAX_FIELDS)})
    (tmp_path / "tq-conn-ctci.yaml").write_text(yaml.safe_dump({
        "api_token": TOKEN, "api_base_url": sandbox.url("ctci"), "devo_transport": "rest",
        "devo_lookups_url": sandbox.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
        "devo_domain": DEFAULT_DOMAIN}))
    result = cli("tq-conn-ctci", "-c", tmp_path, "-v", "2")
    assert result.code == 0, result.both
    assert "description has 102401 characters, more than the 102400 a Devo lookup cell may hold" in result.both
    assert re.search(rf"Skipped CEWL row: row has 10\d\d fields, more than the {source.MAX_FIELDS} a CEWL row may have "
                     r"\(cve='CVE-2024-0003', id_ref=\d+\)", result.both)
    assert "skipped as invalid 2" in result.both
    rows = {row["cve"]: row for row in sandbox["devo"].lookup("CTCI_CEWL")["rows"]}
    assert len(rows) == 31 and rows["CVE-2024-0001"]["description"] == at_limit   # as sent
