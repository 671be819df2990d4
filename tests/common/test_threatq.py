"""The ThreatQ client against the ThreatQ stand-in: tokens and their cache, collections, paging, connector records."""

import gc
import os
import stat
import threading
import time

import pytest
import yaml

from tq_conn_common import config as cfg
from tq_conn_common import threatq
from tq_conn_common.config import Secret
from tq_conn_common.errors import AuthError, ConfigError, SourceError
from tq_conn_common.http import HttpClient
from tq_conn_common.threatq import as_indicator, ui
from tq_conn_common.threatq.client import touched_since
from tq_conn_sandbox.services.threatq import (CLIENT_ID, PASSWORD, PRIVATE_CLIENT_ID, PRIVATE_CLIENT_SECRET,
                                              USERNAME)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tq-conn-x.yaml"
    path.write_text("# tq-conn-x configuration (mode 0600)\nthreatq_host: somewhere\nlookup_name: IOCs\n\n"
                    "# Other parameters: remove the '#' before a key to set it.\n# batch_size: 1000\n")
    return path


@pytest.fixture
def make(sandbox, config_file):
    """Build a client for the stand-in (options override the defaults)."""
    def build(cache=True, clock=time.time, **options):
        http = HttpClient(threatq.SERVICE, threatq.base_url(sandbox.url("threatq")), retries=3, backoff=0.01)
        args = {"client_id": CLIENT_ID, "username": USERNAME, "password": Secret(PASSWORD), **options}
        return threatq.ThreatQ(http, args.pop("client_id"), args.pop("username"), args.pop("password"),
                               cache=threatq.TokenCache(str(config_file)) if cache else None, clock=clock, **args)
    return build


def logins(sandbox):
    return [(x["grant"], x["variant"]) for x in sandbox["threatq"].logins]


def settings(sandbox, **values):
    sandbox["threatq"].configure(**values)


# Host and links.

@pytest.mark.parametrize("host,expected", [
    ("tq.example.com", "https://tq.example.com/api/"),
    ("10.0.0.5:8443", "https://10.0.0.5:8443/api/"),
    ("https://tq.example.com/", "https://tq.example.com/api/"),
    ("http://127.0.0.1:18100/api", "http://127.0.0.1:18100/api/"),
    (" HTTPS://tq.example.com ", "https://tq.example.com/api/"),
])
def test_the_host_may_be_bare_or_a_url(host, expected):
    assert threatq.base_url(host) == expected


@pytest.mark.parametrize("host,expected", [
    ("[::1]:8443", "https://[::1]:8443/api/"),
    ("tq.example.com/api/", "https://tq.example.com/api/"),
    ("https://tq.example.com/proxy/tq", "https://tq.example.com/proxy/tq/api/"),
    ("tq-1.corp_lab.local.", "https://tq-1.corp_lab.local./api/"),
])
def test_ipv6_a_trailing_api_and_a_proxied_path_are_accepted(host, expected):
    assert threatq.base_url(host) == expected


@pytest.mark.parametrize("host", ["", "ftp://tq.example.com", "https://", "tq.example.com:99999",
                                  "https://user:pw@tq.example.com", "ftp//nowhere example", "ftp//nowhere",
                                  "tq.example.com/x", "tq example.com", "tq.example\t.com", "http://a/b//c",
                                  "-tq.example.com", "tq..example.com", "[zz]", "http://[::1", "x" * 300,
                                  "https://tq.example.com?x=1", "tq.example.com#top", "tq\x00.example.com"])
def test_an_unusable_host_is_refused_with_the_fix(host):
    with pytest.raises(ValueError) as caught:
        threatq.base_url(host)
    assert "; " in str(caught.value)
    assert len(str(caught.value)) < 200


def test_a_mistyped_host_in_the_config_names_threatq_host_and_the_fix():
    param = next(p for p in threatq.params() if p.key == "threatq_host")
    value, problem = cfg.check_value(param, "ftp//nowhere example")
    assert value is None
    assert problem.startswith("ThreatQ Host (threatq_host): 'ftp//nowhere example' contains spaces")
    assert "https:// URL" in problem
    assert cfg.check_value(param, "ftp://tq.example.com")[1].startswith("ThreatQ Host (threatq_host): scheme 'ftp'")
    assert cfg.check_value(param, "tq.example.com:8443") == ("tq.example.com:8443", None)


def test_links_go_to_the_ui_host():
    assert threatq.indicator_link(threatq.ui_base("tq.example.com"), 7) == "https://tq.example.com/indicators/7/details"
    assert threatq.ui_base("http://10.1.1.1:8080/") == "http://10.1.1.1:8080"


# Tokens (reference section 2).

@pytest.mark.parametrize("encoding,variant", [("query", "A"), ("json", "B"), ("form", "C")])
def test_every_login_encoding_gets_a_token(sandbox, make, encoding, variant):
    client = make(login_encoding=encoding)
    assert client.collections()
    assert logins(sandbox) == [("password", variant)]


def test_a_private_client_logs_in_with_client_credentials(sandbox, make):
    client = make(client_id=PRIVATE_CLIENT_ID, client_secret=Secret(PRIVATE_CLIENT_SECRET))
    assert client.collections()
    assert logins(sandbox) == [("client_credentials", "basic")]


def test_a_refused_login_names_the_parameters_to_fix(sandbox, make):
    client = make(password=Secret("wrong"))
    with pytest.raises(AuthError) as caught:
        client.collections()
    assert caught.value.exit_code == 2
    assert "refused the login (HTTP 400" in caught.value.message
    assert "threatq_password" in caught.value.fix and "wrong" not in str(caught.value)


def test_the_token_is_cached_in_the_config_file_with_its_expiry(sandbox, make, config_file):
    make().collections()
    text = config_file.read_text()
    assert text.startswith("# tq-conn-x configuration")
    values = yaml.safe_load(text)
    assert values["lookup_name"] == "IOCs" and values["threatq_host"] == "somewhere"
    cached = values["threatq_token"]
    assert cached["access_token"] and cached["refresh_token"] and cached["expires_at"].endswith("Z")
    assert cached["identity"]["user"] == USERNAME
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600
    make().collections()
    assert len(logins(sandbox)) == 1          # the second client used the cached token


def test_a_new_token_replaces_the_cached_one_in_place_keeping_every_comment(make, config_file):
    client = make()
    client.collections()
    first = yaml.safe_load(config_file.read_text())["threatq_token"]["access_token"]
    client.login.renew()
    text = config_file.read_text()
    assert [line for line in text.splitlines() if line.startswith("threatq_token:")] == ["threatq_token:"]
    assert "# batch_size: 1000" in text and text.startswith("# tq-conn-x configuration")
    assert yaml.safe_load(text)["threatq_token"]["access_token"] not in (None, first)


def test_a_cached_token_of_another_user_is_not_used(sandbox, make):
    make().collections()
    sandbox["threatq"].users["other@example.com"] = "pw-other"
    make(username="other@example.com", password=Secret("pw-other")).collections()
    assert [who["who"] for who in sandbox["threatq"].logins] == [USERNAME, "other@example.com"]


def test_the_token_is_renewed_before_it_expires(sandbox, make):
    settings(sandbox, expires_in=1200)
    now = [time.time()]
    client = make(clock=lambda: now[0])
    client.collections()
    now[0] += 1130                            # 70 s left: more than the 60 s margin
    client.collections()
    assert logins(sandbox) == [("password", "A")]
    now[0] += 15                              # 55 s left: renew, with the refresh token
    client.collections()
    assert logins(sandbox) == [("password", "A"), ("refresh_token", "query")]


def test_an_expired_cached_token_is_renewed_with_its_refresh_token(sandbox, make):
    settings(sandbox, expires_in=1)
    make().collections()
    time.sleep(1.05)
    make().collections()
    assert logins(sandbox) == [("password", "A"), ("refresh_token", "query")]


def test_a_401_mid_run_renews_once_and_the_paging_goes_on(sandbox, make):
    settings(sandbox, revoke_on_page=3)
    client = make()
    collection = client.collection("Devo Export")
    ids = [i.id for i in client.indicators(collection, batch_size=100)]
    assert len(ids) == 500 and len(set(ids)) == 500
    assert logins(sandbox) == [("password", "A"), ("refresh_token", "query")]


def test_a_refused_refresh_falls_back_to_logging_in(sandbox, make):
    settings(sandbox, revoke_on_page=2, refresh_tokens=False)
    client = make()
    assert len(list(client.indicators(client.collection("Devo Export"), batch_size=200))) == 500
    assert logins(sandbox) == [("password", "A"), ("password", "A")]


def test_a_second_401_after_renewal_is_an_auth_error(sandbox, make):
    client = make()
    client.collections()
    sandbox.fault("threatq", path="^/api/search/query$", status=401, count=2)
    with pytest.raises(AuthError) as caught:
        client.collections()
    assert caught.value.status == 401 and caught.value.exit_code == 2


def test_a_token_response_without_access_token_is_a_refused_login(sandbox, make):
    sandbox.fault("threatq", path="^/api/token$", status=200, body={"expires_in": 3600})
    with pytest.raises(AuthError):
        make().collections()


# Data collections (reference section 3.1).

def test_a_collection_is_found_by_exact_name_and_its_json_decoded(make):
    client = make()
    found = client.collection("High Confidence C2")
    assert found["json"]["api_query"]["filters"]


def test_a_missing_collection_lists_the_names_that_exist(make):
    with pytest.raises(ConfigError) as caught:
        make().collection("devo export")
    message = caught.value.message
    assert "no data collection named 'devo export'" in message and "did you mean 'Devo Export'" in message
    assert "'Empty Collection'" in message and "collection_name" in message


def test_a_200_with_errors_is_a_failure(sandbox, make):
    client = make()
    client.collections()
    sandbox.fault("threatq", path="^/api/search/query$", status=200, body={"errors": ["Search is broken"]})
    with pytest.raises(SourceError, match="Search is broken"):
        client.collections()


# Paging (reference sections 3.2 and 3.3).

@pytest.mark.parametrize("paging", ["offset", "cursor"])
@pytest.mark.parametrize("size,batch", [(0, 100), (1, 100), (99, 100), (100, 100), (101, 100), (250, 1000), (7, 1)])
def test_paging_yields_every_indicator_once(sandbox, make, paging, size, batch):
    sandbox["threatq"].add_collection("Sized", size, seed=11)
    client = make()
    items = list(client.indicators(client.collection("Sized"), batch_size=batch, paging=paging, sort="-updated_at"))
    ids = [i.id for i in items]
    assert len(ids) == size and len(set(ids)) == size
    assert [i.updated_at for i in items] == sorted((i.updated_at for i in items), reverse=True)
    requests_made = [r for r in sandbox["threatq"].requests if "/indicators/query" in r["path"]]
    assert all(f"limit={batch}" in r["query"] for r in requests_made)
    assert all("with=attributes%2Cadversaries%2Cscore%2Cstatus%2Ctype" in r["query"] for r in requests_made)


def test_what_changed_is_listed_by_id_read_in_a_touched_window_and_one_by_one(sandbox, make):
    tq = sandbox["threatq"]
    tq.add_collection("Changing", 120, seed=12)
    client = make()
    listed = list(client.listing(client.collection("Changing"), batch_size=50))
    assert [set(i) for i in listed] == [{"id", "touched_at"}] * 120
    assert [i["id"] for i in listed] == sorted(i["id"] for i in listed)
    tq.add_collection("Changing", 125, seed=12, changed_every=40, revision=1)   # 0, 40, 80 changed; 5 added
    after = {i["id"]: i["touched_at"] for i in client.listing(client.collection("Changing"), batch_size=50)}
    moved = sorted(ident for ident, stamp in after.items() if stamp != dict((i["id"], i["touched_at"])
                                                                            for i in listed).get(ident))
    assert len(moved) == 8
    since = min(after[ident] for ident in moved)
    window = list(client.indicators(client.collection("Changing"), batch_size=50, sort="id", since=since))
    assert sorted(i.id for i in window) == moved
    assert all(i.attributes and i.type.name for i in window)
    one = client.indicator(moved[0])
    assert one.id == moved[0] and one.touched_at == after[moved[0]] and one.attributes
    with pytest.raises(SourceError) as gone:
        client.indicator(moved[0] + 10_000)
    assert gone.value.kind == "not_found"


def test_a_server_capping_the_page_below_the_batch_size_loses_nothing(sandbox, make):
    settings(sandbox, max_limit=64)
    client = make()
    assert len(list(client.indicators(client.collection("Devo Export"), batch_size=1000))) == 500


@pytest.mark.parametrize("last_page", ["object", "list"])
def test_the_cursor_end_is_an_empty_object_or_list(sandbox, make, last_page):
    settings(sandbox, last_page=last_page)
    client = make()
    assert len(list(client.indicators(client.collection("Devo Export"), batch_size=300, paging="cursor"))) == 500


def test_5xx_on_a_page_is_retried(sandbox, make):
    settings(sandbox, fail_page=3, fail_status=503, fail_count=2)
    client = make()
    assert len(list(client.indicators(client.collection("Devo Export"), batch_size=100))) == 500


def test_429_with_retry_after_on_a_page_is_waited_for(sandbox, make):
    settings(sandbox, fail_page=2, fail_status=429, fail_retry_after=0.3)
    client = make()
    started = time.monotonic()
    assert len(list(client.indicators(client.collection("Devo Export"), batch_size=100))) == 500
    assert time.monotonic() - started >= 0.3


def test_type_and_status_names_are_filled_when_only_ids_come(sandbox, make):
    settings(sandbox, type_shape="id")
    client = make()
    item = next(iter(client.indicators(client.collection("Devo Export"))))
    assert threatq.name_of(item.type) and threatq.name_of(item.status)


def test_the_next_page_is_asked_for_while_the_caller_works_on_this_one_and_no_further(sandbox, make):
    client = make()
    pages = iter(client.indicators(client.collection("Devo Export"), batch_size=100))
    first = next(pages)                       # the caller holds the first item of page 1 ...
    asked = lambda: [r for r in sandbox["threatq"].requests if r["path"] == "/api/indicators/query"]  # noqa: E731
    deadline = time.monotonic() + 10
    while len(asked()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert [("offset=100" in r["query"]) for r in asked()] == [False, True]   # ... page 2 is fetched, not page 3
    rest = list(pages)
    assert len(rest) == 499 and first.id not in {i.id for i in rest}
    assert len(asked()) == 5


def test_an_error_on_a_later_page_comes_after_the_items_before_it(sandbox, make):
    settings(sandbox, fail_page=3, fail_status=400)
    client = make()
    got = []
    with pytest.raises(SourceError) as caught:
        for item in client.indicators(client.collection("Devo Export"), batch_size=100):
            got.append(item.id)
    assert len(got) == 200 and caught.value.status == 400


def test_a_caller_that_stops_early_stops_the_paging(sandbox, make):
    client = make()
    pages = iter(client.indicators(client.collection("Devo Export"), batch_size=100))
    next(pages)
    pages.close()
    deadline = time.monotonic() + 10
    while any(t.name == "one-ahead" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "one-ahead" for t in threading.enumerate())
    assert len([r for r in sandbox["threatq"].requests if r["path"] == "/api/indicators/query"]) <= 2


def test_paging_leaves_the_garbage_collector_as_it_found_it(make):
    client = make()
    collection = client.collection("Devo Export")
    assert len(list(client.indicators(collection, batch_size=100))) == 500 and gc.isenabled()
    gc.disable()
    try:
        assert len(list(client.indicators(collection, batch_size=100))) == 500 and not gc.isenabled()
    finally:
        gc.enable()


def test_an_offset_ignored_by_the_server_is_caught():
    class Same:
        base_url = "https://tq/api/"

        def json(self, method, path, **kwargs):
            return {"data": [{"id": 1}, {"id": 2}]}

        def request(self, *args, **kwargs):
            raise AssertionError("no token call expected")

    client = threatq.ThreatQ(Same(), "id", "user", Secret("pw"))
    client.login._token = {"access_token": "t", "expires_at": "2999-01-01T00:00:00Z", "expires_in": 3600}
    with pytest.raises(SourceError, match="ThreatQ repeated a page of indicators"):
        list(client.indicators({"json": {"api_query": {}}}, batch_size=2))


WINDOW = {"touched_at": {"+gt": "2026-12-01 09:59:59"}}


@pytest.mark.parametrize("body,expected", [
    ({"criteria": {"+or": [{"type_name": "IP Address"}]}, "filters": {"+and": [{"tags": "x"}]}},
     {"criteria": {"+or": [{"type_name": "IP Address"}]}, "filters": {"+and": [{"tags": "x"}, WINDOW]}}),
    ({"criteria": {"+or": [{"type_name": "IP Address"}]}, "filters": {}},
     {"criteria": {"+and": [{"+or": [{"type_name": "IP Address"}]}, WINDOW]}, "filters": {}}),
    ({"criteria": {}, "filters": {"+or": [{"score": {"+gte": 5}}]}},
     {"criteria": {}, "filters": {"+and": [{"+or": [{"score": {"+gte": 5}}]}, WINDOW]}}),
    ({}, {"criteria": {"+and": [WINDOW]}}),
    # the collection's own date clause selects what it holds: it stays
    ({"filters": {"+and": [{"created_at": {"+gt": "2026-01-01 00:00:00"}}]}},
     {"filters": {"+and": [{"created_at": {"+gt": "2026-01-01 00:00:00"}}, WINDOW]}}),
])
def test_a_query_is_narrowed_to_what_was_touched_since_as_the_sdk_narrows_it(body, expected):
    before = repr(body)
    assert touched_since(body, "2026-12-01 10:00:00") == expected
    assert repr(body) == before   # the collection's own query is left as it was


# Reading indicators (reference section 5 and 6).

@pytest.mark.parametrize("score,expected", [
    (4, 4), (7.5, 7.5), ("3", 3), (None, None), ("", None),
    ({"generated_score": "6.20", "manual_score": None}, 6.2),
    ({"generated_score": "6.20", "manual_score": 9}, 9),
    ({"generated_score": "0.00", "manual_score": 0}, 0),
    ({"generated_score": None, "manual_score": None}, None),
])
def test_score_is_manual_if_set_else_generated(score, expected):
    assert threatq.score(as_indicator({"score": score})) == expected


def test_attribute_values_skip_empty_ones_and_keep_the_order_of_names():
    indicator = as_indicator({"attributes": [
        {"name": "Related Actor", "value": "C"}, {"name": "Actor", "value": "A"}, {"name": "", "value": ""},
        {"name": "Actor", "value": "  "}, {"name": "Actor", "value": "B"},
        {"attribute": {"name": "Actor"}, "value": "D"}, "junk"]})
    assert threatq.attribute_values(indicator, "Actor", "Related Actor") == ["A", "B", "D", "C"]
    assert threatq.attributes_by_name(indicator, ("Actor", "Related Actor", "Threat Type")) == {
        "Actor": ["A", "B", "D"], "Related Actor": ["C"], "Threat Type": []}
    assert threatq.attribute_values(as_indicator({"attributes": [{"name": "Score", "value": 0},
                                                                  {"name": "Score", "value": None}]}), "Score") == ["0"]
    assert threatq.adversaries(as_indicator({"adversaries": [{"name": "X"}, {"name": ""}, {"id": 3}]})) == ["X"]
    assert threatq.name_of(threatq.Named("FQDN")) == "FQDN" and threatq.name_of("FQDN") == "FQDN"


@pytest.mark.parametrize("attributes", [5, "x", {"name": "Actor", "value": "A"}, True, 1.5, None])
def test_attributes_that_are_not_a_list_read_as_none(attributes):
    indicator = as_indicator({"attributes": attributes})
    assert threatq.attributes_by_name(indicator, ("Actor",)) == {"Actor": []}
    assert threatq.attribute_values(indicator, "Actor") == []


def test_malformed_attribute_entries_are_left_out_and_the_rest_read():
    indicator = as_indicator({"attributes": [
        {"name": {"x": 1}, "value": "object name"}, {"name": ["Actor"], "value": "list name"}, 7, None, ["Actor"],
        {"attribute": {"name": {"deeper": 1}}, "value": "object attribute name"}, {"attribute": ["Actor"]},
        {"name": "Actor", "value": {"nested": "v"}}, {"name": "Actor", "value": ["v"]}, {"name": "Actor"},
        {"name": "Actor", "value": 42}, {"name": "Actor", "value": " kept "}, {"attribute": "Actor", "value": "str"},
        {"name": "Actor", "value": True}, {"name": "Actor", "value": 1.5}]})
    assert threatq.attribute_values(indicator, "Actor") == ["42", "kept", "str", "1.5"]   # a boolean is not text


@pytest.mark.parametrize("value, expected", [(" APT28 ", "APT28"), ("", ""), (7, "7"), (0, "0"), (2.5, "2.5"),
                                             (True, None), (False, None), (None, None), ({"name": "x"}, None),
                                             (["x"], None)])
def test_text_of_reads_text_and_numbers_only(value, expected):
    assert threatq.text_of(value) == expected


@pytest.mark.parametrize("adversaries", [5, "APT28", {"name": "APT28"}, None])
def test_adversaries_that_are_not_a_list_read_as_none(adversaries):
    indicator = as_indicator({"adversaries": adversaries})
    assert threatq.adversaries(indicator) == [] and threatq.adversary_count(indicator) == 0


def test_malformed_adversary_entries_are_left_out():
    indicator = as_indicator({"adversaries": [{"name": ["x"]}, {"name": {"a": 1}}, 5, "  Turla ", None, [1],
                                              {"name": True}, {"name": " APT28 "}]})
    assert threatq.adversaries(indicator) == ["5", "Turla", "APT28"]
    assert threatq.adversary_count(indicator) == 8


@pytest.mark.parametrize("value,expected", [
    ({"name": {"x": 1}}, None), (["FQDN"], None), ({"name": ["FQDN"]}, None), (7, "7"), (True, None), (None, None),
    ({"id": 3}, None)])
def test_a_type_or_status_of_odd_shape_reads_as_none_or_text(value, expected):
    indicator = as_indicator({"type": value, "status": value})
    assert threatq.name_of(indicator.type) == expected and threatq.name_of(indicator.status) == expected


@pytest.mark.parametrize("score", [{"manual_score": [1]}, {"generated_score": {"a": 1}}, [5], {"manual_score": True},
                                   10 ** 400, "1e999x", {"manual_score": {"x": 1}, "generated_score": "3"}])
def test_a_score_of_odd_shape_reads_as_none(score):
    assert threatq.score(as_indicator({"score": score})) is None


# The connector record (reference section 9).

DEFINITION = [{"name": "lookup_name", "label": "Lookup Table Name", "type": "text", "required": True},
              {"name": "batch_size", "label": "Batch Size", "type": "number", "default": 1000}]


def test_register_creates_the_record_then_updates_it_keeping_the_ui_values(sandbox, make):
    client = make()
    record = ui.register_record(client, "tq-conn-x", "X", DEFINITION, status="Review")
    stored = sandbox["threatq"].connector("tq-conn-x")
    assert record["id"] == stored["id"] and stored["category"]["name"] == "Labs"
    assert stored["indicator_status_id"] == 4 and stored["is_active"] is False
    sandbox["threatq"].set_connector("tq-conn-x", {"lookup_name": "IOCs"}, is_active=True)
    ui.register_record(client, "tq-conn-x", "X", DEFINITION + [{"name": "new", "label": "New", "type": "text"}])
    stored = sandbox["threatq"].connector("tq-conn-x")
    assert threatq.field_values(stored["custom_fields"]) == {"lookup_name": "IOCs"}
    assert [f["name"] for f in stored["custom_fields"]] == ["lookup_name", "batch_size", "new"]
    assert stored["is_active"] is True
    ui.write_run(client, stored["id"], 42, when=0)
    assert stored["last_import_at"] == "1970-01-01 00:00:00" and stored["last_import_count"] == 42


def test_an_unknown_status_lists_the_statuses(make):
    with pytest.raises(ConfigError) as caught:
        ui.register_record(make(), "tq-conn-x", "X", DEFINITION, status="Revew")
    assert "'Revew'" in caught.value.message and "Active, Expired" in caught.value.fix


@pytest.mark.parametrize("fields,expected", [
    ([{"name": "a", "value": 1}, {"name": "b"}], {"a": 1}),
    ('[{"name": "a", "value": "x"}]', {"a": "x"}),
    ({"a": {"value": 2}, "b": 3}, {"a": 2, "b": 3}),
    ("not json", {}), (None, {}),
])
def test_field_values_tolerate_the_shapes(fields, expected):
    assert threatq.field_values(fields) == expected


@pytest.mark.parametrize("value,expected", [(True, True), (False, False), ("", False), ("False", False),
                                            ("True", True), ("1", True), (0, False), (1, True)])
def test_is_active_tolerates_strings(value, expected):
    assert threatq._is_true(value) is expected


def test_definition_changes_are_seen_but_extra_keys_are_not():
    stored = [{**f, "id": 9, "value": "x"} for f in DEFINITION]
    assert not threatq.definition_changed(stored, DEFINITION)
    assert threatq.definition_changed(stored[:1], DEFINITION)
    assert threatq.definition_changed([stored[0], {**stored[1], "default": 500}], DEFINITION)


# TLS (reference section 1): verified by default, a CA bundle for self-signed appliances.

@pytest.fixture
def https_threatq(tmp_path):
    """A ThreatQ stand-in on HTTPS with a certificate from its own CA; yields (url, CA bundle path)."""
    from tq_conn_sandbox import pki
    from tq_conn_sandbox.server import Running
    from tq_conn_sandbox.services.threatq import ThreatQ
    authority = pki.Authority("tq-conn test ThreatQ CA")
    issued = authority.issue("threatq.test", server=True, hosts=("127.0.0.1",))
    running = Running()
    service = running.add(ThreatQ(), ssl_context=authority.server_context(issued, require_client_cert=False))
    bundle = tmp_path / "threatq-ca.pem"
    bundle.write_text(authority.cert_pem)
    yield service.url, str(bundle)
    running.stop()


def test_tls_is_verified_and_a_ca_bundle_makes_a_self_signed_threatq_work(https_threatq):
    url, bundle = https_threatq
    assert url.startswith("https://")
    for verify, ok in ((True, False), (bundle, True)):
        http = HttpClient(threatq.SERVICE, threatq.base_url(url), retries=0, verify=verify)
        client = threatq.ThreatQ(http, CLIENT_ID, USERNAME, Secret(PASSWORD))
        if ok:
            assert client.collections()
        else:
            with pytest.raises(SourceError, match="TLS failed"):
                client.collections()


def test_a_page_msgspec_refuses_is_decoded_whole_and_its_indicators_read_the_same():
    from tq_conn_common.threatq.client import _PAGE, _indicators
    body = (b'{"total": 3, "data": [{"id": 7, "value": "a\\ud800.example", "type": {"name": "FQDN"}, "score": 5,'
            b' "attributes": [{"name": "Actor", "value": "X"}, "junk"], "adversaries": [{"name": "Y"}]}, "odd", 3]}')
    whole, typed = _indicators(_PAGE(body)), _indicators(_PAGE(body.replace(b"\\ud800", b"")))
    assert [type(item) for item in whole] == [type(item) for item in typed] == [threatq.Indicator, str, int]
    for item, value in ((whole[0], "a\ud800.example"), (typed[0], "a.example")):
        assert item.value == value and threatq.name_of(item.type) == "FQDN" and threatq.score(item) == 5
        assert threatq.attribute_values(item, "Actor") == ["X"] and threatq.adversaries(item) == ["Y"]
