"""Delta delivery of lookups over the Lookups API: what Devo holds, remembered beside the state, and the upload of
only what changed since (rows added or changed as an upsert, keys gone as a delete).

The index is a folder beside the state file (`<command>.index/`, mode 0700) with, for each lookup, a small SQLite
file (key digest -> digest of the row as delivered, and where the row is, in key digest order) and the CSV text the
lookup was last delivered with (a delete sends the whole rows, as Devo's guide does). A run writes its rows as they
come into a new pair of those files, which is the body of a full replacement as it stands; the comparison with the
index is done by SQLite on the digests, both tables walked in key order (neither side is loaded whole: memory
stays flat). The run sends a full replacement instead of a
delta when there is no index yet, the lookup's shape or destination changed, the run is forced, the delta is larger
than devo_delta_max_percent of the lookup, or the last full replacement is older than devo_full_replace_days. Only
once Devo confirmed every part does the new pair replace the old one (one rename). Before a part is sent the keys it
carries are committed to the old index as in flight: a run that dies part way leaves the index as it was, and the
next run sends those keys again as they then are (upsert if present, delete if gone), so the lookup ends as a full
replacement would leave it.
"""

import array
import datetime
import glob
import fcntl
import hashlib
import itertools
import json
import logging
import math
import mmap
import operator
import os
import sqlite3
import threading
import uuid
from urllib.parse import quote

import msgspec

from tq_conn_common import clock
from tq_conn_common.devo.rest import REST_TYPES, LookupMissing, csv_line, csv_records
from tq_conn_common.devo.settings import DELTA, DELTA_SHARE, FULL_DAYS
from tq_conn_common.devo.transport import settings_of, upload as transport_upload
from tq_conn_common.errors import ConfigError
from tq_conn_common.keys import SIZE, digest

log = logging.getLogger(__name__)

SUFFIX = ".index"        # <command>.index/ beside <command>.state.json
_OLD_SUFFIX = ".index.sqlite"   # the single-file index of 1.1: dropped, each lookup is sent whole once
CACHE_KB = 4 * 1024      # SQLite page cache of each database (KB): memory stays flat whatever the number of rows
_READ = 4096             # records read and written together
_ID_WIDTH = 19           # characters of a record's id in _Packed marks (an id is a number of 18 digits at most)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {db}meta (lookup TEXT, shape TEXT, size INTEGER, full_at TEXT, delta_at TEXT, "
    "full_pending INTEGER NOT NULL DEFAULT 0, lines TEXT)",
    # In the order of the key digests: a comparison walks both indexes side by side, every look-up beside the last.
    "CREATE TABLE IF NOT EXISTS {db}rows (k BLOB PRIMARY KEY, d BLOB NOT NULL, off INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {db}inflight (k BLOB PRIMARY KEY, line TEXT NOT NULL)",
    # Streams that read changes: every record read (repeats of a key too), by its id in the source, with its key,
    # row and change stamp t and the stamp u that orders the records of a key (the newest is the key's row).
    "CREATE TABLE IF NOT EXISTS {db}srcs (src INTEGER PRIMARY KEY, k BLOB NOT NULL, d BLOB NOT NULL, "
    "off INTEGER NOT NULL, t TEXT, u TEXT)",
)
# The rows a run adds, as they come, one row of temp.pages for each Lines added: its key digests and offsets
# (packed, for finding repeats) and, when the rows have no marks, its line digests and its offsets as JSON, which
# SQLite takes apart (json_each) only when it sorts them, in the thread beside the upload: inserting a page costs the
# run next to nothing while rows come. Rows with marks go into temp.each: taken apart by SQLite from one statement a
# page when the marks came _Packed, else one by one (and all rows one by one when SQLite lacks its JSON functions).
# The view added reads both, n ordering the rows as they came.
_ADDED = (
    "CREATE TEMP TABLE pages (p INTEGER PRIMARY KEY, keys BLOB NOT NULL, offs BLOB NOT NULL, digs BLOB, rows TEXT)",
    "CREATE TEMP TABLE each (n INTEGER PRIMARY KEY, k BLOB NOT NULL, d BLOB NOT NULL, off INTEGER NOT NULL, "
    "src INTEGER, t TEXT, u TEXT)",
)
_VIEWS = (
    "CREATE TEMP VIEW paged AS SELECT (p.p << 32) + j.key AS n, substr(p.keys, j.key * {size} + 1, {size}) AS k, "
    "substr(p.digs, j.key * 8 + 1, 8) AS d, j.atom AS off, NULL AS src, NULL AS t, NULL AS u "
    "FROM temp.pages p, json_each(p.rows) j WHERE p.rows IS NOT NULL",
    "CREATE TEMP VIEW added AS SELECT * FROM paged UNION ALL SELECT * FROM temp.each",
)
_PLAIN_VIEW = "CREATE TEMP VIEW added AS SELECT * FROM temp.each"
# The rows of one Lines whose marks are _Packed into temp.each: ?1 the page, ?2 ?3 the key and line digests, ?4 to ?8
# the _Packed marks, ?9 the offsets as JSON (one element a row).
_EACH = (f"INSERT INTO temp.each SELECT (?1 << 32) + j.key, substr(?2, j.key * {SIZE} + 1, {SIZE}), "
         f"substr(?3, j.key * 8 + 1, 8), j.atom, CAST(substr(?4, j.key * {_ID_WIDTH} + 1, {_ID_WIDTH}) AS INTEGER), "
         "CAST(substr(?5, j.key * ?7 + 1, ?7) AS TEXT), CAST(substr(?6, j.key * ?8 + 1, ?8) AS TEXT) "
         "FROM json_each(?9) j")


def index_dir(state_path):
    """Return the folder of the delta index beside a state file (x.state.json -> x.index)."""
    base = state_path[:-len(".state.json")] if state_path.endswith(".state.json") else state_path
    return base + SUFFIX


def upload(run, spec, name, mode="replace", allow_empty=False, forced=False, keep="last"):
    """Return the Upload of a lookup: a DeltaUpload (keeping the first or the last row of a key) when the lookup is
    replaced over the Lookups API with delta delivery on, else the transport's own Upload (and the lookup's index
    entry is dropped: Devo's content is about to change without it)."""
    settings = settings_of(run)
    if mode == "replace" and settings.transport == "rest" and _enabled(run.config):
        return DeltaUpload(run, spec, name, allow_empty, forced, keep)
    if not getattr(run.args, "dry_run", False):
        forget(run, name)
    return transport_upload(run, spec, name, mode, allow_empty)


def _enabled(config):
    value = config.get(DELTA.key)
    return DELTA.default if value is None else bool(value)


def _folder(state_path):
    """Return the index folder (created private if missing), the 1.1 single-file index dropped."""
    folder = index_dir(state_path)
    old = folder[:-len(SUFFIX)] + _OLD_SUFFIX
    if os.path.exists(old):
        log.info("The delta index moved to %s; each lookup is sent whole once to start it.", folder)
        os.unlink(old)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.path.islink(folder) or not os.path.isdir(folder):
            raise OSError(0, "it is not a folder")
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise ConfigError(f"The delta index {folder} cannot be used ({exc.strerror}).",
                          "make the config folder writable by this user (the index lives beside the state file).") \
            from None
    return folder


def _base(folder, name):
    return os.path.join(folder, quote(name, safe=""))


def _lines_of(db_path):
    """Return the path of the lines file an index database names, or None."""
    try:
        db = sqlite3.connect(db_path)
        try:
            found = db.execute("SELECT lines FROM meta").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return os.path.join(os.path.dirname(db_path), found[0]) if found and found[0] else None


def forget(run, name):
    """Drop the index of a lookup (if there is one)."""
    folder = index_dir(run.paths["state"])
    path = _base(folder, name) + ".sqlite"
    if os.path.exists(path):
        log.info("Lookup %s is not delivered as a delta this time; its delta index is dropped.", name)
        lines = _lines_of(path)
        os.unlink(path)
        if lines and os.path.exists(lines):
            os.unlink(lines)


def _private(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep(folder, base):
    """Remove what runs that died left of their new index files for this lookup (their process is gone)."""
    from tq_conn_common.lock import alive
    current = _lines_of(base + ".sqlite") if os.path.exists(base + ".sqlite") else None
    for path in glob.glob(glob.escape(base) + ".*.new*") + glob.glob(glob.escape(base) + ".*.csv"):
        if path == current:
            continue
        pid = os.path.basename(path)[len(os.path.basename(base)) + 1:].split(".", 1)[0].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            try:
                os.unlink(path)
            except OSError:
                pass


class _transaction:
    """BEGIN ... COMMIT on an autocommit connection; ROLLBACK when the block raises."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *exc):
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def _insert(db, table, rows):
    """Append rows (tuples of one width) to a table, many rows a statement (a third cheaper than one each)."""
    if not rows:
        return
    width = len(rows[0])
    per = 960 // width
    whole = len(rows) // per * per
    if whole:
        statement = f"INSERT INTO {table} VALUES " + ",".join(["(" + ", ".join("?" * width) + ")"] * per)
        for at in range(0, whole, per):
            db.execute(statement, list(itertools.chain.from_iterable(rows[at:at + per])))
    db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows[whole:])


def _ident(value):
    """Return a record's id in its source as an integer, or None when it is not one."""
    if type(value) is int:
        return value
    return int(value) if type(value) is str and value.isascii() and value.isdigit() and len(value) < _ID_WIDTH \
        else None


def _mark(mark):
    """Return (src, t, u) of a record's mark (id, change stamp, order stamp; texts)."""
    return _ident(mark[0]), mark[1] or None, mark[2] or None


class _Packed(tuple):
    """The marks of a page packed for SQLite to take apart (see _EACH): (ids, change stamps, order stamps) each as one
    ASCII byte string, ids right-aligned in _ID_WIDTH characters, the stamps of a page all of one width; then the
    two widths."""


def _pack(marks):
    """Return the marks of a page (id, change stamp, order stamp: texts) as a _Packed when they can be (every id a
    number, the stamps of each kind of one length and ASCII; the usual page), else as a list of _mark()s."""
    try:
        ids, changed, ordered = zip(*marks)
        texts = ["".join(ids), "".join(changed), "".join(ordered)]
        widths = [len(changed[0]), len(ordered[0])]
        # Every id a number as _ident reads one (ASCII digits, fewer than _ID_WIDTH), checked a page at once.
        if (all(map(str.isascii, texts)) and texts[0].isdigit() and 0 < min(map(len, ids))
                and max(map(len, ids)) < _ID_WIDTH and all(widths) and set(map(len, changed)) == {widths[0]}
                and set(map(len, ordered)) == {widths[1]}):
            texts[0] = "".join([i.rjust(_ID_WIDTH) for i in ids])
            return _Packed((*(text.encode("ascii") for text in texts), *widths))
    except (TypeError, ValueError):   # not texts, or no marks
        pass
    return list(map(_mark, marks))


def _unpack(packed):
    """Return the list of _mark()s a _Packed holds."""
    ids, changed, ordered, t, u = packed
    return [(int(ids[i * _ID_WIDTH:(i + 1) * _ID_WIDTH]), changed[i * t:(i + 1) * t].decode("ascii"),
             ordered[i * u:(i + 1) * u].decode("ascii")) for i in range(len(ids) // _ID_WIDTH)]


class Lines:
    """Rows made ready for a DeltaUpload where they were made (in a worker process, say): their CSV lines as one
    byte string, each line's length, the digests of their keys and of their lines, and their records' marks (None
    when they have none; packed, as a _Packed, when they can be). It pickles to little more than its lines.

    rows: tuples of texts in the order of the lookup's columns (key: the key column's index); marks: the mark of
    each row's record (id, change stamp, order stamp: texts) when the stream reads changes.
    """

    __slots__ = ("data", "sizes", "keys", "digests", "marks")

    def __init__(self, rows, key, marks=None):
        lines = [(record + "\n").encode("utf-8", "surrogatepass") for record in csv_records(rows)]
        blake = hashlib.blake2b
        self.data = b"".join(lines)
        self.sizes = list(map(len, lines))
        self.keys = b"".join(digest(row[key]) for row in rows)
        self.digests = b"".join(blake(line, digest_size=8).digest() for line in lines)
        self.marks = _pack(marks) if marks is not None else None

    def __len__(self):
        return len(self.sizes)


class _Seen:
    """The keys added, as one bit each of a fixed bitmap (4 MiB at most, whatever the number of rows; anonymous
    memory, so a small lookup touches few of its pages): a key whose bit was set already may repeat an earlier one
    and is kept in maybe (about 1.5% of a million keys, most of them not repeats: _drop_repeats asks which are)."""

    _BITS = 1 << 25

    def __init__(self):
        self.bits, self.maybe = mmap.mmap(-1, self._BITS >> 3, flags=mmap.MAP_PRIVATE), set()

    def add(self, keys):
        """Note the keys of one Lines (their digests, packed)."""
        bits, mask = self.bits, self._BITS - 1
        for i, head in enumerate(_heads(keys)):
            at = head & mask
            bit = 1 << (at & 7)
            if bits[at >> 3] & bit:
                self.maybe.add(keys[i * SIZE:(i + 1) * SIZE])
            else:
                bits[at >> 3] |= bit


def _heads(keys):
    """Return the first 32 bits of each key digest in a packed run of them, as integers (a view, not a copy)."""
    return memoryview(keys).cast("I")[::SIZE // 4]


def _differences(ids, stamps, known):
    """Return (need, dropped) of a block of the listing (ids increasing, their stamps) beside the index's records
    (src, t) in the same range of ids: [(id, stamp)] of the records new or changed, [(src,)] of those gone."""
    if len(known) == len(ids):
        srcs, ts = zip(*known)
        if srcs == ids:   # the same records: only stamps can differ
            return [(i, s) for i, s, t in zip(ids, stamps, ts) if s != t], []
    need, dropped, at, end = [], [], 0, len(known)
    for ident, stamp in zip(ids, stamps):
        while at < end and known[at][0] < ident:
            dropped.append((known[at][0],))
            at += 1
        if at < end and known[at][0] == ident:
            if known[at][1] != stamp:
                need.append((ident, stamp))
            at += 1
        else:
            need.append((ident, stamp))
    return need, dropped


def _has_json(db):
    """Return True when this SQLite has its JSON functions (built in since 3.38, an option before)."""
    try:
        db.execute("SELECT atom FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


class ReadWhole(Exception):
    """The lookup, read as changes, must be read whole after all (Devo lost it): the run reads the source again."""


class DeltaUpload:
    """The rows of one lookup replaced over the Lookups API: sent as a full replacement or as a delta.

    add() takes tuples of texts in the order of spec.columns, add_lines() a Lines (made elsewhere, with the records'
    marks when the stream reads changes); of the rows of one key, the first or the last (keep) is kept; send()
    returns the rows sent (upserted and deleted) once Devo confirmed them; outcome then says ("full" or "delta",
    rows upserted, rows deleted).

    A stream whose source can say what changed (connector.Changes) is read as changes when the index allows:
    since() takes the listing of every record's id and stamp and names the records to read again (new or
    changed) and those gone; only the rows of the keys they touch are sent.
    """

    mode = "replace"
    dedupes = True   # one row of each key is kept; repeats: how many were dropped so

    def __init__(self, run, spec, name, allow_empty=False, forced=False, keep="last"):
        self.run, self.spec, self.name, self.allow_empty, self.forced = run, spec, name, allow_empty, forced
        self.keep = keep
        self.tag = None     # what the source reads (a ThreatQ collection's query): another tag is another lookup
        self._dropped = ()   # (offset, length) of the lines of rows dropped as repeats: left out of the body
        self._kept = None
        self.count = self.repeats = 0
        self.outcome = None
        self._key = spec.key_index
        self._folder = _folder(run.paths["state"])
        self._base = _base(self._folder, name)
        _sweep(self._folder, self._base)
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._path = f"{self._base}.{tag}.new.sqlite"
        self._lines = f"{self._base}.{tag}.csv"
        for path in (self._path, self._lines):
            _private(path)
        self._spool = open(self._lines, "wb")
        self._spool.write(csv_line(spec.names).encode("utf-8"))
        self._at = self._spool.tell()
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)   # see _send_full
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KB}"):
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement.format(db=""))
        # The rows as they come (see _ADDED); sorted into rows once, at send().
        self._json = _has_json(self._db)
        for statement in (*_ADDED, *([v.format(size=SIZE) for v in _VIEWS] if self._json else [_PLAIN_VIEW])):
            self._db.execute(statement)
        self._pages = 0
        self._stored = set()   # where rows went: paged, temp.each
        self._db.execute("BEGIN")
        self._current = None   # the lookup's index as it was, attached as idx when there is one
        self._old_lines = None   # and the lines file it names
        self._meta = None
        self._changes = None   # reading changes: the lines file of the index, open for appending (and locked)
        self._marked = False   # rows came with their records' marks: the index keeps the records (srcs)
        self._seen = _Seen()   # the keys added, and those that may have come before

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, rows):
        """Keep rows (a list of tuples of texts in the order of spec.columns) by key."""
        self.add_lines(Lines(rows, self._key))

    def add_lines(self, lines):
        """Keep the rows of a Lines by key: their lines appended to the lines file, their digests to the index's."""
        count = len(lines)
        if not count:
            return
        offsets = list(itertools.accumulate(lines.sizes, initial=self._at))
        self._spool.write(lines.data)
        self._at = offsets.pop()
        self._seen.add(lines.keys)
        marks, page, packed = lines.marks, self._pages, array.array("q", offsets).tobytes()
        listed = msgspec.json.encode(offsets).decode("ascii") if self._json else None
        self._pages += 1
        if marks is None and self._json:
            self._db.execute("INSERT INTO temp.pages VALUES (?, ?, ?, ?, ?)",
                             (page, lines.keys, packed, lines.digests, listed))
            self._stored.add("paged")
        else:
            self._stored.add("temp.each")
            self._db.execute("INSERT INTO temp.pages (p, keys, offs) VALUES (?, ?, ?)", (page, lines.keys, packed))
            if type(marks) is _Packed and self._json:   # SQLite takes the page apart: no Python work a row
                self._marked = True
                self._db.execute(_EACH, (page, lines.keys, lines.digests, *marks, listed))
            else:
                marks = _unpack(marks) if type(marks) is _Packed else marks
                self._marked = self._marked or (marks is not None and any(mark[0] is not None for mark in marks))
                first = page << 32
                keys = [lines.keys[at:at + SIZE] for at in range(0, count * SIZE, SIZE)]
                digests = [lines.digests[at:at + 8] for at in range(0, count * 8, 8)]
                _insert(self._db, "temp.each", list(zip(range(first, first + count), keys, digests, offsets,
                                                        *(zip(*marks) if marks else ((None,) * count,) * 3))))
        self.count += count

    # Reading changes.

    def since(self, listing):
        """Plan a read of changes: return the source stamp to read the records changed since (the caller reads
        those that wanted() names, then one by one those of needed() not among them, and adds their rows), "" when
        nothing needs reading, or None when the lookup must be read whole (no index yet, a full replacement due,
        too much changed; logged why).

        listing yields (ident, stamp) of every record the source holds, in increasing ident order; it is walked
        beside the index's records (srcs, in the same order): a record whose stamp differs or that is new is read
        again, one not listed is gone.
        """
        self._db.execute("COMMIT")
        meta = self._attach()
        reason = self._full_reason(meta, self._shape())
        if reason is None and self.keep != "first":
            reason = "its stream keeps the last row of a key"
        if reason is None and not self._db.execute("SELECT 1 FROM idx.srcs LIMIT 1").fetchone():
            reason = "its delta index holds no record ids yet"
        if reason is None and not self._lock_lines():
            reason = "another run is writing its delta index"
        if reason is None:
            reason = self._compare(listing)
        if reason is None:
            needs, dropped, whole, stamp, unstamped = self._db.execute(
                "SELECT (SELECT count(*) FROM need), (SELECT count(*) FROM dropped), ?, (SELECT min(t) FROM need), "
                "(SELECT count(*) FROM need WHERE t IS NULL OR t = '')", (max(meta["size"] or 0, 1),)).fetchone()
            share = int(self.run.config.get(DELTA_SHARE.key) or DELTA_SHARE.default)
            if unstamped:
                reason = "its source listed records without a change stamp"
            elif (needs + dropped) * 100 > share * whole:
                reason = (f"{needs} of its records are new or changed and {dropped} gone, more than {share}% of its "
                          f"{whole} rows ({DELTA_SHARE.key})")
        if reason is not None:
            log.info("Lookup %s is read whole, as %s.", self.name, reason)
            for table in ("need", "dropped"):
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
            self._unlock_lines()
            self._db.execute("BEGIN")
            return None
        log.info("Lookup %s: %d records of its source to read again (new or changed), %d gone.", self.name, needs,
                 dropped)
        self._spool.close()
        os.unlink(self._lines)
        self._lines = None
        self._spool, self._at = self._changes, self._changes.seek(0, os.SEEK_END)
        self._db.execute("BEGIN")
        return stamp or ""

    def _compare(self, listing):
        """Walk the listing beside the index's records: new or changed ones into temp.need, those gone into
        temp.dropped. Return None, or why the lookup must be read whole.

        A block of the listing at a time, beside the index's records up to its last id: where both hold the same ids
        (most blocks) only the stamps are compared, in one pass; elsewhere the two are walked record by record."""
        db = self._db
        db.execute("CREATE TEMP TABLE need (src INTEGER PRIMARY KEY, t TEXT)")
        db.execute("CREATE TEMP TABLE dropped (src INTEGER PRIMARY KEY)")
        db.execute("BEGIN")
        last = -math.inf
        listing = iter(listing)
        for block in iter(lambda: list(itertools.islice(listing, _READ)), []):
            ids, stamps = zip(*block)
            if set(map(type, ids)) != {int}:
                ids = tuple(map(_ident, ids))
            if None in ids or ids[0] <= last or not all(map(operator.lt, ids, ids[1:])):
                db.execute("ROLLBACK")
                return "its source did not list its records by increasing id"
            known = db.execute("SELECT src, t FROM idx.srcs WHERE src > ? AND src <= ? ORDER BY src",
                               (last, ids[-1])).fetchall()
            need, dropped = _differences(ids, stamps, known)
            _insert(db, "temp.need", need)
            _insert(db, "temp.dropped", dropped)
            last = ids[-1]
        db.execute("INSERT INTO temp.dropped SELECT src FROM idx.srcs WHERE src > ?", (last,))
        db.execute("COMMIT")
        return None

    def wanted(self, ident):
        """Return True when the record with this ident is to be read again (reading changes)."""
        ident = _ident(ident)
        return ident is not None and self._db.execute("SELECT 1 FROM need WHERE src = ?", (ident,)).fetchone() \
            is not None

    def needed(self):
        """Yield the idents of the records to read again (reading changes), as texts."""
        cursor = self._db.execute("SELECT src FROM need")
        for batch in iter(lambda: cursor.fetchmany(_READ), []):
            for (ident,) in batch:
                yield str(ident)

    def _lock_lines(self):
        """Open the index's lines file for appending, locked for this run; return False when another run holds it."""
        try:
            spool = open(self._old_lines, "ab")
        except OSError:
            return False
        try:
            fcntl.flock(spool, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            spool.close()
            return False
        self._changes = spool
        return True

    def _unlock_lines(self):
        if self._changes is not None:
            self._changes.close()   # closing releases the lock
            self._changes = None

    def kept(self):
        """Return how many rows are kept, one per key (the rows repeating a key counted in repeats); once added."""
        if self._kept is None:
            self._spool.flush()
            self._db.execute("COMMIT")
            self._kept = self.count - self._drop_repeats()
            self.repeats = self.count - self._kept
        return self._kept

    def send(self):
        """Send the full replacement or the delta; return how many rows were sent."""
        if self._changes is not None:
            return self._send_changes()
        name = self.name
        rows = self.kept()
        if rows == 0 and not self.allow_empty:
            log.warning("No rows to replace in lookup %s; it was left unchanged.", name)
            return 0
        meta = self._attach()
        shape = self._shape()
        reason = self._full_reason(meta, shape)
        if reason is None:
            self._index()
            upserts, deletes = self._delta()
            share = int(self.run.config.get(DELTA_SHARE.key) or DELTA_SHARE.default)
            whole = max(rows, meta["size"] or 0, 1)
            if (upserts + deletes) * 100 > share * whole:
                reason = (f"its delta ({upserts} upserted, {deletes} deleted) is more than {share}% of its {whole} "
                          f"rows ({DELTA_SHARE.key})")
            else:
                try:
                    return self._send_delta(upserts, deletes, rows, meta, shape)
                except LookupMissing:
                    reason = "it is not in Devo any more"
        return self._send_full(reason, shape, rows)

    def _send_changes(self):
        """Send what reading changes found: for each key a record read again, left or came back to, the row of its
        newest record when that differs from what Devo holds, or a delete when none is left."""
        db = self._db
        self._spool.flush()
        db.execute("COMMIT")
        db.execute("BEGIN")
        # The records read again (the last reading of each), then the keys they touch: theirs, the keys the records
        # read again or gone had before, and those in flight.
        db.execute("CREATE TEMP TABLE fresh AS SELECT a.src AS src, a.k AS k, a.d AS d, a.off AS off, n.t AS t, "
                   "a.u AS u FROM added a JOIN need n ON n.src = a.src WHERE a.n IN "
                   "(SELECT max(n) FROM added GROUP BY src)")
        db.execute("CREATE TEMP TABLE hit (k BLOB PRIMARY KEY) WITHOUT ROWID")
        db.execute("INSERT OR IGNORE INTO hit SELECT k FROM fresh")
        db.execute("INSERT OR IGNORE INTO hit SELECT s.k FROM idx.srcs s WHERE s.src IN (SELECT src FROM dropped) "
                   "OR s.src IN (SELECT src FROM fresh)")
        db.execute("INSERT OR IGNORE INTO hit SELECT k FROM idx.inflight")
        # The newest record of each key touched, as it now stands: read again, or as the index has it.
        db.execute("CREATE TEMP TABLE pick (k BLOB PRIMARY KEY, d BLOB, off INTEGER) WITHOUT ROWID")
        db.execute("INSERT OR IGNORE INTO pick SELECT k, d, off FROM (SELECT k, d, off, u, src FROM fresh UNION ALL "
                   "SELECT s.k, s.d, s.off, s.u, s.src FROM idx.srcs s WHERE s.k IN (SELECT k FROM hit) "
                   "AND s.src NOT IN (SELECT src FROM dropped) AND s.src NOT IN (SELECT src FROM fresh)) "
                   "ORDER BY k, u DESC, src DESC")
        db.execute("CREATE TEMP TABLE up AS SELECT p.k AS k, p.off AS off FROM pick p LEFT JOIN idx.rows i "
                   "ON i.k = p.k WHERE i.d IS NULL OR i.d != p.d OR p.k IN (SELECT k FROM idx.inflight)")
        db.execute("CREATE TEMP TABLE gone AS SELECT i.k AS k, i.off AS off, NULL AS line FROM idx.rows i "
                   "WHERE i.k IN (SELECT k FROM hit) AND i.k NOT IN (SELECT k FROM pick)")
        db.execute("INSERT INTO gone SELECT f.k, NULL, f.line FROM idx.inflight f WHERE f.k NOT IN "
                   "(SELECT k FROM pick) AND f.k NOT IN (SELECT k FROM gone)")
        db.execute("COMMIT")
        upserts, deletes, size = db.execute(
            "SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM gone), ? + "
            "(SELECT count(*) FROM pick WHERE k NOT IN (SELECT k FROM idx.rows)) - "
            "(SELECT count(*) FROM gone WHERE off IS NOT NULL)", (self._meta["size"] or 0,)).fetchone()
        try:
            return self._send_delta(upserts, deletes, size, self._meta, self._shape())
        except LookupMissing:
            raise ReadWhole(f"lookup {self.name} is not in Devo any more") from None

    def _drop_repeats(self):
        """Find the rows that repeat a key of another row kept (the first or the last of each key is); return how
        many. They stay in the lines file, unread (the index points at the kept ones); the body of a full
        replacement leaves them out."""
        if not self._seen.maybe:
            return 0
        last = self.keep != "first"
        dropped, held = [], {}
        for k, off in self._occurrences(self._seen.maybe):
            if k not in held:
                held[k] = off
            elif last:
                dropped.append(held[k])
                held[k] = off
            else:
                dropped.append(off)
        if not dropped:
            return 0
        log.info("Lookup %s: %d rows repeated a key of an earlier row; the %s row of each key is kept.", self.name,
                 len(dropped), self.keep)
        self._dropped = []
        with open(self._lines, "rb") as lines:
            for off in sorted(dropped):
                lines.seek(off)
                self._dropped.append((off, len(lines.readline())))
        return len(dropped)

    def _occurrences(self, keys):
        """Yield (key, offset) of each row added whose key is among keys (a set of digests), in the order added."""
        heads = {_heads(k)[0] for k in keys}
        for packed, offs in self._db.execute("SELECT keys, offs FROM temp.pages ORDER BY p"):
            offs = memoryview(offs).cast("q")
            for i in [i for i, head in enumerate(_heads(packed)) if head in heads]:
                k = packed[i * SIZE:(i + 1) * SIZE]
                if k in keys:
                    yield k, offs[i]

    def _index(self):
        """Make the rows added the index's rows (the first or the last of each key) and records (srcs), in key and
        id order."""
        db = self._db
        if not db.execute("SELECT 1 FROM sqlite_temp_master WHERE name = 'added'").fetchone():
            return   # made already (a delta that fell back to a full replacement)
        order = "" if self.keep == "first" else " DESC"
        source = "added" if len(self._stored) > 1 else next(iter(self._stored), "added")   # no union to sort
        db.execute(f"INSERT OR IGNORE INTO rows SELECT k, d, off FROM {source} ORDER BY k, n{order}")
        if self._marked:   # every record read, by its id in the source (the last reading of an id is kept)
            db.execute("INSERT OR REPLACE INTO srcs SELECT src, k, d, off, t, u FROM temp.each WHERE src IS NOT NULL "
                       "ORDER BY src, n")
        for drop in ("VIEW added", "VIEW IF EXISTS paged", "TABLE temp.pages", "TABLE temp.each"):
            db.execute(f"DROP {drop}")

    def _attach(self):
        """Attach the lookup's index as idx; return its meta ({} when there is no index or it cannot be read)."""
        if self._meta is not None:
            return self._meta
        path = self._base + ".sqlite"
        if not os.path.exists(path):
            self._meta = {}
            return {}
        db = self._db
        try:
            db.execute("ATTACH DATABASE ? AS idx", (path,))
            for statement in _SCHEMA:
                db.execute(statement.format(db="idx."))
            found = db.execute("SELECT lookup, shape, size, full_at, delta_at, full_pending, lines FROM idx.meta") \
                .fetchone()
        except sqlite3.DatabaseError as exc:
            log.warning("The delta index of lookup %s cannot be read (%s); it is started again: the lookup is sent "
                        "whole once.", self.name, exc)
            try:
                db.execute("DETACH DATABASE idx")
            except sqlite3.Error:
                pass
            os.unlink(path)
            return {}
        self._current = path
        keys = ("lookup", "shape", "size", "full_at", "delta_at", "full_pending", "lines")
        meta = dict(zip(keys, found)) if found else {}
        self._old_lines = os.path.join(self._folder, meta["lines"]) if meta.get("lines") else None
        self._meta = meta
        return meta

    def _shape(self):
        """Return what the index of the lookup holds true for: its columns, key, source and Devo destination."""
        settings = settings_of(self.run)
        shape = {"columns": [[c.name, REST_TYPES[c.type]] for c in self.spec.columns], "key": self.spec.key,
                 "url": settings.rest_url, "domain": settings.value("devo_domain")}
        if self.tag is not None:
            shape["source"] = self.tag
        return json.dumps(shape, sort_keys=True)

    def _full_reason(self, meta, shape):
        """Return why the lookup must be sent whole, or None when a delta will do."""
        if self.forced:
            return "the run is forced (--force or --reset-state)"
        if not meta.get("shape"):
            return "it has no delta index yet"
        if meta["full_pending"]:
            return "the last full replacement was not confirmed"
        if meta["shape"] != shape:
            return "its columns, key, source or Devo destination changed"
        if not self._old_lines or not os.path.exists(self._old_lines):
            return "its delta index lost the rows it was delivered with"
        days = int(self.run.config.get(FULL_DAYS.key) or FULL_DAYS.default)
        last = clock.parse(meta["full_at"])
        if last is None or clock.now() - last >= datetime.timedelta(days=days) - datetime.timedelta(minutes=5):
            return f"its last full replacement is {days} days old or more ({FULL_DAYS.key})"
        return None

    def _delta(self):
        """Put the keys to upsert (new or changed, or in flight when a run died) and to delete (gone) in temporary
        tables; return how many of each."""
        db = self._db
        db.execute("CREATE TEMP TABLE up AS SELECT n.k AS k, n.off AS off FROM rows n "
                   "LEFT JOIN idx.rows i ON i.k = n.k WHERE i.d IS NULL OR i.d != n.d "
                   "OR n.k IN (SELECT k FROM idx.inflight)")
        db.execute("CREATE TEMP TABLE gone AS SELECT i.k AS k, i.off AS off, NULL AS line FROM idx.rows i "
                   "WHERE NOT EXISTS (SELECT 1 FROM rows n WHERE n.k = i.k)")
        db.execute("INSERT INTO gone SELECT f.k, NULL, f.line FROM idx.inflight f "
                   "WHERE NOT EXISTS (SELECT 1 FROM rows n WHERE n.k = f.k) AND f.k NOT IN (SELECT k FROM gone)")
        return (db.execute("SELECT count(*) FROM up").fetchone()[0],
                db.execute("SELECT count(*) FROM gone").fetchone()[0])

    def _records(self, query, path):
        """Yield (k, line) of the rows query selects (k, off, line), reading from path where line is NULL."""
        cursor = self._db.execute(query)
        with open(path, "rb") as lines:
            for batch in iter(lambda: cursor.fetchmany(_READ), []):
                for k, off, line in batch:
                    if line is None:
                        lines.seek(off)
                        line = lines.readline().decode("utf-8", "surrogatepass").rstrip("\n")
                    yield k, line

    def _send_delta(self, upserts, deletes, rows, meta, shape):
        """Send the upserts (their lines in the run's lines file, or the index's when reading changes) and the
        deletes; commit once Devo confirmed."""
        db, name = self._db, self.name
        if not upserts and not deletes:
            with transport_upload(self.run, self.spec, name, "upsert") as up:
                if not up.exists():   # removed in Devo since: what the index says is not there any more
                    raise LookupMissing(f"Lookup '{name}' is not in Devo.")
            log.info("Lookup %s: delta, unchanged since the last run; nothing sent.", name)
            self._commit(shape, rows, meta["full_at"], clock.stamp())
            self.outcome = ("delta", 0, 0)
            return 0
        log.info("Lookup %s: delta of %d rows upserted and %d deleted (of %d rows).", name, upserts, deletes, rows)
        parts = (("upsert", "SELECT k, off, NULL FROM up ORDER BY off", self._lines or self._old_lines),
                 ("delete", "SELECT k, off, line FROM gone ORDER BY off", self._old_lines))
        uploads = [transport_upload(self.run, self.spec, name, mode, self.allow_empty) for mode, _, _ in parts]
        try:
            with _transaction(db):   # what is about to change in Devo: sent again by the next run if this one dies
                db.execute("DELETE FROM idx.inflight")
                for up, (_, query, path) in zip(uploads, parts):
                    up.must_exist = True
                    records = self._records(query, path)
                    for batch in iter(lambda: list(itertools.islice(records, _READ)), []):
                        db.executemany("INSERT OR REPLACE INTO idx.inflight VALUES (?, ?)", batch)
                        up.add_records([line for _, line in batch])
            sent = sum(up.send() for up in uploads if up.count)
        finally:
            for up in uploads:
                up.close()
        self._commit(shape, rows, meta["full_at"], clock.stamp())
        self.outcome = ("delta", upserts, deletes)
        return sent

    def _send_full(self, reason, shape, rows):
        """Send every row kept as a full replacement; meanwhile the index is made in a thread (SQLite works outside
        the GIL), ready to be committed once Devo confirmed."""
        db, name = self._db, self.name
        log.info("Lookup %s: full replacement of %d rows, as %s.", name, rows, reason)
        if self._current:
            with _transaction(db):   # until Devo confirmed it, the index no longer says what Devo holds
                db.execute("UPDATE idx.meta SET full_pending = 1")
        failed = []

        def index():
            try:
                self._index()
            except sqlite3.Error as exc:
                failed.append(exc)
        making = threading.Thread(target=index, name="delta-index", daemon=True)
        making.start()
        try:
            with transport_upload(self.run, self.spec, name, "replace", self.allow_empty) as up:
                up.adopt(self._lines, rows, self._dropped)   # the lines file is the body as it stands
                sent = up.send()
        finally:
            making.join()
        if failed:
            raise failed[0]
        self._commit(shape, rows, clock.stamp(), None)
        self.outcome = ("full", sent, 0)
        return sent

    def _commit(self, shape, rows, full_at, delta_at):
        """Make the run's rows the lookup's index (Devo confirmed them): one rename, then the old lines go. Reading
        changes, the index is changed where it is instead, in one transaction (its new lines appended to its own)."""
        db, old_lines = self._db, self._old_lines
        if self._changes is not None:
            os.fsync(self._changes.fileno())
            with _transaction(db):
                db.execute("DELETE FROM idx.srcs WHERE src IN (SELECT src FROM dropped)")
                db.execute("INSERT OR REPLACE INTO idx.srcs SELECT src, k, d, off, t, u FROM fresh")
                db.execute("INSERT OR REPLACE INTO idx.rows SELECT k, d, off FROM pick")
                db.execute("DELETE FROM idx.rows WHERE k IN (SELECT k FROM gone)")
                db.execute("DELETE FROM idx.inflight")
                db.execute("UPDATE idx.meta SET size = ?, delta_at = ?", (rows, delta_at))
            self._unlock_lines()
            return
        if self._current:
            db.execute("DETACH DATABASE idx")
        db.execute("INSERT INTO meta VALUES (?, ?, ?, ?, ?, 0, ?)",
                   (self.name, shape, rows, full_at, delta_at, os.path.basename(self._lines)))
        db.close()
        self._spool.close()
        for path in (self._lines, self._path):
            _fsync(path)
        os.replace(self._path, self._base + ".sqlite")
        _fsync(self._folder)
        self._path = None
        if old_lines and old_lines != self._lines and os.path.exists(old_lines):
            os.unlink(old_lines)
        self._lines = None

    def close(self):
        self._spool.close()
        self._unlock_lines()
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        for path in (self._path, self._lines):
            if path and os.path.exists(path):
                os.unlink(path)


def state_view(state_path):
    """Return the text of --show-state: each stream's last run from the state file, each lookup's delta index."""
    lines = [f"State file: {state_path}" + ("" if os.path.exists(state_path) else " (none yet: no run finished)")]
    try:
        with open(state_path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        state = {}
    streams = dict(state.get("streams") or {}) if isinstance(state, dict) else {}
    for group in ("lists",):
        streams.update({f"{group}/{k}": v for k, v in (state.get(group) or {}).items() if isinstance(v, dict)})
    if isinstance(state, dict) and state.get("last_run"):
        streams[""] = state
    for stream, entry in sorted(streams.items()):
        if isinstance(entry, dict) and entry.get("last_run"):
            lines.append(f"  stream {stream or '(top level)'}: last run {entry['last_run']}, "
                         f"{entry.get('last_count', 0)} rows")
    folder = index_dir(state_path)
    found = sorted(p for p in glob.glob(os.path.join(glob.escape(folder), "*.sqlite")) if ".new." not in p)
    lines.append(f"Delta index: {folder}" + ("" if found else " (none yet: the next run sends every lookup whole)"))
    for path in found:
        try:
            db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
            try:
                meta = db.execute("SELECT lookup, size, full_at, delta_at, full_pending FROM meta").fetchone()
                inflight = db.execute("SELECT count(*) FROM inflight").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as exc:
            lines.append(f"  {os.path.basename(path)}: cannot be read ({exc}); the next run sends that lookup whole")
            continue
        if not meta:
            continue
        lookup, size, full_at, delta_at, pending = meta
        lines.append(f"  lookup {lookup}: {size} rows indexed, last full replacement {full_at or 'not confirmed'}, "
                     f"last delta {delta_at or 'none since'}"
                     + ("; a full replacement was not confirmed: the next run sends it whole" if pending else "")
                     + (f"; {inflight} keys in flight: the next run sends them again" if inflight else ""))
    return "\n".join(lines) + "\n"


__all__ = ["DeltaUpload", "ReadWhole", "upload", "forget", "index_dir", "state_view"]
