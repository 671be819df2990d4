"""The LogRhythm Alarm API stand-in over HTTP: the contract of reference logrhythm.md section 9 and its switches."""

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tq_conn_sandbox.services.logrhythm import DRILLDOWN, NO_RIGHTS_TOKEN, TOKEN, event, lr_date, search_log

PREFIX = "/lr-alarm-api"


def get(sandbox, path, token=TOKEN, **params):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(sandbox.url("logrhythm") + PREFIX + path, headers=headers, params=params, timeout=10)


def settings(sandbox, **values):
    response = requests.post(sandbox.url("logrhythm") + "/_sandbox/logrhythm/settings", json=values, timeout=5)
    response.raise_for_status()
    return response.json()["settings"]


def ids(response):
    return [a["alarmId"] for a in response.json()["alarmsSearchDetails"]]


@pytest.mark.parametrize("token,status", [(None, 401), ("wrong", 401), (NO_RIGHTS_TOKEN, 403)])
def test_every_endpoint_checks_the_bearer_token(sandbox, token, status):
    alarm_id = min(sandbox["logrhythm"].alarms)
    for path in ("/alarms", f"/alarms/{alarm_id}", f"/alarms/{alarm_id}/events", f"/alarms/{alarm_id}/summary"):
        response = get(sandbox, path, token=token)
        assert response.status_code == status, path
        body = response.json()
        assert body["statusCode"] == status and body["responseMessage"]


def test_search_answers_the_recorded_shape(sandbox):
    response = get(sandbox, "/alarms", orderby="DateInserted", dir="ascending")
    assert response.status_code == 200
    body = response.json()
    assert body["statusCode"] == 200 and body["statusMessage"] == "OK" and body["responseMessage"] == "Success"
    items = body["alarmsSearchDetails"]
    assert body["alarmsCount"] == len(items) == len(sandbox["logrhythm"].alarms)
    first = items[0]
    assert set(first) == {"alarmId", "alarmRuleName", "alarmStatus", "alarmDataCached", "associatedCases",
                          "entityName", "dateInserted"}
    assert isinstance(first["alarmId"], int) and isinstance(first["alarmStatus"], int)
    assert "+" not in first["dateInserted"] and "Z" not in first["dateInserted"]
    dates = [item["dateInserted"] for item in items]
    assert dates == sorted(dates)


def test_search_filters_by_date_inserted_rule_and_status(sandbox):
    since = lr_date(datetime.now(timezone.utc) - timedelta(hours=24))
    recent = ids(get(sandbox, "/alarms", dateInserted=since))
    assert len(recent) == 6
    rule = ids(get(sandbox, "/alarms", alarmRuleName="AIE: Recorded Future - Malicious Domain"))
    assert len(rule) == 2
    assert ids(get(sandbox, "/alarms", alarmStatus="3")) == []
    assert len(ids(get(sandbox, "/alarms", dateInserted=since.replace("T", "T") + "Z"))) == 6


def test_search_orders_case_insensitively_both_ways(sandbox):
    up = ids(get(sandbox, "/alarms", orderBy="dateinserted", dir="ascending"))
    down = ids(get(sandbox, "/alarms", orderby="DateInserted", dir="descending"))
    assert up == list(reversed(down))


def test_offset_counts_items_and_count_is_capped(sandbox):
    lr = sandbox["logrhythm"]
    lr.add_burst(150)
    everything = ids(get(sandbox, "/alarms", count=1000, dir="ascending", offset=0))
    assert len(everything) == 100                     # the default cap of 100
    second = ids(get(sandbox, "/alarms", count=100, dir="ascending", offset=100))
    assert len(second) == 58 and second[0] not in everything
    settings(sandbox, max_count=1000)
    assert len(ids(get(sandbox, "/alarms", count=1000))) == 158


def test_the_ignore_offset_switch_answers_the_first_page_again(sandbox):
    sandbox["logrhythm"].add_burst(150)
    settings(sandbox, ignore_offset=True)
    first = ids(get(sandbox, "/alarms", count=100, dir="ascending", offset=0))
    again = ids(get(sandbox, "/alarms", count=100, dir="ascending", offset=100))
    assert first == again and len(first) == 100


def test_details_carry_the_risk_based_priority_and_404_for_unknown(sandbox):
    lr = sandbox["logrhythm"]
    alarm_id = lr.add_alarm("Sandbox Rule", rbp=77)
    body = get(sandbox, f"/alarms/{alarm_id}").json()
    details = body["alarmDetails"]
    assert details["alarmId"] == alarm_id and details["rbpMax"] == 77 and details["rbpAvg"] == 77
    assert details["alarmRuleName"] == "Sandbox Rule" and details["alarmStatusName"] == "New"
    missing = get(sandbox, "/alarms/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["responseMessage"]


def test_events_use_empty_strings_and_nulls_and_both_key_spellings(sandbox):
    lr = sandbox["logrhythm"]
    alarm_id = lr.add_alarm("Sandbox Rule", events=[])
    body = get(sandbox, f"/alarms/{alarm_id}/events").json()
    event = body["alarmEventsDetails"][0]
    assert event["impactedIP"] is None and event["originIP"] is None
    assert event["impactedHostName"] == "" and event["domain"] == "" and event["url"] == "" and event["cve"] == ""
    settings(sandbox, events_key="alarmsEventDetails")
    body = get(sandbox, f"/alarms/{alarm_id}/events").json()
    assert "alarmsEventDetails" in body and "alarmEventsDetails" not in body


def test_events_gives_one_event_unless_switched(sandbox):
    lr = sandbox["logrhythm"]
    two = next(a for a in lr.alarms.values() if len(a["events"]) == 2)["alarmId"]
    assert len(get(sandbox, f"/alarms/{two}/events").json()["alarmEventsDetails"]) == 1   # as LogRhythm does
    settings(sandbox, first_event_only=False)
    assert len(get(sandbox, f"/alarms/{two}/events").json()["alarmEventsDetails"]) == 2


def drilldown(sandbox, alarm_id, token=TOKEN):
    return requests.get(f"{sandbox.url('logrhythm')}{DRILLDOWN}/{alarm_id}", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("logs", ["string", "list"])
def test_the_drilldown_gives_every_event_of_an_aie_alarm_in_search_names(sandbox, logs):
    lr = sandbox["logrhythm"]
    settings(sandbox, drilldown_logs=logs)
    alarm = next(a for a in lr.alarms.values() if len(a["events"]) == 2 and a["alarmRuleName"].startswith("AIE"))
    found = drilldown(sandbox, alarm["alarmId"]).json()["Data"]["DrillDownResults"]
    assert found["AlarmID"] == alarm["alarmId"] and len(found["RuleBlocks"]) == 2
    blocks = [b["DrillDownLogs"] for b in found["RuleBlocks"]]
    blocks = [json.loads(b) for b in blocks] if logs == "string" else blocks
    assert [log for block in blocks for log in block] == [search_log(e) for e in alarm["events"]]
    assert blocks[1][0]["originIp"] == alarm["events"][1]["originIP"] and "originIP" not in blocks[1][0]


def test_the_drilldown_is_404_for_other_alarms_and_empty_until_filled(sandbox):
    lr = sandbox["logrhythm"]
    other = next(a for a in lr.alarms.values() if not a["alarmRuleName"].startswith("AIE"))["alarmId"]
    response = drilldown(sandbox, other)
    assert response.status_code == 404 and response.json()["Data"]["DrillDownResults"] is None
    fresh = lr.add_alarm("AIE: Fresh", events=[event(originIP="192.0.2.9")], cached=False)
    assert drilldown(sandbox, fresh).json()["Data"]["DrillDownResults"] is None
    assert next(a for a in ids_and_cache(sandbox) if a[0] == fresh)[1] == "N"
    lr.fill(fresh)
    assert drilldown(sandbox, fresh).json()["Data"]["DrillDownResults"]["RuleBlocks"]
    assert drilldown(sandbox, fresh, token="wrong").status_code == 401


def ids_and_cache(sandbox):
    return [(a["alarmId"], a["alarmDataCached"]) for a in get(sandbox, "/alarms", count=100).json()["alarmsSearchDetails"]]


def test_summary_has_rbp_and_no_iocs(sandbox):
    alarm_id = min(sandbox["logrhythm"].alarms)
    summary = get(sandbox, f"/alarms/{alarm_id}/summary").json()["alarmSummaryDetails"]
    assert summary["rbpMax"] == 91 and summary["alarmEventSummary"]
    assert "originIP" not in summary["alarmEventSummary"][0]


def test_one_alarm_events_can_fail_while_others_answer(sandbox):
    lr = sandbox["logrhythm"]
    first, second = sorted(lr.alarms)[:2]
    sandbox.fault("logrhythm", path=rf"^{PREFIX}/alarms/{first}/events$", status=500, count=0)
    assert get(sandbox, f"/alarms/{first}/events").status_code == 500
    assert get(sandbox, f"/alarms/{second}/events").status_code == 200


def test_alarms_can_be_added_and_listed_over_http(sandbox):
    base = sandbox.url("logrhythm")
    made = requests.post(base + "/_sandbox/logrhythm/alarms", json={"burst": 5, "minutes": 10}, timeout=5)
    assert made.status_code == 201 and len(made.json()["ids"]) == 5
    one = requests.post(base + "/_sandbox/logrhythm/alarms", timeout=5,
                        json={"alarmRuleName": "Over HTTP", "rbpMax": 12, "events": [{"originIP": "192.0.2.1"}]})
    alarm_id = one.json()["ids"][0]
    listed = requests.get(base + "/_sandbox/logrhythm/alarms", timeout=5).json()["alarms"]
    mine = next(a for a in listed if a["alarmId"] == alarm_id)
    assert mine["rbpMax"] == 12 and mine["events"][0]["originIP"] == "192.0.2.1"
    bad = requests.post(base + "/_sandbox/logrhythm/settings", json={"nonsense": 1}, timeout=5)
    assert bad.status_code == 400
