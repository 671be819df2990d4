"""HTTP sessions with timeouts, bounded retries with backoff honouring Retry-After, a rate limit, and clear errors."""

import email.utils
import json
import logging
import os
import random
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests

from tq_conn_common.errors import AuthError, ConfigError, SourceError

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
_CUT = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
_BROKEN = (requests.ConnectionError, requests.Timeout) + _CUT


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class HttpError(SourceError):
    """A request failed after retries; the message names the status and what to do."""

    def __init__(self, message, fix=None, *, status=None, method=None, url=None, excerpt="", retryable=False):
        super().__init__(message, fix, retryable=retryable)
        self.status, self.method, self.url, self.excerpt = status, method, url, excerpt


class HttpAuthError(HttpError, AuthError):
    """401 or 403: a credential was refused or lacks permission."""

    exit_code = AuthError.exit_code


def guidance(status, service, credential):
    """Return the fix for an HTTP status, naming the credential where one is at fault."""
    cred = credential or "the credential"
    if status == 401:
        return f"{service} rejected {cred}; check it (or create a new one) and run again."
    if status == 403:
        return f"{cred} is valid but lacks permission for this request; ask the {service} admin to grant it."
    if status == 404:
        return f"the URL is wrong or the item does not exist; check the URL of {service} and the names in the config."
    if status == 429:
        return f"{service} is rate limiting; lower requests_per_second or run less often."
    if status and status >= 500:
        return f"{service} is failing on its side; run again later (state was kept, nothing is lost)."
    return f"check the settings of {service}; the response is in the log at -v 3."


class HttpClient:
    """A requests session bound to a base URL, with timeouts, retries, rate limit and translated errors."""

    def __init__(self, base_url="", *, service="the service", credential=None, headers=None, auth=None,
                 verify=True, proxies=None, timeout=(10, 120), retries=None, backoff=None, max_wait=300,
                 requests_per_second=None, stats=None):
        self.base_url = base_url
        self.service = service
        self.credential = credential
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
        if isinstance(verify, (str, os.PathLike)) and not os.path.exists(verify):
            raise ConfigError(f"The CA bundle {os.fspath(verify)} of {service} does not exist.",
                              "give the path of a PEM file with the CA certificates, or leave it empty for the "
                              "system's.")
        self.session.verify = verify
        if verify is False:
            log.warning("TLS certificate verification is OFF for %s; the connection can be intercepted.", service)
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

    def request(self, method, path="", *, expect=(200, 201, 202, 204), retry_on=RETRY_STATUSES, **kwargs):
        """Return the response to a request, retrying 429/5xx/connection errors; raise HttpError otherwise."""
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        # Per request, because requests lets REQUESTS_CA_BUNDLE and *_PROXY variables override session settings.
        kwargs.setdefault("verify", self.session.verify)
        if self.proxies:
            kwargs.setdefault("proxies", self.proxies)
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_slot()
            if self.stats is not None:
                self.stats.requests += 1
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise HttpError(f"TLS failed talking to {self.service} at {_host(url)}: {_reason(exc)}.",
                                "check the URL and the CA bundle; certificate verification stays on by default.",
                                method=method, url=url) from None
            except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                    requests.exceptions.InvalidURL) as exc:
                raise ConfigError(f"The URL {_path_free(url)!r} of {self.service} is not valid ({type(exc).__name__}).",
                                  "set the full URL, starting with https://, in the config.") from None
            except _BROKEN as exc:  # refused, reset, timed out, or cut mid-body (the body is read inside request())
                if attempt <= self.retries:
                    self._sleep(attempt, None, f"{type(exc).__name__} on {method} {_path(url)}")
                    continue
                kind = ("timed out" if isinstance(exc, requests.Timeout) else
                        "cut the connection mid-response" if isinstance(exc, _CUT) else "could not connect")
                raise HttpError(f"{self.service} at {_host(url)} {kind} after {attempt} attempts ({_reason(exc)}).",
                                f"check the URL of {self.service}, the network and any proxy; run again later.",
                                method=method, url=url, retryable=True) from None
            except requests.RequestException as exc:  # redirects loop, a header value with a line break, ...
                raise HttpError(f"The request {method} {_path(url)} to {self.service} failed ({_reason(exc)}).",
                                f"check the settings of {self.service}; the detail is in the log at -v 3.",
                                method=method, url=url) from None
            if response.status_code in retry_on and attempt <= self.retries:
                wait = _retry_after(response.headers.get("Retry-After"))
                response.close()
                self._sleep(attempt, wait, f"HTTP {response.status_code} on {method} {_path(url)}")
                continue
            if expect and response.status_code not in expect:
                raise self.error(response)
            return response

    def error(self, response, what=None):
        """Return the HttpError for an unexpected response."""
        status = response.status_code
        method = response.request.method if response.request is not None else "GET"
        try:
            excerpt = (response.text or "")[:300]
        except requests.RequestException:  # a body we cannot read must not hide the status
            excerpt = ""
        log.debug("%s %s -> HTTP %s: %s", method, _path(response.url), status, excerpt)
        cls = HttpAuthError if status in (401, 403) else HttpError
        message = what or f"{self.service} answered HTTP {status} to {method} {_path(response.url)}."
        return cls(message, guidance(status, self.service, self.credential), status=status, method=method,
                   url=response.url, excerpt=excerpt, retryable=status in RETRY_STATUSES)

    def _sleep(self, attempt, retry_after, why):
        if retry_after is not None:
            wait = min(retry_after, self.max_wait)
        else:
            wait = min(self.backoff * (2 ** (attempt - 1)), 60.0) * (0.5 + random.random() / 2)
        log.warning("%s from %s; retry %d of %d in %.1f s.", why, self.service, attempt, self.retries, wait)
        time.sleep(wait)

    def get(self, path="", **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path="", **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path="", **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path="", **kwargs):
        return self.request("DELETE", path, **kwargs)

    def json(self, method, path="", **kwargs):
        """Return the decoded JSON body of a request; a malformed or cut body is retried, then a SourceError."""
        attempt = 0
        while True:
            attempt += 1
            response = self.request(method, path, **kwargs)
            body = b""
            try:
                body = response.content
                return json.loads(body) if body else None
            except RecursionError:
                raise SourceError(f"{self.service} sent JSON nested too deeply to be read for {method} "
                                  f"{_path(response.url)}.", f"check the URL of {self.service}; if it is right, "
                                  "report the answer to the vendor (the log at -v 3 has the request).") from None
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, ValueError) as exc:
                if attempt <= min(self.retries, 2):
                    self._sleep(attempt, None, f"unreadable body ({type(exc).__name__}) on {method} {_path(response.url)}")
                    continue
                ctype = response.headers.get("Content-Type", "")
                kind = ("an HTML page" if "html" in ctype or body[:20].lstrip().startswith(b"<") else
                        "malformed JSON" if body else "a cut response")
                log.debug("%s %s -> HTTP %s, unreadable body: %r", method, _path(response.url), response.status_code,
                          body[:300])
                raise SourceError(f"{self.service} sent {kind} instead of data for {method} {_path(response.url)}.",
                                  f"check the URL of {self.service}; if it is right, the service is failing: "
                                  "run again later.", retryable=True) from None

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


__all__ = ["HttpClient", "HttpError", "HttpAuthError", "guidance", "RETRY_STATUSES"]
