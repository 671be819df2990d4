"""Flashpoint documents flattened to one-level rows with dotted keys, spooled per lookup with the union of columns."""

import json
import sqlite3

from tq_conn_common import BadRecord

# Pipeline bookkeeping whose keys come and go with Flashpoint's enrichment versions (reference 3.4, 3.9):
# left out so that a type's column set stays stable.
BOOKKEEPING = ("_meta", "enrichments")

# An indicator has about 20 to 40 keys, nested at most 5 deep (reference samples). Every key of every indicator
# becomes a column of its type's lookup, and one oversized cell makes Devo refuse the whole upload, so an
# indicator beyond these limits is skipped and counted rather than sent: the others of its type still arrive.
MAX_KEYS = 1_000      # keys in one indicator, nested ones included
MAX_DEPTH = 500       # levels of nested objects
MAX_CELL = 102_400    # characters in one column name or value, under the 131,072 of a Devo lookup CSV field


def flatten(doc, leave_out=BOOKKEEPING):
    """Return doc as a one-level dict: nested objects as 'Deep_1.Deep_2.Key', each list as one JSON text.

    Raises BadRecord if the document exceeds MAX_KEYS, MAX_DEPTH or MAX_CELL.
    """
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(doc.get("Attribute"), dict):
        doc = doc["Attribute"]  # /indicators/simple wraps each attribute (reference 3.7)
    row = {}
    _walk(doc, "", row, set(leave_out), [0], 1, doc.get("fpid"))
    return row


def _walk(obj, prefix, row, leave_out, seen, depth, fpid):
    if depth > MAX_DEPTH:
        raise BadRecord(f"indicator nested more than {MAX_DEPTH} levels deep", fpid=_short(fpid))
    for key, value in obj.items():
        if not prefix and key in leave_out:
            continue
        seen[0] += 1  # counted as they come, so that a huge document is refused without reading it all
        if seen[0] > MAX_KEYS:
            raise BadRecord(f"indicator has more than {MAX_KEYS} keys", fpid=_short(fpid))
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _walk(value, name + ".", row, (), seen, depth + 1, fpid)
            continue
        if isinstance(value, (list, tuple)):
            try:
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            except RecursionError:  # a list nested almost as deep as the JSON reader allows
                raise BadRecord(f"indicator nested too deeply: {_short(name)}", fpid=_short(fpid)) from None
        for text in (name, value):
            if isinstance(text, str) and len(text) > MAX_CELL:
                raise BadRecord(f"indicator key {_short(name)} has a name or value of {len(text)} characters, "
                                f"more than the {MAX_CELL} a Devo lookup cell may hold", fpid=_short(fpid))
        row[name] = value


def _short(value, limit=60):
    """Return value for a log line: short scalars as they are, long text cut, anything else as its type."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    return value if len(value) <= limit else value[:limit - 3] + "..."


def kind(value):
    """Return the Devo column type a single value suggests (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def column_type(kinds):
    """Return the Devo type of a column from the kinds of its values: int, bool or float only if all agree."""
    kinds = set(kinds) - {None}
    if kinds == {"int"}:
        return "int"
    if kinds == {"bool"}:
        return "bool"
    if kinds and kinds <= {"int", "float"}:
        return "float"
    return "str"


def cell(value, type_):
    """Return value as the column type wants it; a value that does not fit becomes text or None."""
    if value is None:
        return None
    if type_ == "str":
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if type_ == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text == "true" else False if text == "false" else None
    if type_ == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else None
    if type_ == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return value


class Spool:
    """Rows of one lookup in a private temporary database (deleted on close): newest row per key, all columns seen.

    Memory stays flat whatever the number of rows; what is kept in memory is the column set and their kinds.
    """

    def __init__(self, key):
        self.key = key
        self.kinds = {}           # column -> set of value kinds seen
        self.received = 0
        self._seq = 0
        self._db = sqlite3.connect("")  # "" = private on-disk temporary database, removed on close
        self._db.execute("CREATE TABLE rows (k TEXT PRIMARY KEY, seq INTEGER NOT NULL, row TEXT NOT NULL)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, row):
        """Keep row (replacing an older one with the same key value); return False if it has no key value."""
        self.received += 1
        for name, value in row.items():
            self.kinds.setdefault(name, set()).add(kind(value))
        value = row.get(self.key)
        if value is None or value == "":
            return False
        self._seq += 1
        self._db.execute("INSERT INTO rows (k, seq, row) VALUES (?, ?, ?) "
                         "ON CONFLICT(k) DO UPDATE SET seq = excluded.seq, row = excluded.row",
                         (str(value), self._seq, json.dumps(row, ensure_ascii=False)))
        return True

    @property
    def columns(self):
        """Return {column: Devo type} of every column seen, sorted by name."""
        return {name: column_type(self.kinds[name]) for name in sorted(self.kinds)}

    @property
    def kept(self):
        return self._db.execute("SELECT count(*) FROM rows").fetchone()[0]

    @property
    def duplicates(self):
        """Return how many rows were replaced by a newer row with the same key value."""
        return self._seq - self.kept

    def rows(self):
        """Yield the kept rows in arrival order."""
        cursor = self._db.execute("SELECT row FROM rows ORDER BY seq")
        while True:
            batch = cursor.fetchmany(1000)
            if not batch:
                return
            for (text,) in batch:
                yield json.loads(text)

    def close(self):
        self._db.close()


__all__ = ["flatten", "Spool", "cell", "column_type", "kind", "BOOKKEEPING", "MAX_KEYS", "MAX_DEPTH", "MAX_CELL"]
