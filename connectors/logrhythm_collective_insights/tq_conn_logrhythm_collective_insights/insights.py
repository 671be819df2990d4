"""Recorded Future Collective Insights: one detection per alarm IOC, validated by psengine and submitted through it
in batches within the daily limit."""

import json
import logging
import os
from collections import Counter
from urllib.parse import urlsplit

from pydantic import ValidationError

from tq_conn_common import (BadRecord, ConfigError, Declared, DeliveryError, Param, Service, TqConnError, checks,
                            chunks, clock)
from tq_conn_logrhythm_collective_insights.source import env_named

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.recordedfuture.com"
# Collective Insights accepts 15,000 submissions a day (recorded-future.md 6.3).
DAILY_LIMIT = 15000
_KINDS = ("ip", "domain", "url", "vulnerability", "hash")   # in the order the summary is logged


def _rf_key(value):
    # psengine refuses any other token shape before sending (recorded-future.md 2).
    if len(value) != 32 or not value.isascii() or not value.isalnum() or value.lower() != value:
        raise ValueError("is not 32 lower-case letters and digits; copy the API key from the Recorded Future portal.")
    return value


RF_KEY = Param("rf_api_key", "Recorded Future API Key", secret=True, required=True, env="RF_API_KEY", check=_rf_key,
               help="Recorded Future API key with Collective Insights enabled.")
RF_URL = Param("rf_api_url", "Recorded Future API URL", default=DEFAULT_URL, check=checks.http_url(DEFAULT_URL),
               help="Base URL of the Recorded Future API; Collective Insights is at "
                    "<URL>/collective-insights/detections.")
COLLECTIVE_INSIGHTS = Service(
    "Collective Insights", credential=env_named(RF_KEY), url=RF_URL,
    classes={"status": DeliveryError, "connection": DeliveryError},
    messages={"credential": "Recorded Future rejected {credential} (HTTP {status}){said}.",
              "permission": "Recorded Future refused the Collective Insights submission (HTTP {status}){said}: the "
                            "API key lacks Collective Insights permission.",
              "refused": "Collective Insights refused the detections as invalid (HTTP {status}){said}.",
              "rate_limited": "Collective Insights is rate limiting (HTTP {status}){said}.",
              "status": "Collective Insights at {host} answered HTTP {status}{said}.",
              "unreachable": "Could not reach Collective Insights at {host} ({reason})."},
    fixes={"permission": "ask your Recorded Future account team to enable Collective Insights for {credential}, then "
                         "run again.",
           "refused": "run with -l DEBUG to log the request and report it; state was kept.",
           "rate_limited": f"run again later; Collective Insights accepts {DAILY_LIMIT} submissions a day; state "
                           "keeps what was sent, nothing is sent twice."})
DAILY = Declared(DeliveryError, "Stopped at the daily limit of {limit} Collective Insights submissions ({used} sent on "
                                "{day} UTC); the remaining alarms were not submitted.",
                 "run again after 00:00 UTC with -lb covering them; state keeps what was sent, nothing goes twice.")
LOADED = Declared(ConfigError, "psengine was already loaded for {loaded}, not {wanted}.",
                  "run the command in its own process.")
REFUSED = Declared(BadRecord, "detection refused by psengine: {why}")


def detection(alarm, timestamp, kind, value, field):
    """Return the Collective Insights detection of one IOC of an alarm (recorded-future.md 6.4)."""
    alarm_id, rule = str(alarm["alarmId"]), str(alarm.get("alarmRuleName") or "")
    # Seed 004 FAQ 7: every detection of an alarm carries the alarm id and "Alarm ID: Alarm Rule Name".
    return {"timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ioc": {"type": kind, "value": value, "source_type": "LogRhythm", "field": field},
            "incident": {"id": alarm_id, "name": f"{alarm_id}: {rule}", "type": "LogRhythm Alarm"},
            "detection": {"type": "correlation", "name": rule}}


def detections(record):
    """Return the detections of one alarm read: record is (alarm, when it was inserted, its IOCs)."""
    return [detection(record[0], record[1], *ioc) for ioc in record[2]]


def _psengine(base_url):
    """Import psengine with its endpoints on base_url; return its CollectiveInsights, error and Insight classes."""
    # psengine computes every endpoint from RF_BASE_URL once, when first imported (recorded-future.md 7.2).
    os.environ["RF_BASE_URL"] = base_url
    from psengine import endpoints
    from psengine.collective_insights import CollectiveInsights, CollectiveInsightsError
    from psengine.collective_insights.insight import Insight
    if endpoints.BASE_URL != base_url:
        raise LOADED(loaded=endpoints.BASE_URL, wanted=base_url)
    return CollectiveInsights, CollectiveInsightsError, Insight


class Outbox:
    """Collective Insights as the stream's destination: the detections of whole alarms, validated by psengine as
    they come, submitted in POSTs of at most batch_size within the daily limit. An alarm is remembered as submitted
    once all its detections are; in debug mode (-d) each is logged and nothing is submitted."""

    name = "Collective Insights"
    dry_run_aware = True

    def __init__(self, run):
        self.run, self.config = run, run.config
        self.waiting, self.alarms, self.processed, self.built = [], [], Counter(), 0

    def open(self, ctx):
        config, self.ctx = self.config, ctx
        self._client, self._error, self._insight = _psengine(config.rf_api_url)
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # psengine logs every failure at ERROR before raising; the error raised here says it once, with the fix.
            logging.getLogger("psengine").setLevel(logging.CRITICAL)
        self.client = None if ctx.dry_run else self._client(rf_token=config.rf_api_key.reveal())
        self.errors = ctx.http(COLLECTIVE_INSIGHTS, config.rf_api_url)  # reads psengine's failed responses
        return self

    @property
    def count(self):
        return len(self.waiting)

    def add(self, rows):
        """Take the detections of one alarm."""
        for det in rows:
            try:
                self.waiting.append(self._insight.model_validate(det))
            except ValidationError as exc:
                self.run.skip(REFUSED(context={"alarm_id": det["incident"]["id"], "ioc": det["ioc"]["value"]},
                                      why=exc.errors()[0].get("msg", exc)), "detection")
                continue
            self.built += 1
            log.log(logging.INFO if self.ctx.dry_run else logging.DEBUG, "Detection%s: %s",
                    " (debug mode, not submitted)" if self.ctx.dry_run else "", json.dumps(det, separators=(",", ":")))
        if rows:
            self.alarms.append((rows[0]["incident"]["id"], clock.epoch(rows[0]["timestamp"]), len(self.waiting)))

    def send(self):
        """Submit what waits; return how many went out."""
        waiting, alarms, self.waiting, self.alarms = self.waiting, self.alarms, [], []
        if self.ctx.dry_run or self.ctx.halted:
            return 0
        checkpoint, sent, error = self.ctx.checkpoint, 0, None
        for batch in chunks(waiting, self.config.batch_size):
            day, daily = clock.now().strftime("%Y-%m-%d"), checkpoint.get("daily") or {}
            used = daily.get("count", 0) if daily.get("day") == day else 0
            try:
                if used + len(batch) > self.config.daily_limit:
                    raise DAILY(limit=self.config.daily_limit, used=used, day=day)
                self._submit(batch)
            except TqConnError as exc:
                error = exc
                break
            checkpoint["daily"] = {"day": day, "count": used + len(batch)}
            sent += len(batch)
        checkpoint.setdefault("submitted", {}).update((alarm, epoch) for alarm, epoch, end in alarms if end <= sent)
        if error:   # what went out is committed, then the stream fails
            self.ctx.halt(error)
        return sent

    def _submit(self, batch):
        """Submit one batch with debug off (psengine's default is on); log what Collective Insights processed."""
        self.run.stats.requests += 1
        try:
            answer = self.client.submit(batch, debug=False, organization_ids=self.config.organization_ids or None)
        except self._error as exc:
            log.debug("Collective Insights submission failed: %s", exc)
            if getattr(exc.__cause__, "response", None) is not None:
                raise self.errors.error(exc.__cause__.response) from None
            raise COLLECTIVE_INSIGHTS.error("unreachable", {"host": urlsplit(self.config.rf_api_url).netloc,
                                                            "reason": type(exc.__cause__).__name__}) from None
        except ValidationError:   # accepted, but the answer is not the documented summary
            answer = None
        got = answer.result.summary.processed if answer and answer.result.summary else None
        processed = {kind: getattr(got, kind.replace("hash", "hash_")) for kind in _KINDS} if got else {}
        self.processed.update(processed)
        log.info("Collective Insights accepted %d detections%s.", len(batch),
                 f"; processed: {counts(processed)}" if processed else "")


def counts(processed):
    """Return processed counts per IOC type as 'ip 5, domain 3'."""
    return ", ".join(f"{kind} {count}" for kind, count in processed.items())

