"""The runner: drives each stream of a connector from its source to its destinations, and alone commits state.

For each stream: skip it if it is not due or its source is unchanged -> fetch -> to_row (a BadRecord is counted and
skipped) -> split -> dedupe -> deliver -> commit the stream's checkpoint -> statistics. The checkpoint is committed
only after every destination confirmed what it covers. A failing stream leaves its own state and destinations
alone and the others go on, unless its error says they would fail the same way; the run ends with the worst error.
"""

import copy
import datetime
import itertools
import logging
from collections import namedtuple

from tq_conn_common import clock, parallel
from tq_conn_common.devo import Column, EventTable, EventUpload, LookupSpec, delta, texts
from tq_conn_common.devo.events import BATCH as EVENT_BATCH
from tq_conn_common.devo.lookup import MAX_CELL, cell, column_type, key_getter, text
from tq_conn_common.download import Spooled
from tq_conn_common.errors import BadRecord, ConfigError, Declared, SourceError, TqConnError
from tq_conn_common.rows import Dedupe, KeyedSpool, Paged, chunks

log = logging.getLogger(__name__)

GRACE_SECONDS = 60   # a stream pulled this much early is still due (cron starts a few seconds early or late)
_BATCH = 1024        # rows handed to a destination together
TOO_LONG = Declared(BadRecord, "{column} has {length} characters, more than the {most} a Devo lookup cell may hold")
GONE = Declared(BadRecord, "record gone from the source since the source listed it (the next run reads its key again)")
KEYLESS = Declared(BadRecord, "row without a value for the lookup key '{key}'")

# A page of records made into rows where it was read (in a worker, or reading changes): how many records it held,
# those to_row refused (rejected) and the rows a lookup cannot take (skipped), as BadRecords, the rows of each
# target (a delta.Lines for a delta upload, else tuples of texts), and what to_row counted in the stream's tally.
Made = namedtuple("Made", "records rejected skipped parts tally")


class StreamRun:
    """What one stream's run sees: the run, the stream's last committed entry, and the checkpoint it builds.

    fetch() reads `saved` and writes what the next run must know into `checkpoint`; the runner commits that only
    after delivery. `version` may be set by fetch() (an etag the download announced); defer(error) makes the stream
    fail after what it fetched was delivered and committed.
    """

    def __init__(self, run, stream, saved):
        self.run, self.stream, self.saved = run, stream, saved
        self.config = run.config
        self.checkpoint = copy.deepcopy(saved)
        self.version = None
        self.deferred, self.halted = None, False
        self.unread, self.in_a_row = [], 0
        self.started = clock.now()
        self.counts = {}
        self.received = self.skipped = 0
        self.known = set()   # keys delivered by earlier runs: a row with one is dropped as a duplicate
        self.whole = False   # True: the source is read whole even where it could say what changed

    @property
    def forced(self):
        """True when the run must pull everything again (--force, or the state was reset)."""
        return bool(getattr(self.run.args, "force", False)) or self.run.state.cleared

    @property
    def dry_run(self):
        return bool(getattr(self.run.args, "dry_run", False))

    def http(self, *args, **kwargs):
        return self.run.http(*args, **kwargs)

    def skip(self, bad):
        """Count and log one unusable record of this stream."""
        self.skipped += 1
        self.run.skip(bad, self.stream.what)

    def defer(self, error):
        """Fail the stream with error once what was fetched so far is delivered (the first error is kept)."""
        self.deferred = self.deferred or error

    def read(self, ident, call, *args, gone=None, most_in_a_row=3):
        """Return call(*args), the reading of one record by sub-requests, or None when it could not be read: a
        BadRecord is skipped, and so is a record the source no longer has (HTTP 404) when gone (a Declared
        BadRecord) is given; another SourceError is counted as unread: the stream goes on and fails at the end
        naming those records (messages "unread"), and after most_in_a_row failures in a row the source itself is
        failing, and the stream halts."""
        try:
            result = call(*args)
        except BadRecord as bad:
            self.skip(bad)
            return None
        except SourceError as exc:
            if gone is not None and exc.kind == "not_found":
                self.skip(gone(context={f"{self.stream.what}_id": ident}))
                return None
            log.warning("%s %s could not be read: %s", self.stream.what.capitalize(), ident, exc.message)
            self.unread.append(ident)
            self.in_a_row += 1
            if self.in_a_row >= most_in_a_row:
                self.halt(exc)
            return None
        self.in_a_row = 0
        return result

    def halt(self, error):
        """Stop the stream: fetch no more, deliver what waits, then fail with error (a destination that failed
        part way, a source that keeps failing)."""
        self.defer(error)
        self.halted = True


def run_streams(run, streams):
    """Run every stream; raise the worst error once all ran (or at once, when the others would fail alike)."""
    failures = []
    for stream in streams:
        try:
            run_stream(run, stream)
        except TqConnError as exc:
            if exc.stops_run:
                _report_others(failures)
                raise
            log.info("%s failed; going on with the others.", stream.name)
            failures.append(exc)
    if failures:
        worst = max(failures, key=lambda exc: exc.exit_code)
        _report_others([f for f in failures if f is not worst])
        raise worst


def _report_others(failures):
    for exc in failures:
        log.warning("Also failed: %s%s", exc.message, f" Fix: {exc.fix}" if exc.fix else "")


def run_stream(run, stream):
    """Run one stream: fetch, map, deliver, then commit its checkpoint."""
    saved = copy.deepcopy(_entry(run.state.pending, stream.path)) or {}
    if stream.fingerprint is not None and saved.get("fingerprint", stream.fingerprint) != stream.fingerprint:
        log.warning("%s: the settings that shape it changed; it starts over.", stream.name)
        saved = {}
    ctx = StreamRun(run, stream, saved)
    if not _due(ctx) or _unchanged(ctx):
        return
    try:
        targets = _pump_and_deliver(ctx)
    except delta.ReadWhole as again:   # reading changes found the lookup gone from Devo: read the source whole
        log.warning("%s: %s; the source is read whole.", stream.name, again)
        ctx.whole = True
        run.stats.received -= ctx.received
        ctx.received = 0
        targets = _pump_and_deliver(ctx)
    if ctx.received and ctx.skipped:
        log.warning("%s: %d of %d %ss failed validation and were skipped.", stream.name, ctx.skipped, ctx.received,
                    stream.what)
    for target in targets:
        log.info("%s: %d rows delivered to %s.", stream.title or stream.name, ctx.counts.get(target.name, 0),
                 target.label)
    _commit(ctx)
    if stream.done:
        stream.done(ctx)
    if ctx.unread and not ctx.deferred:
        message, fix = stream.messages.get("unread", ("{count} {what}(s) could not be read ({shown}); the others "
                                                      "were delivered.", "run again; only these are sent."))
        shown = ", ".join(map(str, ctx.unread[:10])) + (" ..." if len(ctx.unread) > 10 else "")
        raise SourceError(message.format(count=len(ctx.unread), shown=shown, what=stream.what),
                          fix.format(what=stream.what), retryable=True)
    if ctx.deferred:
        raise ctx.deferred


def _pump_and_deliver(ctx):
    """Fetch, map and deliver the stream into new targets; return them (closed)."""
    targets = [_target(ctx, to) for to in ctx.stream.destinations]
    try:
        _pump(ctx, targets)
        _deliver(ctx, targets)
    finally:
        for target in targets:
            target.close()
    return targets


def _due(ctx):
    refresh, last = ctx.stream.refresh, ctx.saved.get("pulled_at")
    if not refresh or not last or ctx.forced:
        return True
    elapsed = (ctx.started - clock.parse(last)).total_seconds()
    if elapsed < 0 or elapsed >= refresh - GRACE_SECONDS:
        return True
    following = clock.stamp(clock.parse(last) + datetime.timedelta(seconds=refresh))
    log.info("%s: pulled at %s, refreshed every %s; not due before %s.", ctx.stream.name, last, _duration(refresh),
             following)
    return False


def _unchanged(ctx):
    """Return True (and record the look) when the source announces the version already delivered."""
    stream, saved = ctx.stream, ctx.saved
    if not stream.version or ctx.forced or not saved.get("etag"):
        return False
    ctx.version = stream.version(ctx)
    if not ctx.version or ctx.version != saved["etag"]:
        return False
    log.info("%s: unchanged since %s (etag %s); %s not uploaded again.", stream.name, saved.get("pulled_at"),
             ctx.version, " and ".join(saved.get("rows") or ()) or "its destinations")
    ctx.counts = dict(saved.get("rows") or {})
    _commit(ctx)
    return True


def _pump(ctx, targets):
    """Fetch the stream's records and hand their rows to the targets; batched targets deliver as they fill."""
    stream, run = ctx.stream, ctx.run
    split, size = stream.split, stream.batch_size
    stats = run.stats
    first, rejected = None, 0
    records, to_row = _records(ctx, targets)
    for record in records:
        if ctx.halted:
            break
        if type(record) is Made:
            ctx.received += record.records
            stats.received += record.records
            for bad in record.rejected:
                first = first or str(bad)
                rejected += 1
                ctx.skip(bad)
            for bad in record.skipped:
                ctx.skip(bad)
            for target, rows in zip(targets, record.parts):
                target.add_made(rows)
            if record.tally:
                stream.tally.update(record.tally)
            continue
        ctx.received += 1
        stats.received += 1
        if type(record) is BadRecord:   # the source could not read it as a record at all
            first = first or str(record)
            rejected += 1
            ctx.skip(record)
            continue
        if to_row is not None:
            try:
                record = to_row(record)
            except BadRecord as bad:
                first = first or str(bad)
                rejected += 1
                ctx.skip(bad)
                continue
        if record is None:
            continue
        rows = record if isinstance(record, list) else (record,)
        if split is None:
            target = targets[0]
            if size and target.count and target.count + len(rows) > size:
                _deliver(ctx, targets, batch=True)
            target.add_many(rows)
        else:
            for row in rows:
                targets[split(row)].add(row)
    if ctx.received and rejected == ctx.received:
        message, fix = stream.messages.get("rejected", (
            "None of the {count} {what}s of {stream} passed validation (first: {first}).",
            "check the settings of its source; {targets} were left as they were."))
        names = " and ".join(t.name for t in targets)
        values = {"count": ctx.received, "what": stream.what, "stream": stream.name, "first": first,
                  "targets": names, "title": stream.title or stream.name}
        raise SourceError(message.format(**values), fix.format(**values))


def _records(ctx, targets):
    """Return (records, to_row) for the pump: the stream's records and its to_row, or, for one lookup whose rows
    are made where they are read (by workers, or reading changes), the pages made (see Made), and None.

    When the stream's source can say what changed and the lookup's delta index allows it, only the records the
    index names are read (see devo.delta, reading changes); the rows of the others are as Devo holds them.
    """
    stream = ctx.stream
    lookups = all(isinstance(t, LookupTarget) and t.spec.columns for t in targets) and not stream.batch_size
    target = targets[0] if lookups and len(targets) == 1 else None
    delta_lookup = target is not None and isinstance(target.upload, delta.DeltaUpload) and not ctx.dry_run
    changes = stream.changes(ctx) if stream.changes and delta_lookup else None
    if changes is not None:
        target.upload.tag = changes.tag
        page = _maker(ctx, targets, changes.mark)
        stamp = None if ctx.whole else target.upload.since(_listing(ctx, changes))
        if stamp is not None:
            return _changed(ctx, target.upload, changes, stamp, page), None
    records = stream.fetch(ctx)
    spooled = isinstance(records, Spooled)   # a download shared out by its blocks (unless too odd to cut)
    size = stream.shared_pages(ctx) if stream.shared_pages and not spooled else None
    count = parallel.workers() if lookups and (size or (spooled and records.shareable)) else 1
    if count > 1 and not ctx.dry_run:
        shared = records.pages if spooled or isinstance(records, Paged) else (lambda: chunks(records, size))
        log.info("%s: read by %d worker processes, %s each in turn.", stream.name, count,
                 "a block of the download a page" if spooled else f"{size} {stream.what}s a page")
        page = _maker(ctx, targets, changes.mark if changes else None)

        def make():   # in each worker: its pages of records, made into rows
            return map(page, shared())
        made = parallel.pages(make, count, ctx.run.clients, ctx.run.stats, records.start if spooled else None)
        return (_fed(made, records, page) if spooled else made), None
    if changes is not None:
        return map(page, chunks(records, _BATCH)), None
    return records, stream.to_row


def _fed(made, records, page):
    """Yield the pages the workers made of a download fed beside them, then those of what they could not take (see
    download.Spooled); stop feeding it however the pump ends."""
    try:
        yield from made
        yield from map(page, chunks(records.remainder(), _BATCH))
    finally:
        records.close()


def _listing(ctx, changes):
    """Return an iterator of the source's listing (see Changes), its pages read by worker processes and taken in
    turn when the stream's pages can be shared out."""
    stream = ctx.stream
    size = stream.shared_pages(ctx) if stream.shared_pages else None
    count = parallel.workers() if size else 1
    if count < 2:
        return iter(changes.listing())

    def make():   # in each worker: its pages of the listing
        return chunks(changes.listing(), size)
    return itertools.chain.from_iterable(parallel.pages(make, count, ctx.run.clients, ctx.run.stats))


def _changed(ctx, upload, changes, stamp, page):
    """Yield the pages made of the records to read again, reading changes: those changed since stamp that the
    index names, then one by one those it names that were not among them (an older record now the row of its key)."""
    mark, seen = changes.mark, set()
    if stamp:
        log.info("%s: reading only what changed since %s.", ctx.stream.name, stamp)

        def wanted(record):
            ident = mark(record)[0]
            if ident in seen or not upload.wanted(ident):
                return False
            seen.add(ident)
            return True
        yield from map(page, chunks(filter(wanted, changes.since(stamp)), _BATCH))
    for ident in upload.needed():
        if ident not in seen:
            record = ctx.read(ident, changes.one, ident, gone=GONE)
            if record is not None:
                yield page([record])


def _maker(ctx, targets, mark=None):
    """Return page(records) -> Made: each record as to_row made it, its row as texts in the part of its target
    (split), rows without a key or with too long a value set aside; a part is a delta.Lines (with each record's
    mark(record) when mark is given) when its target's upload is a delta upload."""
    stream = ctx.stream
    to_row, split, tally = stream.to_row, stream.split, stream.tally
    spec = targets[0].spec   # the targets of a split stream are lookups of the same columns

    def made(record):
        if type(record) is BadRecord:
            return record
        try:
            row = to_row(record) if to_row is not None else record
        except BadRecord as bad:
            return bad
        return list(texts(spec, row)) if isinstance(row, list) else row

    def page(records):
        out = [made(record) for record in records]
        rows, marks, rejected = [], [], []
        texted = texts(spec, [row for row in out if type(row) in (dict, tuple)])
        for record, row in zip(records, out):
            if type(row) in (dict, tuple):
                rows.append(next(texted))
                if mark is not None:   # (a stream that reads changes makes one row of a record, no list)
                    marks.append(mark(record))
            elif type(row) is list:
                rows.extend(row)
            elif row is not None:
                rejected.append(row)
        kept, skipped = fit(spec, rows)
        if skipped and mark is not None:
            keep = set(map(id, kept))
            marks = [m for row, m in zip(rows, marks) if id(row) in keep]
        parts = [kept] if split is None else [[] for _ in targets]
        if split is not None:
            for row in kept:
                parts[split(row)].append(row)
        parts = [delta.Lines(part, spec.key_index, marks if mark is not None else None)
                 if isinstance(target.upload, delta.DeltaUpload) else part for target, part in zip(targets, parts)]
        counted = None
        if tally and parallel.share() is not None:   # a worker's counts go with its page, and start again
            counted = dict(tally)
            tally.clear()
        return Made(len(records), rejected, skipped, parts, counted)
    return page


def fit(spec, rows):
    """Return (rows, skipped): the rows (tuples of texts) a Devo lookup can take, and a BadRecord for each of the
    others: without a value for the key, or with a value longer than a lookup cell holds."""
    key = spec.key_index
    # No row longer than a cell, joined: then no value is (one length a row instead of one a value).
    if all(row[key] for row in rows) and (not rows or max(map(len, map("".join, rows))) <= MAX_CELL
                                          or max(map(len, itertools.chain.from_iterable(rows))) <= MAX_CELL):
        return rows, []
    kept, skipped = [], []
    for row in rows:
        long = next((i for i, value in enumerate(row) if len(value) > MAX_CELL), None)
        if not row[key]:
            skipped.append(KEYLESS(key=spec.key))
        elif long is not None:
            skipped.append(TOO_LONG(context={spec.key: row[key][:60]}, column=spec.names[long], length=len(row[long]),
                                    most=MAX_CELL))
        else:
            kept.append(row)
    return kept, skipped


def _deliver(ctx, targets, batch=False):
    """Send what each target holds, count it, and for batches commit the checkpoint they cover."""
    for target in targets if not (batch and ctx.halted) else ():
        sent = target.send()
        ctx.counts[target.name] = ctx.counts.get(target.name, 0) + sent
        ctx.run.stats.delivered += sent
    if batch:
        _commit(ctx, final=False)


def _commit(ctx, final=True):
    """Write the stream's checkpoint into the state and commit it (not in a dry run)."""
    entry = ctx.checkpoint
    if final:
        entry["last_run"] = clock.iso(ctx.started)
        entry["last_count"] = sum(ctx.counts.values())
        if ctx.stream.refresh:
            entry["pulled_at"] = clock.stamp(ctx.started)
        if ctx.stream.version:
            entry["etag"], entry["rows"] = ctx.version, ctx.counts
        if ctx.stream.fingerprint is not None:
            entry["fingerprint"] = ctx.stream.fingerprint
        entry.pop("sent_ids", None)       # the checkpoint now covers the events sent (see EventTarget)
        entry.pop("in_flight_ids", None)
    if ctx.dry_run:
        return
    _put(ctx.run.state, ctx.stream.path, copy.deepcopy(entry))
    ctx.run.state.commit()


def _entry(state, path):
    for key in path:
        state = state.get(key) if isinstance(state, dict) else None
    return state


def _put(state, path, entry):
    if not path:
        state.pending.update(entry)
        return
    node = state.pending
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = entry


# ---- targets: what holds a stream's rows for one destination until it is delivered ----

def _target(ctx, to):
    if isinstance(to, LookupSpec):
        return LookupTarget(ctx, to)
    if isinstance(to, EventTable):
        return EventTarget(ctx, to)
    opened = to.open(ctx)
    return _Wrapped(opened, getattr(opened, "name", type(to).__name__), ctx)


class _Wrapped:
    """A destination's sink (add(rows), send(), count, close()) as a target: rows without their key skipped,
    repeated ones dropped (with a key); a dry run sends nothing."""

    def __init__(self, sink, name, ctx, key=None):
        self.sink, self.name, self.ctx, self.key = sink, name, ctx, key
        self.label = f"table {name}" if isinstance(sink, EventUpload) else name
        self.seen = Dedupe() if key else None

    @property
    def count(self):
        return self.sink.count

    def add(self, row):
        self.add_many((row,))

    def add_many(self, rows):
        if self.key:
            rows = [row for row in rows if self._new(row)]
        self.sink.add(list(rows))

    def _new(self, row):
        value = row.get(self.key) if isinstance(row, dict) else None
        if value is None or value == "":
            self.ctx.skip(BadRecord(f"row without a value for the key '{self.key}'"))
            return False
        if str(value) in self.ctx.known or not self.seen.add(str(value)):
            self.ctx.run.stats.duplicates += 1
            return False
        return True

    def send(self):
        if self.ctx.dry_run and not getattr(self.sink, "dry_run_aware", False):
            log.info("Dry run: %d rows would go to %s; nothing was sent.", self.sink.count, self.name)
            return 0
        return self.sink.send()

    def close(self):
        getattr(self.sink, "close", lambda: None)()   # a sink that holds nothing open need not have one


class EventTarget(_Wrapped):
    """The events of one Devo table, sent in batches. With a key, each batch's ids are committed to the state as in
    flight before it goes out and as sent once Devo took it: a run after one that died mid-send drops the events
    sent and sends the in-flight ones again, so at most one batch reaches Devo twice."""

    def __init__(self, ctx, table):
        super().__init__(EventUpload(ctx.run, table), table.resolve_tag(ctx.config), ctx, table.key)
        self.sent = list(ctx.saved.get("sent_ids") or ()) if table.key else []
        ctx.known.update(self.sent)
        again = ctx.saved.get("in_flight_ids") or ()
        if again:
            log.warning("%s: %d events were on their way to %s when the last run ended; they are sent again (once).",
                        ctx.stream.name, len(again), self.label)

    def send(self):
        if self.ctx.dry_run:
            return super().send()
        events, self.sink.events, sent = self.sink.events, [], 0
        for batch in chunks(events, EVENT_BATCH):
            ids = [str(event.get(self.key)) for event in batch] if self.key else []
            self._note(ids)
            sent += self.sink.send(batch)
            self.sent.extend(ids)
            self._note([])
        return sent

    def _note(self, in_flight):
        """Commit the stream's last checkpoint with the ids sent so far and those on their way."""
        if self.key:
            ctx = self.ctx
            _put(ctx.run.state, ctx.stream.path, {**copy.deepcopy(ctx.saved), "sent_ids": self.sent,
                                                  "in_flight_ids": in_flight})
            ctx.run.state.commit()


class LookupTarget:
    """The rows of one lookup: keyless rows skipped, repeats dropped by key, then uploaded by the transport.

    With dedupe="last", or columns to be found in the data, rows wait in a keyed spool; otherwise they stream as
    texts into the transport's own spool.
    """

    def __init__(self, ctx, spec):
        self.ctx, self.spec, self.run = ctx, spec, ctx.run
        stream = ctx.stream
        self.name = spec.resolve_name(ctx.config)
        self.label = f"lookup {self.name} ({stream.mode})"
        self.key = key_getter(spec)
        keep = "first" if stream.dedupe == "first" else "last"
        self.keyed = KeyedSpool(keep) if stream.dedupe == "last" or not spec.columns else None
        self.upload = None if self.keyed else self._upload(spec, keep)
        # A delta upload keeps one row of each key by itself (the first or the last); otherwise dedupe="first" drops
        # repeats here, and with dedupe=None they go out as they come and the lookup keeps one of each: counted as
        # duplicates, not as delivered.
        self.seen = None if self.keyed or getattr(self.upload, "dedupes", False) else Dedupe()
        self.batch, self.count, self.repeats = [], 0, 0
        self.keyless, self.examples = 0, []

    def add(self, row):
        key = self.key(row)
        if self.keyed is not None and not self.spec.columns:
            self.keyed.note(row)
        if key is None or key == "":
            self.keyless += 1
            if self.keyless <= 20:   # skipped once the key is known to be in the data (see _from_spool)
                self.examples.append(KEYLESS(key=self.spec.key))
            return
        key = key if type(key) is str else text(key)
        if self.seen is not None and not self.seen.add(key):
            self.run.stats.duplicates += 1
            if self.ctx.stream.dedupe is not None:
                if self.seen.dropped <= 5:
                    log.info("Duplicate key %r dropped (the first row with it is kept).", key)
                return
            self.repeats += 1
        self.count += 1
        if self.keyed is not None:
            self.keyed.add(key, row)
            return
        self.batch.append(row)
        if len(self.batch) >= _BATCH:
            self._flush()

    def add_many(self, rows):
        for row in rows:
            self.add(row)

    def add_made(self, rows):
        """Take the rows of a page made where it was read (see Made): a delta.Lines, or tuples of texts."""
        if isinstance(rows, delta.Lines):
            self.count += len(rows)
            self.upload.add_lines(rows)
        else:
            self.add_many(rows)

    def _flush(self):
        self.upload.add(self._fit(texts(self.spec, self.batch)))
        self.batch = []

    def _fit(self, rows):
        """Return the rows (texts) as a list, those with a value longer than a Devo lookup cell holds skipped."""
        rows, skipped = fit(self.spec, list(rows))
        for bad in skipped:
            self.ctx.skip(bad)
        return rows

    def send(self):
        if self.keyed is not None:
            self._from_spool()
        elif self.batch:
            self._flush()
        for bad in self.examples:
            self.ctx.skip(bad)
        self.ctx.skipped += self.keyless - len(self.examples)
        self.run.stats.skipped += self.keyless - len(self.examples)
        if self.ctx.dry_run:
            rows = self.upload.kept() if getattr(self.upload, "dedupes", False) else self.upload.count
            self.run.stats.duplicates += getattr(self.upload, "repeats", 0)
            log.info("Dry run: %d rows would go to lookup %s (%s); nothing was sent.", rows, self.name,
                     self.ctx.stream.mode)
            return 0
        sent = self.upload.send()
        self.run.stats.duplicates += getattr(self.upload, "repeats", 0)
        mode = self.ctx.stream.mode
        how, upserted, deleted = getattr(self.upload, "outcome", None) or (
            "full" if mode == "replace" else mode, sent, 0)
        self.run.stats.lookups.append(f"{self.name} {how} ({upserted} upserted, {deleted} deleted)" if how == "delta"
                                      else f"{self.name} {how} ({upserted} rows)")
        # A delta or full replacement through the index sends each key once; other uploads send repeats as they came.
        return sent if getattr(self.upload, "outcome", None) else sent - min(self.repeats, sent)

    def _upload(self, spec, keep):
        """Return the upload of the lookup: a delta or a full replacement when the stream replaces it over the
        Lookups API (see devo.delta; it keeps the first or the last row of a key), else the transport's upload in
        the stream's mode."""
        stream = self.ctx.stream
        return delta.upload(self.run, spec, self.name, stream.mode, stream.allow_empty, forced=self.ctx.forced,
                            keep=keep)

    def _from_spool(self):
        """Hand the spooled rows to an upload, typing the columns first when the data defines them."""
        keyed, spec, stream = self.keyed, self.spec, self.ctx.stream
        self.run.stats.duplicates += keyed.duplicates
        if not spec.columns:
            if keyed.kinds and spec.key not in keyed.kinds:
                message, fix = stream.messages.get("no_key", (
                    "The key '{key}' of {stream} is not in its data; the keys are: {keys}.",
                    "set the key to one of the keys listed."))
                values = {"key": spec.key, "stream": stream.name, "keys": ", ".join(sorted(keyed.kinds)),
                          "title": stream.title or stream.name}
                raise ConfigError(message.format(**values), fix.format(**values))
            found = {name: column_type(kinds) for name, kinds in sorted(keyed.kinds.items())}
            columns = stream.columns(self.ctx, found) if stream.columns else found
            spec = self.spec = LookupSpec(key=spec.key, columns=tuple(Column(n, t) for n, t in columns.items()),
                                          name=self.name)
            types = {c.name: c.type for c in spec.columns}
            rows = ({n: cell(row.get(n), t) for n, t in types.items()} for row in keyed.rows())
        else:
            rows = keyed.rows()
        self.upload = self._upload(spec, keyed.keep)
        for batch in chunks(texts(spec, rows), _BATCH):
            self.upload.add(self._fit(batch))

    def close(self):
        if self.keyed is not None:
            self.keyed.close()
        if self.upload is not None:
            self.upload.close()


def _duration(seconds):
    return f"{int(seconds // 86400)} day" if seconds >= 86400 else f"{int(seconds // 3600)} h"


__all__ = ["StreamRun", "run_streams", "run_stream", "LookupTarget", "GRACE_SECONDS"]
