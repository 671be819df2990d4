"""Rows on their way: chunks of an iterable, a keyed spool on disk, flattened documents (and keys.Dedupe)."""

import itertools
import json
import queue
import sqlite3
import threading

from tq_conn_common.devo.lookup import MAX_CELL, kind
from tq_conn_common.errors import BadRecord
from tq_conn_common.keys import Dedupe
from tq_conn_common.service import excerpt


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


class KeyedSpool:
    """Rows kept by key in a private temporary database (removed on close): the first or the last row of each key,
    and the kinds of value every column held. Memory stays flat whatever the number of rows."""

    def __init__(self, keep="last"):
        self.keep = keep
        self.kinds = {}           # column -> set of value kinds seen (rows that are dicts)
        self.added = 0
        self._db = sqlite3.connect("")  # "" = private on-disk temporary database, removed on close
        self._db.execute("CREATE TABLE rows (k TEXT PRIMARY KEY, seq INTEGER NOT NULL, row TEXT NOT NULL)")
        self._upsert = ("INSERT INTO rows (k, seq, row) VALUES (?, ?, ?) ON CONFLICT(k) DO "
                        + ("UPDATE SET seq = excluded.seq, row = excluded.row" if keep == "last" else "NOTHING"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def note(self, row):
        """Remember the kinds of value of a row's columns (a dict), whether it is kept or not."""
        for name, value in row.items():
            self.kinds.setdefault(name, set()).add(kind(value))

    def add(self, key, row):
        """Keep row under key (a later row replaces it when keep is 'last'); row is a dict or a list of values."""
        self.added += 1
        self._db.execute(self._upsert, (key, self.added, json.dumps(row, ensure_ascii=False)))

    @property
    def kept(self):
        return self._db.execute("SELECT count(*) FROM rows").fetchone()[0]

    @property
    def duplicates(self):
        """Return how many rows were dropped for a key already kept."""
        return self.added - self.kept

    def rows(self):
        """Yield the kept rows, in the order they were (last) added."""
        cursor = self._db.execute("SELECT row FROM rows ORDER BY seq")
        while True:
            batch = cursor.fetchmany(1000)
            if not batch:
                return
            for (text,) in batch:
                yield json.loads(text)

    def close(self):
        self._db.close()


class Paged:
    """Records that come a page (a list) at a time, read once: iterating yields the records, pages() the pages as
    they come. pages: a function returning the iterator of pages (called on first use: nothing is read before).
    A stream whose records are Paged is shared out among workers by its source's own pages (see runner)."""

    def __init__(self, pages):
        self._pages = pages

    def pages(self):
        return self._pages()

    def __iter__(self):
        for page in self._pages():
            yield from page


_END = object()


def ahead(items):
    """Yield from the iterator items, taking the next one in a thread while the caller works on this one.

    An exception of the iterator is raised here, in its place in the sequence. When the caller stops early the
    thread stops after the item it is taking.
    """
    wanted, ready, closed = threading.Semaphore(0), queue.SimpleQueue(), threading.Event()

    def take():
        try:
            while True:
                wanted.acquire()
                if closed.is_set():
                    return
                item = next(items, _END)
                ready.put((item, None))
                if item is _END:
                    return
        except BaseException as exc:  # handed to the caller's thread, which raises it
            ready.put((_END, exc))

    wanted.release()
    threading.Thread(target=take, name="one-ahead", daemon=True).start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            wanted.release()
            yield item
    finally:
        closed.set()
        wanted.release()


# Documents as rows of a lookup whose columns are found in the data: every key of every document a column. A document
# beyond these limits is skipped and counted rather than sent (one oversized cell makes Devo refuse the upload).
MAX_KEYS = 1_000      # keys in one document, nested ones included
MAX_DEPTH = 500       # levels of nested objects


def flatten(doc, leave_out=(), what="record", context=()):
    """Return a JSON document as a one-level dict: nested objects as 'Deep_1.Deep_2.Key', each list as one JSON text.

    leave_out: top-level keys dropped; what and context (keys of doc): how a skipped document is named. Raises
    BadRecord if the document is not an object or exceeds MAX_KEYS, MAX_DEPTH or a lookup cell (MAX_CELL).
    """
    if not isinstance(doc, dict):
        raise BadRecord(f"{what} that is not a JSON object")
    row = {}
    _walk(doc, "", row, set(leave_out), [0], 1, what, {key: doc.get(key) for key in context})
    return row


def _walk(obj, prefix, row, leave_out, seen, depth, what, context):
    if depth > MAX_DEPTH:
        raise BadRecord(f"{what} nested more than {MAX_DEPTH} levels deep", **context)
    for key, value in obj.items():
        if not prefix and key in leave_out:
            continue
        seen[0] += 1  # counted as they come, so that a huge document is refused without reading it all
        if seen[0] > MAX_KEYS:
            raise BadRecord(f"{what} has more than {MAX_KEYS} keys", **context)
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _walk(value, name + ".", row, (), seen, depth + 1, what, context)
            continue
        if isinstance(value, (list, tuple)):
            try:
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            except RecursionError:  # a list nested almost as deep as the JSON reader allows
                raise BadRecord(f"{what} nested too deeply: {excerpt(name, 60)}", **context) from None
        for text in (name, value):
            if isinstance(text, str) and len(text) > MAX_CELL:
                raise BadRecord(f"{what} key {excerpt(name, 60)} has a name or value of {len(text)} characters, "
                                f"more than the {MAX_CELL} a Devo lookup cell may hold", **context)
        row[name] = value


__all__ = ["chunks", "Paged", "ahead", "flatten", "Dedupe", "KeyedSpool", "MAX_KEYS", "MAX_DEPTH"]
