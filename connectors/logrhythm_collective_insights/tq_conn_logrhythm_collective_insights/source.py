"""LogRhythm Alarm API: alarms inserted in a time window, every page of them, with details and events."""

import logging
from datetime import datetime, timedelta, timezone

from dateutil import parser as dateparser

from tq_conn_common import BadRecord, SourceError, reveal

log = logging.getLogger(__name__)

API_PREFIX = "/lr-alarm-api"
# Seed 004 FAQ 8: the search answers at most 100 alarms per request.
PAGE_SIZE = 100


def client(run):
    """Return the HTTP client of the LogRhythm Alarm API (bearer token on every request)."""
    config = run.config
    verify = config.get("logrhythm_ca_bundle") or config.logrhythm_verify_tls
    return run.http(config.logrhythm_api_url.rstrip("/") + API_PREFIX, service="LogRhythm",
                    credential="the LogRhythm API key (LOGRHYTHM_API_KEY, logrhythm_api_key)",
                    headers={"Authorization": f"Bearer {reveal(config.logrhythm_api_key)}",
                             "Accept": "application/json"},
                    verify=verify)


def parse_date(text):
    """Return a LogRhythm date (no zone, UTC by convention; reference logrhythm.md 3.1) as an aware UTC datetime."""
    value = dateparser.isoparse(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_date(value):
    """Return an aware datetime as LogRhythm writes dates: UTC, no zone, milliseconds."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def window(lookback_days=None, now=None):
    """Return (start, end) of the search: the previous 24 hours, or lookback_days days."""
    end = now or datetime.now(timezone.utc)
    return end - (timedelta(days=lookback_days) if lookback_days else timedelta(hours=24)), end


def _alarm_date(alarm):
    try:
        return parse_date(alarm["dateInserted"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _page(lr, since, offset, count):
    """Return one page of the search, oldest first."""
    body = lr.json("GET", "/alarms", params={"dateInserted": since, "count": count, "offset": offset,
                                              "orderby": "DateInserted", "dir": "ascending"})
    if not isinstance(body, dict):
        raise SourceError("LogRhythm answered the alarm search with something that is not a JSON object.",
                          "check logrhythm_api_url (LOGRHYTHM_API_URL): it should be the API gateway, "
                          "e.g. http://localhost:8505.")
    # LogRhythm-Tools reads both spellings; recorded bodies use alarmsSearchDetails (logrhythm.md 3.2).
    items = body.get("alarmsSearchDetails", body.get("alarmSearchDetails")) or []
    if not isinstance(items, list):
        raise SourceError("LogRhythm answered the alarm search without a list of alarms.",
                          "check logrhythm_api_url (LOGRHYTHM_API_URL): it should be the API gateway, "
                          "e.g. http://localhost:8505.")
    return items


def search(run, lr, start, end, page_size=PAGE_SIZE):
    """Yield every alarm inserted in [start, end] once, oldest first, whatever the server does with offset.

    Pages with offset and count while the server honours offset; when a page brings back only alarms
    already seen, the server ignored the offset, and the search moves the window start instead to the
    last alarm's dateInserted, de-duplicating by alarmId (reference logrhythm.md 3.3).
    """
    seen = set()
    since, offset, moving, largest = format_date(start), 0, False, 0
    while True:
        page = _page(lr, since, 0 if moving else offset, page_size)
        largest = max(largest, len(page))
        fresh = []
        for alarm in page:
            if not isinstance(alarm, dict):
                run.skip(BadRecord("alarm that is not a JSON object", alarm=repr(alarm)[:40]), "alarm")
                continue
            key = alarm.get("alarmId")
            if isinstance(key, bool) or not isinstance(key, (int, str)) or not str(key).isdigit():
                # checked before the seen set: an id that is a list or an object cannot be remembered
                if repr(key) not in seen:
                    seen.add(repr(key))
                    run.skip(BadRecord("alarm without a numeric alarmId", alarm_id=key), "alarm")
                continue
            if key in seen:
                continue
            seen.add(key)
            fresh.append(alarm)
        newest = None
        for alarm in fresh:
            when = _alarm_date(alarm)
            if when is None:
                run.skip(BadRecord("alarm without a readable dateInserted", alarm_id=alarm.get("alarmId")), "alarm")
                continue
            newest = when if newest is None or when > newest else newest
            if start <= when <= end:
                run.stats.received += 1
                yield alarm
        if not page:
            return
        if fresh:
            if moving:
                since = format_date(newest) if newest is not None else since
            else:
                offset += len(page)
            continue
        if not moving and offset > 0:
            moving = True
            last = max((d for d in map(_alarm_date, page) if d is not None), default=None)
            since = format_date(last) if last is not None else since
            log.info("LogRhythm ignored the search offset; moving the window start instead (now %s).", since)
            continue
        if moving and len(page) >= largest and all(_alarm_date(a) == parse_date(since) for a in page):
            # More alarms share one millisecond than a page holds: the rest cannot be reached.
            log.warning("More than %d alarms were inserted at %s; LogRhythm returns only %d of them. "
                        "Continuing after that instant.", len(page), since, len(page))
            since = format_date(parse_date(since) + timedelta(milliseconds=1))
            continue
        return


def details(lr, alarm_id):
    """Return the details of one alarm (risk based priority in rbpMax)."""
    body = lr.json("GET", f"/alarms/{alarm_id}")
    found = body.get("alarmDetails") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        raise BadRecord("alarm details without alarmDetails", alarm_id=alarm_id)
    return found


def risk_based_priority(alarm_details):
    """Return the alarm's risk based priority (rbpMax; the spec spells it rBPMax), or None."""
    value = alarm_details.get("rbpMax", alarm_details.get("rBPMax"))
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def events(lr, alarm_id):
    """Return the events of one alarm."""
    body = lr.json("GET", f"/alarms/{alarm_id}/events")
    if not isinstance(body, dict):
        raise BadRecord("alarm events that are not a JSON object", alarm_id=alarm_id)
    # Recorded bodies say alarmEventsDetails, the spec alarmsEventDetails (logrhythm.md 5).
    found = body.get("alarmEventsDetails", body.get("alarmsEventDetails"))
    if found is None:
        return []
    if not isinstance(found, list):
        raise BadRecord("alarm events that are not a list", alarm_id=alarm_id)
    return found


__all__ = ["client", "search", "details", "events", "risk_based_priority", "window", "parse_date", "format_date",
           "PAGE_SIZE"]
