"""The CTCI CEWL: download the list, accept its known variants, and type each row for the Devo lookup."""

import datetime
import email.utils
import hashlib
import hmac
import json
import logging
import math
import re

from tq_conn_common import AuthError, BadRecord, ConfigError, SourceError
from tq_conn_common.devo import text
from tq_conn_common.http import HttpError

log = logging.getLogger(__name__)

SERVICE = "CTCI"
CREDENTIAL = "'CTCI API Token' (api_token)"

# The CEWL row fields and how each is typed in the lookup (reference ctci.md 4.3). Dates become ISO 8601 UTC text.
FIELDS = (
    ("cve", "str"), ("year", "int"), ("base_score", "float"), ("base_severity", "str"), ("cve_date", "date"),
    ("vendor", "str"), ("product", "str"), ("vulnerability_type", "str"), ("description", "str"),
    ("reference", "str"), ("date_added", "date"), ("date_discovered", "date"), ("honeypot", "date"),
    ("intel", "date"), ("research", "date"), ("base_metric_v2", "bool"), ("base_metric_v3", "bool"),
    ("id_ref", "int"), ("updated", "date"), ("cwe", "str"), ("external_note", "str"), ("enabled", "bool"),
    ("processed", "bool"), ("notified", "bool"), ("notified_date", "date"),
)
# CTCI adds columns over time (reference 4.3 "Unknown columns"): they are kept, as JSON text, in this column.
OTHER = "other_fields"
_KNOWN = {name for name, _ in FIELDS}

# A CEWL row has 25 fields and short texts (reference 4.3). One oversized cell makes Devo refuse the whole lookup
# upload, so a row beyond these limits is skipped and counted rather than sent: the rest of the CEWL still arrives.
MAX_FIELDS = 1_000    # fields in one row, known and unknown together
MAX_CELL = 102_400    # characters in one cell (other_fields included), under the 131,072 of a Devo lookup CSV field

# CVE ids, and CTCI's provisional ids for exploited issues without a CVE yet: pCVE (provisional), iCVE (intel),
# hCVE (honeypot), rCVE (research) (reference 1).
_CVE_ID = re.compile(r"^([phir]?)cve-(\d{4})-(\d{4,})$", re.I)

# Without a CEWL subscription CTCI answers with the CVEs of the October 2020 NSA advisory on Chinese
# state-sponsored actors instead of the list (reference 1); a run seeing only these warns about the token.
RESTRICTED = frozenset((
    "CVE-2019-11510", "CVE-2020-5902", "CVE-2019-19781", "CVE-2020-8193", "CVE-2020-8195", "CVE-2020-8196",
    "CVE-2019-0708", "CVE-2020-15505", "CVE-2020-1350", "CVE-2020-1472", "CVE-2019-1040", "CVE-2018-6789",
    "CVE-2020-0688", "CVE-2018-4939", "CVE-2015-4852", "CVE-2020-2555", "CVE-2019-3396", "CVE-2019-11580",
    "CVE-2020-10189", "CVE-2019-18935", "CVE-2020-0601", "CVE-2019-0803", "CVE-2017-6327", "CVE-2020-3118",
    "CVE-2020-8515",
))

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def download(run):
    """Return the rows of one CEWL download (GET cewl_path with the x-api-key header)."""
    config = run.config
    http = run.http(config.api_base_url, service=SERVICE, credential=CREDENTIAL,
                    headers={"x-api-key": config.api_token.reveal(), "Accept": "application/json"},
                    verify=config.verify_host_ssl_cert)
    try:
        body = http.json("GET", config.cewl_path)
    except HttpError as exc:
        raise _translate(exc, config) from None
    except SourceError as exc:  # not JSON (an HTML page, a cut download) after the client's retries
        raise SourceError(f"ApiError 400: Unexpected response when fetching the CTCI CEWL: {exc.message}",
                          exc.fix, retryable=True) from None
    return rows_of(body)


def rows_of(body):
    """Return the list of rows in a CEWL body: CTCI's envelope {"data": [...]}, or the bare array of the spec."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        key = next((k for k in body if str(k).lower() == "data"), None)
        data = body.get(key) if key is not None else None
        if isinstance(data, list):
            return data
        if key is not None and data is None:
            log.warning("CTCI answered with an empty CEWL (data: null).")
            return []
    raise SourceError("ApiError 400: Unexpected response when fetching the CTCI CEWL: HTTP 200 without a list of "
                      f"rows: {_excerpt(json.dumps(body))}",
                      "check api_base_url and cewl_path point at the CEWL download; if they do, CTCI changed its "
                      "answer: report it with this message.")


def _translate(exc, config):
    """Return the error the user sees for a failed request: ids of the collector's error table, and the fix."""
    if exc.status in (401, 403):
        fix = (f"CTCI rejected {CREDENTIAL}; copy a valid token from the CTCI portal (menu API Tokens) into api_token."
               if exc.status == 401 else
               f"{CREDENTIAL} is disabled or lacks the CEWL subscription role; enable it or create a new token in "
               "the CTCI portal (menu API Tokens).")
        return AuthError("InitVariablesError 100: Unexpected status code when authenticating to CTCI with api_token: "
                         f"HTTP {exc.status}: {_excerpt(exc.excerpt)}", fix)
    if exc.status is None and not exc.retryable:  # TLS: a setting to fix, a rerun will not help
        return ConfigError(f"InitVariablesError 101: Cannot connect to CTCI at {config.api_base_url}: {exc.message}",
                           "check api_base_url; behind a TLS-inspecting proxy add its CA to the system trust store "
                           "(verify_host_ssl_cert false is for test hosts only).")
    if exc.status is None:
        return SourceError(f"InitVariablesError 101: Cannot connect to CTCI at {config.api_base_url}: {exc.message}",
                           "check api_base_url (http[s]://host[:port]), the network and any proxy; run again later.",
                           retryable=True)
    return SourceError(f"ApiError 400: Unexpected status code when fetching the CTCI CEWL: HTTP {exc.status}: "
                       f"{_excerpt(exc.excerpt)}", exc.fix, retryable=exc.retryable)


def _excerpt(body, limit=200):
    flat = " ".join(str(body or "").split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _short(value, limit=40):
    """Return value for a log line: short scalars as they are, anything else as a short text excerpt."""
    if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= limit):
        return value
    return _excerpt(value, limit) if isinstance(value, str) else f"<{type(value).__name__}>"


def cve_id(value):
    """Return the normalised CVE (or pCVE/iCVE/hCVE/rCVE) id of value, or None if it is not one."""
    if not isinstance(value, str):
        return None
    match = _CVE_ID.match(value.strip())
    if not match:
        return None
    prefix, year, number = match.groups()
    return f"{prefix.lower()}CVE-{year}-{number}"


def to_row(entry):
    """Return the lookup row of one CEWL entry; raise BadRecord if it has no valid CVE id or exceeds the limits."""
    if not isinstance(entry, dict):
        raise BadRecord("row is not a JSON object", row=_excerpt(json.dumps(entry), 60))
    if len(entry) > MAX_FIELDS:  # checked first: such a row is not worth reading
        raise BadRecord(f"row has {len(entry)} fields, more than the {MAX_FIELDS} a CEWL row may have",
                        cve=_short(entry.get("cve", entry.get("CVE"))), id_ref=_short(entry.get("id_ref")))
    fields = {}
    for key, value in entry.items():
        name = str(key).strip().lower()  # the spec writes "CVE", CTCI's own client reads "cve" (reference 4.3)
        if fields.get(name) in (None, ""):
            fields[name] = value
    cve = cve_id(fields.get("cve"))
    if cve is None:
        raise BadRecord("row without a valid CVE id", cve=_short(fields.get("cve")),
                        id_ref=_short(fields.get("id_ref")))
    row = {"cve": cve}
    try:
        for name, kind in FIELDS[1:]:
            row[name] = _TYPED[kind](fields.get(name), name)
        other = {k: v for k, v in fields.items() if k not in _KNOWN}
        row[OTHER] = json.dumps(other, sort_keys=True, default=str) if other else None
    except RecursionError:  # a value nested almost as deep as the JSON reader allows
        raise BadRecord("row nested too deeply to be written as JSON text", cve=_short(cve),
                        id_ref=_short(fields.get("id_ref"))) from None
    for name, value in row.items():
        if isinstance(value, str) and len(value) > MAX_CELL:
            raise BadRecord(f"{name} has {len(value)} characters, more than the {MAX_CELL} a Devo lookup cell may "
                            "hold", cve=_short(cve), id_ref=_short(fields.get("id_ref")))
    return row


def _int(value, name):
    number = _float(value, name)
    return int(number) if number is not None and number.is_integer() else None


def _float(value, name):
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        log.debug("CEWL field %s: %r is not a number; left empty.", name, value)
        return None
    return number if math.isfinite(number) else None


def _bool(value, name):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    log.debug("CEWL field %s: %r is not true or false; left empty.", name, value)
    return None


def _text(value, name):
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value).strip() if isinstance(value, str) else text(value)


def _date(value, name):
    when = parse_date(value)
    if when is not None:
        return iso(when)
    if value in (None, "") or isinstance(value, bool):
        return None
    log.debug("CEWL field %s: %r is not a date CTCI is known to send; kept as text.", name, value)
    return str(value).strip() or None


_TYPED = {"str": _text, "int": _int, "float": _float, "bool": _bool, "date": _date}


def parse_date(value):
    """Return the UTC datetime of a CEWL date: epoch milliseconds (or seconds), digit text, ISO 8601 or HTTP date.

    Returns None for an empty or unreadable value. The spec's example sends epoch milliseconds where its schema
    says string (reference 4.3), so every form is accepted.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            value = float(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        seconds = value / 1000.0 if abs(value) >= 1e11 else float(value)  # milliseconds since 1973 exceed 1e11
        try:
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "zZ" else value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        return when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def iso(when):
    """Return a UTC datetime as ISO 8601 text, e.g. 2020-07-06T00:00:00Z."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def obfuscated(row, fields, key):
    """Return a copy of row with the values of fields replaced by their keyed hash (HMAC-SHA256, hex)."""
    out = dict(row)
    for name in fields:
        value = out.get(name)
        if value is not None and value != "":
            out[name] = hmac.new(key, text(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return out


__all__ = ["download", "rows_of", "to_row", "cve_id", "parse_date", "iso", "obfuscated", "FIELDS", "OTHER",
           "MAX_FIELDS", "MAX_CELL", "RESTRICTED", "SERVICE", "CREDENTIAL"]
