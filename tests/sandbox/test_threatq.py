"""The ThreatQ stand-in over HTTP: the checklist of reference threatq-api.md section 10 and every switch."""

import json
import time
from datetime import datetime, timedelta

import pytest
import requests

from tq_conn_sandbox.services.threatq import (CLIENT_ID, PASSWORD, PRIVATE_CLIENT_ID, PRIVATE_CLIENT_SECRET, TYPES,
                                              USERNAME, Collection)

WITH = "attributes,adversaries,score,status,type"


def url(sandbox, path):
    return sandbox.url("threatq") + path


def login(sandbox, variant="A", email=USERNAME, password=PASSWORD, client_id=CLIENT_ID):
    fields = {"email": email, "password": password}
    full = {**fields, "grant_type": "password", "client_id": client_id}
    if variant == "A":
        return requests.post(url(sandbox, "/api/token"), params={"grant_type": "password", "client_id": client_id},
                             json=fields, timeout=10)
    if variant == "B":
        return requests.post(url(sandbox, "/api/token"), json=full, timeout=10)
    return requests.post(url(sandbox, "/api/token"), data=full, timeout=10)


def token(sandbox):
    return login(sandbox).json()["access_token"]


def api(sandbox, method, path, tok=None, **kwargs):
    headers = {"Authorization": f"Bearer {tok or token(sandbox)}"}
    return requests.request(method, url(sandbox, "/api/" + path), headers=headers, timeout=30, **kwargs)


def control(sandbox, path, body):
    response = requests.post(url(sandbox, "/_sandbox/threatq/" + path), json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def collection(sandbox, name):
    items = api(sandbox, "GET", "search/query").json()["data"]
    item = next(i for i in items if i["name"] == name)
    query = item["json"] if isinstance(item["json"], dict) else json.loads(item["json"])
    return item, query["api_query"]


def page(sandbox, name, tok=None, **params):
    _, query = collection(sandbox, name)
    return api(sandbox, "POST", "indicators/query", tok=tok, json=query, params=params)


# Tokens (reference section 2).

@pytest.mark.parametrize("variant", ["A", "B", "C"])
def test_every_password_grant_variant_gets_a_bearer_token(sandbox, variant):
    response = login(sandbox, variant)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"]
    assert sandbox["threatq"].logins[-1]["variant"] == variant
    assert api(sandbox, "GET", "search/query", tok=body["access_token"]).status_code == 200


@pytest.mark.parametrize("change", [{"password": "wrong"}, {"email": "nobody@example.com"}, {"client_id": "nope"}])
def test_bad_credentials_get_400_with_an_errors_body(sandbox, change):
    response = login(sandbox, **change)
    assert response.status_code == 400
    assert response.json()["errors"]


def test_client_credentials_need_basic_auth_of_a_private_client(sandbox):
    ok = requests.post(url(sandbox, "/api/token"), params={"grant_type": "client_credentials"},
                       auth=(PRIVATE_CLIENT_ID, PRIVATE_CLIENT_SECRET), timeout=10)
    assert ok.status_code == 200 and ok.json()["access_token"]
    bad = requests.post(url(sandbox, "/api/token"), params={"grant_type": "client_credentials"},
                        auth=(PRIVATE_CLIENT_ID, "wrong"), timeout=10)
    assert bad.status_code == 401


def test_a_refresh_token_gives_a_new_token_once(sandbox):
    first = login(sandbox).json()
    refreshed = requests.post(url(sandbox, "/api/token"), timeout=10, headers={
        "Authorization": f"Bearer {first['access_token']}"},
        params={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != first["access_token"]
    again = requests.post(url(sandbox, "/api/token"), timeout=10,
                          params={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 400


def test_tokens_expire_after_expires_in(sandbox):
    control(sandbox, "settings", {"expires_in": 1})
    body = login(sandbox).json()
    assert body["expires_in"] == 1
    assert api(sandbox, "GET", "search/query", tok=body["access_token"]).status_code == 200
    time.sleep(1.1)
    assert api(sandbox, "GET", "search/query", tok=body["access_token"]).status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic abc"])
def test_every_api_route_checks_the_bearer_token(sandbox, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "search/query"), ("POST", "indicators/query"), ("GET", "indicator/types"),
                         ("GET", "indicator/statuses"), ("GET", "connectors"), ("POST", "connectors"),
                         ("GET", "indicators/query/hash/1"), ("GET", "indicators/40000001")):
        response = requests.request(method, url(sandbox, "/api/" + path), headers=headers, json={}, timeout=10)
        assert response.status_code == 401, (method, path)


def test_token_uses_and_expire_now_switches(sandbox):
    control(sandbox, "settings", {"token_uses": 2})
    tok = token(sandbox)
    codes = [api(sandbox, "GET", "indicator/types", tok=tok).status_code for _ in range(3)]
    assert codes == [200, 200, 401]
    control(sandbox, "settings", {"token_uses": 0})
    tok = token(sandbox)
    requests.post(url(sandbox, "/_sandbox/threatq/tokens/expire"), timeout=5).raise_for_status()
    assert api(sandbox, "GET", "indicator/types", tok=tok).status_code == 401


# Data collections and paging (reference section 3).

def test_collections_are_listed_with_their_query_sometimes_as_a_json_string(sandbox):
    items = api(sandbox, "GET", "search/query").json()["data"]
    names = {i["name"]: i for i in items}
    assert {"Devo Export", "High Confidence C2", "Empty Collection", "All Indicators 1M"} <= set(names)
    assert isinstance(names["Devo Export"]["json"], dict)
    assert isinstance(names["High Confidence C2"]["json"], str)
    assert "api_query" in json.loads(names["High Confidence C2"]["json"])
    assert all(len(i["hash"]) == 32 for i in items)


def test_offset_paging_covers_the_collection_once_with_total(sandbox):
    values, offset = [], 0
    while True:
        body = page(sandbox, "Devo Export", limit=120, offset=offset, sort="id", **{"with": WITH}).json()
        assert body["total"] == 500
        if not body["data"]:
            break
        values += [i["id"] for i in body["data"]]
        offset += len(body["data"])
    assert len(values) == 500 and values == sorted(values) and len(set(values)) == 500


def test_sorting_newest_first_reverses_the_order_and_updated_at_falls(sandbox):
    body = page(sandbox, "Devo Export", limit=50, offset=0, sort="-updated_at").json()
    stamps = [i["updated_at"] for i in body["data"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["data"][0]["id"] == sandbox["threatq"].collection("Devo Export").indicator_id(499)


def test_the_page_size_is_capped(sandbox):
    body = page(sandbox, "All Indicators 1M", limit=5000, offset=0).json()
    assert len(body["data"]) == 1000 and body["limit"] == 1000
    control(sandbox, "settings", {"max_limit": 100})
    body = page(sandbox, "Devo Export", limit=5000, offset=0).json()
    assert len(body["data"]) == 100 and body["total"] == 500


def test_cursor_paging_ends_with_an_empty_object_and_the_same_cursor(sandbox):
    item, _ = collection(sandbox, "Devo Export")
    cursor, seen = "*", []
    for _ in range(20):
        body = api(sandbox, "GET", f"indicators/query/hash/{item['hash']}",
                   params={"limit": 200, "cursorMark": cursor, "sort": "updated_at", "with": WITH}).json()
        if not body["data"]:
            assert body["data"] == {} and body["nextCursorMark"] == cursor
            break
        seen += [i["id"] for i in body["data"]]
        cursor = body["nextCursorMark"]
    assert len(seen) == 500 and len(set(seen)) == 500
    control(sandbox, "settings", {"last_page": "list"})
    body = api(sandbox, "GET", f"indicators/query/hash/{item['hash']}", params={"cursorMark": cursor}).json()
    assert body["data"] == []


def test_with_decides_the_related_lists_and_the_score_shape(sandbox):
    plain = page(sandbox, "Devo Export", limit=3, offset=0).json()["data"][0]
    assert "attributes" not in plain and "adversaries" not in plain
    assert isinstance(plain["score"], (int, float)) and isinstance(plain["type"], dict)
    control(sandbox, "settings", {"lists_by": "with"})    # an older ThreatQ: with= brings attributes too
    full = page(sandbox, "Devo Export", limit=3, offset=0, **{"with": WITH}).json()["data"][0]
    assert isinstance(full["attributes"], list) and isinstance(full["adversaries"], list)
    assert set(full["score"]) >= {"generated_score", "manual_score"}
    assert {k: v for k, v in full.items() if k not in ("attributes", "adversaries", "score")} == \
        {k: v for k, v in plain.items() if k != "score"}


def test_attributes_and_sources_come_only_when_fields_asks_for_them(sandbox):
    _, query = collection(sandbox, "Devo Export")
    bare = page(sandbox, "Devo Export", limit=3, offset=0, **{"with": WITH}).json()["data"][0]
    assert "attributes" not in bare and "sources" not in bare and isinstance(bare["adversaries"], list)
    asked = api(sandbox, "POST", "indicators/query", params={"limit": 3, "with": WITH},
                json={**query, "fields": ["*", "attributes", "sources"]}).json()["data"][0]
    assert asked["attributes"] and asked["sources"] and isinstance(asked["type"], dict)
    assert {k: v for k, v in asked.items() if k not in ("attributes", "sources")} == bare
    item, _ = collection(sandbox, "Devo Export")
    cursor = api(sandbox, "GET", f"indicators/query/hash/{item['hash']}",
                 params={"limit": 3, "fields": "*,attributes"}).json()["data"][0]
    assert cursor["attributes"] and "sources" not in cursor


def test_an_untidy_query_is_refused_until_cleaned(sandbox):
    sandbox["threatq"].add_collection("Untidy", 40, seed=5, untidy=True)
    _, query = collection(sandbox, "Untidy")
    assert {"type_name": "Retired Type"} in query["criteria"]["+or"]
    refused = api(sandbox, "POST", "indicators/query", params={"limit": 3}, json=query)
    assert refused.status_code == 400 and "Retired Type" in refused.text


def test_fields_narrow_the_payload_with_plain_names(sandbox):
    _, query = collection(sandbox, "Devo Export")
    body = api(sandbox, "POST", "indicators/query", params={"limit": 2},
               json={**query, "fields": ["id", "value", "type", "status", "score"]}).json()
    item = body["data"][0]
    assert set(item) == {"id", "value", "type", "status", "score"}
    assert isinstance(item["type"], str) and isinstance(item["status"], str) and isinstance(item["score"], float)


@pytest.mark.parametrize("switch,check", [
    ({"score_shape": "number"}, lambda i: isinstance(i["score"], (int, float))),
    ({"score_shape": "object"}, lambda i: isinstance(i["score"], dict)),
    ({"type_shape": "string"}, lambda i: isinstance(i["type"], str) and isinstance(i["status"], str)),
    ({"type_shape": "id"}, lambda i: "type" not in i and "status" not in i and i["type_id"]),
    ({"empty_attributes": True}, lambda i: any(a["name"] == "" and a["value"] == "" for a in i["attributes"])),
])
def test_shape_switches(sandbox, switch, check):
    control(sandbox, "settings", {**switch, "lists_by": "with"})
    items = page(sandbox, "Devo Export", limit=5, offset=0, **{"with": WITH}).json()["data"]
    assert all(check(i) for i in items)


def test_generated_data_is_realistic_and_the_same_every_time(sandbox):
    control(sandbox, "settings", {"lists_by": "with"})
    items = page(sandbox, "Devo Export", limit=500, offset=0, **{"with": WITH}).json()["data"]
    again = page(sandbox, "Devo Export", limit=500, offset=0, **{"with": WITH}).json()["data"]
    assert items == again
    types = {i["type"]["name"] for i in items}
    statuses = {i["status"]["name"] for i in items}
    assert {"IP Address", "FQDN", "URL", "MD5", "SHA-256"} <= types
    assert {"Active", "Review", "Expired"} <= statuses
    names = {a["name"] for i in items for a in i["attributes"]}
    assert {"Attack Phase", "Threat Type", "Actor", "Related Adversary", "Related Actor"} <= names
    assert any(i["adversaries"] for i in items) and any(i["score"]["manual_score"] is not None for i in items)
    values = [i["value"] for i in items]
    assert len(values) - len(set(values)) == 9     # duplicate_every 50: indexes 49, 99, ... repeat a value


def test_a_million_indicators_are_served_from_a_seed(sandbox):
    control(sandbox, "settings", {"lists_by": "with"})
    body = page(sandbox, "All Indicators 1M", limit=1000, offset=998_500, **{"with": WITH}).json()
    assert body["total"] == 1_000_000 and len(body["data"]) == 1000
    assert body["data"][-1]["id"] == sandbox["threatq"].collection("All Indicators 1M").indicator_id(999_499)


def test_collections_of_any_size_can_be_added_over_http(sandbox):
    control(sandbox, "collections", {"name": "Tiny", "size": 3, "seed": 9, "empty_value_every": 3})
    items = page(sandbox, "Tiny", limit=10, offset=0).json()["data"]
    assert len(items) == 3 and items[2]["value"] == "" and items[0]["value"]
    rows = requests.get(url(sandbox, "/_sandbox/threatq/collections/Tiny/indicators"), timeout=10).json()
    assert rows["total"] == 3 and rows["data"][0]["attributes"]


def test_fail_page_and_revoke_on_page_hit_the_nth_page_only(sandbox):
    control(sandbox, "settings", {"fail_page": 2, "fail_status": 503, "fail_count": 2})
    tok = token(sandbox)
    codes = [page(sandbox, "Devo Export", tok=tok, limit=100, offset=o).status_code for o in (0, 100, 100, 100, 200)]
    assert codes == [200, 503, 503, 200, 200]
    control(sandbox, "settings", {"fail_page": 1, "fail_status": 429, "fail_retry_after": 2})
    throttled = page(sandbox, "Devo Export", limit=100, offset=0)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    control(sandbox, "settings", {"revoke_on_page": 2, "fail_page": 0})
    tok = token(sandbox)
    assert page(sandbox, "Devo Export", tok=tok, limit=100, offset=0).status_code == 200
    assert page(sandbox, "Devo Export", tok=tok, limit=100, offset=100).status_code == 401
    assert page(sandbox, "Devo Export", limit=100, offset=100).status_code == 200


def test_shared_faults_apply(sandbox):
    sandbox.fault("threatq", path="^/api/indicators/query$", malformed=True)
    response = page(sandbox, "Devo Export", limit=5, offset=0)
    with pytest.raises(ValueError):
        response.json()


# Changes, touched_at windows, narrow listings, one indicator by id (reference 3.2, 3.4, 5).

LISTING = ["id", "value", "touched_at"]


def listing(sandbox, name, window=None, fields=LISTING, **params):
    """Return the response to the exporter's listing of a collection, narrowed to a touched_at window if given."""
    _, query = collection(sandbox, name)
    if window:
        query["filters"]["+and"].append({"touched_at": window})
    return api(sandbox, "POST", "indicators/query", json={**query, "fields": fields},
               params={"limit": 1000, "offset": 0, "sort": "-updated_at", **params})


def change(sandbox, size, revision):
    """Change the collection "Moving" (seed 21): another size, every 30th indicator at another revision."""
    sandbox["threatq"].add_collection("Moving", size, seed=21, changed_every=30, revision=revision)


def test_a_change_stamps_touched_at_on_what_it_changed_and_keeps_the_history(sandbox):
    change(sandbox, 300, 0)
    before = {i["id"]: i for i in listing(sandbox, "Moving", fields=["*"]).json()["data"]}
    newest_generated = max(i["touched_at"] for i in before.values())
    change(sandbox, 310, 1)
    first = {i["id"]: i for i in listing(sandbox, "Moving", fields=["*"]).json()["data"]}
    change(sandbox, 305, 2)
    second = {i["id"]: i for i in listing(sandbox, "Moving", fields=["*"]).json()["data"]}
    ident = sandbox["threatq"].collection("Moving").indicator_id
    stamp_1, stamp_2 = first[ident(0)]["touched_at"], second[ident(0)]["touched_at"]
    assert newest_generated < stamp_1 < stamp_2 and stamp_2 >= _later(stamp_1, 1)
    assert set(second) == {ident(i) for i in range(305)}         # the newest five were removed
    for index in range(305):
        item = second[ident(index)]
        expected = stamp_2 if index % 30 == 0 else stamp_1 if index >= 300 else before[ident(index)]["touched_at"]
        assert item["touched_at"] == expected, index
        unchanged = first[ident(index)] if index >= 300 else before[ident(index)]
        assert item["updated_at"] == unchanged["updated_at"]
        assert (item["score"] != unchanged["score"]) == (index % 30 == 0), index
    narrow = listing(sandbox, "Moving").json()["data"]
    assert narrow == [{k: second[i["id"]][k] for k in LISTING} for i in narrow]


def _later(stamp, seconds):
    when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def test_a_touched_at_window_answers_only_what_changed_in_it_paged_in_the_collections_order(sandbox):
    change(sandbox, 300, 0)
    newest_generated = max(i["touched_at"] for i in listing(sandbox, "Moving").json()["data"])
    change(sandbox, 310, 1)
    change(sandbox, 305, 2)
    ident = sandbox["threatq"].collection("Moving").indicator_id
    everything = listing(sandbox, "Moving").json()["data"]
    stamp_1, stamp_2 = everything[0]["touched_at"], everything[-1]["touched_at"]   # indexes 304 and 0
    touched = [ident(i) for i in reversed(range(305)) if i % 30 == 0 or i >= 300]
    body = listing(sandbox, "Moving", {"+gt": newest_generated}).json()
    assert body["total"] == len(touched) and [i["id"] for i in body["data"]] == touched
    assert [i["id"] for i in listing(sandbox, "Moving", {"+gte": stamp_2}).json()["data"]] == [
        ident(i) for i in reversed(range(0, 305, 30))]
    assert [i["id"] for i in listing(sandbox, "Moving", {"+gt": newest_generated, "+lte": stamp_1}).json()[
        "data"]] == [ident(i) for i in (304, 303, 302, 301)]
    now = listing(sandbox, "Moving", {"+gt": newest_generated, "+lt": "NOW"}).json()["data"]
    assert {ident(i) for i in (304, 303, 302, 301)} <= {i["id"] for i in now} <= set(touched)
    page = listing(sandbox, "Moving", {"+gt": newest_generated}, limit=4, offset=3, sort="id").json()
    assert page["total"] == len(touched) and [i["id"] for i in page["data"]] == sorted(touched)[3:7]
    assert listing(sandbox, "Moving", {"+gt": stamp_2}).json() == {"total": 0, "limit": 1000, "offset": 0,
                                                                   "data": []}


def test_a_window_after_every_generated_stamp_of_a_million_looks_only_at_the_changed(sandbox):
    threatq = sandbox["threatq"]
    threatq.add_collection("All Indicators 1M", 995_000, seed=4, duplicate_every=1000, changed_every=100, revision=1)
    source = threatq.collection("All Indicators 1M")
    body = listing(sandbox, "All Indicators 1M", {"+gt": "2026-01-01 00:00:00", "+lte": source.now()}).json()
    assert body["total"] == 9950
    assert [i["id"] for i in body["data"][:3]] == [source.indicator_id(i) for i in (994_900, 994_800, 994_700)]


def test_a_window_reaching_back_into_generated_stamps_and_on_other_dates(sandbox):
    items = listing(sandbox, "Devo Export", fields=["id", "created_at", "updated_at", "touched_at"]).json()["data"]
    _, query = collection(sandbox, "Devo Export")
    for field in ("touched_at", "created_at", "updated_at"):
        stamps = sorted(i[field] for i in items)
        low, high = stamps[100], stamps[400]
        query["filters"]["+and"] = query["filters"]["+and"][:2] + [{field: {"+gte": low, "+lt": high}}]
        body = api(sandbox, "POST", "indicators/query", params={"limit": 1000, "sort": "id"},
                   json={**query, "fields": ["id"]}).json()
        expected = sorted(i["id"] for i in items if low <= i[field] < high)
        assert body["total"] == len(expected) and [i["id"] for i in body["data"]] == expected, field
    query["filters"]["+and"][2] = {"touched_at": {"+gt": "2000-01-01 00:00:00"}}
    query["filters"]["+and"][0] = {"tags": {"+or": ["Another Collection"]}}
    assert api(sandbox, "POST", "indicators/query", json=query).json()["total"] == 0


def test_plain_fields_alone_give_the_values_of_the_full_rendering(sandbox):
    sandbox["threatq"].add_collection("Check", 200, seed=12, sparse=True, empty_value_every=7, duplicate_every=10)
    sandbox["threatq"].add_collection("Check", 220, seed=12, sparse=True, empty_value_every=7, duplicate_every=10,
                                      changed_every=9, revision=1)
    control(sandbox, "settings", {"score_shape": "mixed", "type_shape": "id"})   # plain fields are not shaped
    plain = ["id", "value", "class", "type_id", "status_id", "hash", "description", "created_at", "updated_at",
             "touched_at", "published_at", "expires_at", "expired_at", "expires_calculated_at"]
    full = listing(sandbox, "Check", fields=["*"], sort="-id").json()["data"]
    for fields in (plain, LISTING, ["touched_at", "id", "touched_at"]):
        narrow = listing(sandbox, "Check", fields=fields, sort="-id").json()["data"]
        assert narrow == [{k: item[k] for k in fields} for item in full]
        assert list(narrow[0]) == list(dict.fromkeys(fields))
    item, _ = collection(sandbox, "Check")
    cursor = api(sandbox, "GET", f"indicators/query/hash/{item['hash']}",
                 params={"limit": 220, "fields": "id,touched_at"}).json()["data"]
    assert cursor == [{"id": i["id"], "touched_at": i["touched_at"]} for i in reversed(full)]


def test_one_indicator_by_id_with_its_lists_or_404(sandbox):
    change(sandbox, 100, 0)
    change(sandbox, 90, 1)
    source = sandbox["threatq"].collection("Moving")
    with_ = tuple(WITH.split(","))
    for index in (0, 7, 89):
        body = api(sandbox, "GET", f"indicators/{source.indicator_id(index)}", params={"with": WITH}).json()
        assert body == {"data": source.indicator(index, with_)}
        assert body["data"]["attributes"] and isinstance(body["data"]["score"], dict)
    assert body["data"]["touched_at"] == listing(sandbox, "Moving").json()["data"][0]["touched_at"]
    for gone in (source.indicator_id(90), source.indicator_id(99), 999 * 10_000_000 + 1):
        missing = api(sandbox, "GET", f"indicators/{gone}", params={"with": WITH})
        assert missing.status_code == 404 and missing.json()["errors"]


# Lookups and connector records (reference sections 4 and 9).

def test_types_and_statuses_resolve_by_name(sandbox):
    types = api(sandbox, "GET", "indicator/types", params={"name": "IP Address"}).json()["data"]
    assert types == [api(sandbox, "GET", f"indicator/types/{types[0]['id']}").json()["data"]]
    statuses = {s["name"]: s["id"] for s in api(sandbox, "GET", "indicator/statuses").json()["data"]}
    assert statuses == {"Active": 1, "Expired": 2, "Indirect": 3, "Review": 4, "Whitelisted": 5}


def test_connector_records_register_update_and_play_the_ui(sandbox):
    fields = [{"name": "lookup_name", "label": "Lookup Table Name", "type": "text"}]
    created = api(sandbox, "POST", "connectors", json={"name": "tq-conn-x", "category": "Labs",
                                                        "custom_fields": fields, "is_active": False})
    assert created.status_code == 201
    record = created.json()["data"]
    assert record["category"]["name"] == "Labs" and record["is_active"] is False
    assert api(sandbox, "POST", "connectors", json={"name": "tq-conn-x"}).json()["data"]["errors"]["name"]
    control(sandbox, "connectors/tq-conn-x", {"values": {"lookup_name": "IOCs"}, "is_active": True})
    listed = api(sandbox, "GET", "connectors", params={"name": "tq-conn-x"}).json()["data"]
    assert listed[0]["custom_fields"][0]["value"] == "IOCs" and listed[0]["is_active"] is True
    api(sandbox, "PUT", f"connectors/{record['id']}", json={"last_import_at": "2026-01-01 00:00:00",
                                                           "last_import_count": 7})
    assert sandbox["threatq"].connector("tq-conn-x")["last_import_count"] == 7
    bad = requests.post(url(sandbox, "/_sandbox/threatq/connectors/tq-conn-x"), json={"values": {"nope": 1}},
                        timeout=5)
    assert bad.status_code == 404 and "lookup_name" in bad.text


def test_record_shape_switches(sandbox):
    api(sandbox, "POST", "connectors", json={"name": "tq-conn-y", "custom_fields": [{"name": "a", "value": 1}]})
    control(sandbox, "settings", {"is_active_shape": "string", "custom_fields_shape": "string"})
    record = api(sandbox, "GET", "connectors", params={"name": "tq-conn-y"}).json()["data"][0]
    assert record["is_active"] == "" and json.loads(record["custom_fields"]) == [{"name": "a", "value": 1}]


def test_unknown_settings_are_refused(sandbox):
    response = requests.post(url(sandbox, "/_sandbox/threatq/settings"), json={"nope": 1}, timeout=5)
    assert response.status_code == 400 and "expires_in" in response.text


def test_a_collection_is_cheap_whatever_its_size():
    huge = Collection(1, "x", 10 ** 9, seed=5)
    assert huge.indicator(10 ** 9 - 1)["id"] == 5 * 10_000_000 + 10 ** 9


@pytest.mark.parametrize("options", [{}, {"sparse": True, "empty_value_every": 7, "duplicate_every": 10}])
def test_pages_hold_exactly_what_indicator_gives(sandbox, options):
    threatq = sandbox["threatq"]
    threatq.add_collection("Check", 300, seed=12, **options)
    source = threatq.collection("Check")
    with_ = tuple(WITH.split(","))
    control(sandbox, "settings", {"lists_by": "with"})
    body = page(sandbox, "Check", limit=300, offset=0, sort="-id", **{"with": WITH}).json()
    assert body["data"] == [source.indicator(i, with_) for i in reversed(range(300))]
    control(sandbox, "settings", {"score_shape": "number"})
    plain = page(sandbox, "Check", limit=3, offset=0, sort="id", **{"with": WITH}).json()["data"]
    assert [i["id"] for i in plain] == [source.indicator_id(i) for i in range(3)]
    assert all(isinstance(i["score"], (int, float)) for i in plain)


def test_values_of_every_type_are_json_safe_and_the_sparse_collection_leaves_attributes_out():
    full, sparse = Collection(1, "x", 10 ** 6, seed=8), Collection(2, "y", 10 ** 6, seed=8, sparse=True)
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/@-")
    types, counts = set(), {"full": 0, "sparse": 0}
    for index in range(0, 10 ** 6, 997):
        value, kind = full.value(index)
        types.add(kind[1])
        assert value and set(value) <= safe, value
        for name, collection in (("full", full), ("sparse", sparse)):
            item = json.loads(collection.render(index, ("attributes", "adversaries")))
            assert item["value"] == value
            counts[name] += len(item["attributes"])
            assert "Attack Phase" in {a["name"] for a in item["attributes"]} or name == "sparse"
            assert item["adversaries"] or name == "sparse" or {"Actor", "Related Adversary", "Related Actor"} & {
                a["name"] for a in item["attributes"]}
    assert types == {t[1] for t in TYPES[:9]}
    assert counts["sparse"] < 0.8 * counts["full"]
