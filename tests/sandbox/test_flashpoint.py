"""The Flashpoint stand-in over HTTP: reference flashpoint.md section 6 (indicators, scroll, alerts, faults)."""

import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tq_conn_sandbox.services.flashpoint import DEFAULT_TYPES, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api(sandbox, method, path, headers=AUTH, **kwargs):
    return requests.request(method, sandbox.url("flashpoint") + path, headers=headers, timeout=30, **kwargs)


def attributes(sandbox, **params):
    return api(sandbox, "GET", "/api/v4/indicators/attribute", params=params)


def alerts(sandbox, **params):
    return api(sandbox, "GET", "/api/alerting/v1/alerts", params=params)


def control(sandbox, path, **body):
    response = requests.post(f"{sandbox.url('flashpoint')}/_sandbox/flashpoint/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.mark.parametrize("headers,detail", [({}, "not provided"), ({"Authorization": TOKEN}, "Invalid or expired"),
                                            ({"Authorization": "Bearer wrong"}, "Invalid or expired")])
def test_only_the_bearer_form_of_the_token_is_accepted(sandbox, headers, detail):
    for path in ("/api/v4/indicators/attribute", "/api/alerting/v1/alerts"):
        response = api(sandbox, "GET", path, headers=headers)
        assert response.status_code == 401 and detail in response.json()["detail"]


def test_attribute_documents_have_the_reference_shape(sandbox):
    response = attributes(sandbox, limit=20)
    assert response.status_code == 200 and int(response.headers["x-fp-total-hits"]) == 600
    docs = response.json()
    assert isinstance(docs, list) and len(docs) == 20
    assert {d["type"] for d in docs} == set(DEFAULT_TYPES[:10])
    for doc in docs:
        assert doc["href"].endswith("/indicators/attribute/" + doc["fpid"]) and len(doc["fpid"]) == 22
        assert doc["type"] in doc["value"] and doc["value"]["comment"] == ""
        assert doc["Event"]["href"].endswith("/indicators/event/" + doc["Event"]["fpid"])
        assert isinstance(doc["Event"]["Tag"], list) and doc["Event"]["attribute_count"] == "4"
        assert doc["header_"]["source"] == "urn:fp:resource:qualified:indicator"
        assert doc["timestamp"].isdigit() and "_meta" in doc and "enrichments" in doc
    assert any("Galaxy" in d["Event"] for d in docs) and any("Galaxy" not in d["Event"] for d in docs)
    assert any("reports" in d for d in docs) and any("malware_description" in d for d in docs)
    times = [d["header_"]["indexed_at"] for d in docs]
    assert times == sorted(times)


def test_types_and_the_update_window_filter(sandbox):
    fp = sandbox["flashpoint"]
    since, until = fp.end - fp.span // 2, fp.end - fp.span // 4
    docs = attributes(sandbox, types="ip-dst|port,url", limit=1000, updated_since=iso(since),
                      updated_until=iso(until), sort_timestamp="asc").json()
    assert docs and {d["type"] for d in docs} == {"ip-dst|port", "url"}
    assert all(since <= d["header_"]["indexed_at"] < until for d in docs)
    assert all("|" in d["value"]["ip-dst|port"] for d in docs if d["type"] == "ip-dst|port")
    everything = attributes(sandbox, types="ip-dst|port,url", limit=1000).json()
    assert len(everything) == 120 and len(docs) < 120
    descending = attributes(sandbox, types="url", limit=5, sort_timestamp="desc").json()
    assert descending[0]["header_"]["indexed_at"] >= descending[-1]["header_"]["indexed_at"]
    assert attributes(sandbox, types="yara", limit=5).json() == []


@pytest.mark.parametrize("params,detail", [({"limit": 1001}, "limit must be between 1 and 1000"),
                                           ({"limit": 500, "skip": 9600}, "Result window is too large"),
                                           ({"updated_since": "yesterday"}, "YYYY-MM-DDTHH:MM:SSZ"),
                                           ({"sort_timestamp": "up"}, "asc or desc")])
def test_bad_arguments_are_400_with_detail(sandbox, params, detail):
    response = attributes(sandbox, **params)
    assert response.status_code == 400 and detail in response.json()["detail"]


def test_skip_pages_are_consistent(sandbox):
    first = attributes(sandbox, types="md5", limit=25, skip=0).json()
    second = attributes(sandbox, types="md5", limit=25, skip=25).json()
    third = attributes(sandbox, types="md5", limit=25, skip=50).json()
    fpids = [d["fpid"] for d in first + second + third]
    assert len(fpids) == 60 and len(set(fpids)) == 60


def test_a_scroll_session_pages_to_the_end_and_closes(sandbox):
    opened = attributes(sandbox, types="sha1", limit=25, scroll="True").json()
    assert set(opened) == {"results", "scroll_id"} and len(opened["results"]) == 25
    sizes = []
    while True:
        page = api(sandbox, "POST", "/api/v4/indicators/scroll", json={"scroll_id": opened["scroll_id"]}).json()
        sizes.append(len(page["results"]))
        if not page["results"]:
            break
    assert sizes == [25, 10, 0]
    closed = api(sandbox, "DELETE", "/api/v4/indicators/scroll", json={"scroll_id": opened["scroll_id"]})
    assert closed.status_code == 200
    again = api(sandbox, "DELETE", "/api/v4/indicators/scroll", json={"scroll_id": opened["scroll_id"]})
    assert again.status_code == 404
    assert api(sandbox, "POST", "/api/v4/indicators/scroll", json={"scroll_id": "gone"}).status_code == 404


def test_publish_and_update_add_documents_indexed_now(sandbox):
    before = int(time.time())
    published = control(sandbox, "publish", type="domain", count=2)["published"]
    updated = control(sandbox, "update", type="domain", count=1)["updated"]
    docs = attributes(sandbox, types="domain", limit=100, updated_since=iso(before)).json()
    assert [d["fpid"] for d in docs] == published + updated
    assert docs[-1]["Event"]["info"].endswith("(revision 1)")
    assert len(attributes(sandbox, types="domain", limit=1000).json()) == 62       # the update replaced one
    ignoring = control(sandbox, "switches", ignore_until=True)
    assert ignoring["ignore_until"] is True
    assert len(attributes(sandbox, types="domain", limit=100, updated_until=iso(before - 86400 * 30)).json()) == 62


def test_alerts_page_with_relative_next_links_to_the_end(sandbox):
    fp = sandbox["flashpoint"]
    params = {"since": iso(fp.end - fp.span - 5), "until": iso(fp.end + 5), "size": 15}
    seen, pages = [], 0
    while True:
        body = alerts(sandbox, **params).json()
        pages += 1
        assert set(body) == {"data", "count", "links"} and body["links"]["self"]["href"].startswith("/v1/alerts?")
        seen += body["data"]
        nxt = body["links"].get("next")
        if not nxt:
            break
        assert nxt["href"].startswith("/v1/alerts?scroll_id=") and "%24" in nxt["href"]
        params = {k: v[0] for k, v in parse_qs(urlsplit(nxt["href"]).query).items()}
    assert pages == 3 and len(seen) == 40 and len({a["alert_id"] for a in seen}) == 40
    chan = next(a for a in seen if "chan" in a["basetypes"])
    assert chan["source"]["body"]["text/plain"] and chan["source"]["site"]["title"] == "4chan"
    assert chan["source"]["created_at"]["timestamp"] and chan["tags"] == {}
    exposure = next(a for a in seen if "github" in a["basetypes"])
    assert exposure["source"]["source"] == "github" and exposure["source"]["repo"] and exposure["source"]["file"]
    assert exposure["tags"] == {"flagged": None} and isinstance(exposure["ts"], float)
    assert all("<x-fp-highlight>" in a["highlights"][0] for a in seen)


def test_alert_windows_and_sizes(sandbox):
    fp = sandbox["flashpoint"]
    raised = control(sandbox, "alerts", count=2)["raised"]
    recent = alerts(sandbox, since=iso(time.time() - 60), until=iso(time.time() + 5), size=100).json()
    assert [a["alert_id"] for a in recent["data"]] == raised and "next" not in recent["links"]
    assert alerts(sandbox, size=0).status_code == 400 and alerts(sandbox, size=101).status_code == 400
    assert alerts(sandbox, scroll_id="nope").status_code == 400
    empty = alerts(sandbox, since=iso(fp.end - fp.span - 9000), until=iso(fp.end - fp.span - 8000)).json()
    assert empty["data"] == [] and "next" not in empty["links"]


def test_alert_switches(sandbox):
    control(sandbox, "switches", repeat_next_link=True)
    first = alerts(sandbox, size=10).json()["links"]["next"]["href"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(first).query).items()}
    assert alerts(sandbox, **query).json()["links"]["next"]["href"] == first
    control(sandbox, "switches", repeat_next_link=False, fail_later_pages=503)
    assert alerts(sandbox, size=10).status_code == 200
    assert alerts(sandbox, **query).status_code == 503


def test_shared_faults_apply(sandbox):
    sandbox.fault("flashpoint", path="/attribute$", status=429, retry_after=3)
    limited = attributes(sandbox)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    sandbox.fault("flashpoint", path="/alerts$", status=521)
    assert alerts(sandbox).status_code == 521
    assert attributes(sandbox).status_code == 200


def test_a_million_attributes_are_served_without_holding_them(sandbox):
    control(sandbox, "indicators", count=1_000_000)
    started = time.monotonic()
    response = attributes(sandbox, types="sha256", limit=1000, skip=9000)
    assert response.status_code == 200 and len(response.json()) == 1000
    assert int(response.headers["x-fp-total-hits"]) == 100_000
    fp = sandbox["flashpoint"]
    tail = attributes(sandbox, types="url", limit=10, updated_since=iso(fp.end - 600)).json()
    assert tail and all(d["header_"]["indexed_at"] >= fp.end - 600 for d in tail)
    assert time.monotonic() - started < 5
    info = requests.get(sandbox.url("flashpoint") + "/_sandbox/flashpoint", timeout=5).json()
    assert info["count"] == 1_000_000 and info["bearer_token_base64"]


# ---- Ignite: technical-intelligence/v1, alert-management/v1/notifications, IOC v2 ----------------------------------

def notifications(sandbox, **params):
    return api(sandbox, "GET", "/alert-management/v1/notifications", params=params)


def iocs(sandbox, **params):
    return api(sandbox, "GET", "/technical-intelligence/v2/indicators", params=params)


def test_ignite_serves_the_same_attributes_and_scroll_under_technical_intelligence_v1(sandbox):
    v4 = attributes(sandbox, types="domain", limit=100).json()
    ignite = api(sandbox, "GET", "/technical-intelligence/v1/attribute", params={"types": "domain", "limit": 100})
    assert ignite.json() == v4 and len(v4) == 60
    opened = api(sandbox, "GET", "/technical-intelligence/v1/attribute",
                 params={"types": "domain", "limit": 50, "scroll": "true"}).json()
    step = api(sandbox, "POST", "/technical-intelligence/v1/scroll", json={"scroll_id": opened["scroll_id"]}).json()
    assert [d["fpid"] for d in opened["results"] + step["results"]] == [d["fpid"] for d in v4]
    assert api(sandbox, "DELETE", "/technical-intelligence/v1/scroll",
               json={"scroll_id": opened["scroll_id"]}).status_code == 200
    assert api(sandbox, "GET", "/technical-intelligence/v1/attribute", headers={}).status_code == 401


def test_notifications_page_by_cursor_in_an_absolute_next_link(sandbox):
    fp = sandbox["flashpoint"]
    params = {"created_after": iso(fp.end - fp.span - 5), "created_before": iso(fp.end + 5), "size": 15,
              "sort": "created_at:asc"}
    seen, pages = [], 0
    while True:
        body = notifications(sandbox, **params).json()
        pages += 1
        assert set(body) == {"items", "pagination"}
        seen += body["items"]
        following = body["pagination"]["next"]
        if not following:
            break
        assert following.startswith(sandbox.url("flashpoint") + "/alert-management/v1/notifications?")
        params = {k: v[0] for k, v in parse_qs(urlsplit(following).query).items()}
        assert params["cursor"] and params["created_after"]
    assert pages == 3 and len(seen) == 40 and len({n["id"] for n in seen}) == 40
    times = [n["created_at"] for n in seen]
    assert times == sorted(times) and all(t.endswith("Z") and "." in t for t in times)
    chat = next(n for n in seen if n["source"] == "communities")
    assert chat["resource"]["site"]["title"] == "4chan" and chat["resource"]["id"] and chat["data_type"] == "chan"
    assert chat["reason"]["origin"] == "searches" and chat["highlight_text"].count("<mark>") == 1
    exposure = next(n for n in seen if n["source"] == "data_exposure__github")
    assert exposure["resource"]["repo"] and exposure["resource"]["file"] and "snippet" in exposure["highlights"]
    newest_first = notifications(sandbox, size=5).json()["items"]                  # created_at:desc by default
    assert [n["created_at"] for n in newest_first] == sorted((n["created_at"] for n in newest_first), reverse=True)


def test_notifications_refuse_an_offset_time_and_bad_sizes(sandbox):
    assert notifications(sandbox, created_after="2024-06-19T09:11:22+00:00").status_code == 400
    assert notifications(sandbox, size=0).status_code == 422 and notifications(sandbox, size=5001).status_code == 422
    assert notifications(sandbox, sort="ts").status_code == 422
    assert notifications(sandbox, cursor="nope").status_code == 400
    raised = control(sandbox, "alerts", count=2)["raised"]
    recent = notifications(sandbox, created_after=iso(time.time() - 60), sort="created_at:asc").json()
    assert [n["id"] for n in recent["items"]] == raised and recent["pagination"]["next"] is None


def test_ioc_v2_documents_have_the_partner_shape_and_page_by_from(sandbox):
    first = iocs(sandbox, ioc_types="file", size=100, sort="modified_at:asc").json()
    assert set(first) == {"items", "pagination"} and len(first["items"]) == 100
    doc = first["items"][0]
    assert {"id", "type", "value", "href", "score", "modified_at", "created_at", "last_seen_at", "platform_urls",
            "mitre_attack_ids", "sightings"} <= set(doc)
    assert doc["type"] == "file" and doc["score"]["value"] in ("malicious", "suspicious", "informational")
    assert {n["type"] for n in first["items"]} == {"file"}
    hashed = [n for n in first["items"] if "hashes" in n]
    assert hashed and all(n["value"] in n["hashes"].values() for n in hashed)
    following = first["pagination"]["next"]
    assert "from=100" in following
    rest = iocs(sandbox, **{k: v[0] for k, v in parse_qs(urlsplit(following).query).items()}).json()
    assert len(rest["items"]) == 100 and rest["pagination"]["next"]            # 240 file IOCs in all
    times = [n["modified_at"] for n in first["items"] + rest["items"]]
    assert times == sorted(times)
    ips = iocs(sandbox, ioc_types="ipv4", size=1000).json()
    assert len(ips["items"]) == 180 and all("|" not in n["value"] for n in ips["items"])
    assert ips["pagination"]["next"] is None


def test_ioc_v2_windows_and_limits(sandbox):
    fp = sandbox["flashpoint"]
    middle = fp.end - fp.span // 2
    early = iocs(sandbox, ioc_types="url", size=1000, modified_before=iso(middle)).json()["items"]
    late = iocs(sandbox, ioc_types="url", size=1000, modified_after=iso(middle)).json()["items"]
    assert len(early) + len(late) == 60 and early and late
    assert iocs(sandbox, size=1001).status_code == 422 and iocs(sandbox, **{"from": -1}).status_code == 422
    assert iocs(sandbox, size=1000, **{"from": 9001}).status_code == 400        # the 10,000 result window
    assert iocs(sandbox, modified_after="yesterday").status_code == 400


def recorded(name):
    """A body recorded by partner code (tests/connectors/flashpoint/samples, each with its .source.txt)."""
    path = os.path.join(os.path.dirname(__file__), "..", "connectors", "flashpoint", "samples", name + ".json")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def test_ignite_documents_have_the_keys_of_the_recorded_ones(sandbox):
    sample = recorded("alert_management_v1_notifications_response")
    served = notifications(sandbox, size=50).json()
    assert set(served["pagination"]) >= {"next"} and set(sample["pagination"]) >= {"next"}
    for kind in ("communities", "data_exposure__github"):
        mine = next(n for n in served["items"] if n["source"] == kind)
        theirs = next(n for n in sample["items"] if n["source"] == kind)
        assert set(mine) == set(theirs), kind
        assert set(mine["reason"]) >= set(theirs["reason"]) - {"entity"} and mine["reason"]["origin"] == "searches"
        assert set(theirs["resource"]) - set(mine["resource"]) <= {"section"}, kind
    indicator = recorded("technical_intelligence_v2_indicator_response")
    hashed = next(n for n in iocs(sandbox, ioc_types="file", size=50).json()["items"] if "hashes" in n)
    assert set(hashed) == set(indicator)
    assert set(hashed["score"]) == set(indicator["score"]) and set(hashed["sightings"][0]) == set(
        indicator["sightings"][0])
