"""Batching: lazy chunks and pagers (offset, cursor, scroll) over the echo stand-in, and duplicate dropping."""

import itertools

import pytest

from tq_conn_common.batching import Dedupe, chunks, cursor_pages, offset_pages, scroll_pages
from tq_conn_common.errors import SourceError
from tq_conn_common.http import HttpClient


def test_chunks_are_lazy_and_bounded():
    pulled = []

    def source():
        for i in itertools.count():
            pulled.append(i)
            yield i
    first = next(chunks(source(), 3))
    assert first == [0, 1, 2] and pulled == [0, 1, 2]
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks(range(3), 0))


@pytest.fixture
def echo(sandbox):
    client = HttpClient(sandbox.url("echo"), service="Echo", backoff=0.01)
    yield client
    client.close()


def pages_fetched(sandbox, path):
    return [r["query"] for r in sandbox["echo"].requests if r["path"] == path]


def test_offset_pages_yield_lazily_until_a_short_page(echo, sandbox):
    def page(offset, limit):
        body = echo.json("GET", "/numbers", params={"offset": offset, "limit": limit, "total": 23})
        return body["data"], None
    items = offset_pages(page, 10)
    assert next(items) == 0 and len(pages_fetched(sandbox, "/numbers")) == 1  # one page, not all
    assert list(items) == list(range(1, 23))
    assert len(pages_fetched(sandbox, "/numbers")) == 3


def test_offset_pages_stop_at_the_total_and_on_an_empty_page(echo, sandbox):
    def page(offset, limit):
        body = echo.json("GET", "/numbers", params={"offset": offset, "limit": limit, "total": 20})
        return body["data"], body["total"]
    assert list(offset_pages(page, 10)) == list(range(20))
    assert len(pages_fetched(sandbox, "/numbers")) == 2  # no third request for an empty page
    assert list(offset_pages(page, 10, start=15)) == list(range(15, 20))
    assert list(offset_pages(lambda offset, limit: ([], None), 10)) == []


def test_cursor_pages_follow_the_cursor(echo, sandbox):
    def page(cursor):
        body = echo.json("GET", "/cursor", params={"cursor": cursor or "", "limit": 10, "total": 25})
        return body["data"], body["next"]
    items = cursor_pages(page)
    assert next(items) == 0 and len(pages_fetched(sandbox, "/cursor")) == 1
    assert list(items) == list(range(1, 25))
    assert scroll_pages is cursor_pages


def test_a_repeated_cursor_is_an_error_not_a_loop():
    def page(cursor):
        return [1, 2], "same"
    with pytest.raises(SourceError, match="repeated a page token while listing alerts"):
        list(cursor_pages(page, what="alerts"))


def test_dedupe_keeps_the_first_and_counts_the_rest():
    dedupe = Dedupe()
    rows = [{"k": 1, "v": "a"}, {"k": 2}, {"k": 1, "v": "b"}, {"k": 1}]
    assert list(dedupe.first(rows, "k")) == [{"k": 1, "v": "a"}, {"k": 2}]
    assert dedupe.dropped == 2
