"""The Flashpoint client against the stand-in over real sockets: paging modes, windows, alerts, and the error ids."""

import argparse

import pytest

from tq_conn_common import AuthError, ConfigError, SourceError
from tq_conn_common import config as cfg
from tq_conn_common.session import Run
from tq_conn_common.state import State
from tq_conn_flashpoint import connector
from tq_conn_common.clock import epoch, iso
from tq_conn_flashpoint.source import Flashpoint
from tq_conn_sandbox.services.flashpoint import TOKEN_BASE64


@pytest.fixture
def client(sandbox, tmp_path, monkeypatch):
    """Return make(**settings) -> a Flashpoint client pointed at the stand-in (quick retries)."""
    monkeypatch.setenv("TQ_CONN_HTTP_BACKOFF", "0.01")
    made = []

    def make(**raw):
        url = sandbox.url("flashpoint")
        values = {"bearer_token_base64": TOKEN_BASE64, "lookups": "domain:fpid",
                  "indicators_url": f"{url}/api/v4", "alerts_url": f"{url}/api/alerting/v1", **raw}
        config = cfg.validate(connector.PARAMS, values)
        run = Run(connector.CONNECTOR, argparse.Namespace(name=None), config, State(str(tmp_path / "s.json")), {})
        made.append(run)
        return Flashpoint(run)
    yield make
    for run in made:
        run.close()


def requests_to(sandbox, path):
    return [r for r in sandbox["flashpoint"].requests if r["path"].endswith(path)]


def window(sandbox):
    fp = sandbox["flashpoint"]
    return fp.end - fp.span, fp.end + 1


def test_scroll_reads_every_indicator_of_the_type_and_closes_the_session(sandbox, client):
    since, until = window(sandbox)
    docs = list(client(page_size=7).indicators("ip-dst|port", since, until))
    assert len(docs) == 60 and len({d["fpid"] for d in docs}) == 60
    assert {d["type"] for d in docs} == {"ip-dst|port"}
    assert all("ip-dst|port" in d["value"] for d in docs)
    times = [d["header_"]["indexed_at"] for d in docs]
    assert times == sorted(times)
    assert len(requests_to(sandbox, "/attribute")) == 1
    methods = [r["method"] for r in requests_to(sandbox, "/scroll")]
    assert methods == ["POST"] * 9 + ["DELETE"]          # 60 = 8 full pages + 4 + one empty page


def test_skip_paging_reads_the_same_indicators(sandbox, client):
    since, until = window(sandbox)
    scrolled = [d["fpid"] for d in client(page_size=7).indicators("sha1", since, until)]
    skipped = [d["fpid"] for d in client(page_size=7, indicators_paging="skip").indicators("sha1", since, until)]
    assert skipped == scrolled and len(skipped) == 60


def test_the_update_window_is_honoured(sandbox, client):
    fp = sandbox["flashpoint"]
    start, end = window(sandbox)
    middle = (start + end) // 2
    first = list(client().indicators("md5", start, middle))
    second = list(client().indicators("md5", middle, end))
    assert first and second and len(first) + len(second) == 60
    assert all(d["header_"]["indexed_at"] < middle for d in first)
    assert all(d["header_"]["indexed_at"] >= middle for d in second)
    query = requests_to(sandbox, "/attribute")[0]["query"]
    assert f"updated_since={iso(start).replace(':', '%3A')}" in query and "sort_timestamp=asc" in query
    assert fp.span > 0


def test_items_after_the_window_are_dropped_when_the_server_ignores_updated_until(sandbox, client):
    sandbox["flashpoint"].ignore_until = True
    start, end = window(sandbox)
    middle = (start + end) // 2
    docs = list(client().indicators("md5", start, middle))
    assert docs and all(d["header_"]["indexed_at"] < middle for d in docs)


@pytest.mark.slow
def test_skip_paging_restarts_the_window_before_the_result_window_ends(sandbox, client):
    sandbox["flashpoint"].configure(count=120_000)          # 12,000 per type: past the 10,000 result window
    since, until = window(sandbox)
    docs = [d["fpid"] for d in client(page_size=1000, indicators_paging="skip").indicators("url", since, until)]
    assert len(docs) == 12_000 and len(set(docs)) == 12_000
    skips = [r["query"] for r in requests_to(sandbox, "/attribute")]
    assert len(skips) == 13 and all("skip=10000" not in q for q in skips)


def test_skip_paging_stops_when_too_many_share_one_second(sandbox, client):
    fp = sandbox["flashpoint"]
    fp.configure(count=0)
    fp.publish("domain", count=10_050, indexed_at=fp.end)
    with pytest.raises(SourceError) as caught:
        list(client(page_size=1000, indicators_paging="skip").indicators("domain", fp.end - 10, fp.end + 10))
    assert caught.value.message.startswith("PullError 101: Error in fetch_indicators Flashpoint: more than 9000 "
                                           "'domain' indicators share the update time")


def test_alerts_follow_the_relative_next_links(sandbox, client):
    fp = sandbox["flashpoint"]
    alerts = list(client(alerts_page_size=6).alerts(fp.end - fp.span - 10, fp.end + 10))
    assert len(alerts) == 40 and len({a["alert_id"] for a in alerts}) == 40
    assert {a["source"].get("source", "chan") for a in alerts} == {"github", "chan"}     # both kinds
    pages = requests_to(sandbox, "/alerts")
    assert len(pages) == 7 and "scroll_id=" in pages[1]["query"] and "size=6" in pages[1]["query"]


def test_a_refused_token_at_setup_is_setup_error_2(sandbox, client):
    sandbox["flashpoint"].token = "another-token"
    with pytest.raises(AuthError) as caught:
        client().check()
    assert caught.value.message.startswith("SetupError 2: Please ensure the bearer token is prepared: Flashpoint "
                                           "refused it (HTTP 401, Invalid or expired API token)")
    assert "bearer_token_base64" in caught.value.fix


def test_a_wrong_base_url_at_setup_is_setup_error_102_naming_the_setting(sandbox, client):
    with pytest.raises(ConfigError) as caught:
        client(api="ignite").check()             # the v4 URL kept while choosing Ignite
    assert caught.value.message.startswith("SetupError 102: Api Flashpoint answered HTTP 404 to GET "
                                           "/api/v4/technical-intelligence/v1/attribute")
    assert "check indicators_url and api" in caught.value.fix and "see the README on the setting api" in \
        caught.value.fix
    with pytest.raises(ConfigError) as caught:
        client(alerts_url=sandbox.url("flashpoint") + "/alerting").check()
    assert "check alerts_url and api" in caught.value.fix


def test_an_unreachable_api_at_setup_is_setup_error_102(client):
    with pytest.raises(ConfigError) as caught:     # the first request of the run: a wrong address
        client(indicators_url="http://127.0.0.1:9").check()
    assert caught.value.message.startswith("SetupError 102: Api Flashpoint at 127.0.0.1:9 refused the connection")


def test_an_api_error_while_pulling_is_pull_error_102_with_flashpoint_s_reason(sandbox, client):
    sandbox.fault("flashpoint", path="/attribute$", status=400, body={"detail": "Invalid types filter"})
    with pytest.raises(ConfigError) as caught:
        list(client().indicators("domain", *window(sandbox)))
    assert caught.value.message == ("PullError 102: Api Flashpoint answered HTTP 400 to GET "
                                    "/api/v4/indicators/attribute: Invalid types filter.")
    sandbox.fault("flashpoint", path="/alerts$", status=503, count=0)
    with pytest.raises(SourceError) as caught:
        list(client().alerts(*window(sandbox)))
    assert caught.value.message.startswith("PullError 102: Api Flashpoint answered HTTP 503 to GET "
                                           "/api/alerting/v1/alerts") and caught.value.retryable


def test_a_malformed_or_cut_answer_while_pulling_is_pull_error_101(sandbox, client):
    sandbox.fault("flashpoint", path="/scroll$", method="POST", malformed=True, count=0)
    with pytest.raises(SourceError) as caught:
        list(client(page_size=10).indicators("domain", *window(sandbox)))
    assert caught.value.message.startswith("PullError 101: Error in fetch_indicators Flashpoint sent malformed JSON")
    sandbox.fault("flashpoint", path="/alerts$", html=True, count=0)
    with pytest.raises(SourceError) as caught:
        list(client().alerts(*window(sandbox)))
    assert caught.value.message.startswith("PullError 101: Error in fetch_alerts Flashpoint sent an HTML page")


def test_a_scroll_handing_out_the_same_page_again_is_pull_error_101(sandbox, client):
    sandbox["flashpoint"].switches["repeat_scroll_page"] = True
    with pytest.raises(SourceError) as caught:
        list(client(page_size=10).indicators("domain", *window(sandbox)))
    assert caught.value.message.startswith("PullError 101: Error in fetch_indicators Flashpoint repeated the same "
                                           "page of 'domain' in one scroll")
    assert len(requests_to(sandbox, "/scroll")) == 1


def test_transient_failures_are_retried(sandbox, client):
    sandbox.fault("flashpoint", path="/attribute$", status=429, retry_after=0, count=2)
    sandbox.fault("flashpoint", path="/alerts$", cut=True, count=1)
    assert len(list(client().indicators("sha256", *window(sandbox)))) == 60
    assert len(list(client().alerts(*window(sandbox)))) == 40


def test_times_round_trip():
    assert iso(epoch("2023-02-07T10:16:59Z")) == "2023-02-07T10:16:59Z"


# ---- Ignite and IOC v2 ------------------------------------------------------------------------------------------------

def ignite(sandbox, api="ignite", **raw):
    return {"api": api, "indicators_url": sandbox.url("flashpoint"), "alerts_url": sandbox.url("flashpoint"), **raw}


def test_the_api_setting_chooses_the_endpoints_and_the_default_urls(client, sandbox):
    assert client(indicators_url=None, alerts_url=None).attribute_url == "https://fp.tools/api/v4/indicators/attribute"
    on_ignite = client(api="ignite", indicators_url=None, alerts_url=None)
    assert on_ignite.attribute_url == "https://api.flashpoint.io/technical-intelligence/v1/attribute"
    assert on_ignite.scroll_url == "https://api.flashpoint.io/technical-intelligence/v1/scroll"
    assert on_ignite.alerts_url == "https://api.flashpoint.io/alert-management/v1/notifications"
    on_v2 = client(api="ioc-v2", indicators_url=None, alerts_url=None)
    assert on_v2.attribute_url == "https://api.flashpoint.io/technical-intelligence/v2/indicators"
    assert (on_v2.alert_id, on_v2.alert_time) == ("id", "created_at")


@pytest.mark.parametrize("paging", ["scroll", "skip"])
def test_ignite_reads_the_same_documents_as_v4(sandbox, client, paging):
    since, until = window(sandbox)
    on_v4 = list(client(indicators_paging=paging).indicators("ip-dst|port", since, until))
    on_ignite = list(client(indicators_paging=paging, **ignite(sandbox)).indicators("ip-dst|port", since, until))
    assert on_ignite == on_v4 and len(on_v4) == 60
    assert {r["path"] for r in sandbox["flashpoint"].requests} >= {"/technical-intelligence/v1/attribute"}


def test_ignite_alerts_follow_the_cursor_of_the_next_link_within_the_window(sandbox, client):
    fp = sandbox["flashpoint"]
    alerts = list(client(alerts_page_size=6, **ignite(sandbox)).alerts(fp.end - fp.span - 10, fp.end + 10))
    assert len(alerts) == 40 and len({a["id"] for a in alerts}) == 40
    pages = requests_to(sandbox, "/notifications")
    assert len(pages) == 7 and all("cursor=" in p["query"] for p in pages[1:])
    assert all(f"created_after={iso(fp.end - fp.span - 10).replace(':', '%3A')}" in p["query"] for p in pages)


def test_ioc_v2_pages_by_from_within_the_update_window(sandbox, client):
    fp = sandbox["flashpoint"]
    start, end = window(sandbox)
    middle = (start + end) // 2
    first = list(client(page_size=7, **ignite(sandbox, "ioc-v2")).indicators("ipv4", start, middle))
    second = list(client(page_size=7, **ignite(sandbox, "ioc-v2")).indicators("ipv4", middle, end))
    assert first and second and len(first) + len(second) == 180
    assert len({d["id"] for d in first + second}) == 180 and {d["type"] for d in first} == {"ipv4"}
    assert all(epoch(d["modified_at"]) < middle for d in first) and all(epoch(d["modified_at"]) >= middle
                                                                         for d in second)
    queries = [r["query"] for r in requests_to(sandbox, "/v2/indicators")]
    assert "from=7&" in queries[1] + "&" and all("ioc_types=ipv4" in q for q in queries)
    assert fp.span > 0


@pytest.mark.slow
def test_ioc_v2_restarts_the_window_before_the_result_window_ends(sandbox, client):
    sandbox["flashpoint"].configure(count=120_000)          # 12,000 url IOCs: past the 10,000 result window
    since, until = window(sandbox)
    docs = [d["id"] for d in client(page_size=1000, **ignite(sandbox, "ioc-v2")).indicators("url", since, until)]
    assert len(docs) == 12_000 and len(set(docs)) == 12_000
    assert all("from=10000" not in r["query"] for r in requests_to(sandbox, "/v2/indicators"))
