"""Recorded Future Collective Insights: detections built from alarm IOCs, submitted through psengine."""

import json
import logging
import os
from urllib.parse import urlsplit

from tq_conn_common import AuthError, BadRecord, ConfigError, DeliveryError, reveal

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.recordedfuture.com"
# Collective Insights accepts 15,000 submissions a day (recorded-future.md 6.3).
DAILY_LIMIT = 15000
SOURCE_TYPE = "LogRhythm"
INCIDENT_TYPE = "LogRhythm Alarm"
_RF_KEY = "the Recorded Future API key (RF_API_KEY, rf_api_key)"


def detection(alarm, timestamp, kind, value, field):
    """Return the Collective Insights detection of one IOC of an alarm (recorded-future.md 6.4)."""
    alarm_id = str(alarm["alarmId"])
    rule = str(alarm.get("alarmRuleName") or "")
    return {
        "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ioc": {"type": kind, "value": value, "source_type": SOURCE_TYPE, "field": field},
        # Seed 004 FAQ 7: every detection of an alarm carries the alarm id and "Alarm ID: Alarm Rule Name".
        "incident": {"id": alarm_id, "name": f"{alarm_id}: {rule}", "type": INCIDENT_TYPE},
        "detection": {"type": "correlation", "name": rule},
    }


def _psengine(base_url):
    """Import psengine with its endpoints on base_url; return its CollectiveInsights, error and Insight classes."""
    # psengine computes every endpoint from RF_BASE_URL once, when first imported (recorded-future.md 7.2).
    os.environ["RF_BASE_URL"] = base_url
    from psengine import endpoints
    from psengine.collective_insights import CollectiveInsights, CollectiveInsightsError
    from psengine.collective_insights.insight import Insight
    if endpoints.BASE_URL != base_url:
        raise ConfigError(f"psengine was already loaded for {endpoints.BASE_URL}, not {base_url}.",
                          "run the command in its own process.")
    return CollectiveInsights, CollectiveInsightsError, Insight


class Submitter:
    """Validates detections with psengine's models and submits them in one POST per call."""

    def __init__(self, run, dry_run=False):
        config = run.config
        self.run = run
        self.base_url = config.rf_api_url.rstrip("/")
        self.organization_ids = list(config.get("organization_ids") or []) or None
        self._client_cls, self._error_cls, self._insight_cls = _psengine(self.base_url)
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # psengine logs every failure at ERROR before raising; the message below says it once, with the fix.
            logging.getLogger("psengine").setLevel(logging.CRITICAL)
        self._client = None if dry_run else self._client_cls(rf_token=reveal(config.rf_api_key))

    def insight(self, detection_):
        """Return the psengine Insight of a detection; raise BadRecord if psengine refuses it."""
        from pydantic import ValidationError
        try:
            return self._insight_cls.model_validate(detection_)
        except ValidationError as exc:
            raise BadRecord(f"detection refused by psengine: {exc.errors()[0].get('msg', exc)}",
                            alarm_id=detection_["incident"]["id"], ioc=detection_["ioc"]["value"]) from None

    def submit(self, insights):
        """Submit detections with debug off (psengine's default is on); return the processed counts or None."""
        from pydantic import ValidationError
        self.run.stats.requests += 1
        try:
            answer = self._client.submit(insights, debug=False, organization_ids=self.organization_ids)
        except self._error_cls as exc:
            raise self._translate(exc) from None
        except ValidationError:
            log.warning("Collective Insights accepted %d detections but its answer was not the documented "
                        "summary; see the log at -l DEBUG.", len(insights))
            return None
        summary = answer.result.summary
        if summary is None:
            return None
        processed = summary.processed
        return {"ip": processed.ip, "domain": processed.domain, "url": processed.url,
                "vulnerability": processed.vulnerability, "hash": processed.hash_}

    def _translate(self, exc):
        response = getattr(exc.__cause__, "response", None)
        status = getattr(response, "status_code", None)
        cause = _cause(response)
        host = urlsplit(self.base_url).netloc or self.base_url
        log.debug("Collective Insights submission failed: %s", exc)
        if status == 403:
            return AuthError(f"Recorded Future refused the Collective Insights submission (HTTP 403){cause}: "
                             "the API key lacks Collective Insights permission.",
                             f"ask your Recorded Future account team to enable Collective Insights for {_RF_KEY}, "
                             "then run again.")
        if status == 401:
            return AuthError(f"Recorded Future rejected {_RF_KEY} (HTTP 401){cause}.",
                             "check the key (or create a new one in the Recorded Future portal) and run again.")
        if status == 400:
            return DeliveryError(f"Collective Insights refused the detections as invalid (HTTP 400){cause}.",
                                 "run with -l DEBUG to log the request and report it; state was kept.")
        if status == 429:
            return DeliveryError(f"Collective Insights is rate limiting (HTTP 429){cause}.",
                                 f"run again later; Collective Insights accepts {DAILY_LIMIT} submissions a day. "
                                 "State keeps what was sent, nothing is sent twice.", retryable=True)
        if status is not None:
            return DeliveryError(f"Collective Insights at {host} answered HTTP {status}{cause}.",
                                 "run again later; state keeps what was sent, nothing is sent twice.", retryable=True)
        return DeliveryError(f"Could not reach Collective Insights at {host} ({type(exc.__cause__).__name__}).",
                             "check rf_api_url, the network and any proxy (HTTPS_PROXY); run again later.",
                             retryable=True)


def _cause(response):
    """Return ': <message>' from a Recorded Future error body, or ''."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") or body.get("error") if isinstance(body, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    return f": {str(message)[:200]}" if message else ""


def describe(detection_):
    """Return one detection as a compact JSON line for the log."""
    return json.dumps(detection_, separators=(",", ":"), sort_keys=False)


__all__ = ["detection", "Submitter", "describe", "DEFAULT_URL", "DAILY_LIMIT"]
