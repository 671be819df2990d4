"""The CTCI CEWL: the download, the body variants CTCI sends, and each row typed for the Devo lookup."""

import hashlib
import hmac
import json
import logging
import re

from tq_conn_common import BadRecord, ConfigError, Declared, Param, Service, SourceError, clock, excerpt
from tq_conn_common.devo import cell, text

log = logging.getLogger(__name__)

API_TOKEN = Param("api_token", "CTCI API Token", secret=True, required=True,
                  help="The CTCI API token copied from the admin portal (menu API Tokens); sent as the x-api-key "
                       "header.",
                  messages={"missing": "SetupError 6: Required setting, api_token not found in user configuration; "
                                       "set api_token to the CTCI API token copied from the CTCI portal (menu API "
                                       "Tokens).",
                            "type": "SetupError 7: Required setting, api_token not of expected type: str; set "
                                    "api_token to the token text (one value, quoted in YAML)."})
# The error ids of the CTCI collector's table (seed 001) for what CTCI answers.
CTCI = Service(
    "CTCI", credential=API_TOKEN, url="api_base_url",
    messages={"auth": "InitVariablesError 100: Unexpected status code when authenticating to CTCI with api_token: "
                      "HTTP {status}: {body}",
              "connection": "InitVariablesError 101: Cannot connect to CTCI at {base}: {message}",
              "status": "ApiError 400: Unexpected status code when fetching the CTCI CEWL: HTTP {status}: {body}",
              "body": "ApiError 400: Unexpected response when fetching the CTCI CEWL: {message}"},
    fixes={"credential": "CTCI rejected {credential}; copy a valid token from the CTCI portal (menu API Tokens) into "
                         "api_token.",
           "permission": "{credential} is disabled or lacks the CEWL subscription role; enable it or create a new "
                         "token in the CTCI portal (menu API Tokens).",
           "tls": "check api_base_url; behind a TLS-inspecting proxy add its CA to the system trust store "
                  "(verify_host_ssl_cert false is for test hosts only).",
           "unreachable": "check api_base_url (http[s]://host[:port]), the network and any proxy; run again later."},
    classes={"tls": ConfigError})
NO_LIST = Declared(SourceError, "ApiError 400: Unexpected response when fetching the CTCI CEWL: HTTP 200 without a "
                                "list of rows: {body}",
                   "check api_base_url and cewl_path point at the CEWL download; if they do, CTCI changed its answer: "
                   "report it with this message.")
TOO_LONG = Declared(ConfigError, "The CEWL has {count} rows, more than event_fetch_limit_in_items ({limit}); nothing "
                                 "was delivered.", "raise event_fetch_limit_in_items (at most {most}).")
NOT_AN_OBJECT = Declared(BadRecord, "row is not a JSON object")
TOO_WIDE = Declared(BadRecord, "row has {count} fields, more than the {most} a CEWL row may have")
NO_CVE = Declared(BadRecord, "row without a valid CVE id")
TOO_DEEP = Declared(BadRecord, "row nested too deeply to be written as JSON text")
POLL_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?")

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

# A CEWL row has 25 fields (reference 4.3); a row with many more is not worth reading: a counted skip.
MAX_FIELDS = 1_000

# CVE ids, and CTCI's provisional ids for exploited issues without a CVE yet: pCVE (provisional), iCVE (intel),
# hCVE (honeypot), rCVE (research) (reference 1).
_CVE_ID = re.compile(r"^([phir]?)cve-(\d{4})-(\d{4,})$", re.I)

# Without a CEWL subscription CTCI answers with the CVEs of the October 2020 NSA advisory on Chinese
# state-sponsored actors instead of the list (reference 1); a run seeing only these warns about the token.
RESTRICTED = frozenset(f"CVE-{cve}" for cve in (
    "2019-11510 2020-5902 2019-19781 2020-8193 2020-8195 2020-8196 2019-0708 2020-15505 2020-1350 2020-1472 2019-1040 "
    "2018-6789 2020-0688 2018-4939 2015-4852 2020-2555 2019-3396 2019-11580 2020-10189 2019-18935 2020-0601 2019-0803 "
    "2017-6327 2020-3118 2020-8515").split())



def fetch(ctx, tally):
    """Yield the CEWL entries of one download, oldest id_ref first (so that the newest entry of a CVE wins)."""
    config = ctx.config
    http = ctx.http(CTCI, config.api_base_url, verify=config.verify_host_ssl_cert,
                    headers={"x-api-key": config.api_token.reveal(), "Accept": "application/json"})
    entries = rows_of(http.json("GET", config.cewl_path, context={"base": config.api_base_url}))
    limit = config.event_fetch_limit_in_items
    if len(entries) > limit:
        raise TOO_LONG(count=len(entries), limit=limit, most=100_000)
    yield from sorted(entries, key=lambda e: (cell(e.get("id_ref"), "int") if isinstance(e, dict) else None) or -1)
    # Every entry was mapped by now: the checkpoint covers what the lookup is about to hold.
    ctx.checkpoint["last_id_ref"] = tally.last_id
    ctx.checkpoint["last_polled_time"] = clock.iso(ctx.started)


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
    raise NO_LIST(body=excerpt(json.dumps(body)))


def mapped(entry, tally, fields, key):
    """Return the lookup row of one entry, obfuscated as configured, noting whether its CVE is new."""
    row = to_row(entry)
    tally.add(row)
    return obfuscated(row, fields, key) if fields else row


class Tally:
    """What the entries of one run say beyond their rows: the highest id_ref, and the CVEs new since the last run."""

    def __init__(self, last_id, since):
        self.previous, self.since, self.last_id = last_id, since, last_id
        self.cves, self.new = set(), {}

    def add(self, row):
        self.cves.add(row["cve"])
        if row["id_ref"] is not None:
            self.last_id = max(row["id_ref"], self.last_id if self.last_id is not None else row["id_ref"])
        if self._is_new(row):
            self.new[row["cve"]] = True

    def _is_new(self, row):
        """Tell whether a row joined the CEWL after the last run (by id_ref; by date_added where id_ref is missing)."""
        if self.previous is not None and row["id_ref"] is not None:
            return row["id_ref"] > self.previous
        if self.since is None:
            return self.previous is None
        added = clock.parse(row["date_added"])
        return added is not None and added >= self.since

    def report(self, ctx):
        """Log the CVEs new since the last run (and a token that sees only the restricted list)."""
        if self.cves and self.cves <= RESTRICTED:
            log.warning("CTCI sent only %d CVEs, all from the October 2020 NSA advisory: this is the restricted list "
                        "served to tokens without a CEWL subscription; use a token with the subscription role.",
                        len(self.cves))
        names = list(self.new)
        if self.previous is None and self.since is None:
            log.info("First run: %d CVEs on the CEWL; later runs name the CVEs added since the run before.",
                     len(self.cves))
        elif not names:
            log.info("No CVE is new on the CEWL since the last run.")
        else:
            log.info("%d CVE(s) new on the CEWL since %s: %s", len(names), f"id_ref {self.previous}" if self.previous
                     is not None else clock.iso(self.since), ", ".join(names[:100]) + (
                         f" and {len(names) - 100} more (see -v 3)" if len(names) > 100 else ""))
            log.debug("All new CVEs: %s", ", ".join(names))


def cve_id(value):
    """Return the normalised CVE (or pCVE/iCVE/hCVE/rCVE) id of value, or None if it is not one."""
    match = _CVE_ID.match(value.strip()) if isinstance(value, str) else None
    return f"{match[1].lower()}CVE-{match[2]}-{match[3]}" if match else None


def to_row(entry):
    """Return the lookup row of one CEWL entry; raise BadRecord if it has no valid CVE id or exceeds the limits."""
    if not isinstance(entry, dict):
        raise NOT_AN_OBJECT(context={"row": json.dumps(entry)})
    if len(entry) > MAX_FIELDS:  # checked first: such a row is not worth reading
        raise TOO_WIDE(context={"cve": entry.get("cve", entry.get("CVE")),
                                "id_ref": entry.get("id_ref")}, count=len(entry), most=MAX_FIELDS)
    fields = {}
    for key, value in entry.items():
        name = str(key).strip().lower()  # the spec writes "CVE", CTCI's own client reads "cve" (reference 4.3)
        if fields.get(name) in (None, ""):
            fields[name] = value
    cve = cve_id(fields.get("cve"))
    if cve is None:
        raise NO_CVE(context={"cve": fields.get("cve"), "id_ref": fields.get("id_ref")})
    row = {"cve": cve}
    try:
        for name, kind in FIELDS[1:]:
            row[name] = _typed(fields.get(name), kind)
        other = {k: v for k, v in fields.items() if k not in _KNOWN}
        row[OTHER] = json.dumps(other, sort_keys=True, default=str) if other else None
    except RecursionError:  # a value nested almost as deep as the JSON reader allows
        raise TOO_DEEP(context={"cve": cve, "id_ref": fields.get("id_ref")}) from None
    return row


def _typed(value, kind):
    """Return a CEWL value typed for its column; dates as ISO 8601 UTC text (kept as sent when not a date)."""
    if kind != "date":
        return cell(value.strip() if isinstance(value, str) and kind != "str" else value, kind)  # text as sent
    when = clock.parse(value)
    return clock.iso(when) if when is not None else None if value in (None, "") or isinstance(value, bool) else \
        str(value)


def obfuscated(row, fields, key):
    """Return a copy of row with the values of fields replaced by their keyed hash (HMAC-SHA256, hex)."""
    out = dict(row)
    for name in fields:
        value = out.get(name)
        if value is not None and value != "":
            out[name] = hmac.new(key, text(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return out
