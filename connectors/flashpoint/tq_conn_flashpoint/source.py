"""The Flashpoint APIs: token check, v4 indicators by type and update window, alerting v1 alerts by time window."""

import contextlib
import logging
import time
from urllib.parse import parse_qsl, urlsplit

from tq_conn_common import ConfigError, Service, SourceError, clock, cursor_pages, devo, window_pages

from tq_conn_flashpoint.settings import TOKEN, decode_token

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
               "not_found": "check {url} ({link}); Flashpoint is moving customers to its newer API, see the README "
                            "on the URL settings.",
               "refused": "Flashpoint refused the request for the reason shown; check the types in lookups, the page "
                          "sizes and initial_start_time, and {url}."},
        classes={"not_found": ConfigError, "refused": ConfigError},
        stops=("auth", "status", "connection", "body"))   # the collector stops at its first failed call


SETUP = _service("setup", "indicators_url and indicators_path")
SETUP_ALERTS = _service("setup", "alerts_url")
PULL = _service("fetch_indicators", "indicators_url and indicators_path")
PULL_ALERTS = _service("fetch_alerts", "alerts_url")


def updated_at(doc):
    """Return the update time (header_.indexed_at, epoch seconds) of an indicator, or None."""
    return devo.cell((doc.get("header_") or {}).get("indexed_at"), "int") if isinstance(doc, dict) else None


class Flashpoint:
    """A client of the two Flashpoint APIs with the settings of one run."""

    def __init__(self, run):
        config = run.config
        base = f"{config.indicators_url.rstrip('/')}/{config.indicators_path.strip('/')}".rstrip("/")
        self.attribute_url, self.scroll_url = base + "/attribute", base + "/scroll"
        self.alerts_url = config.alerts_url.rstrip("/") + "/alerts"
        self.http = run.http(SETUP,
                             headers={"Authorization": f"Bearer {decode_token(config.bearer_token_base64.reveal())}",
                                      "Accept": "application/json", "X-FP-IntegrationPlatform": "tq-conn"},
                             requests_per_second=config.get("requests_per_second"))
        self.config = config

    def check(self, alerts=True):
        """Make one small request to each API in use: the token and the base URLs work, or a SetupError."""
        self.http.json("GET", self.attribute_url, params={"limit": 1}, context={"link": self.attribute_url})
        if alerts:
            now = int(time.time())
            self.http.json("GET", self.alerts_url, service=SETUP_ALERTS, context={"link": self.alerts_url},
                           params={"since": clock.iso(now - 60), "until": clock.iso(now), "size": 1})

    def _get(self, service, method, url, **kwargs):   # called while a pull iterates: its _pulling names failures
        return self.http.json(method, url, service=service, context={"link": url}, **kwargs)

    def indicators(self, type_, since, until):
        """Yield the attribute documents of one type updated in [since, until) (epoch seconds), oldest first."""
        query = {"types": type_, "updated_since": clock.iso(since), "updated_until": clock.iso(until),
                 "sort_timestamp": "asc", "limit": self.config.page_size}
        scroll = self.config.indicators_paging == "scroll"
        pages = self._scroll(type_, query) if scroll else self._skip(type_, query, since)
        with _pulling(PULL):
            for page in pages:
                for doc in page:
                    if isinstance(doc, dict) and len(doc) == 1 and isinstance(doc.get("Attribute"), dict):
                        doc = doc["Attribute"]  # /indicators/simple wraps each attribute (reference 3.7)
                    changed = updated_at(doc)
                    # Servers that ignore updated_until would hand out items of the next window twice (reference 3.3).
                    if changed is None or changed < until:
                        yield doc

    def _scroll(self, type_, query):
        sessions = []

        def page(scroll_id):
            if scroll_id is None:
                body = self._get(PULL, "GET", self.attribute_url, params={**query, "scroll": "true"})
                if isinstance(body, list):  # answered without a scroll session: one plain page
                    log.warning("Flashpoint answered without a scroll session for '%s'; set indicators_paging: "
                                "skip.", type_)
                    return _items(body, "indicators"), None
            else:
                # Never retried: a retried cursor step can skip a page; a failed step fails the pull, and the next
                # run scrolls again from the checkpoint (reference, 2026 corrections).
                body = self._get(PULL, "POST", self.scroll_url, json={"scroll_id": scroll_id}, retry=False)
            if not isinstance(body, dict):
                raise SourceError("the scroll answer is not a JSON object", "check indicators_url and indicators_path.")
            sessions[:] = [body.get("scroll_id") or scroll_id]
            return _items(body.get("results") or [], "indicators"), sessions[0]
        # A scroll id may stay the same from page to page; a page handed out twice may not.
        yield from cursor_pages(page, service="Flashpoint", what=f"'{type_}' indicators",
                                repeated=f"the same page of '{type_}' in one scroll",
                                identity=lambda items: items[0].get("fpid") if isinstance(items[0], dict) else None,
                                fix="run again later; if it persists, set indicators_paging: skip.")
        if sessions and sessions[0]:
            self._close(sessions[0])

    def _close(self, scroll_id):
        """Close a scroll session; a closed or expired one answers 404 (reference 3.1), a failure only warns."""
        try:
            self.http.request("DELETE", self.scroll_url, json={"scroll_id": scroll_id}, service=PULL,
                              expect=(200, 202, 204, 404))
        except SourceError as exc:
            log.warning("Could not close the Flashpoint scroll session (%s); it expires on its own.", exc.message)

    def _skip(self, type_, query, since):
        """Page with skip/limit, the window restarted at the last update time seen (RESULT_WINDOW)."""
        def page(start, skip, limit):
            return _items(self._get(PULL, "GET", self.attribute_url,
                                    params={**query, "updated_since": clock.iso(start), "skip": skip}), "indicators")
        yield from window_pages(page, self.config.page_size, start=since, window=RESULT_WINDOW, key=updated_at,
                                service="Flashpoint", what=f"'{type_}' indicators", fix="use indicators_paging: "
                                "scroll.", shown=lambda when: f"the update time {clock.iso(when)}")

    def alerts(self, since, until):
        """Yield the alerts created in [since, until] (epoch seconds), following the relative next links."""
        def page(params):
            body = self._get(PULL_ALERTS, "GET", self.alerts_url, params=params)
            if not isinstance(body, dict):
                raise SourceError("the alerts answer is not a JSON object", "check alerts_url.")
            # links.next.href is relative to the alerting base ('/v1/alerts?...'): keep only its query and ask the
            # configured alerts URL again, as partner clients do (reference 4.2).
            href = ((body.get("links") or {}).get("next") or {}).get("href")
            following = dict(parse_qsl(urlsplit(href).query, keep_blank_values=True)) if href else None
            return _items(body.get("data") or [], "alerts"), following
        first = {"since": clock.iso(since), "until": clock.iso(until), "size": self.config.alerts_page_size}
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
    """Give a failure that is not an answer of the API (a page handed out twice, a body of the wrong shape) the
    PullError 101 id of its phase."""
    try:
        yield
    except SourceError as exc:
        if exc.kind is not None or exc.message.startswith(("PullError", "SetupError")):
            raise
        raise service.error("unreadable", {"message": exc.message.rstrip(".") + ".", "fix": exc.fix}) from None


__all__ = ["Flashpoint", "updated_at", "RESULT_WINDOW"]
