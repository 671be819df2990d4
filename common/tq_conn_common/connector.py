"""A connector as data: its parameters and its streams, the outputs the runner drives."""

import sys
from dataclasses import dataclass, field
from typing import Callable

from tq_conn_common import lock, session


@dataclass(frozen=True)
class Stream:
    """One output of a connector: where its records come from, how each becomes a row, and where rows go.

    The runner drives it: skip if not due or unchanged -> fetch -> to_row -> split -> dedupe -> deliver -> commit
    the stream's checkpoint -> statistics.
    """

    name: str
    fetch: Callable                 # fetch(ctx) -> the vendor records, iterable; ctx: the stream's run (StreamRun)
    to: object                      # a LookupSpec, an EventTable, a Destination, or a tuple of them (with split)
    to_row: Callable = None         # to_row(record) -> a row, a list of rows, or None (left out); BadRecord skips it
    mode: str = "replace"           # lookups: replace the whole lookup, or upsert rows by key
    split: Callable = None          # split(row) -> the index in `to` of the destination of the row
    dedupe: str = None              # by the lookup key: None, "first" (the first row wins) or "last"
    refresh: float = None           # seconds: the stream is not pulled again before (cron runs it more often)
    version: Callable = None        # version(ctx) -> the source's version tag (an etag), or None if it has none
    fingerprint: str = None         # what of the settings shapes the output: when it changes the stream starts over
    state: tuple = None             # the path of the stream's entry in the state; () is the top level
    allow_empty: bool = False       # a replace with no rows empties the lookup (the source said it is empty)
    batch_size: int = None          # destinations that take rows in batches: rows per delivery, records kept whole
    columns: Callable = None        # columns(ctx, found) -> {column: type}, for a LookupSpec without columns
    done: Callable = None           # done(ctx) after the stream's checkpoint was committed
    shared_pages: Callable = None   # shared_pages(ctx) -> the page size when fetch's pages are shared out among
    #                                 worker processes (see parallel; offset_pages(shared=True)), else None (a
    #                                 download.Spooled that fetch returns is shared out by its blocks)
    tally: object = None            # a Counter to_row counts in (rows left out, say): in workers, sent back per page
    changes: Callable = None        # changes(ctx) -> a Changes when the source can say what changed, else None
    what: str = "record"            # how a skipped record is named in the log
    title: str = None               # how messages name the stream (default: its name)
    messages: dict = field(default_factory=dict)  # "rejected", "no_key": (message, fix) templates

    @property
    def destinations(self):
        return self.to if isinstance(self.to, tuple) else (self.to,)

    @property
    def path(self):
        return ("streams", self.name) if self.state is None else tuple(self.state)


@dataclass(frozen=True)
class Changes:
    """How a stream's source says what changed since a run, so that a lookup delivered as a delta is read only
    where it changed (see devo.delta): every record read is remembered by its id, with its row and stamps."""

    tag: str                # what the source reads (a collection's query): another tag, and the lookup is read whole
    mark: Callable          # mark(record) -> (id, change stamp, order stamp) as texts: of the records of one key, the
    #                         newest by order stamp (then id) is the key's row, as fetch's order has it first
    listing: Callable       # listing() -> (id, change stamp) of every record the source holds, by increasing id
    since: Callable         # since(stamp) -> the records changed at stamp or later, as fetch yields them
    one: Callable           # one(id) -> the record with this id (a SourceError of kind not_found when it is gone)


@dataclass(frozen=True)
class Connector:
    """A connector declared as data: its parameters, its streams, and optional hooks."""

    name: str
    title: str
    params: tuple
    streams: object = ()              # a tuple of Stream, or streams(run) -> Streams built from the config
    description: str = ""
    add_arguments: Callable = None    # add_arguments(parser): connector flags
    load_config: Callable = None      # load_config(config_dir, name) -> raw dict or None (foreign config files)
    on_configured: Callable = None    # on_configured(run): after the first-run prompts wrote the config
    remote_values: Callable = None    # remote_values(run) -> raw values of the UI parameters
    lock_params: tuple = ("allow_multiple_runs", "kill_after_seconds")
    errors: tuple = ()                # README error table rows of the connector's own errors: (id or exit, message, fix)
    log_subdir: str = ""
    verbosity: int = 1                # the default of -v
    epilog: str = ""
    requires_common: str = None

    def __post_init__(self):
        declared = {p.key for p in self.params}   # the common lock parameters, unless declared (ThreatQ UI ones)
        added = tuple(p for p in lock.PARAMS if p.key not in declared)
        if added:
            object.__setattr__(self, "params", tuple(self.params) + added)

    @property
    def command(self):
        return "tq-conn-" + self.name.replace("_", "-")

    @property
    def distribution(self):
        return self.command

    def main(self, argv=None):
        """Run the command and exit with its code."""
        sys.exit(session.execute(self, argv))

    def execute(self, argv=None):
        """Run the command; return the exit code."""
        return session.execute(self, argv)


__all__ = ["Changes", "Connector", "Stream"]
