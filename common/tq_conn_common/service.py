"""A vendor API as its user's messages name it, and the one table from an HTTP failure to the error and its fix.

Every vendor client gets its errors from here: a connector declares a Service (its name, the parameters of its
credential and URL, and, where a vendor document prescribes them, its own message ids) and never looks at a status.
"""

import json
from dataclasses import dataclass, field

from tq_conn_common.errors import AuthError, ConfigError, SourceError

# kind: (group, error class, stops the whole run, message, fix). Placeholders: {service} {status} {method} {path}
# {host} {said} (": reason" from the body, or "") {reason} {body} (an excerpt) {credential} {url} {attempts}
# {cause} (refused, reset, ...) {what} (an HTML page, malformed JSON, ...) {message} and {fix} (the table's own),
# plus whatever context the call passes.
_STATUS = "{service} answered HTTP {status} to {method} {path}{said}."
TABLE = {
    "credential": ("auth", AuthError, True, _STATUS,
                   "{service} rejected {credential}; check it (or create a new one) and run again."),
    "permission": ("auth", AuthError, False, _STATUS,
                   "{credential} is valid but lacks permission for this request; ask the {service} admin to grant it."),
    "not_found": ("status", SourceError, False, _STATUS,
                  "the URL is wrong or the item does not exist; check {url} and the names in the config."),
    "rate_limited": ("status", SourceError, True, _STATUS,
                     "{service} is rate limiting; lower requests_per_second or run less often."),
    "failing": ("status", SourceError, False, _STATUS,
                "{service} is failing on its side; run again later (state was kept, nothing is lost)."),
    "refused": ("status", SourceError, False, _STATUS,
                "check the settings of {service}; the response is in the log at -v 3."),
    "unreachable": ("connection", SourceError, False, "{service} at {host} {cause} after {attempts} attempts ({reason}).",
                    "check {url}, the network and any proxy; run again later."),
    "tls": ("connection", SourceError, False, "TLS failed talking to {service} at {host}: {reason}.",
            "check {url} and the CA bundle; certificate verification stays on by default."),
    "unreadable": ("body", SourceError, False, "{service} sent {what} instead of data for {method} {path}.",
                   "check {url}; if it is right, the service is failing: run again later."),
}
RETRYABLE = {"rate_limited", "failing", "unreachable", "unreadable"}


def kind_of(status):
    """Return the failure kind of an HTTP status."""
    if status == 401:
        return "credential"
    if status == 403:
        return "permission"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    if status is not None and status >= 500:
        return "failing"
    return "refused"


def retry_status(status):
    """Return True for a status worth retrying (429 and the 5xx of a failing or overloaded server)."""
    return status in (429, 500, 502, 503, 504)


def named(value):
    """Return how a message names a parameter ('Label' (key)), a list of them, or a text as it is."""
    if isinstance(value, (tuple, list)):
        return " / ".join(named(v) for v in value)
    label = getattr(value, "label", None)
    return f"'{label}' ({value.key})" if label else str(value or "")


@dataclass(frozen=True)
class Service:
    """A vendor API: its name, the parameters holding its credential and URL, and its own wording per failure.

    messages and fixes map a failure kind (see TABLE), or its group (auth, status, connection, body), to a
    template; classes maps a kind or group to the error class raised instead of the table's; stops names the kinds
    or groups that end the whole run (the other streams would fail alike) beyond the table's.
    """

    name: str
    credential: object = None
    url: object = None
    messages: dict = field(default_factory=dict)
    fixes: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    stops: tuple = ()

    def but(self, **changes):
        """Return this service with some wording changed (messages, fixes and classes are merged)."""
        merged = {k: {**getattr(self, k), **changes.pop(k, {})} for k in ("messages", "fixes", "classes")}
        return Service(**{**self.__dict__, **merged, **changes})

    def error(self, kind, context):
        """Return the error of a failure of this kind; context fills the templates."""
        group, cls, stops, message, fix = TABLE[kind]
        values = {"service": self.name, "credential": named(self.credential) or "the credential",
                  "url": named(self.url) or f"the URL of {self.name}", "said": "", "reason": "", "body": "",
                  "status": "", "method": "GET", "path": "/", "host": "", "attempts": "", "cause": "",
                  "what": "", **context}
        values["why"] = values["reason"] or "no reason given"
        values["message"] = _fill(context.get("message", message), values)
        values["fix"] = _fill(context.get("fix", fix), values)
        text = _fill(self._pick(self.messages, kind, group, "{message}"), values)
        fix_text = _fill(self._pick(self.fixes, kind, group, "{fix}"), values)
        cls = self._pick(self.classes, kind, group, cls)
        if issubclass(cls, ConfigError):
            error = cls(text, fix_text)
        else:
            error = cls(text, fix_text, retryable=kind in RETRYABLE)
        error.kind, error.status = kind, context.get("status")
        error.excerpt, error.stops_run = context.get("excerpt", ""), stops or kind in self.stops or group in self.stops
        return error

    @staticmethod
    def _pick(table, kind, group, default):
        return table.get(kind, table.get(group, default))


class _Blank(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def _fill(template, values):
    return template.format_map(_Blank(values)) if isinstance(template, str) else template


def reason(excerpt):
    """Return the message a vendor's JSON error body gives (message, error, detail, msg, errors), or ''."""
    try:
        body = json.loads(excerpt) if excerpt else None
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail")
    errors = body.get("errors")
    if errors is None and isinstance(body.get("data"), dict):
        errors = body["data"].get("errors")
    for value in (body.get("detail"), body.get("message"), error, body.get("msg"), _walk(errors)):
        if value:
            return " ".join(str(value).split())[:300].rstrip(".")
    return ""


def _walk(errors):
    """Return the messages of a nested errors value (ThreatQ's {field: [messages]} and lists of them)."""
    parts = []

    def walk(item, prefix=""):
        if isinstance(item, dict):
            for key, value in item.items():
                walk(value, f"{key}: ")
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value, prefix)
        elif item not in (None, ""):
            parts.append(prefix + str(item))
    walk(errors)
    return "; ".join(parts)


def excerpt(text, limit=200):
    """Return a response body for a message: whitespace collapsed, cut to limit, '(empty body)' when empty."""
    flat = " ".join(str(text or "").split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


__all__ = ["Service", "TABLE", "kind_of", "retry_status", "named", "reason", "excerpt"]
