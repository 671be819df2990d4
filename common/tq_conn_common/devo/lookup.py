"""A Devo lookup as data: its name, key column and typed columns; rows turned into the texts both transports send."""

import datetime
import itertools
import json
import math
import operator
import re
from dataclasses import dataclass

from tq_conn_common.errors import ConfigError

NAME_RULE = re.compile(r"^[A-Za-z0-9_]+$")
QUERY_PREFIX = "my.lookuplist."
COLUMN_TYPES = ("str", "int", "int4", "int8", "float", "bool", "ip4")
# Python types and the timestamp alias a declaration may use; timestamps travel as ISO-8601 text.
_TYPE_ALIASES = {str: "str", int: "int", float: "float", bool: "bool", "timestamp": "str", "string": "str"}
# One oversized cell makes Devo refuse the whole upload: a row with a longer value is a counted skip instead.
MAX_CELL = 102_400   # characters, under the 131,072 of a Devo lookup CSV field
_BATCH = 1024        # rows converted together
_AS_STR = {str, int, float}   # the types that text() writes as str() does


@dataclass(frozen=True)
class Column:
    """One lookup column: its name and Devo type (str, int, int4, int8, float, bool, ip4)."""

    name: str
    type: str = "str"

    def __post_init__(self):
        kind = _TYPE_ALIASES.get(self.type, self.type)
        if kind not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}")
        object.__setattr__(self, "type", kind)


@dataclass(frozen=True)
class LookupSpec:
    """A lookup's shape: its name (fixed, or taken from a parameter), key column and typed columns.

    columns=() means the columns are found in the rows themselves (dicts of flattened documents): the runner spools
    them, then types each column from the values it saw.
    """

    key: str
    columns: tuple = ()
    name: str = None
    name_from: str = None

    def __post_init__(self):
        columns = tuple(c if isinstance(c, Column) else Column(c) for c in self.columns)
        object.__setattr__(self, "columns", columns)
        names = [c.name for c in columns]
        if columns and self.key not in names:
            raise ValueError(f"lookup key {self.key!r} is not one of its columns {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"lookup columns repeat a name: {names}")

    @property
    def names(self):
        return [c.name for c in self.columns]

    @property
    def key_index(self):
        return self.names.index(self.key)

    def resolve_name(self, config=None):
        """Return the lookup name, from the spec or the config; raise ConfigError if Devo cannot carry it."""
        name = self.name if self.name else (config.get(self.name_from) if config is not None else None)
        try:
            return check_name(name)
        except ValueError as exc:
            raise ConfigError(f"Lookup name{f' ({self.name_from})' if self.name_from else ''}: {exc}".split(";")[0]
                              + ".", "use only letters, digits and underscore, e.g. My_Lookup_1.") from None


def check_name(value):
    """Param check of a Devo lookup name: return it (a name copied from a query, my.lookuplist.X, gives X)."""
    name = str(value or "").strip()
    if name.startswith(QUERY_PREFIX):
        name = name[len(QUERY_PREFIX):]
    if not NAME_RULE.match(name):
        raise ValueError(f"{value!r} is not a valid Devo lookup name; use only letters, digits and underscore, "
                         "e.g. My_Lookup_1.")
    return name


def query_name(name):
    """Return the name Devo queries use for a lookup: my.lookuplist.<name>."""
    return QUERY_PREFIX + name


def text(value):
    """Return the text form of one value as both transports write it (None is empty, booleans lower case)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def texts(spec, rows):
    """Yield each row as a tuple of texts in column order.

    Rows are dicts keyed by column name, or sequences of values in column order. They are taken in batches and
    turned column by column: a column of texts passes through whole, the others go value by value through text().
    """
    names = spec.names
    width = len(names)
    every = operator.itemgetter(*names) if width > 1 else None
    rows = iter(rows)
    while True:
        batch = list(itertools.islice(rows, _BATCH))
        if not batch:
            return
        tuples = None
        if every is not None and all(type(row) is dict for row in batch):
            try:
                tuples = list(map(every, batch))   # dicts that hold every column: in one call
            except KeyError:
                pass
        if tuples is None:
            tuples = []
            for row in batch:
                if isinstance(row, (tuple, list)):
                    if len(row) != width:
                        raise ValueError(f"rows of lookup columns {names} must have {width} values, one per column")
                    tuples.append(row)
                elif every is not None and len(row) == width:
                    try:
                        tuples.append(every(row))
                    except KeyError:   # other keys than the columns: the missing columns are empty
                        tuples.append(tuple(map(row.get, names)))
                else:
                    tuples.append(tuple(map(row.get, names)))
        columns = list(zip(*tuples))
        for i, values in enumerate(columns):
            kinds = set(map(type, values))
            if kinds == {str}:
                continue
            # Numbers (not booleans) are written as str() writes them: text() does the same, a call at a time.
            columns[i] = (list(map(str, values)) if kinds <= _AS_STR else
                          [v if type(v) is str else text(v) for v in values])
        yield from zip(*columns)


def key_getter(spec):
    """Return a function giving the key value of a row (a dict or a sequence in column order)."""
    index = spec.key_index if spec.columns else None
    key = spec.key
    get = operator.itemgetter(index) if index is not None else None

    def of(row):
        return row.get(key) if isinstance(row, dict) else get(row)
    return of


# Columns found in the data: the Devo type a column's values suggest, and each value as its column wants it.

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


_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}


def cell(value, type_):
    """Return value as the column type wants it, None when it does not fit: numbers from text (an int only when
    whole, a float only when finite), booleans from true/false, yes/no, t/f or 1/0, nested values as JSON text."""
    if value is None:
        return None
    if type_ == "str":
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True, default=str)
        return text(value)
    if type_ == "bool":
        if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
            return bool(value)
        lowered = str(value).strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    if isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    if type_ == "float":
        return number
    return int(number) if number.is_integer() else None


__all__ = ["Column", "LookupSpec", "check_name", "query_name", "text", "texts", "key_getter", "kind", "column_type",
           "cell", "NAME_RULE", "COLUMN_TYPES", "MAX_CELL"]
