"""The one clock of a run and the time formats vendors and state use, all in UTC."""

import datetime
import email.utils
import math
import os
import re

from tq_conn_common.errors import ConfigError

UTC = datetime.timezone.utc
NOW_VARIABLE = "TQ_CONN_NOW"   # a testing aid: the time a run believes it is (ISO 8601 or epoch seconds)


def now():
    """Return the current UTC time; TQ_CONN_NOW sets it."""
    value = os.environ.get(NOW_VARIABLE)
    if not value:
        return datetime.datetime.now(UTC)
    when = parse(value)
    if when is None:
        raise ConfigError(f"The clock in {NOW_VARIABLE} ({value!r}) is not a time.",
                          f"unset {NOW_VARIABLE} (a testing aid), or give ISO 8601 or epoch seconds.")
    return when


def ago(days):
    """Return the time this many days before now()."""
    return now() - datetime.timedelta(days=days)


def iso(when):
    """Return a datetime (or epoch seconds) as ISO 8601 UTC text with a Z: 2020-07-06T00:00:00Z."""
    if isinstance(when, (int, float)):
        when = datetime.datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(when=None):
    """Return a datetime as ISO 8601 with its offset, to the second (2025-03-01T10:00:00+00:00): the state's form."""
    return (when or now()).astimezone(UTC).isoformat(timespec="seconds")


def parse(value):
    """Return the UTC datetime of a time: epoch seconds or milliseconds (number or digits), ISO 8601 (no zone
    means UTC), or an HTTP date; None when it is empty or none of these."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            value = float(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        seconds = value / 1000.0 if abs(value) >= 1e11 else float(value)  # milliseconds since 1973 exceed 1e11
        try:
            return datetime.datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "zZ" else value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def epoch(value):
    """Return the epoch seconds (int) of a time parse() reads; raise ValueError if it reads none."""
    when = parse(value)
    if when is None:
        raise ValueError(f"{value!r} is not a time")
    return int(when.timestamp())


__all__ = ["now", "ago", "iso", "stamp", "parse", "epoch", "UTC", "NOW_VARIABLE"]
