"""Delta delivery of lookups over the Lookups API: what Devo holds, remembered beside the state, and the upload of
only what changed since (rows added or changed as an upsert, keys gone as a delete).

The index is one SQLite file beside the state file (`<command>.index.sqlite`, mode 0600): for each lookup, key ->
digest of the row as delivered, and the row itself (a delete sends the whole rows, as Devo's guide does). A run puts
its rows in a private temporary database, compares them with the index there (neither is loaded whole: memory stays
flat), and sends a full replacement instead when there is no index yet, the lookup's shape or destination changed, the
run is forced, the delta is larger than devo_delta_max_percent of the lookup, or the last full replacement is older
than devo_full_replace_days. The index changes only in one transaction after Devo confirmed every part. Before a part
is sent the keys it carries are committed as in flight: a run that dies part way leaves the index as it was, and
the next run sends those keys again as they then are (upsert if present, delete if gone), so the lookup ends as a
full replacement would leave it.
"""

import datetime
import hashlib
import json
import logging
import os
import sqlite3

from tq_conn_common import clock
from tq_conn_common.devo.rest import REST_TYPES, LookupMissing, csv_records
from tq_conn_common.devo.settings import DELTA, DELTA_SHARE, FULL_DAYS
from tq_conn_common.devo.transport import settings_of, upload as transport_upload
from tq_conn_common.errors import ConfigError

log = logging.getLogger(__name__)

SUFFIX = ".index.sqlite"
CACHE_KB = 16 * 1024     # SQLite page cache of each database: memory stays flat whatever the number of rows
_READ = 4096             # records read from the databases together
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS idx.lookups (lookup TEXT PRIMARY KEY, shape TEXT, size INTEGER NOT NULL DEFAULT 0, "
    "full_at TEXT, delta_at TEXT, full_pending INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS idx.rows (lookup TEXT NOT NULL, k TEXT NOT NULL, d BLOB NOT NULL, line TEXT NOT NULL, "
    "PRIMARY KEY (lookup, k)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS idx.inflight (lookup TEXT NOT NULL, k TEXT NOT NULL, line TEXT NOT NULL, "
    "PRIMARY KEY (lookup, k)) WITHOUT ROWID",
)


def index_path(state_path):
    """Return the path of the delta index beside a state file (x.state.json -> x.index.sqlite)."""
    base = state_path[:-len(".state.json")] if state_path.endswith(".state.json") else state_path
    return base + SUFFIX


def upload(run, spec, name, mode="replace", allow_empty=False, forced=False):
    """Return the Upload of a lookup: a DeltaUpload when the lookup is replaced over the Lookups API with delta
    delivery on, else the transport's own Upload (and the lookup's index entry is dropped: Devo's content is about to
    change without it)."""
    settings = settings_of(run)
    if mode == "replace" and settings.transport == "rest" and _enabled(run.config):
        return DeltaUpload(run, spec, name, allow_empty, forced)
    if not getattr(run.args, "dry_run", False):
        forget(run, name)
    return transport_upload(run, spec, name, mode, allow_empty)


def _enabled(config):
    value = config.get(DELTA.key)
    return DELTA.default if value is None else bool(value)


def forget(run, name):
    """Drop the index entry of a lookup (if there is an index at all)."""
    path = index_path(run.paths["state"])
    if not os.path.exists(path):
        return
    db = _open(path)
    try:
        if db.execute("SELECT 1 FROM idx.lookups WHERE lookup = ?", (name,)).fetchone():
            log.info("Lookup %s is not delivered as a delta this time; its delta index is dropped.", name)
            with _transaction(db):
                for table in ("rows", "inflight", "lookups"):
                    db.execute(f"DELETE FROM idx.{table} WHERE lookup = ?", (name,))
    finally:
        db.close()


def _open(path, attach_to=None):
    """Return a connection (autocommit) with the index at path attached as idx, created with mode 0600 if new."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
    except OSError as exc:
        raise ConfigError(f"The delta index {path} cannot be opened ({exc.strerror}).",
                          "make the config folder writable by this user (the index lives beside the state file).") \
            from None
    db = attach_to or sqlite3.connect("", isolation_level=None)
    try:
        db.execute("ATTACH DATABASE ? AS idx", (path,))
        for statement in _SCHEMA:
            db.execute(statement)
    except sqlite3.DatabaseError as exc:
        try:
            db.execute("DETACH DATABASE idx")
        except sqlite3.Error:
            pass
        log.warning("The delta index %s cannot be read (%s); it is started again: every lookup is sent whole once.",
                    path, exc)
        os.unlink(path)
        return _open(path, db)
    return db


class _transaction:
    """BEGIN ... COMMIT on an autocommit connection; ROLLBACK when the block raises."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *exc):
        self.db.execute("ROLLBACK" if kind else "COMMIT")


class DeltaUpload:
    """The rows of one lookup replaced over the Lookups API: sent as a full replacement or as a delta.

    add() takes tuples of texts in the order of spec.columns (a later row of a key replaces an earlier one, as in
    Devo); send() returns the rows sent (upserted and deleted) once Devo confirmed them; outcome then says
    ("full" or "delta", rows upserted, rows deleted).
    """

    mode = "replace"
    dedupes = True   # a later row of a key replaces the earlier one; repeats: how many were replaced so

    def __init__(self, run, spec, name, allow_empty=False, forced=False):
        self.run, self.spec, self.name, self.allow_empty, self.forced = run, spec, name, allow_empty, forced
        self.count = self.repeats = 0
        self.outcome = None
        self._key = spec.key_index
        self._db = sqlite3.connect("", isolation_level=None)   # "": private, on disk, removed on close
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KB}")
        self._db.execute("CREATE TABLE new (k TEXT PRIMARY KEY, d BLOB NOT NULL, line TEXT NOT NULL) WITHOUT ROWID")
        self._db.execute("BEGIN")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, rows):
        """Keep rows (a list of tuples of texts) by key."""
        key, blake = self._key, hashlib.blake2b
        records = csv_records(rows)
        self._db.executemany("INSERT OR REPLACE INTO new VALUES (?, ?, ?)",
                             [(row[key], blake(line.encode("utf-8", "surrogatepass"), digest_size=16).digest(), line)
                              for row, line in zip(rows, records)])
        self.count += len(rows)

    def send(self):
        """Send the full replacement or the delta; return how many rows were sent."""
        db, name = self._db, self.name
        db.execute("COMMIT")
        rows = db.execute("SELECT count(*) FROM new").fetchone()[0]
        self.repeats = self.count - rows
        if rows == 0 and not self.allow_empty:
            log.warning("No rows to replace in lookup %s; it was left unchanged.", name)
            return 0
        _open(index_path(self.run.paths["state"]), db)
        shape = self._shape()
        meta = db.execute("SELECT shape, size, full_at, full_pending FROM idx.lookups WHERE lookup = ?",
                          (name,)).fetchone()
        reason = self._full_reason(meta, shape)
        if reason is None:
            upserts, deletes = self._delta()
            share = int(self.run.config.get(DELTA_SHARE.key) or DELTA_SHARE.default)
            whole = max(rows, meta[1], 1)
            if (upserts + deletes) * 100 > share * whole:
                reason = (f"its delta ({upserts} upserted, {deletes} deleted) is more than {share}% of its {whole} "
                          f"rows ({DELTA_SHARE.key})")
            else:
                try:
                    return self._send_delta(upserts, deletes, rows)
                except LookupMissing:
                    reason = "it is not in Devo any more"
        return self._send_full(reason, shape, rows)

    def _shape(self):
        """Return what the index of the lookup holds true for: its columns, key and Devo destination."""
        settings = settings_of(self.run)
        return json.dumps({"columns": [[c.name, REST_TYPES[c.type]] for c in self.spec.columns], "key": self.spec.key,
                           "url": settings.rest_url, "domain": settings.value("devo_domain")}, sort_keys=True)

    def _full_reason(self, meta, shape):
        """Return why the lookup must be sent whole, or None when a delta will do."""
        if self.forced:
            return "the run is forced (--force or --reset-state)"
        if meta is None or meta[0] is None:
            return "it has no delta index yet"
        if meta[3]:
            return "the last full replacement was not confirmed"
        if meta[0] != shape:
            return "its columns, key or Devo destination changed"
        days = int(self.run.config.get(FULL_DAYS.key) or FULL_DAYS.default)
        last = clock.parse(meta[2])
        if last is None or clock.now() - last >= datetime.timedelta(days=days) - datetime.timedelta(minutes=5):
            return f"its last full replacement is {days} days old or more ({FULL_DAYS.key})"
        return None

    def _delta(self):
        """Put the rows to upsert (new or changed, or in flight when a run died) and to delete (gone) in tables;
        return how many of each."""
        db, name = self._db, self.name
        db.execute("DROP TABLE IF EXISTS up")
        db.execute("DROP TABLE IF EXISTS gone")
        db.execute("CREATE TABLE up AS SELECT n.k AS k FROM new n LEFT JOIN idx.rows i ON i.lookup = ? AND i.k = n.k "
                   "WHERE i.d IS NULL OR i.d != n.d OR n.k IN (SELECT k FROM idx.inflight WHERE lookup = ?)",
                   (name, name))
        db.execute("CREATE TABLE gone (k TEXT PRIMARY KEY, line TEXT NOT NULL) WITHOUT ROWID")
        db.execute("INSERT INTO gone SELECT i.k, i.line FROM idx.rows i WHERE i.lookup = ? "
                   "AND NOT EXISTS (SELECT 1 FROM new n WHERE n.k = i.k)", (name,))
        db.execute("INSERT OR IGNORE INTO gone SELECT f.k, f.line FROM idx.inflight f WHERE f.lookup = ? "
                   "AND NOT EXISTS (SELECT 1 FROM new n WHERE n.k = f.k)", (name,))
        return (db.execute("SELECT count(*) FROM up").fetchone()[0],
                db.execute("SELECT count(*) FROM gone").fetchone()[0])

    def _part(self, mode, query, args=()):
        """Upload the records query yields in mode (replace, upsert, delete); return the rows Devo confirmed."""
        up = transport_upload(self.run, self.spec, self.name, mode, self.allow_empty)
        with up:
            up.must_exist = mode != "replace"
            cursor = self._db.execute(query, args)
            while True:
                batch = cursor.fetchmany(_READ)
                if not batch:
                    break
                up.add_records([line for (line,) in batch])
            return up.send()

    def _send_delta(self, upserts, deletes, rows):
        db, name = self._db, self.name
        if not upserts and not deletes:
            with transport_upload(self.run, self.spec, name, "upsert") as up:
                if not up.exists():   # removed in Devo since: what the index says is not there any more
                    raise LookupMissing(f"Lookup '{name}' is not in Devo.")
            log.info("Lookup %s: delta, unchanged since the last run; nothing sent.", name)
            with _transaction(db):
                db.execute("UPDATE idx.lookups SET delta_at = ? WHERE lookup = ?", (clock.stamp(), name))
            self.outcome = ("delta", 0, 0)
            return 0
        log.info("Lookup %s: delta of %d rows upserted and %d deleted (of %d rows).", name, upserts, deletes, rows)
        with _transaction(db):   # what is about to change in Devo: sent again by the next run if this one dies
            db.execute("DELETE FROM idx.inflight WHERE lookup = ?", (name,))
            db.execute("INSERT INTO idx.inflight SELECT ?, n.k, n.line FROM up u JOIN new n ON n.k = u.k", (name,))
            db.execute("INSERT OR REPLACE INTO idx.inflight SELECT ?, k, line FROM gone", (name,))
        sent = 0
        if upserts:
            sent += self._part("upsert", "SELECT n.line FROM up u JOIN new n ON n.k = u.k")
        if deletes:
            sent += self._part("delete", "SELECT line FROM gone")
        with _transaction(db):
            db.execute("DELETE FROM idx.rows WHERE lookup = ? AND k IN (SELECT k FROM gone)", (name,))
            db.execute("INSERT OR REPLACE INTO idx.rows SELECT ?, n.k, n.d, n.line FROM up u JOIN new n ON n.k = u.k",
                       (name,))
            db.execute("DELETE FROM idx.inflight WHERE lookup = ?", (name,))
            db.execute("UPDATE idx.lookups SET size = ?, delta_at = ? WHERE lookup = ?", (rows, clock.stamp(), name))
        self.outcome = ("delta", upserts, deletes)
        return sent

    def _send_full(self, reason, shape, rows):
        db, name = self._db, self.name
        log.info("Lookup %s: full replacement of %d rows, as %s.", name, rows, reason)
        with _transaction(db):   # until Devo confirms it, the index no longer says what Devo holds
            db.execute("INSERT OR IGNORE INTO idx.lookups (lookup) VALUES (?)", (name,))
            db.execute("UPDATE idx.lookups SET full_pending = 1 WHERE lookup = ?", (name,))
        sent = self._part("replace", "SELECT line FROM new")
        with _transaction(db):
            db.execute("DELETE FROM idx.rows WHERE lookup = ?", (name,))
            db.execute("INSERT INTO idx.rows SELECT ?, k, d, line FROM new", (name,))
            db.execute("DELETE FROM idx.inflight WHERE lookup = ?", (name,))
            db.execute("UPDATE idx.lookups SET shape = ?, size = ?, full_at = ?, delta_at = NULL, full_pending = 0 "
                       "WHERE lookup = ?",
                       (shape, rows, clock.stamp(), name))
        self.outcome = ("full", sent, 0)
        return sent

    def close(self):
        self._db.close()


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
    path = index_path(state_path)
    if not os.path.exists(path):
        lines.append(f"Delta index: {path} (none yet: the next run sends every lookup whole)")
        return "\n".join(lines) + "\n"
    lines.append(f"Delta index: {path}")
    db = _open(path)
    try:
        found = db.execute("SELECT lookup, size, full_at, delta_at, full_pending, (SELECT count(*) FROM idx.inflight f "
                           "WHERE f.lookup = l.lookup) FROM idx.lookups l ORDER BY lookup").fetchall()
    finally:
        db.close()
    for lookup, size, full_at, delta_at, pending, inflight in found:
        lines.append(f"  lookup {lookup}: {size} rows indexed, last full replacement {full_at or 'not confirmed'}, "
                     f"last delta {delta_at or 'none since'}"
                     + ("; a full replacement was not confirmed: the next run sends it whole" if pending else "")
                     + (f"; {inflight} keys in flight: the next run sends them again" if inflight else ""))
    if not found:
        lines.append("  no lookup indexed yet")
    return "\n".join(lines) + "\n"


__all__ = ["DeltaUpload", "upload", "forget", "index_path", "state_view"]
