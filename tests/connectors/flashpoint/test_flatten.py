"""Flattening of Flashpoint documents (recorded samples) and the per-lookup spool: columns, types, newest row."""

import csv
import json
import os
import time

import pytest

from tq_conn_common import MAX_CELL, BadRecord
from tq_conn_common.rows import MAX_DEPTH, MAX_KEYS
from tq_conn_common.rows import flatten as _flatten
from tq_conn_flashpoint.connector import BOOKKEEPING


def flatten(doc, ident="fpid"):
    """The connector's to_row: an indicator flattened, bookkeeping left out."""
    return _flatten(doc, BOOKKEEPING, what="indicator", context=("type", ident))

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def sample(name):
    with open(os.path.join(SAMPLES, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_the_recorded_v4_attribute_flattens_to_dotted_keys():
    row = flatten(sample("v4_indicators_attribute_response")[0])
    assert row["fpid"] == "_fQKGM3qXd2uxRRPVc8rMw" and row["type"] == "sha1"
    assert row["value.sha1"] == "45210dee100c67b7a0edf4447b8c9e12f786f088"
    assert row["value.comment"] == ""
    assert row["Event.info"] == 'Analysis: quasar "jLikteQnlDEVdTa" [2021-07-05 06:10:32]'
    assert row["Event.publish_timestamp"] == "1625468815"        # strings of digits stay strings
    assert row["first_observed_at.date-time"] == "2021-07-05T07:06:25+00:00"
    assert row["first_observed_at.timestamp"] == 1625468785      # numbers stay numbers
    assert row["header_.indexed_at"] == 1625468864 and row["header_.is_visible"] is True
    assert row["first_seen"] is None
    # every value is one level: no dict and no list left
    assert not any(isinstance(v, (dict, list)) for v in row.values())


def test_lists_are_one_json_column_each():
    row = flatten(sample("v4_indicators_attribute_response")[0])
    tags = json.loads(row["Event.Tag"])
    assert len(tags) == 14 and tags[3]["name"] == "malware:quasar"
    assert json.loads(row["Event.attack_ids"]) == ["T1116"]
    assert json.loads(row["basetypes"]) == ["indicator", "indicator_attribute"]
    assert json.loads(row["Event.Galaxy"])[0]["GalaxyCluster"][0]["meta"]["external_id"] == ["T1116"]
    assert not any(key.startswith("Event.Tag.") or key.startswith("Event.Galaxy.") for key in row)


def test_pipeline_bookkeeping_is_left_out():
    row = flatten(sample("v4_indicators_attribute_response")[0])
    assert not any(key.startswith(("_meta", "enrichments")) for key in row)
    # the same names deeper down are data, not bookkeeping
    assert flatten({"a": {"_meta": 1, "enrichments": {"x": 2}}}) == {"a._meta": 1, "a.enrichments.x": 2}


def test_the_ignite_attribute_flattens_the_same_way():
    rows = [flatten(doc) for doc in sample("technical_intelligence_v1_attribute_response")]
    assert rows[0]["value.ip-dst"] == "0.0.0.1" and rows[0]["type"] == "ip-dst"
    assert rows[0]["earliest_sort_date"] == "2024-04-13T14:10:17Z"
    assert rows[0]["Galaxy"] == "[]" and rows[0]["Event.CryptographicKey"] == "[]"


def test_the_recorded_ioc_v2_indicator_has_its_value_and_id_at_the_top():
    row = flatten(sample("technical_intelligence_v2_indicator_response"), ident="id")
    assert row["value"] == "00000000000000000000000000000001" and row["id"] == "dummy_id"   # lookup_key value or id
    assert row["type"] == "file" and row["score.value"] == "malicious" and row["hashes.sha1"].endswith("1")
    assert row["modified_at"] == "2025-01-02T01:00:00.000001" and row["platform_urls.ignite"].endswith("dummy_id")
    assert json.loads(row["sightings"])[0]["tags"][0] == "malware:pony"           # a list is one JSON column
    assert json.loads(row["mitre_attack_ids"]) == [{"id": "dummy_mitre_id", "name": "dummy name",
                                                    "tactic": "Defense Evasion"}]


def test_composite_type_keys_are_kept_as_flashpoint_spells_them():
    row = flatten({"type": "ip-dst|port", "value": {"ip-dst|port": "5.79.68.110|80"},
                   "body": {"text/plain": "x"}})
    assert row == {"type": "ip-dst|port", "value.ip-dst|port": "5.79.68.110|80", "body.text/plain": "x"}


# ---- the limits of one indicator: over them it is a counted skip, never a lookup of a million columns --------------

def _doc(**more):
    return {"fpid": "rel-1", "type": "domain", "value": {"domain": "a.example.com"}, **more}


def test_an_indicator_with_more_keys_than_the_limit_is_a_bad_record():
    with pytest.raises(BadRecord, match=f"^indicator has more than {MAX_KEYS} keys \\(type='domain', fpid='rel-1'\\)$") as caught:
        flatten(_doc(**{f"k{i}": i for i in range(MAX_KEYS)}))
    assert caught.value.context == {"type": "domain", "fpid": "rel-1"}


def test_nested_keys_count_towards_the_limit():
    with pytest.raises(BadRecord, match="more than 1000 keys"):
        flatten(_doc(Event={f"k{i}": {"x": i} for i in range(MAX_KEYS // 2)}))


def test_an_indicator_at_the_key_limit_is_flattened_whole():
    doc = _doc(**{f"k{i}": i for i in range(MAX_KEYS - 4)})           # fpid, type, value, value.domain
    assert len(flatten(doc)) == MAX_KEYS - 1


def test_a_huge_indicator_is_refused_without_reading_it_all():
    doc = _doc(**{f"k{i}": {"deep": [i]} for i in range(300_000)})
    started = time.perf_counter()
    with pytest.raises(BadRecord):
        flatten(doc)
    assert time.perf_counter() - started < 0.5      # reading it all takes seconds


def test_an_indicator_nested_deeper_than_the_limit_is_a_bad_record():
    deep = json.loads('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH)
    with pytest.raises(BadRecord, match=f"^indicator nested more than {MAX_DEPTH} levels deep"):
        flatten(_doc(Event=deep))
    row = flatten(_doc(Event=json.loads('{"a":' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1))))
    assert row["Event" + ".a" * (MAX_DEPTH - 1)] == 1   # the document and 499 levels under it


def test_a_list_nested_too_deep_to_write_is_a_bad_record():
    doc = _doc(Event={"Tag": json.loads("[" * 600 + "]" * 600)})

    def deep(n):  # the rest of the run sits on the stack when flatten writes the list as JSON text
        return deep(n - 1) if n else flatten(doc)

    with pytest.raises(BadRecord, match="indicator nested too deeply: Event.Tag"):
        deep(500)


@pytest.mark.parametrize("more,what", [
    ({"comment": "c" * (MAX_CELL + 1)}, "comment"),
    ({"Event": {"Tag": ["t" * 1000] * 110}}, "Event.Tag"),                   # a list, as its JSON text
    ({"n" * (MAX_CELL + 1): 1}, "nnnn"),                                     # the column name itself
])
def test_a_key_or_value_over_the_cell_limit_is_a_bad_record(more, what):
    with pytest.raises(BadRecord, match=f"^indicator key {what}.* characters, more than the {MAX_CELL}") as caught:
        flatten(_doc(**more))
    assert len(str(caught.value)) < 300


def test_a_value_at_the_cell_limit_is_kept_whole():
    assert flatten(_doc(comment="c" * MAX_CELL))["comment"] == "c" * MAX_CELL


def test_the_cell_limit_fits_a_devo_lookup_csv_field():
    # The Devo stand-in reads lookup CSV with Python's csv module: at most 128 KiB in one field.
    assert MAX_CELL < csv.field_size_limit() == 128 * 1024
