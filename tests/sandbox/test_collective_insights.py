"""The Collective Insights stand-in over HTTP: tokens, validation of the documented fields, summary, records."""

import pytest
import requests

from tq_conn_sandbox.services.collective_insights import NO_CI_TOKEN, TOKEN

PATH = "/collective-insights/detections"


def detection(value="203.0.113.7", kind="ip", **extra):
    return {"timestamp": "2026-11-21T13:36:39Z",
            "ioc": {"type": kind, "value": value, "source_type": "LogRhythm", "field": "originIP"},
            "incident": {"id": "18755", "name": "18755: Rule", "type": "LogRhythm Alarm"},
            "detection": {"type": "correlation", "name": "Rule"}, **extra}


def post(sandbox, body, token=TOKEN):
    headers = {"X-RFToken": token} if token is not None else {}
    return requests.post(sandbox.url("collective_insights") + PATH, json=body, headers=headers, timeout=10)


def test_an_accepted_submission_is_recorded_and_summarised(sandbox):
    data = [detection(), detection(), detection("bad.example.com", "domain"),
            detection("CVE-2021-44228", "vulnerability")]
    response = post(sandbox, {"options": {"debug": False, "summary": True}, "data": data})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["status"] == "ok" and result["debug"] is False
    assert result["summary"]["processed"] == {"ip": 1, "domain": 1, "hash": 0, "vulnerability": 1, "url": 0}
    ci = sandbox["collective_insights"]
    assert len(ci.detections) == 4 and ci.submissions[0]["debug"] is False
    listed = requests.get(sandbox.url("collective_insights") + "/_sandbox/collective_insights/detections",
                          timeout=5).json()["detections"]
    assert listed == data


@pytest.mark.parametrize("options", [{"debug": True}, {}])
def test_debug_true_or_absent_stores_nothing_but_is_recorded(sandbox, options):
    response = post(sandbox, {"options": options, "data": [detection()]})
    assert response.status_code == 200 and response.json()["result"]["debug"] is True
    ci = sandbox["collective_insights"]
    assert ci.detections == [] and len(ci.submissions) == 1


@pytest.mark.parametrize("token,status", [(None, 401), ("a" * 32, 401), (NO_CI_TOKEN, 403)])
def test_tokens(sandbox, token, status):
    response = post(sandbox, {"options": {"debug": False}, "data": [detection()]}, token=token)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status
    assert sandbox["collective_insights"].submissions == []


@pytest.mark.parametrize("mutate,words", [
    (lambda d: d["ioc"].pop("type"), "ioc.type"),
    (lambda d: d["ioc"].update(type="ipv4"), "'ipv4' is not one of"),
    (lambda d: d["ioc"].update(value=""), "ioc.value is missing"),
    (lambda d: d.pop("detection"), "detection is missing"),
    (lambda d: d["detection"].update(type="detection_rule"), "needs id and sub_type"),
    (lambda d: d.update(timestamp="yesterday"), "not ISO 8601"),
    (lambda d: d["incident"].update(id=18755), "incident.id is not a string"),
    (lambda d: d.update(mitre_codes="T1071"), "mitre_codes is not a list"),
])
def test_invalid_detections_get_400_naming_the_field(sandbox, mutate, words):
    item = detection()
    mutate(item)
    response = post(sandbox, {"options": {"debug": False}, "data": [item]})
    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    assert sandbox["collective_insights"].detections == []


def test_an_empty_or_malformed_body_is_refused(sandbox):
    assert post(sandbox, {"options": {"debug": False}, "data": []}).status_code == 400
    assert post(sandbox, {"options": {"debug": "no"}, "data": [detection()]}).status_code == 400
    response = requests.post(sandbox.url("collective_insights") + PATH, data=b"{not json",
                             headers={"X-RFToken": TOKEN}, timeout=5)
    assert response.status_code == 400


def test_the_daily_limit_answers_429(sandbox):
    ci = sandbox["collective_insights"]
    ci.daily_limit = 3
    assert post(sandbox, {"options": {"debug": False}, "data": [detection()] * 3}).status_code == 200
    refused = post(sandbox, {"options": {"debug": False}, "data": [detection()]})
    assert refused.status_code == 429 and "Daily limit" in refused.json()["error"]["message"]
    assert len(ci.detections) == 3
