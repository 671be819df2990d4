"""LogRhythm: every alarm inserted in a time window, whatever the server does with offset; its details, events."""

import json
import logging
from datetime import timedelta

from tq_conn_common import BadRecord, Declared, Param, Service, SourceError, checks, clock, cursor_pages

log = logging.getLogger(__name__)

API_PREFIX = "/lr-alarm-api"
DRILLDOWN = "../lr-drilldown-cache-api/drilldown/{}"   # next to the alarm API on the gateway
PAGE_SIZE = 100   # seed 004 FAQ 8: the search answers at most 100 alarms per request
EXAMPLE_URL = "http://localhost:8505"


def env_named(param):
    """Return how messages name a credential seed 004 has users set as an environment variable."""
    return f"the {param.label.replace(' Key', ' key')} ({param.env}, {param.key})"


LR_KEY = Param("logrhythm_api_key", "LogRhythm API Key", secret=True, required=True, env="LOGRHYTHM_API_KEY",
               help="Token of the LogRhythm Third Party Application registered in the Client Console.")
# Users copy the alarm API address too; the gateway root is what is meant.
LR_URL = Param("logrhythm_api_url", "LogRhythm API URL", required=True, env="LOGRHYTHM_API_URL",
               check=lambda value: checks.http_url(EXAMPLE_URL)(value).removesuffix(API_PREFIX),
               help="LogRhythm API gateway, e.g. http://localhost:8505 on the Platform Manager, "
                    "https://<platform manager>:8501 from another host; cloud customers get it from LogRhythm.")
LOGRHYTHM = Service("LogRhythm", credential=env_named(LR_KEY), url=LR_URL)
NOT_A_SEARCH = Declared(SourceError, "LogRhythm answered the alarm search without a list of alarms.",
                        f"check {LR_URL.named}: it should be the API gateway, e.g. {EXAMPLE_URL}.")
BAD_ALARM = Declared(BadRecord, "alarm {what}")
NOT_CACHED = Declared(BadRecord, "AIE alarm whose drill-down LogRhythm has not filled yet; the next run takes it")


def client(ctx):
    """Return the HTTP client of the LogRhythm Alarm API (bearer token on every request)."""
    config = ctx.config
    headers = {"Authorization": f"Bearer {config.logrhythm_api_key.reveal()}", "Accept": "application/json"}
    return ctx.http(LOGRHYTHM, config.logrhythm_api_url + API_PREFIX, headers=headers,
                    verify=checks.verify(config, "logrhythm"))


def format_date(value):
    """Return an aware datetime as LogRhythm writes dates: UTC, no zone, milliseconds."""
    return value.astimezone(clock.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def inserted(alarm):
    """Return when an alarm was inserted (no zone: UTC by convention, logrhythm.md 3.1), or None."""
    return clock.parse(alarm.get("dateInserted")) if isinstance(alarm, dict) else None


def window(lookback_days=None, now=None):
    """Return (start, end) of the search: the previous 24 hours, or lookback_days days."""
    end = now or clock.now()
    return end - (timedelta(days=lookback_days) if lookback_days else timedelta(hours=24)), end


class Search:
    """The alarms inserted in [start, end], each once, oldest first (logrhythm.md 3.3)."""
    # Paged by offset until a page of alarms all read before shows the server ignores it; then (offset None) the
    # window start moves to the newest alarm read. The cursor is (window start, offset, alarms read): one that comes
    # again means no progress.

    def __init__(self, ctx, lr, start, end):
        self.ctx, self.lr, self.start, self.end = ctx, lr, start, end
        self.seen, self.largest = set(), 0

    def alarms(self):
        for page in cursor_pages(self._page, first=(format_date(self.start), 0, 0), service="LogRhythm",
                                 what="alarms"):
            yield from filter(None, page)

    def _page(self, cursor):
        """Return one page, None in place of each alarm not to yield, and the next cursor (None: the end)."""
        since, offset, _ = cursor
        body = self.lr.json("GET", "/alarms", params={"dateInserted": since, "count": self.ctx.config.page_size,
                                                      "offset": offset or 0, "orderby": "DateInserted",
                                                      "dir": "ascending"})
        # LogRhythm-Tools reads both spellings; recorded bodies use alarmsSearchDetails (logrhythm.md 3.2).
        if not isinstance(body, dict) or not isinstance(
                page := body.get("alarmsSearchDetails", body.get("alarmSearchDetails")) or [], list):
            raise NOT_A_SEARCH()
        if not page:
            return [], None
        self.largest = max(self.largest, len(page))
        kept, fresh, newest = [], False, None
        for alarm in page:
            when = self._new(alarm) and inserted(alarm)   # False: read before, or no alarm
            fresh = fresh or when is not False
            if when is None:
                self.ctx.skip(BAD_ALARM(context={"alarm_id": alarm["alarmId"]}, what="without a readable dateInserted"))
            newest = max(newest or when, when) if when else newest
            kept.append(alarm if when and self.start <= when <= self.end else None)
        if fresh:
            since, offset = (since, offset + len(page)) if offset is not None else (
                format_date(newest) if newest else since, None)
        elif offset:   # only alarms read before, at an offset: the server ignored it
            since, offset = format_date(max(filter(None, map(inserted, page)), default=clock.parse(since))), None
            log.info("LogRhythm ignored the search offset; moving the window start instead (now %s).", since)
        elif offset is None and len(page) >= self.largest and all(inserted(a) == clock.parse(since) for a in page):
            # More alarms share one millisecond than a page holds: the rest cannot be reached.
            log.warning("More than %d alarms were inserted at %s; LogRhythm returns only %d of them. Continuing "
                        "after that instant.", len(page), since, len(page))
            since = format_date(clock.parse(since) + timedelta(milliseconds=1))
        else:
            return kept, None
        return kept, (since, offset, len(self.seen))

    def _new(self, alarm):
        """Return True for an alarm not read before; skip one that is not an object or lacks a numeric alarmId."""
        if not isinstance(alarm, dict):
            self.ctx.skip(BAD_ALARM(context={"alarm": repr(alarm)[:40]}, what="that is not a JSON object"))
            return False
        key = alarm.get("alarmId")
        valid = not isinstance(key, bool) and isinstance(key, (int, str)) and str(key).isdigit()
        mark = key if valid else repr(key)   # an id that is a list or an object cannot be remembered as it is
        if mark in self.seen:
            return False
        self.seen.add(mark)
        if not valid:
            self.ctx.skip(BAD_ALARM(context={"alarm_id": key}, what="without a numeric alarmId"))
        return valid


def details(lr, alarm_id):
    """Return the details of one alarm (risk based priority in rbpMax)."""
    body = lr.json("GET", f"/alarms/{alarm_id}")
    if not isinstance(body, dict) or not isinstance(body.get("alarmDetails"), dict):
        raise BAD_ALARM(context={"alarm_id": alarm_id}, what="details without alarmDetails")
    return body["alarmDetails"]


def risk_based_priority(alarm_details):
    """Return the alarm's risk based priority (rbpMax; the spec spells it rBPMax), or None."""
    try:
        return int(alarm_details.get("rbpMax", alarm_details.get("rBPMax")))
    except (TypeError, ValueError):
        return None


def events(lr, alarm_id):
    """Return every event of one alarm: the logs of its AIE drill-down, or /events for an alarm without one."""
    # /events returns one event even when the alarm has more; the drill-down cache has them all, answers 404 for
    # alarms that are not AIE alarms, and fills some time after the alarm (logrhythm.md, 2026 corrections).
    try:
        body = lr.json("GET", DRILLDOWN.format(alarm_id), context={"alarm_id": alarm_id})
    except SourceError as exc:
        if exc.kind != "not_found":
            raise
        body = lr.json("GET", f"/alarms/{alarm_id}/events")
        # Recorded bodies say alarmEventsDetails, the spec alarmsEventDetails (logrhythm.md 5).
        if not isinstance(body, dict) or not isinstance(
                found := body.get("alarmEventsDetails", body.get("alarmsEventDetails")) or [], list):
            raise BAD_ALARM(context={"alarm_id": alarm_id}, what="events that are not a list") from None
        return found
    found = ((body.get("Data") or body.get("data") or {}) if isinstance(body, dict) else {}).get("DrillDownResults")
    logs = []
    for block in (found.get("RuleBlocks") if isinstance(found, dict) else None) or ():
        block = block.get("DrillDownLogs") if isinstance(block, dict) else None
        try:   # JSON text in some versions, a list in others
            block = json.loads(block) if isinstance(block, str) else block
        except ValueError:
            raise BAD_ALARM(context={"alarm_id": alarm_id}, what="drill-down logs that are not JSON") from None
        logs += block if isinstance(block, list) else []
    if not logs:
        raise NOT_CACHED(context={"alarm_id": alarm_id})
    return logs

