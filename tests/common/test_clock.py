"""The run's clock and the time forms vendors and the state use."""

import datetime

import pytest

from tq_conn_common import clock
from tq_conn_common.errors import ConfigError

UTC = datetime.timezone.utc


@pytest.mark.parametrize("value,expected", [
    ("2020-07-06T00:00:00", datetime.datetime(2020, 7, 6, tzinfo=UTC)),          # no zone means UTC
    ("2020-07-06T02:00:00+02:00", datetime.datetime(2020, 7, 6, tzinfo=UTC)),
    ("2020-07-06T00:00:00Z", datetime.datetime(2020, 7, 6, tzinfo=UTC)),
    (1594000000000, datetime.datetime(2020, 7, 6, 1, 46, 40, tzinfo=UTC)),         # epoch milliseconds
    ("1594000000", datetime.datetime(2020, 7, 6, 1, 46, 40, tzinfo=UTC)),          # epoch seconds as digits
    ("Mon, 06 Jul 2020 00:00:00 GMT", datetime.datetime(2020, 7, 6, tzinfo=UTC)),
    ("", None), ("soon", None), (None, None), (True, None), (float("nan"), None),
])
def test_parse_reads_every_form_as_aware_utc(value, expected):
    assert clock.parse(value) == expected


def test_the_forms_written():
    when = datetime.datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert clock.iso(when) == "2025-03-01T10:00:00Z" and clock.iso(0) == "1970-01-01T00:00:00Z"
    assert clock.stamp(when) == "2025-03-01T10:00:00+00:00"
    assert clock.epoch("1970-01-01T00:01:00Z") == 60
    with pytest.raises(ValueError):
        clock.epoch("never")


def test_now_can_be_set_for_tests(monkeypatch):
    monkeypatch.setenv("TQ_CONN_NOW", "2025-03-01T10:00:00Z")
    assert clock.now() == datetime.datetime(2025, 3, 1, 10, tzinfo=UTC)
    monkeypatch.setenv("TQ_CONN_NOW", "tomorrow")
    with pytest.raises(ConfigError, match="TQ_CONN_NOW"):
        clock.now()
