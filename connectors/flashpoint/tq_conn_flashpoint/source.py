"""The Flashpoint APIs (v4 and Alerting v1, Ignite, IOC v2): token check, indicators and alerts by time window."""

import contextlib
import logging
import time
from urllib.parse import parse_qsl, urlsplit

from tq_conn_common import ConfigError, Service, SourceError, clock, cursor_pages, scroll_pages, window_pages

from tq_conn_flashpoint.settings import APIS, TOKEN, decode_token

log = logging.getLogger(__name__)

# Flashpoint serves at most the first 10,000 hits of a query through skip/limit (reference 3.3); past that a
# window is restarted at the last update time seen.
RESULT_WINDOW = 10_000
TOKEN_FIX = ("create a new API token on fp.tools (profile icon > Manage API Tokens > Generate Token), "
             "encode it with base64 (printf %s TOKEN | base64 -w0) and set it as bearer_token_base64.")


def _service(phase, setting):
    """The Flashpoint API as seed 002's error ids name its failures in one phase (setup, fetch_indicators, ...)."""
    api = ("SetupError 102" if phase == "setup" else "PullError 102") + ": Api {message}"
    broken = api if phase == "setup" else f"PullError 101: Error in {phase} {{message}}"
    return Service(
        "Flashpoint", credential=TOKEN, url=setting,
        messages={"auth": "SetupError 2: Please ensure the bearer token is prepared: Flashpoint refused it (HTTP "
                          "{status}, {why})." if phase == "setup" else api,
                  "status": api, "connection": broken, "body": broken},
        fixes={"auth": TOKEN_FIX,
               "not_found": "check {url} ({link}); Flashpoint is moving customers to Ignite, see the README on "
                            "the setting api.",
               "refused": "Flashpoint refused the request for the reason shown; check the types in lookups, the page "
                          "sizes and initial_start_time, and {url}."},
        classes={"not_found": ConfigError, "refused": ConfigError},
        stops=("auth", "status", "connection", "body"))   # the collector stops at its first failed call


SETUP, SETUP_ALERTS, PULL, PULL_ALERTS = (_service(phase, f"{url} and api") for phase, url in (
    ("setup", "indicators_url"), ("setup", "alerts_url"), ("fetch_indicators", "indicators_url"),
    ("fetch_alerts", "alerts_url")))


def updated_at(doc):
    """Return the update time (epoch seconds) of an indicator: header_.indexed_at, or modified_at (IOC v2)."""
    when = isinstance(doc, dict) and clock.parse((doc.get("header_") or {}).get("indexed_at") or doc.get("modified_at"))
    return int(when.timestamp()) if when else None


class Flashpoint:
    """A client of the Flashpoint APIs chosen by the setting api, with the settings of one run."""

    def __init__(self, run):
        config = run.config
        self.v2, self.v4 = config.api == "ioc-v2", config.api == "v4"
        url, path, alerts_url, alerts_path, self.alert_id, self.alert_time, _ = APIS[config.api]
        base = f"{(config.indicators_url or url).rstrip('/')}/{path}"
        self.attribute_url, self.scroll_url = (base, None) if self.v2 else (base + "/attribute", base + "/scroll")
        self.alerts_url = f"{(config.alerts_url or alerts_url).rstrip('/')}/{alerts_path}"
        self.http = run.http(SETUP,
                             headers={"Authorization": f"Bearer {decode_token(config.bearer_token_base64.reveal())}",
                                      "Accept": "application/json", "X-FP-IntegrationPlatform": "tq-conn"},
                             requests_per_second=config.get("requests_per_second"))
        self.config = config

    def check(self, alerts=True):
        """Make one small request to each API in use: the token and the base URLs work, or a SetupError."""
        self.http.json("GET", self.attribute_url, params={"size" if self.v2 else "limit": 1},
                       context={"link": self.attribute_url})
        if alerts:
            self.http.json("GET", self.alerts_url, service=SETUP_ALERTS, context={"link": self.alerts_url},
                           params=self._window(time.time() - 60, time.time(), 1))

    def _window(self, since, until, size):   # Alerting v1 (reference 4.1), or Ignite's notifications (4.5)
        after, before, *order = ("since", "until") if self.v4 else ("created_after", "created_before", "created_at:asc")
        return {after: clock.iso(since), before: clock.iso(until), "size": size, **{"sort": way for way in order}}

    def _get(self, service, method, url, **kwargs):   # called while a pull iterates: its _pulling names failures
        return self.http.json(method, url, service=service, context={"link": url}, **kwargs)

    def indicators(self, type_, since, until):
        """Yield the indicator documents of one type updated in [since, until) (epoch seconds), oldest first."""
        size = self.config.page_size
        query = {"ioc_types": type_, "modified_before": clock.iso(until), "sort": "modified_at:asc", "size": size} \
            if self.v2 else {"types": type_, "updated_since": clock.iso(since), "updated_until": clock.iso(until),
                             "sort_timestamp": "asc", "limit": size}
        scroll = self.config.indicators_paging == "scroll" and not self.v2
        pages = self._scroll(type_, query) if scroll else self._skip(type_, query, since)
        with _pulling(PULL):
            for page in pages:
                for doc in page:
                    changed = updated_at(doc)
                    # Servers that ignore updated_until would hand out items of the next window twice (reference 3.3).
                    if changed is None or changed < until:
                        yield doc

    def _scroll(self, type_, query):
        def page(scroll_id):
            if scroll_id is None:
                body = self._get(PULL, "GET", self.attribute_url, params={**query, "scroll": "true"})
                if isinstance(body, list):  # answered without a scroll session: one plain page
                    log.warning("Flashpoint answered without a scroll session for '%s'; set indicators_paging: "
                                "skip.", type_)
                    return _items(body, "indicators"), None
            else:   # never retried: a failed step fails the pull; the next run scrolls again from the checkpoint
                body = self._get(PULL, "POST", self.scroll_url, json={"scroll_id": scroll_id}, retry=False)
            if not isinstance(body, dict):
                raise SourceError("the scroll answer is not a JSON object", "check indicators_url and api.")
            return _items(body.get("results") or [], "indicators"), body.get("scroll_id")
        # A closed or expired session answers 404 to DELETE (reference 3.1).
        yield from scroll_pages(page, service="Flashpoint", what=f"'{type_}' indicators",
                                repeated=f"the same page of '{type_}' in one scroll",
                                fix="run again later; if it persists, set indicators_paging: skip.",
                                close=lambda scroll_id: self.http.request("DELETE", self.scroll_url, service=PULL,
                                                                          json={"scroll_id": scroll_id},
                                                                          expect=(200, 202, 204, 404)))

    def _skip(self, type_, query, since):
        """Page with skip/limit (from/size on IOC v2), the window restarted at the last update time seen."""
        def page(start, skip, limit):
            moved = {"modified_after": clock.iso(start), "from": skip} if self.v2 else {
                "updated_since": clock.iso(start), "skip": skip}
            body = self._get(PULL, "GET", self.attribute_url, params={**query, **moved})
            return _items(body.get("items") if self.v2 and isinstance(body, dict) else body, "indicators")
        yield from window_pages(page, self.config.page_size, start=since, window=RESULT_WINDOW, key=updated_at,
                                service="Flashpoint", what=f"'{type_}' indicators", fix="use api v4 or ignite with "
                                "indicators_paging: scroll.", shown=lambda when: f"the update time {clock.iso(when)}")

    def alerts(self, since, until):
        """Yield the alerts created in [since, until] (epoch seconds), following the next links."""
        first = self._window(since, until, self.config.alerts_page_size)

        def page(params):
            body = self._get(PULL_ALERTS, "GET", self.alerts_url, params=params)
            if not isinstance(body, dict):
                raise SourceError("the alerts answer is not a JSON object", "check alerts_url and api.")
            # v4: links.next.href, relative to the alerting base ('/v1/alerts?...'); Ignite: pagination.next, an
            # absolute URL with a cursor. Only the link's query is kept, added to the window, and the configured
            # alerts URL asked again, as partner clients do (reference 4.2; Cortex XSOAR Ignite, Splunk SOAR app).
            links = body.get("links" if self.v4 else "pagination") or {}
            href = (links.get("next") or {}).get("href") if self.v4 else links.get("next")
            following = {**first, **dict(parse_qsl(urlsplit(href).query, keep_blank_values=True))} if href else None
            return _items(body.get("data" if self.v4 else "items") or [], "alerts"), following
        with _pulling(PULL_ALERTS):
            for items in cursor_pages(page, first=first, service="Flashpoint", what="alerts",
                                      repeated="an alerts page link",
                                      fix="run again later; if it persists, report it to Flashpoint."):
                yield from items


def _items(value, what):
    if not isinstance(value, list):
        raise SourceError(f"the {what} answer holds no list of {what}",
                          "check the Flashpoint URL settings; they must point at the API, not the web app.")
    return value


@contextlib.contextmanager
def _pulling(service):
    """Give a failure that is not an answer of the API (a page seen twice, a body of a wrong shape) its phase's id."""
    try:
        yield
    except SourceError as exc:
        if exc.kind is not None or exc.message.startswith(("PullError", "SetupError")):
            raise
        raise service.error("unreadable", {"message": exc.message.rstrip(".") + ".", "fix": exc.fix}) from None


__all__ = ["Flashpoint", "updated_at", "RESULT_WINDOW"]
