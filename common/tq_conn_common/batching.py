"""Chunked iteration and lazy pagers (offset, cursor, scroll) shared by every connector."""

import itertools

from tq_conn_common.errors import SourceError


def chunks(iterable, size):
    """Yield lists of at most size items from iterable, lazily."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    iterator = iter(iterable)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def offset_pages(fetch_page, page_size, *, start=0, total_key=None):
    """Yield items of pages fetched by fetch_page(offset, limit) -> (items, total or None) until a short page."""
    offset = start
    while True:
        items, total = fetch_page(offset, page_size)
        items = list(items or ())
        yield from items
        offset += len(items)
        if not items or len(items) < page_size or (total is not None and offset >= total):
            return


def cursor_pages(fetch_page, *, first=None, what="pages"):
    """Yield items of pages fetched by fetch_page(cursor) -> (items, next cursor or None); a repeated cursor is an error."""
    cursor, seen = first, set()
    while True:
        items, cursor_next = fetch_page(cursor)
        yield from items or ()
        if not cursor_next or not items:
            return
        key = str(cursor_next)
        if key in seen:
            raise SourceError(f"The service repeated a page token while listing {what}; stopped to avoid a loop.",
                              "run again later; if it persists, report it to the vendor.")
        seen.add(key)
        cursor = cursor_next


scroll_pages = cursor_pages


class Dedupe:
    """Keeps the first (or best) row per key and counts the duplicates dropped."""

    def __init__(self):
        self.seen = set()
        self.dropped = 0

    def first(self, rows, key):
        """Yield rows whose key was not seen before."""
        for row in rows:
            k = row[key]
            if k in self.seen:
                self.dropped += 1
                continue
            self.seen.add(k)
            yield row


__all__ = ["chunks", "offset_pages", "cursor_pages", "scroll_pages", "Dedupe"]
