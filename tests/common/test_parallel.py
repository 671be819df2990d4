"""Rows made in forked workers: pages handed back in page order, errors raised in the run, workers never left."""

import os
import time

import pytest

from tq_conn_common import parallel
from tq_conn_common.errors import SourceError
from tq_conn_common.session import Stats


def numbered(pages, size=3):
    """make(): worker k of n yields its pages of the numbers 0.. in pages of size, page p holding p*size.."""
    def make():
        k, n = parallel.share()
        for p in range(k, pages, n):
            yield [p * size + i for i in range(size)]
    return make


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_pages_come_back_in_page_order_whatever_the_number_of_workers(count):
    got = [x for page in parallel.pages(numbered(10), count) for x in page]
    assert got == list(range(30))


def test_the_requests_of_the_workers_are_counted_in_the_run():
    stats = Stats()

    def make():
        for _ in range(2):
            stats.requests += 1   # as an HttpClient of the run counts its requests
            yield [os.getpid()]

    pids = {x for page in parallel.pages(make, 2, stats=stats) for x in page}
    assert stats.requests == 4 and len(pids) == 2 and os.getpid() not in pids


def test_a_worker_error_is_raised_in_the_run_with_its_fix():
    def make():
        if parallel.share()[0] == 1:
            raise SourceError("ThreatQ refused page 2 (HTTP 500).", "run again later.", retryable=True)
        yield [1]

    with pytest.raises(SourceError) as raised:
        list(parallel.pages(make, 2))
    assert raised.value.fix == "run again later." and raised.value.retryable


def test_a_run_that_stops_reading_leaves_no_worker_behind():
    def make():
        yield [os.getpid()]
        time.sleep(60)
        yield [0]

    pages = parallel.pages(make, 2)
    workers = next(pages) + next(pages)
    pages.close()
    for pid in workers:
        with pytest.raises((ProcessLookupError, ChildProcessError)):
            os.kill(pid, 0)


def test_a_worker_that_dies_without_a_word_fails_the_run():
    def make():
        yield [1]
        os._exit(9)

    with pytest.raises(SourceError, match="ended without a word") as raised:
        list(parallel.pages(make, 2))
    assert raised.value.retryable and "TQ_CONN_WORKERS=1" in raised.value.fix


def test_the_number_of_workers_follows_the_cores_and_the_environment(monkeypatch):
    monkeypatch.setenv("TQ_CONN_WORKERS", "1")
    assert parallel.workers() == 1
    monkeypatch.setenv("TQ_CONN_WORKERS", "64")
    assert parallel.workers() == parallel.MAX_WORKERS
    monkeypatch.delenv("TQ_CONN_WORKERS")
    assert 1 <= parallel.workers() <= min(len(os.sched_getaffinity(0)), parallel.MAX_WORKERS)


def test_no_page_past_the_end_of_the_list_as_the_first_worker_to_see_it_says():
    def make():   # worker 0 sees a list of one page (it shrank), worker 1 still the list of four
        k, _ = parallel.share()
        parallel.note_pages(1 if k == 0 else 4)
        for p in range(k, 4, 2):
            yield [p]

    assert [x for page in parallel.pages(make, 2) for x in page] == [0]


def test_an_error_that_cannot_be_pickled_is_named_in_the_run():
    class Odd(Exception):
        def __reduce__(self):
            raise TypeError("not picklable")

    def make():
        yield [1]
        raise Odd("the vendor sent something odd")

    with pytest.raises(RuntimeError, match="Odd: the vendor sent something odd"):
        list(parallel.pages(make, 1))


def test_requests_are_counted_even_when_the_run_stops_early():
    stats = Stats()

    def make():
        k, _ = parallel.share()
        parallel.note_pages(1)   # the list has one page: worker 1's first page is past its end
        stats.requests += 1
        yield [k]
        time.sleep(60)

    assert [x for page in parallel.pages(make, 2, stats=stats) for x in page] == [0]
    assert stats.requests == 2
