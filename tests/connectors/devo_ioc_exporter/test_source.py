"""to_row of the Devo IOC Exporter, on recorded ThreatQ samples and their variants."""

import json
import os

import pytest

from tq_conn_common import BadRecord
from tq_conn_devo_ioc_exporter import source
from tq_conn_devo_ioc_exporter.connector import IOCS

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")
LINKS = "https://threatq.example.com"


def sample(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as fh:
        return json.load(fh)


def row(indicator):
    return source.to_row(indicator, links=LINKS)


def test_a_cursor_page_indicator_maps_to_every_column():
    got = row(sample("data_collection_hash_page1.json")["data"][0])
    assert got == {"value": "107.189.1.90", "type": "IP Address", "status": "Active", "score": 0,
                   "link": "https://threatq.example.com/indicators/106767/details", "attack_phase": "",
                   "threat_type": "", "adversary": "", "has_adversary": 0, "created_at": "2021-10-01 18:36:03",
                   "updated_at": "2021-10-01 18:36:03"}
    assert set(got) == {c.name for c in IOCS.columns}


def test_a_details_body_with_a_score_object_uses_the_generated_score():
    got = row(sample("indicator_details_response.json")["data"])
    assert got["value"] == "www.example.com" and got["type"] == "URL" and got["score"] == 0
    assert got["link"].endswith("/indicators/7/details")


def test_the_query_and_list_samples_map():
    ip = row(sample("indicators_query_response_ip.json")["data"][0])
    assert (ip["value"], ip["status"], ip["score"]) == ("8.8.8.8", "Expired", 0)
    rows = [row(r) for r in sample("indicators_sample_records.json")]
    assert {r["value"] for r in rows} == {"89.160.20.156"} and {r["score"] for r in rows} == {4}


def indicator(**overrides):
    base = {"id": 5, "value": "evil.example", "type": {"name": "FQDN"}, "status": {"name": "Active"},
            "score": {"generated_score": "6.50", "manual_score": None}, "created_at": "2024-01-01 00:00:00",
            "updated_at": "2024-02-01 00:00:00", "attributes": [], "adversaries": []}
    return {**base, **overrides}


def attr(name, value):
    return {"name": name, "value": value}


def test_attack_phase_threat_type_and_adversary_come_from_attributes_and_related_adversaries():
    got = row(indicator(
        score={"generated_score": "6.50", "manual_score": 9},
        attributes=[attr("Attack Phase", "Delivery"), attr("Threat Type", "Phishing"), attr("Related Actor", "FIN7"),
                    attr("Actor", "APT28"), attr("Related Adversary", "APT29"), attr("Attack Phase", "Delivery"),
                    attr("Threat Type", "Malware"), attr("Actor", ""), attr("", "x"), attr("Other", "y")],
        adversaries=[{"id": 1, "name": "APT28"}, {"id": 2, "name": "Turla"}]))
    assert got["score"] == 9                                  # manual wins over generated
    assert got["attack_phase"] == "Delivery"                   # each value once
    assert got["threat_type"] == "Phishing, Malware"
    assert got["adversary"] == "APT28, APT29, FIN7, Turla"     # Actor, Related Adversary, Related Actor, objects
    assert got["has_adversary"] == 2


def test_types_and_statuses_as_plain_strings_and_a_numeric_score():
    got = row(indicator(type="SHA-256", status="Review", score=7.25))
    assert (got["type"], got["status"], got["score"]) == ("SHA-256", "Review", 7.25)


def test_missing_related_lists_give_empty_columns():
    got = row({"id": 9, "value": " 1.2.3.4 ", "type": {"name": "IP Address"}})
    assert got["value"] == "1.2.3.4" and got["score"] is None and got["has_adversary"] == 0
    assert got["adversary"] == "" and got["created_at"] is None


@pytest.mark.parametrize("value", ["", "   ", None])
def test_an_empty_value_is_a_bad_record(value):
    with pytest.raises(BadRecord) as caught:
        row(indicator(value=value))
    assert caught.value.context == {"id": 5}


@pytest.mark.parametrize("item", ["a string", 5, None, ["a.example.com"], 1.5, True])
def test_an_indicator_that_is_not_an_object_is_a_bad_record(item):
    with pytest.raises(BadRecord) as caught:
        row(item)
    assert caught.value.reason.startswith(f"not an indicator object but {type(item).__name__} ")


def test_a_huge_non_object_is_shown_short_in_the_reason():
    with pytest.raises(BadRecord) as caught:
        row(["x" * 100_000] * 1000)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("value", [{"v": "a.example.com"}, ["a.example.com"], True])
def test_a_value_that_is_not_text_is_a_bad_record(value):
    with pytest.raises(BadRecord, match="value is a .*, not text") as caught:
        row(indicator(value=value))
    assert caught.value.context == {"id": 5}


def test_a_numeric_value_is_kept_as_text():
    assert row(indicator(value=12345))["value"] == "12345"


def test_odd_shapes_inside_an_indicator_read_as_empty_and_the_row_is_kept():
    got = row(indicator(attributes=[{"name": {"x": 1}, "value": "v"}, 7, attr("Threat Type", "Phishing")],
                        adversaries=[{"name": ["x"]}, 5], score={"manual_score": [1]}, type={"name": {"a": 1}},
                        status=["Active"], created_at={"date": 1}, updated_at=20240101))
    assert got["value"] == "evil.example" and got["threat_type"] == "Phishing" and got["adversary"] == "5"
    assert got["has_adversary"] == 2 and got["score"] is None
    assert got["type"] is None and got["status"] is None
    assert got["created_at"] is None and got["updated_at"] is None
    for attributes in (5, "x", None):
        got = row(indicator(attributes=attributes, adversaries=attributes))
        assert (got["attack_phase"], got["adversary"], got["has_adversary"]) == ("", "", 0)


def test_non_objects_are_bad_records():
    for item in ("a string", 5, None):
        with pytest.raises(BadRecord, match="not an indicator object"):
            row(item)
    assert row(indicator())["value"] == "evil.example"


ODD = [indicator(attributes=[{"name": {"x": 1}, "value": "v"}, 7, attr("Threat Type", "Phishing")],
                 adversaries=[{"name": ["x"]}, 5], score={"manual_score": [1]}, type={"name": {"a": 1}},
                 status=["Active"], created_at={"date": 1}, updated_at=20240101),
       indicator(attributes={"Attack Phase": "x"}, adversaries="FIN7", score=True, type=True),
       indicator(attributes=[attr("Attack Phase", 5), {"attribute": {"name": "Threat Type"}, "value": " Spam "}],
                 adversaries=["APT1", 7.5, None, {"name": "FIN7", "pivot": {"id": 1}}], score="7", type="FQDN",
                 status={"id": 1}, value=12345),
       indicator(), "a string", None]


@pytest.mark.parametrize("item", ODD + sample("data_collection_hash_page1.json")["data"]
                         + sample("indicators_query_response_ip.json")["data"]
                         + sample("indicators_sample_records.json"))
def test_an_indicator_decoded_with_only_the_fields_read_maps_as_decoded_whole(item):
    from tq_conn_common.http import loads_as
    from tq_conn_common.threatq.indicator import Page

    body = json.dumps({"total": 1, "data": [item]}).encode()
    whole, shaped = json.loads(body)["data"][0], loads_as(Page)(body)["data"][0]

    def mapped(record):
        try:
            return row(record), source.mark(record)
        except BadRecord as bad:
            return str(bad)
    assert mapped(shaped) == mapped(whole)
