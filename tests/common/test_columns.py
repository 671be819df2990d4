"""Columns found in the data: each column typed from the values it held, each value fitted to its column."""

import pytest

from tq_conn_common.devo.lookup import cell, column_type
from tq_conn_common.rows import KeyedSpool


@pytest.mark.parametrize("kinds,expected", [
    ({"int"}, "int"), ({"int", None}, "int"), ({"bool"}, "bool"), ({"float", "int"}, "float"),
    ({"int", "str"}, "str"), ({"bool", "int"}, "str"), ({None}, "str"), (set(), "str"),
])
def test_column_types_are_int_bool_or_float_only_when_every_value_agrees(kinds, expected):
    assert column_type(kinds) == expected


@pytest.mark.parametrize("value,type_,expected", [
    (True, "str", "true"), (12, "str", "12"), ("x", "str", "x"), (None, "str", None),
    ("1625468810", "int", 1625468810), ("abc", "int", None), (5, "int", 5),
    ("true", "bool", True), ("no", "bool", False), ("maybe", "bool", None), ("1.5", "float", 1.5),
    ("3.0", "int", 3), (3.5, "int", None), ("nan", "float", None), (" padded ", "str", " padded "),
    ({"a": [1]}, "str", '{"a": [1]}'), (1, "bool", True),
])
def test_cells_fit_their_column_type(value, type_, expected):
    assert cell(value, type_) == expected


def test_the_spool_keeps_the_newest_row_per_key_and_every_column():
    rows = [{"value.domain": "a.example", "n": 1, "fpid": "1"}, {"value.domain": "b.example", "n": 2, "fpid": "2",
            "reports": "[]"}, {"value.domain": "a.example", "n": 3, "fpid": "3"}, {"fpid": "5", "other": True}]
    with KeyedSpool("last") as spool:
        for row in rows:
            spool.note(row)
            if row.get("value.domain"):
                spool.add(row["value.domain"], row)
        assert spool.added == 3 and spool.kept == 2 and spool.duplicates == 1
        found = {name: column_type(kinds) for name, kinds in sorted(spool.kinds.items())}
        assert found == {"fpid": "str", "n": "int", "other": "bool", "reports": "str", "value.domain": "str"}
        kept = list(spool.rows())
    assert [r["fpid"] for r in kept] == ["2", "3"]        # arrival order of the kept (newest) rows


def test_the_spool_streams_many_rows():
    with KeyedSpool() as spool:
        for i in range(20_000):
            spool.add(f"key-{i % 15_000}", {"i": i})
        assert spool.kept == 15_000 and spool.duplicates == 5_000
        assert sum(1 for _ in spool.rows()) == 15_000
