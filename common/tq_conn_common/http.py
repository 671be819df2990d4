"""HTTP sessions to a vendor API: timeouts, bounded retries with backoff honouring Retry-After, a rate limit, and
every failure turned into the error and fix of service.TABLE."""

import email.utils
import json
import logging
import os
import random
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests

from tq_conn_common.errors import ConfigError
from tq_conn_common.service import Service, excerpt, kind_of, reason, retry_status

log = logging.getLogger(__name__)

_CUT = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
_BROKEN = (requests.ConnectionError, requests.Timeout) + _CUT
_OK = (200, 201, 202, 204)


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class HttpClient:
    """A requests session bound to a base URL and a Service, with timeouts, retries, rate limit and its errors."""

    def __init__(self, service, base_url="", *, headers=None, auth=None, verify=True, proxies=None,
                 timeout=(10, 120), retries=None, backoff=None, max_wait=300, requests_per_second=None, stats=None):
        self.service = service if isinstance(service, Service) else Service(str(service))
        self.base_url = base_url
        read = _env_float("TQ_CONN_HTTP_TIMEOUT", 0)  # seconds a response may stall: a proxy's or a test's setting
        if read > 0:
            timeout = (timeout[0] if isinstance(timeout, tuple) else timeout, read)
        self.timeout = timeout
        self.retries = int(_env_float("TQ_CONN_HTTP_RETRIES", 5)) if retries is None else retries
        self.backoff = _env_float("TQ_CONN_HTTP_BACKOFF", 1.0) if backoff is None else backoff
        self.max_wait = max_wait
        self.stats = stats
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "tq-conn/1", **(headers or {})})
        self.session.auth = auth
        verify = True if verify in (None, "") else verify
        name = self.service.name
        if isinstance(verify, (str, os.PathLike)) and not os.path.exists(verify):
            raise ConfigError(f"The CA bundle {os.fspath(verify)} of {name} does not exist.",
                              "give the path of a PEM file with the CA certificates, or leave it empty for the "
                              "system's.")
        self.session.verify = verify
        if verify is False:
            log.warning("TLS certificate verification is OFF for %s; the connection can be intercepted.", name)
        self.proxies = {k: v for k, v in (proxies or {}).items() if v}
        self.session.proxies.update(self.proxies)
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next_slot = 0.0
        self._slot_lock = threading.Lock()

    def url(self, path):
        """Return the absolute URL of path (absolute URLs are kept as they are)."""
        if not path or urlsplit(path).scheme:
            return path or self.base_url
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))

    def _wait_for_slot(self):
        if not self._interval:
            return
        with self._slot_lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        if slot > now:
            time.sleep(slot - now)

    def request(self, method, path="", *, expect=_OK, retry=True, service=None, context=None, **kwargs):
        """Return the response to a request, retrying 429, 5xx and broken connections; raise the Service's error.

        expect: the statuses returned as they are (None or (): every status); retry=False for a call that must not be
        repeated blindly; service and context: the wording of this call's errors.
        """
        service = service or self.service
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        # Per request, because requests lets REQUESTS_CA_BUNDLE and *_PROXY variables override session settings.
        kwargs.setdefault("verify", self.session.verify)
        if self.proxies:
            kwargs.setdefault("proxies", self.proxies)
        where = {"method": method, "path": _path(url), "host": _host(url), **(context or {})}
        retries = self.retries if retry else 0
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_slot()
            if self.stats is not None:
                self.stats.requests += 1
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise service.error("tls", {**where, "reason": _reason(exc)}) from None
            except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                    requests.exceptions.InvalidURL) as exc:
                raise ConfigError(f"The URL {_path_free(url)!r} of {service.name} is not valid "
                                  f"({type(exc).__name__}).", "set the full URL, starting with https://, in the "
                                  "config.") from None
            except _BROKEN as exc:  # refused, reset, timed out, or cut mid-body (the body is read inside request())
                if attempt <= retries:
                    self._sleep(attempt, None, f"{type(exc).__name__} on {method} {_path(url)}", service)
                    continue
                cause = ("timed out" if isinstance(exc, requests.Timeout) else
                         "cut the connection mid-response" if isinstance(exc, _CUT) else "could not connect")
                raise service.error("unreachable", {**where, "cause": cause, "attempts": attempt,
                                                    "reason": _reason(exc)}) from None
            except requests.RequestException as exc:  # redirects loop, a header value with a line break, ...
                raise service.error("refused", {**where, "status": "?", "reason": _reason(exc),
                                                "message": f"The request {method} {_path(url)} to {service.name} "
                                                           f"failed ({_reason(exc)})."}) from None
            status = response.status_code
            if retry_status(status) and attempt <= retries and (not expect or status not in expect):
                wait = _retry_after(response.headers.get("Retry-After"))
                response.close()
                self._sleep(attempt, wait, f"HTTP {status} on {method} {_path(url)}", service)
                continue
            if expect and status not in expect:
                raise self.error(response, service, context)
            return response

    def error(self, response, service=None, context=None):
        """Return the Service's error for an unexpected response."""
        service = service or self.service
        status = response.status_code
        method = response.request.method if response.request is not None else "GET"
        try:
            body = (response.text or "")[:300]
        except requests.RequestException:  # a body we cannot read must not hide the status
            body = ""
        log.debug("%s %s -> HTTP %s: %s", method, _path(response.url), status, body)
        said = reason(body)
        error = service.error(kind_of(status), {
            "status": status, "method": method, "path": _path(response.url), "host": _host(response.url),
            "said": f": {said}" if said else "", "reason": said, "body": excerpt(body), "excerpt": body,
            **(context or {})})
        if said and said not in error.message:  # the vendor's own words stay in the log
            log.warning("%s answered HTTP %s to %s %s: %s", service.name, status, method, _path(response.url), said)
        return error

    def _sleep(self, attempt, retry_after, why, service):
        if retry_after is not None:
            wait = min(retry_after, self.max_wait)
        else:
            wait = min(self.backoff * (2 ** (attempt - 1)), 60.0) * (0.5 + random.random() / 2)
        log.warning("%s from %s; retry %d of %d in %.1f s.", why, service.name, attempt, self.retries, wait)
        time.sleep(wait)

    def get(self, path="", **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path="", **kwargs):
        return self.request("POST", path, **kwargs)

    def json(self, method, path="", *, loads=json.loads, **kwargs):
        """Return the decoded JSON body of a request; a malformed or cut body is retried, then the Service's error."""
        service = kwargs.get("service") or self.service
        attempt = 0
        while True:
            attempt += 1
            response = self.request(method, path, **kwargs)
            body = b""
            try:
                body = response.content
                return loads(body) if body else None
            except RecursionError:
                raise service.error("unreadable", {
                    "method": method, "path": _path(response.url), "what": "JSON nested too deeply to be read",
                    **(kwargs.get("context") or {})}) from None
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, ValueError) as exc:
                if attempt <= min(self.retries, 2) and kwargs.get("retry", True):
                    self._sleep(attempt, None, f"unreadable body ({type(exc).__name__}) on {method} "
                                               f"{_path(response.url)}", service)
                    continue
                ctype = response.headers.get("Content-Type", "")
                what = ("an HTML page" if "html" in ctype or body[:20].lstrip().startswith(b"<") else
                        "malformed JSON" if body else "a cut response")
                log.debug("%s %s -> HTTP %s, unreadable body: %r", method, _path(response.url),
                          response.status_code, body[:300])
                raise service.error("unreadable", {"method": method, "path": _path(response.url), "what": what,
                                                   **(kwargs.get("context") or {})}) from None

    def close(self):
        self.session.close()


def _retry_after(value):
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _host(url):
    parts = urlsplit(url)
    return parts.netloc or url


def _path_free(url):
    """Return url without its query (which may carry a token)."""
    return str(url).split("?", 1)[0]


def _path(url):
    return urlsplit(url).path or "/"


def _reason(exc):
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Read timed out", "Name or service not known",
                   "certificate verify failed", "Connection reset", "RemoteDisconnected"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


__all__ = ["HttpClient"]
