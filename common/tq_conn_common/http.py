"""HTTP sessions to a vendor API: timeouts (per read, per response, per run), size limits, bounded retries with backoff
honouring Retry-After, a rate limit, and every failure turned into the error and fix of service.TABLE."""

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
import urllib3

from tq_conn_common.errors import ConfigError
from tq_conn_common.service import Service, excerpt, kind_of, named, reason, retry_status

log = logging.getLogger(__name__)

_CUT = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
_BROKEN = (requests.ConnectionError, requests.Timeout) + _CUT
_OK = (200, 201, 202, 204)
_MIB = 1 << 20
_READ = 64 * 1024
_run_deadline = None     # time.monotonic() by which the run must end (set by the session), or None


_DECODE = msgspec.json.Decoder().decode


def loads(body):
    """Return a JSON body decoded by msgspec (about twice as fast as the json module on vendor pages), or as the
    standard json module decodes it (its errors, NaN and lone surrogates included) when msgspec refuses it."""
    try:
        return _DECODE(body)
    except msgspec.DecodeError:
        return json.loads(body)


def loads_as(shape):
    """Return loads(body) for bodies of this shape (a type msgspec knows: TypedDicts or Structs of the fields
    wanted): each object is decoded with only the fields its type names, about half the work of decoding them whole.
    A body of another shape (a field of another type, say), or one msgspec refuses, is decoded whole by loads, as it
    came."""
    decode = msgspec.json.Decoder(shape).decode

    def shaped(body):
        try:
            return decode(body)
        except msgspec.DecodeError:
            return loads(body)
    return shaped


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _env_limit(name, default):
    """Return a size limit in bytes from an environment variable in MiB (a user's override), else default MiB."""
    return int(_env_float(name, default) * _MIB)


def set_run_deadline(seconds):
    """Make every request of this process respect a run that must end within seconds (None: no deadline)."""
    global _run_deadline
    _run_deadline = time.monotonic() + seconds if seconds else None


def time_left():
    """Return the seconds left before the run's deadline, or None when it has none."""
    return None if _run_deadline is None else _run_deadline - time.monotonic()


class HttpClient:
    """A requests session bound to a base URL and a Service, with timeouts, retries, rate limit and its errors."""

    def __init__(self, service, base_url="", *, headers=None, auth=None, verify=True, proxies=None,
                 timeout=(10, 120), retries=None, backoff=None, max_wait=300, requests_per_second=None, stats=None,
                 deadline=None, max_bytes=None, ca_param=None):
        self.service = service if isinstance(service, Service) else Service(str(service))
        self.base_url = base_url
        read = _env_float("TQ_CONN_HTTP_TIMEOUT", 0)  # seconds a response may stall: a proxy's or a test's setting
        if read > 0:
            timeout = (timeout[0] if isinstance(timeout, tuple) else timeout, read)
        self.timeout = timeout
        self.retries = int(_env_float("TQ_CONN_HTTP_RETRIES", 5)) if retries is None else retries
        self.backoff = _env_float("TQ_CONN_HTTP_BACKOFF", 1.0) if backoff is None else backoff
        self.max_wait = max_wait
        self.ca_param = ca_param   # the parameter naming the CA bundle of this service, for a failed verification
        # a whole response (headers to last byte) may take this long: the read timeout applies to each receive only
        self.deadline = _env_float("TQ_CONN_HTTP_DEADLINE", 900) if deadline is None else deadline
        self.max_bytes = _env_limit("TQ_CONN_MAX_RESPONSE_MB", 512) if max_bytes is None else max_bytes
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
        self.answered = False   # no answer yet: a refused connection or unknown host is then a wrong setting
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
        streamed = kwargs.pop("stream", False)   # else the body is read here, within the deadline and size limit
        retries = self.retries if retry else 0
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_slot()
            if self.stats is not None:
                self.stats.requests += 1
            try:
                started = time.monotonic()
                response = self.session.request(method, url, stream=True, **kwargs)
                if not streamed and not (retry_status(response.status_code) and attempt <= retries):
                    self._read_body(response, started, service, where)
            except requests.exceptions.SSLError as exc:
                raise _tls_error(service, where, exc, self.ca_param) from None
            except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                    requests.exceptions.InvalidURL) as exc:
                raise ConfigError(f"The URL {_path_free(url)!r} of {service.name} is not valid "
                                  f"({type(exc).__name__}).", "set the full URL, starting with https://, in the "
                                  "config.") from None
            except _BROKEN as exc:  # refused, reset, timed out, or cut mid-body (the body is read inside request())
                if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
                    raise _tls_error(service, where, exc, self.ca_param) from None   # retrying cannot help
                wrong = not self.answered and _wrong_address(exc)
                if wrong and attempt == 1:      # the first request of the run: one quick retry, then a setting
                    time.sleep(0.5)
                    continue
                if wrong:
                    said = service.error("unreachable", {**where, "cause": wrong, "attempts": attempt,
                                                         "reason": _reason(exc)}).message
                    raise ConfigError(f"{said} It was the run's first request to it: the address is most likely "
                                      "wrong.", f"check {named(service.url) or 'the URL of ' + service.name} (host "
                                      "and port) and run again.") from None
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
            self.answered = True
            status = response.status_code
            if retry_status(status) and attempt <= retries and (not expect or status not in expect):
                wait = _retry_after(response.headers.get("Retry-After"))
                response.close()
                self._sleep(attempt, wait, f"HTTP {status} on {method} {_path(url)}", service,
                            {**where, "status": status, "kind": kind_of(status)})
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

    def _read_body(self, response, started, service, where):
        """Read the body of a response into it, or raise when it takes longer than the deadline (from started) or
        holds more than max_bytes (inflated), or inflates more than MAX_INFLATE times."""
        raw, parts, size = response.raw, [], 0
        limit = self.deadline
        left = time_left()
        if left is not None:
            limit = min(limit, max(left, 0.0))
        try:
            while True:
                block = raw.read1(_READ, decode_content=True)
                if not block:
                    break
                size += len(block)
                parts.append(block)
                if size > self.max_bytes:
                    raise _too_large(service, where, f"more than the limit of {self.max_bytes // _MIB} MiB",
                                     "TQ_CONN_MAX_RESPONSE_MB")
                if size > 16 * _MIB and size > MAX_INFLATE * max(raw.tell(), 1):
                    raise _too_large(service, where, f"a compressed body inflating more than {MAX_INFLATE:g} times",
                                     "TQ_CONN_MAX_INFLATE_RATIO")
                if time.monotonic() - started > limit:
                    raise service.error("unreachable", {
                        **where, "message": f"{service.name} at {where['host']} did not finish its answer to "
                                            f"{where['method']} {where['path']} within {limit:.0f} s (it sent "
                                            f"{size} bytes, slowly).",
                        "fix": "check {url}, the network and any proxy; run again later (TQ_CONN_HTTP_DEADLINE sets "
                               "the seconds one answer may take)."})
        except urllib3.exceptions.ReadTimeoutError as exc:
            response.close()
            raise requests.exceptions.ReadTimeout(str(exc)) from None
        except urllib3.exceptions.DecodeError as exc:
            response.close()
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:   # cut mid-body, reset
            response.close()
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
        except BaseException:
            response.close()
            raise
        response._content = b"".join(parts)
        response._content_consumed = True
        response.close()

    def _sleep(self, attempt, retry_after, why, service, where=None):
        if retry_after is not None:
            left = time_left()
            if retry_after > self.max_wait or (left is not None and retry_after > left):
                why = (f"longer than the {self.max_wait:g} s a run waits" if retry_after > self.max_wait else
                       f"longer than the {max(left, 0):.0f} s left before the run's deadline")
                where = where or {}
                asked = f"asked to wait {retry_after:.0f} s (Retry-After), {why}; the run stopped"
                method, path = where.get("method", "GET"), where.get("path", "/")
                raise service.error(where.get("kind", "rate_limited"), {
                    **where, "reason": asked, "said": f": {asked}", "body": asked,
                    "message": f"{service.name} asked to wait {retry_after:.0f} s (Retry-After) before {method} "
                               f"{path} again, {why}; the run stopped."})
            wait = retry_after
        else:
            wait = min(self.backoff * (2 ** (attempt - 1)), 60.0) * (0.5 + random.random() / 2)
        log.warning("%s from %s; retry %d of %d in %.1f s.", why, service.name, attempt, self.retries, wait)
        time.sleep(wait)

    def get(self, path="", **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path="", **kwargs):
        return self.request("POST", path, **kwargs)

    def json(self, method, path="", *, loads=loads, **kwargs):
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
                html = "html" in response.headers.get("Content-Type", "") or body[:20].lstrip().startswith(b"<")
                if attempt <= min(self.retries, 2) and kwargs.get("retry", True):
                    self._sleep(attempt, None, f"unreadable body ({type(exc).__name__}) on {method} "
                                               f"{_path(response.url)}", service)
                    continue
                what = ("an HTML page" if html else
                        "malformed JSON" if body else "a cut response")
                log.debug("%s %s -> HTTP %s, unreadable body: %r", method, _path(response.url),
                          response.status_code, body[:300])
                raise service.error("unreadable", {"method": method, "path": _path(response.url), "what": what,
                                                   **(kwargs.get("context") or {})}) from None

    def close(self):
        self.session.close()


MAX_INFLATE = _env_float("TQ_CONN_MAX_INFLATE_RATIO", 200)   # most times a compressed body may grow when inflated


def _too_large(service, where, what, variable):
    return service.error("unreadable", {
        **where, "message": f"{service.name} sent {what} for {where['method']} {where['path']}; the run stopped "
                            "reading it.",
        "fix": f"check {{url}}; if the answer is really this large, raise {variable}."})


def _tls_error(service, where, exc, ca_param=None):
    """Return the error of a failed TLS handshake; a certificate that failed verification names the CA setting."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = re.search(r"certificate verify failed: ([^(]+)", text)
        where_ca = (f"set {named(ca_param)} to the PEM file of the CA that signed it" if ca_param else
                    "add the CA that signed it to this host's CAs (or set REQUESTS_CA_BUNDLE to its PEM file)")
        return service.error("tls", {
            **where, "message": f"TLS failed talking to {service.name} at {where['host']}: certificate verify failed"
                                + (f" ({detail.group(1).strip()})" if detail else "") + ".",
            "fix": f"{where_ca} (a self-signed certificate or a TLS-inspecting proxy), or check {{url}}; "
                   "verification stays on, the run was not retried."})
    return service.error("tls", {**where, "reason": _reason(exc)})


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


def _wrong_address(exc):
    """Return how a connection failure says the address is wrong (refused, unknown host), or None."""
    text = str(exc)
    if "Connection refused" in text:
        return "refused the connection"
    if any(m in text for m in ("Name or service not known", "nodename nor servname", "NameResolutionError",
                               "getaddrinfo failed", "No address associated", "failure in name resolution")):
        return "is an unknown host"
    return None


def _reason(exc):
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Read timed out", "Name or service not known",
                   "certificate verify failed", "Connection reset", "RemoteDisconnected"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


__all__ = ["loads", "loads_as", "HttpClient", "set_run_deadline", "time_left", "MAX_INFLATE"]
