"""The CTCI stand-in over HTTP: the contract of reference ctci.md section 7 and every switch."""

import time

import pytest
import requests

from tq_conn_sandbox.services.ctci import DISABLED_TOKEN, NSA_2020, TOKEN, UNSUBSCRIBED_TOKEN


def get(sandbox, token=TOKEN, path="/api/v1/cewl"):
    headers = {"x-api-key": token} if token is not None else {}
    return requests.get(sandbox.url("ctci") + path, headers=headers, timeout=10)


def switch(sandbox, **values):
    response = requests.post(sandbox.url("ctci") + "/_sandbox/ctci/switches", json=values, timeout=5)
    response.raise_for_status()
    return response.json()


def test_the_default_answer_is_the_envelope_with_lower_case_keys_and_epoch_ms(sandbox):
    response = get(sandbox)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == 200 and body["title"] == "CEWL"
    rows = body["data"]
    assert len(rows) == 30
    assert all("cve" in row and "CVE" not in row for row in rows)
    assert isinstance(rows[0]["date_added"], int) and rows[0]["date_added"] > 1e12
    ids = [row["id_ref"] for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert any(row["cve"].startswith("pCVE-") for row in rows)   # a provisional id is on the list


@pytest.mark.parametrize("token,status,detail", [(None, 401, "x-api-key header missing"),
                                                 ("wrong", 401, "not valid"),
                                                 (DISABLED_TOKEN, 403, "disabled")])
def test_a_missing_unknown_or_disabled_token_gets_a_problem_body(sandbox, token, status, detail):
    response = get(sandbox, token)
    assert response.status_code == status
    problem = response.json()
    assert problem["status"] == status and detail in problem["detail"] and problem["instance"] == "/api/v1/cewl"


def test_the_header_name_is_case_insensitive(sandbox):
    response = requests.get(sandbox.url("ctci") + "/api/v1/cewl", headers={"X-API-KEY": TOKEN}, timeout=10)
    assert response.status_code == 200


def test_an_unsubscribed_token_gets_the_restricted_list(sandbox):
    rows = get(sandbox, UNSUBSCRIBED_TOKEN).json()["data"]
    assert {row["cve"] for row in rows} == NSA_2020


def test_switch_upper_case_key(sandbox):
    switch(sandbox, key_case="upper")
    rows = get(sandbox).json()["data"]
    assert all("CVE" in row and "cve" not in row for row in rows)


def test_switch_bare_array(sandbox):
    switch(sandbox, envelope="bare")
    body = get(sandbox).json()
    assert isinstance(body, list) and len(body) == 30


def test_the_older_spec_path_answers_a_bare_array(sandbox):
    assert isinstance(get(sandbox, path="/cve/cewl_download").json(), list)


@pytest.mark.parametrize("style,pattern", [("iso", "2020-07-06T00:00:00Z"), ("http", "Mon, 06 Jul 2020 00:00:00 GMT")])
def test_switch_date_text(sandbox, style, pattern):
    switch(sandbox, dates=style)
    row = next(r for r in get(sandbox).json()["data"] if r["cve"] == "CVE-2020-5902")
    assert row["date_added"] == pattern


def test_switch_bad_cve_adds_invalid_ids_and_a_repeat(sandbox):
    switch(sandbox, bad_cve=True)
    rows = get(sandbox).json()["data"]
    assert len(rows) == 35
    assert {"CVE-20-1", "not a cve", None} <= {row.get("cve") for row in rows}
    assert sum(1 for row in rows if row.get("cve") == rows[0]["cve"]) == 2


def test_switch_rows_serves_a_large_list_streamed(sandbox):
    switch(sandbox, rows=20_000)
    response = get(sandbox)
    assert response.headers.get("Transfer-Encoding") == "chunked"
    rows = response.json()["data"]
    assert len(rows) == 20_000 and len({row["cve"] for row in rows}) == 20_000


def test_switch_throttle_answers_429_with_retry_after_then_recovers(sandbox):
    switch(sandbox, throttle=2, retry_after=7)
    for _ in range(2):
        response = get(sandbox)
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert get(sandbox).status_code == 200


def test_switch_fail_answers_500(sandbox):
    switch(sandbox, fail=1)
    response = get(sandbox)
    assert response.status_code == 500 and response.json()["title"] == "Internal Server Error"
    assert get(sandbox).status_code == 200


@pytest.mark.parametrize("status", [502, 200])
def test_switch_html_error_page(sandbox, status):
    switch(sandbox, html=1, html_status=status)
    response = get(sandbox)
    assert response.status_code == status and response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")


def test_switch_truncate_cuts_the_json_in_half(sandbox):
    switch(sandbox, truncate=1)
    response = get(sandbox)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert get(sandbox).json()["data"]


def test_switches_are_checked_and_reset(sandbox):
    response = requests.post(sandbox.url("ctci") + "/_sandbox/ctci/switches", json={"colour": "red"}, timeout=5)
    assert response.status_code == 400 and "colour" in response.json()["error"]["message"]
    switch(sandbox, key_case="upper")
    sandbox.reset()
    assert requests.get(sandbox.url("ctci") + "/_sandbox/ctci/switches", timeout=5).json()["key_case"] == "lower"


def test_a_new_row_gets_the_next_id_ref(sandbox):
    before = get(sandbox).json()["data"]
    response = requests.post(sandbox.url("ctci") + "/_sandbox/ctci/rows", json={"cve": "CVE-2025-0282"}, timeout=5)
    assert response.status_code == 201
    after = get(sandbox).json()["data"]
    assert after[-1]["cve"] == "CVE-2025-0282"
    assert after[-1]["id_ref"] == max(row["id_ref"] for row in before) + 1
    assert abs(after[-1]["date_added"] / 1000 - time.time()) < 60


def test_other_entities_are_404_problems(sandbox):
    response = get(sandbox, path="/api/v1/user")
    assert response.status_code == 404 and response.json()["status"] == 404
