"""Pagers for the ways vendor APIs hand out lists (offset and limit; a cursor, scroll id or next link), each
refusing a page handed out twice instead of looping."""

import logging

from tq_conn_common.errors import SourceError

log = logging.getLogger(__name__)


def _repeated(service, what, fix):
    return SourceError(f"{service} repeated {what}; stopped to avoid a loop.",
                       fix or "run again later; if it persists, report it to the vendor.")


def offset_pages(get_page, page_size, *, start=0, service="The service", what="items", fix=None,
                 identity=None, repeated=None):
    """Yield the pages (lists) of get_page(offset, limit) -> (items, total or None), from start to the end.

    The end: an empty page, offset past total, or (total unknown) a page shorter than page_size; a server may cap
    the page below the size asked for, so a known total is trusted over the page length. identity(items) tells
    two pages apart (default: the first item and the length); a page equal to the one before is an error.
    """
    offset, previous = start, None
    identity = identity or (lambda items: (repr(items[0])[:200], len(items)))
    while True:
        items, total = get_page(offset, page_size)
        items = list(items or ())
        if not items:
            return
        mark = identity(items)
        if offset != start and mark == previous:
            raise _repeated(service, repeated or f"a page of {what}", fix)
        previous = mark
        offset += len(items)
        log.info("Fetched %d %s%s.", offset - start, what, f" of {total}" if total is not None else "")
        yield items
        if (total is not None and offset >= total) or (total is None and len(items) < page_size):
            return


def cursor_pages(get_page, *, first=None, service="The service", what="items", fix=None, identity=None,
                 end_on_same=False, repeated=None):
    """Yield the pages (lists) of get_page(cursor) -> (items, next cursor or None), starting at first.

    Serves cursors, scroll ids and next links alike. The end: an empty page, or no next cursor (or, with
    end_on_same, the same cursor again, as Solr-style cursors say it). Without identity a cursor seen before is an
    error; with identity(items), a cursor may stay the same from page to page (scroll ids) and a page equal to the
    one before is the error. repeated: how the error names what came again (default "a page of <what>").
    """
    cursor, seen, count, previous = first, set(), 0, None
    while True:
        items, following = get_page(cursor)
        items = list(items or ())
        if not items:
            return
        if identity is not None:
            mark = identity(items)
            if mark is not None and mark == previous:   # None: the page cannot tell
                raise _repeated(service, repeated or f"a page of {what}", fix)
            previous = mark
        count += len(items)
        log.info("Fetched %d %s.", count, what)
        yield items
        if not following or (end_on_same and following == cursor):
            return
        if identity is None:
            if str(following) in seen:
                raise _repeated(service, repeated or f"a page of {what}", fix)
            seen.add(str(following))
        cursor = following


def window_pages(get_page, page_size, *, start, window, key, service="The service", what="items", shown=str,
                 fix=None):
    """Yield the pages (lists) of get_page(start, skip, limit) -> items sorted by key(item), oldest first, for a
    server that hands out at most `window` hits of one query through skip and limit: before the window ends, the
    query is asked again from the key of the last item (inclusive, so the items of that key already handed out are
    skipped). More items sharing one key than the window holds is an error (shown(key) names the key)."""
    skip, tail, same = 0, None, 0
    while True:
        items = list(get_page(start, skip, page_size) or ())
        for item in items:
            mark = key(item)
            same, tail = (same + 1, mark) if mark == tail else (1, mark)
        yield items
        if len(items) < page_size:
            return
        skip += len(items)
        if skip + page_size <= window or tail is None:
            continue
        if same + page_size > window:
            raise SourceError(f"{service}: more than {window - page_size} {what} share {shown(tail)}.",
                              fix or "run again later; if it persists, report it to the vendor.")
        start, skip = tail, same


__all__ = ["offset_pages", "cursor_pages", "window_pages"]
