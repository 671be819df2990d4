"""Pagers (offset, cursor, scroll, next link) over the echo stand-in, and what refuses a page handed out twice."""

import itertools

import pytest

from tq_conn_common.errors import SourceError
from tq_conn_common.http import HttpClient
from tq_conn_common.paging import cursor_pages, offset_pages, scroll_pages


@pytest.fixture
def echo(sandbox):
    client = HttpClient("Echo", sandbox.url("echo"), backoff=0.01)
    yield client
    client.close()


def pages_fetched(sandbox, path):
    return [r["query"] for r in sandbox["echo"].requests if r["path"] == path]


def items(pages):
    return itertools.chain.from_iterable(pages)


def test_offset_pages_yield_lazily_until_a_short_page(echo, sandbox):
    def page(offset, limit):
        body = echo.json("GET", "/numbers", params={"offset": offset, "limit": limit, "total": 23})
        return body["data"], None
    numbers = items(offset_pages(page, 10))
    assert next(numbers) == 0 and len(pages_fetched(sandbox, "/numbers")) == 1  # one page, not all
    assert list(numbers) == list(range(1, 23))
    assert len(pages_fetched(sandbox, "/numbers")) == 3


def test_offset_pages_stop_at_the_total_and_on_an_empty_page(echo, sandbox):
    def page(offset, limit):
        body = echo.json("GET", "/numbers", params={"offset": offset, "limit": limit, "total": 20})
        return body["data"], body["total"]
    assert list(items(offset_pages(page, 10))) == list(range(20))
    assert len(pages_fetched(sandbox, "/numbers")) == 2  # no third request for an empty page
    assert list(items(offset_pages(page, 10, start=15))) == list(range(15, 20))
    assert list(offset_pages(lambda offset, limit: ([], None), 10)) == []


def test_an_offset_page_handed_out_again_is_an_error_not_a_loop():
    with pytest.raises(SourceError, match="^Echo repeated a page of numbers; stopped to avoid a loop."):
        list(offset_pages(lambda offset, limit: ([1, 2], 99), 2, service="Echo", what="numbers"))


def test_cursor_pages_follow_the_cursor(echo, sandbox):
    def page(cursor):
        body = echo.json("GET", "/cursor", params={"cursor": cursor or "", "limit": 10, "total": 25})
        return body["data"], body["next"]
    numbers = items(cursor_pages(page))
    assert next(numbers) == 0 and len(pages_fetched(sandbox, "/cursor")) == 1
    assert list(numbers) == list(range(1, 25))


def test_a_repeated_cursor_is_an_error_not_a_loop():
    answers = iter([([1], "a"), ([2], "b"), ([3], "a")])
    with pytest.raises(SourceError, match="^Flashpoint repeated an alerts page link; stopped to avoid a loop"):
        list(cursor_pages(lambda cursor: next(answers), service="Flashpoint", repeated="an alerts page link"))


def test_the_same_cursor_again_ends_a_solr_style_listing():
    assert list(items(cursor_pages(lambda cursor: ([1], "*"), first="*", end_on_same=True))) == [1]


def test_a_scroll_id_may_stay_but_a_page_may_not_come_twice():
    answers = iter([([{"id": 1}], "s"), ([{"id": 2}], "s"), ([], "s")])
    assert len(list(cursor_pages(lambda cursor: next(answers), identity=lambda page: page[0]["id"]))) == 2
    with pytest.raises(SourceError, match="repeated a page of items"):
        list(cursor_pages(lambda cursor: ([{"id": 1}], "s"), identity=lambda page: page[0]["id"]))


def test_a_scroll_session_is_opened_stepped_and_closed_once_at_the_end():
    asked, closed = [], []

    def page(scroll_id):
        asked.append(scroll_id)
        return ([{"n": len(asked)}] if len(asked) < 4 else []), "s1" if scroll_id is None else "s2"
    assert list(items(scroll_pages(page, close=closed.append))) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert asked == [None, "s1", "s2", "s2"] and closed == ["s2"]


def test_a_listing_without_a_session_is_one_page_and_closes_nothing():
    closed = []
    assert list(scroll_pages(lambda scroll_id: ([1, 2], None), close=closed.append)) == [[1, 2]]
    assert closed == []


def test_a_scroll_page_handed_out_twice_is_an_error_and_a_failed_close_only_warns(caplog):
    with pytest.raises(SourceError, match="^Flashpoint repeated the same page; stopped"):
        list(scroll_pages(lambda scroll_id: ([{"id": 1}], "s"), service="Flashpoint", repeated="the same page"))

    def refuse(scroll_id):
        raise SourceError("Flashpoint answered HTTP 500", "later")
    answers = iter([([1], "s"), ([], "s")])
    assert list(scroll_pages(lambda scroll_id: next(answers), close=refuse, service="Flashpoint")) == [[1]]
    assert "Could not close the Flashpoint scroll session (Flashpoint answered HTTP 500)" in caplog.text


@pytest.mark.parametrize("heeds_limit", [True, False])
@pytest.mark.parametrize("cap", [1000, 300, 999])
def test_shared_offset_pages_put_in_order_are_the_whole_list_whatever_the_server_caps(monkeypatch, cap, heeds_limit):
    from tq_conn_common import parallel
    monkeypatch.setattr(parallel, "_pages_in_list", None)
    listing = list(range(2_503))
    asked = []

    def page(offset, limit):   # a server that hands out at most cap items a request (and maybe more than asked)
        asked.append((offset, limit))
        return listing[offset:offset + (min(limit, cap) if heeds_limit else cap)], len(listing)

    shares = []
    for k in range(3):
        monkeypatch.setattr(parallel, "_share", (k, 3))
        shares.append(list(offset_pages(page, 1000, shared=True)))
    assert [len(p) for p in shares[0] + shares[1] + shares[2]] == [1000, 1000, 503]   # page k of each worker
    ordered = [shares[i % 3][i // 3] for i in range(3)]
    assert list(items(ordered)) == listing
    assert not [a for a in asked if a[0] >= len(listing)]    # no worker asks past the end
    monkeypatch.setattr(parallel, "_share", None)
    assert list(items(offset_pages(page, 1000, shared=True))) == listing   # outside a worker: every page, in turn
