"""The Flashpoint APIs: token check, v4 indicators by type and update window, alerting v1 alerts by time window."""

import calendar
import contextlib
import datetime
import json
import logging
import time
from urllib.parse import parse_qsl, urlsplit

from tq_conn_common import AuthError, ConfigError, SourceError
from tq_conn_common import logs
from tq_conn_common.http import HttpAuthError, HttpError

from tq_conn_flashpoint.settings import decode_token

log = logging.getLogger(__name__)

SERVICE = "Flashpoint"
CREDENTIAL = "the bearer token (bearer_token_base64)"
# Flashpoint serves at most the first 10,000 hits of a query through skip/limit (reference 3.3); past that a
# window is restarted at the last update time seen.
RESULT_WINDOW = 10_000
TOKEN_FIX = ("create a new API token on fp.tools (profile icon > Manage API Tokens > Generate Token), "
             "encode it with base64 (printf %s TOKEN | base64 -w0) and set it as bearer_token_base64.")


def iso(epoch):
    """Return epoch seconds as Flashpoint's time format, YYYY-MM-DDTHH:MM:SSZ."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def epoch(text):
    """Return the epoch seconds of a YYYY-MM-DDTHH:MM:SSZ time."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def check_time(value):
    """Param check of initial_start_time: a UTC time in the past, returned as YYYY-MM-DDTHH:MM:SSZ."""
    text = str(value).strip()
    try:  # YAML hands an unquoted 2023-02-07T00:00:00Z over as a datetime, str() of which has a space and +00:00
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a UTC time like 2023-02-07T00:00:00Z; write it in that form.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    if when.timestamp() > time.time():
        raise ValueError(f"{text} is in the future; set a time in the past.")
    return iso(when.timestamp())


def updated_at(doc):
    """Return the update time (header_.indexed_at, epoch seconds) of an indicator, or None."""
    value = (doc.get("header_") or {}).get("indexed_at") if isinstance(doc, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class Flashpoint:
    """A client of the two Flashpoint APIs with the settings of one run."""

    def __init__(self, run):
        config = run.config
        token = decode_token(config.bearer_token_base64.reveal())
        logs.add_secrets([token])
        self.http = run.http("", service=SERVICE, credential=CREDENTIAL,
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                      "X-FP-IntegrationPlatform": "tq-conn"},
                             requests_per_second=config.get("requests_per_second"))
        base = f"{config.indicators_url.rstrip('/')}/{config.indicators_path.strip('/')}".rstrip("/")
        self.attribute_url = base + "/attribute"
        self.scroll_url = base + "/scroll"
        self.alerts_url = config.alerts_url.rstrip("/") + "/alerts"
        self.paging = config.indicators_paging
        self.page_size = config.page_size
        self.alerts_page_size = config.alerts_page_size

    def check(self, alerts=True):
        """Make one small request to each API in use: the token and the base URLs work, or a SetupError."""
        with _errors("setup", "indicators_url and indicators_path", self.attribute_url):
            self.http.json("GET", self.attribute_url, params={"limit": 1})
        if alerts:
            now = int(time.time())
            with _errors("setup", "alerts_url", self.alerts_url):
                self.http.json("GET", self.alerts_url, params={"since": iso(now - 60), "until": iso(now), "size": 1})

    def indicators(self, type_, since, until):
        """Yield the attribute documents of one type updated in [since, until) (epoch seconds), oldest first."""
        with _errors("fetch_indicators", "indicators_url and indicators_path", self.attribute_url):
            pages = self._scroll(type_, since, until) if self.paging == "scroll" else self._skip(type_, since, until)
            for doc in pages:
                changed = updated_at(doc)
                # Servers that ignore updated_until would hand out items of the next window twice (reference 3.3).
                if changed is not None and changed >= until:
                    continue
                yield doc

    def _query(self, type_, since, until):
        return {"types": type_, "updated_since": iso(since), "updated_until": iso(until), "sort_timestamp": "asc",
                "limit": self.page_size}

    def _scroll(self, type_, since, until):
        body = self.http.json("GET", self.attribute_url, params={**self._query(type_, since, until), "scroll": "true"})
        if isinstance(body, list):  # answered without a scroll session: one plain page
            log.warning("Flashpoint answered without a scroll session for '%s'; set indicators_paging: skip.", type_)
            yield from _items(body, "indicators")
            return
        results, scroll_id = _results(body), _field(body, "scroll_id")
        previous = None
        while results:
            # A scroll id may stay the same from page to page; a page handed out twice may not.
            first = results[0].get("fpid") if isinstance(results[0], dict) else None
            if first is not None and first == previous:
                raise SourceError(f"Flashpoint handed out the same page of '{type_}' twice in one scroll; stopped "
                                  "to avoid a loop", "run again later; if it persists, set indicators_paging: skip.")
            previous = first
            yield from results
            if not scroll_id:
                return
            body = self.http.json("POST", self.scroll_url, json={"scroll_id": scroll_id})
            results, scroll_id = _results(body), _field(body, "scroll_id") or scroll_id
        if scroll_id:
            self._close(scroll_id)

    def _close(self, scroll_id):
        """Close a scroll session; a closed or expired one answers 404 (reference 3.1), a failure only warns."""
        try:
            self.http.request("DELETE", self.scroll_url, json={"scroll_id": scroll_id}, expect=(200, 202, 204, 404))
        except HttpError as exc:
            log.warning("Could not close the Flashpoint scroll session (%s); it expires on its own.", exc.message)

    def _skip(self, type_, since, until):
        """Page with skip/limit; before the result window ends, restart the window at the last update time seen."""
        start, skip = since, 0
        tail_time, tail_count = None, 0   # update time of the last item yielded, and how many in a row share it
        while True:
            page = _items(self.http.json("GET", self.attribute_url,
                                         params={**self._query(type_, start, until), "skip": skip}), "indicators")
            for doc in page:
                changed = updated_at(doc)
                tail_time, tail_count = (changed, tail_count + 1) if changed == tail_time else (changed, 1)
                yield doc
            if len(page) < self.page_size:
                return
            skip += len(page)
            if skip + self.page_size <= RESULT_WINDOW or tail_time is None:
                continue
            if tail_count + self.page_size > RESULT_WINDOW:
                raise SourceError(f"more than {RESULT_WINDOW - self.page_size} '{type_}' indicators share the update "
                                  f"time {iso(tail_time)}", "use indicators_paging: scroll.")
            # updated_since is inclusive: the new window starts with the items of tail_time already yielded.
            start, skip = tail_time, tail_count

    def alerts(self, since, until):
        """Yield the alerts created in [since, until] (epoch seconds), following the relative next links."""
        params = {"since": iso(since), "until": iso(until), "size": self.alerts_page_size}
        seen = set()
        with _errors("fetch_alerts", "alerts_url", self.alerts_url):
            while True:
                body = self.http.json("GET", self.alerts_url, params=params)
                if not isinstance(body, dict):
                    raise SourceError("the alerts answer is not a JSON object", "check alerts_url.")
                data = body.get("data") or []
                yield from _items(data, "alerts")
                # links.next.href is relative to the alerting base ('/v1/alerts?...'): keep only its query
                # and ask the configured alerts URL again, as partner clients do (reference 4.2).
                href = (((body.get("links") or {}).get("next") or {}).get("href"))
                if not href or not data:
                    return
                params = dict(parse_qsl(urlsplit(href).query, keep_blank_values=True))
                cursor = params.get("scroll_id") or href
                if cursor in seen:
                    raise SourceError("Flashpoint repeated an alerts page link; stopped to avoid a loop",
                                      "run again later; if it persists, report it to Flashpoint.")
                seen.add(cursor)


def _results(body):
    if not isinstance(body, dict):
        raise SourceError("the scroll answer is not a JSON object", "check indicators_url and indicators_path.")
    return _items(body.get("results") or [], "indicators")


def _field(body, key):
    return body.get(key) if isinstance(body, dict) else None


def _items(value, what):
    if not isinstance(value, list):
        raise SourceError(f"the {what} answer holds no list of {what}",
                          "check the Flashpoint URL settings; they must point at the API, not the web app.")
    return value


@contextlib.contextmanager
def _errors(phase, setting, url):
    """Translate failures into the error ids of the Flashpoint collector: SetupError 2/102, PullError 101/102."""
    try:
        yield
    except HttpAuthError as exc:
        if phase == "setup":
            raise AuthError(f"SetupError 2: Please ensure the bearer token is prepared: Flashpoint refused it "
                            f"(HTTP {exc.status}, {_detail(exc) or 'no reason given'}).", TOKEN_FIX) from None
        raise AuthError(f"PullError 102: Api {_api_log(exc)}.", TOKEN_FIX) from None
    except HttpError as exc:
        if exc.status is None and phase != "setup":
            raise SourceError(f"PullError 101: Error in {phase} {_strip(exc.message)}.", exc.fix,
                              retryable=exc.retryable) from None
        ident = "SetupError 102" if phase == "setup" else "PullError 102"
        message = f"{ident}: Api {_api_log(exc) if exc.status else _strip(exc.message)}."
        if exc.status in (404, 405):
            raise ConfigError(message, f"check {setting} ({url}); Flashpoint is moving customers to its newer "
                                       "API, see the README on the URL settings.") from None
        if exc.status == 400:
            raise ConfigError(message, "Flashpoint refused the request for the reason shown; check the types in "
                                       f"lookups, the page sizes and initial_start_time, and {setting}.") from None
        raise SourceError(message, exc.fix, retryable=exc.retryable) from None
    except SourceError as exc:
        if phase == "setup":
            raise SourceError(f"SetupError 102: Api {_strip(exc.message)}.", exc.fix, retryable=exc.retryable) from None
        raise SourceError(f"PullError 101: Error in {phase} {_strip(exc.message)}.", exc.fix,
                          retryable=exc.retryable) from None


def _api_log(exc):
    detail = _detail(exc)
    return _strip(exc.message) + (f": {detail}" if detail else "")


def _detail(exc):
    """Return the reason Flashpoint gave in an error body ('detail', then 'message'), shortened; '' if none."""
    try:
        body = json.loads(exc.excerpt or "")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    reason = body.get("detail") or body.get("message") or (error.get("message") if isinstance(error, dict) else error)
    return _strip(" ".join(str(reason).split()))[:200] if reason else ""


def _strip(text):
    return str(text).strip().rstrip(".")


__all__ = ["Flashpoint", "iso", "epoch", "check_time", "updated_at", "RESULT_WINDOW"]
