"""Pagers for the ways vendor APIs hand out lists (offset and limit; a cursor, scroll session or next link; a time
window past a result window), each refusing a page handed out twice instead of looping."""

import logging

from tq_conn_common import parallel
from tq_conn_common.errors import SourceError

log = logging.getLogger(__name__)


def _repeated(service, what, fix):
    return SourceError(f"{service} repeated {what}; stopped to avoid a loop.",
                       fix or "run again later; if it persists, report it to the vendor.")


def offset_pages(get_page, page_size, *, start=0, service="The service", what="items", fix=None,
                 identity=None, repeated=None, shared=False):
    """Yield the pages (lists) of get_page(offset, limit) -> (items, total or None), from start to the end.

    The end: an empty page, offset past total, or (total unknown) a page shorter than page_size; a server may cap
    the page below the size asked for, so a known total is trusted over the page length. identity(items) tells
    two pages apart (default: the first item and the length); a page equal to the one before is an error.
    shared: in worker k of n (parallel.share()), only pages k, k + n, ... of page_size items each are fetched.
    """
    identity = identity or (lambda items: (repr(items[0])[:200], len(items)))
    if shared and parallel.share():
        yield from _shared_pages(get_page, page_size, start, identity, _repeated(service, repeated or
                                                                                  f"a page of {what}", fix), what)
        return
    offset, previous = start, None
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


def _shared_pages(get_page, page_size, start, identity, repeated, what):
    """Yield this worker's pages: page_size items from start + k * page_size, then every n pages. A page the server
    cut short before the end is completed from where it stopped, so that each page holds page_size items and the
    pages of all workers, put in order, are the whole list."""
    k, n = parallel.share()
    offset, previous = start + k * page_size, None
    while True:
        items, total = get_page(offset, page_size)
        items = list(items or ())
        if total is not None:
            parallel.note_pages(-(-(total - start) // page_size))
        if not items:
            return
        mark = identity(items)
        if mark == previous:
            raise repeated
        previous = mark
        while len(items) < page_size and (total is None or offset + len(items) < total):
            more, total = get_page(offset + len(items), page_size - len(items))
            more = list(more or ())
            if not more:
                break
            items += more[:page_size - len(items)]
        log.info("Fetched %d %s at %d%s.", len(items), what, offset, f" of {total}" if total is not None else "")
        yield items
        offset += n * page_size
        if len(items) < page_size or (total is not None and offset >= total):
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


def scroll_pages(get_page, *, close=None, service="The service", what="items", fix=None, repeated=None):
    """Yield the pages (lists) of a scroll session: get_page(None) opens it, get_page(scroll id) steps it, each
    -> (items, scroll id or None). The id may stay the same from page to page; a page whose first item is that of
    the page before is the error. After the last page, close(scroll id) ends the session; a close that fails only
    warns, as the session expires on its own. A step is asked once: the caller does not retry it, since a retried
    step can skip a page."""
    session = [None]

    def page(cursor):
        items, following = get_page(cursor)
        session[0] = following or cursor
        return items, session[0]
    yield from cursor_pages(page, service=service, what=what, fix=fix, repeated=repeated,
                            identity=lambda items: repr(items[0])[:500])
    if close is not None and session[0]:
        try:
            close(session[0])
        except SourceError as exc:
            log.warning("Could not close the %s scroll session (%s); it expires on its own.", service, exc.message)


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


__all__ = ["offset_pages", "cursor_pages", "scroll_pages", "window_pages"]
