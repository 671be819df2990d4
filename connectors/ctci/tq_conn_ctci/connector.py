"""The CTCI connector declared: its parameters, error ids, lookup, and one run from download to Devo."""

import dataclasses
import datetime
import logging
import os
import re
from urllib.parse import urlsplit

from tq_conn_common import Column, ConfigError, Connector, LookupSpec, Param, collector, devo
from tq_conn_ctci import source

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.ctci.ai"
FETCH_LIMITS = (1, 100_000)
DATE_FORMAT = "YYYY-MM-DDTHH:MM:SSZ"
URL_FORMAT = "http[s]://{ip_address_or_domain}{:optional_port}"
# The seed collector's two api_base_url rules: an IPv4 address, or a domain name; an optional port either way.
_URL_RULES = (re.compile(r"^https?://(\d{1,3}\.){3}\d{1,3}(:\d{1,5})?/?$"),
              re.compile(r"^https?://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:\d{1,5})?/?$"))
_OBFUSCATABLE = tuple(name for name, _ in source.FIELDS if name != "cve") + (source.OTHER,)
_LOOKUP_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _base_url(value):
    parts = urlsplit(value)
    octets = parts.hostname.split(".") if parts.hostname else []
    is_ip = len(octets) == 4 and all(o.isdigit() for o in octets)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (not any(rule.match(value) for rule in _URL_RULES) or not port_ok
            or (is_ip and any(int(o) > 255 for o in octets))):
        raise ValueError(f"SetupError 3: api_base_url {value!r} must match {URL_FORMAT}; set the scheme, host and "
                         f"optional port only, e.g. {DEFAULT_URL}.")
    return value.rstrip("/")


def parse_poll_datetime(value):
    """Return the UTC datetime of a historical_poll_datetime value, or None if it is not in the documented format."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?", value):
        return None
    return source.parse_date(value)


def _poll_datetime(value):
    when = parse_poll_datetime(value)
    if when is None:
        raise ValueError(f"SetupError 15: historical_poll_datetime {value!r} does not match expected format "
                         f"{DATE_FORMAT}; set a UTC date and time such as {source.iso(_now() - _days(7))}.")
    if when > _now():
        raise ValueError("SetupError 17: Please enter valid date for historical_poll_datetime less than or equal to "
                         f"the current date ({source.iso(when)} is in the future); set a past date or leave it empty.")
    return source.iso(when)


def _lookup_name(value):
    if not _LOOKUP_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid Devo lookup name; use only letters, digits and underscore, "
                         "e.g. CTCI_CEWL.")
    return value


def _cewl_path(value):
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a URL path; set a path starting with '/', e.g. /api/v1/cewl.")
    return value


def _obfuscate_fields(value):
    unknown = [name for name in value if name not in _OBFUSCATABLE]
    if unknown:
        why = " (the lookup key cannot be hashed)" if "cve" in unknown else ""
        raise ValueError(f"{', '.join(map(repr, unknown))} cannot be obfuscated{why}; name CEWL fields among "
                         f"{', '.join(_OBFUSCATABLE)}.")
    return list(dict.fromkeys(value))


def _obfuscation_key(value):
    if len(value) < 16:
        raise ValueError("has fewer than 16 characters; set a longer random key, e.g. the output of "
                         "'openssl rand -hex 32'.")
    return value


PARAMS = (
    Param("api_token", "CTCI API Token", secret=True, required=True,
          help="The CTCI API token copied from the admin portal (menu API Tokens); sent as the x-api-key header.",
          messages={"missing": "SetupError 6: Required setting, api_token not found in user configuration; set "
                               "api_token to the CTCI API token copied from the CTCI portal (menu API Tokens).",
                    "type": "SetupError 7: Required setting, api_token not of expected type: str; set api_token to "
                            "the token text (one value, quoted in YAML)."}),
    Param("api_base_url", "CTCI API Base URL", default=DEFAULT_URL, check=_base_url,
          help=f"The CTCI API address, {URL_FORMAT}; no path.",
          messages={"type": "SetupError 2: api_base_url not of expected type: str; set api_base_url to one URL "
                            f"text such as {DEFAULT_URL}."}),
    Param("verify_host_ssl_cert", "Verify Host SSL Certificate", type=bool, default=True,
          help="Verify the TLS certificate of the CTCI API; keep true outside test hosts.",
          messages={"type": "SetupError 10: Optional setting, verify_host_ssl_cert not of expected type: bool; set "
                            "verify_host_ssl_cert to true or false."}),
    Param("event_fetch_limit_in_items", "Event Fetch Limit", type=int, default=10_000, range=FETCH_LIMITS,
          help="The most CEWL rows one run accepts; a larger list fails the run before anything is delivered.",
          messages={kind: f"SetupError 11: event_fetch_limit_in_items must be greater than or equal to "
                          f"{FETCH_LIMITS[0]} and less than or equal to {FETCH_LIMITS[1]}; set a whole number in "
                          "that range." for kind in ("type", "range")}),
    Param("historical_poll_datetime", "Historical Poll Datetime", check=_poll_datetime,
          help=f"UTC start ({DATE_FORMAT}) of the window in which CEWL entries count as new on a run without "
               "persisted state (the first run, or after reset_persistence_auth changes); at most one year ago. "
               "Empty: every CVE of that run counts as new.",
          messages={"type": "SetupError 14: Required setting, historical_poll_datetime not of expected type: str; "
                            f"set historical_poll_datetime to a text date in the format {DATE_FORMAT}."}),
    Param("reset_persistence_auth", "Reset Persistence Auth",
          help="Any text; change it to make the next run forget the persisted state (highest id_ref, last poll "
               "time) and start over.",
          messages={"type": "SetupError 13: Required setting, reset_persistence_auth not of expected type: str; set "
                            "reset_persistence_auth to one text value."}),
    Param("lookup_name", "Devo Lookup Name", default="CTCI_CEWL", check=_lookup_name,
          help="The Devo lookup that receives the CEWL, keyed by CVE id (query it as my.lookuplist.<name>)."),
    Param("cewl_path", "CEWL Path", default="/api/v1/cewl", check=_cewl_path,
          help="Path of the CEWL download under api_base_url; change it only if CTCI moves the endpoint."),
    Param("obfuscate_fields", "Obfuscate Fields", type=list, check=_obfuscate_fields,
          help="CEWL fields whose values are replaced by a keyed hash (HMAC-SHA256, hex) before delivery, e.g. "
               "external_note; the key column cve cannot be hashed."),
    Param("obfuscation_key", "Obfuscation Key", secret=True, check=_obfuscation_key,
          help="Key of the obfuscation hash, at least 16 characters; required with obfuscate_fields. Keep it: "
               "another key gives other hashes."),
) + tuple(dataclasses.replace(p, prompt=True) if p.key in ("devo_region", "devo_token", "devo_domain")
          else p
          for p in devo.output_params())

CEWL = LookupSpec(name_from="lookup_name", key="cve",
                  columns=tuple(Column(name, "str" if kind == "date" else kind) for name, kind in source.FIELDS)
                  + (Column(source.OTHER),))

_FIX_URL = f"set api_base_url as {URL_FORMAT}, e.g. {DEFAULT_URL}"
ERRORS = (
    ("SetupError 1", "api_base_url must be specified", "the key is present but empty: remove the line to use "
     f"{DEFAULT_URL}, or set the CTCI API URL"),
    ("SetupError 2", "api_base_url not of expected type: str", _FIX_URL),
    ("SetupError 3", f"api_base_url ... must match {URL_FORMAT}", _FIX_URL + " (no path)"),
    ("SetupError 4", "Required setting, credentials not found in user configuration",
     "collector config.yaml only: add a credentials section with api_token under inputs.ctci"),
    ("SetupError 5", "Required setting, credentials not of expected type: dict",
     "collector config.yaml only: make credentials a mapping holding api_token"),
    ("SetupError 6", "Required setting, api_token not found in user configuration",
     "set api_token to the token copied from the CTCI portal (menu API Tokens)"),
    ("SetupError 7", "Required setting, api_token not of expected type: str", "set api_token to the token text"),
    ("SetupError 8, 9", "(password settings)", "do not apply: CTCI authenticates with api_token only"),
    ("SetupError 10", "Optional setting, verify_host_ssl_cert not of expected type: bool", "set true or false"),
    ("SetupError 11", "event_fetch_limit_in_items must be greater than or equal to 1 and less than or equal to "
     "100000", "set a whole number in that range"),
    ("SetupError 12", "(devo_tag_map)", "does not apply: the CEWL goes to a lookup, not to tagged tables"),
    ("SetupError 13", "Required setting, reset_persistence_auth not of expected type: str", "set one text value"),
    ("SetupError 14", "Required setting, historical_poll_datetime not of expected type: str",
     f"set a text date, {DATE_FORMAT}"),
    ("SetupError 15", f"historical_poll_datetime ... does not match expected format {DATE_FORMAT}",
     "set a UTC date and time such as 2025-01-31T00:00:00Z"),
    ("SetupError 16", "Please enter valid date for historical_poll_datetime less than or equal to one year",
     "checked when there is no persisted state: set a date within the last year, or leave it empty"),
    ("SetupError 17", "Please enter valid date for historical_poll_datetime less than or equal to the current date",
     "set a past date, or leave it empty"),
    ("InitVariablesError 100", "Unexpected status code when authenticating to CTCI with api_token: HTTP 401/403: "
     "<body>", "401: copy a valid token into api_token; 403: the token is disabled or lacks the CEWL subscription "
     "role, enable it or create a new one (exit 2)"),
    ("InitVariablesError 101", "Cannot connect to CTCI at <api_base_url>: ...",
     "check api_base_url, the network, any proxy and its CA; exit 2 for TLS failures, else exit 1 (run again later)"),
    ("InitVariablesError 102", "(client_id)", "does not apply: CTCI has no client id"),
    ("ApiError 400", "Unexpected status code when fetching the CTCI CEWL: HTTP <status>: <body> (or: Unexpected "
     "response ... an HTML page / malformed JSON / no list of rows)",
     "the status and body say why; 404: check api_base_url and cewl_path; 5xx and 429 were retried: run again later"),
    ("exit 2", "The CEWL has N rows, more than event_fetch_limit_in_items (M); nothing was delivered.",
     "raise event_fetch_limit_in_items"),
    ("exit 2", "obfuscate_fields is set but obfuscation_key is not", "set obfuscation_key, or clear obfuscate_fields"),
    ("skipped (exit 0)", f"Skipped CEWL row: row has N fields, more than the {source.MAX_FIELDS} a CEWL row may have",
     "nothing to set: that row is counted as skipped and the rest of the CEWL delivered; report the row to CTCI"),
    ("skipped (exit 0)", f"Skipped CEWL row: <column> has N characters, more than the {source.MAX_CELL} a Devo lookup "
     "cell may hold", "nothing to set: that row is counted as skipped and the rest of the CEWL delivered; report the "
     "row to CTCI"),
)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _days(n):
    return datetime.timedelta(days=n)


def load_config(config_dir, name):
    """Return the settings of a Devo collector config.yaml (inputs.ctci), or None if there is none."""
    return collector.load(config_dir, "ctci", _credentials)


def _credentials(section, raw):
    """Lift inputs.ctci.credentials.api_token, the collector form of the token (SetupError 4 and 5)."""
    if "credentials" not in section:
        if raw.get("api_token") in (None, "") and not os.environ.get("TQ_CONN_API_TOKEN"):
            raise ConfigError("SetupError 4: Required setting, credentials not found in user configuration.",
                              "add a credentials section with api_token under inputs.ctci in config.yaml.")
        return
    credentials = raw.pop("credentials", None)
    if not isinstance(credentials, dict):
        raise ConfigError("SetupError 5: Required setting, credentials not of expected type: dict.",
                          "make inputs.ctci.credentials in config.yaml a mapping holding api_token: <token>.")
    raw.update(credentials)


def run(run):
    """Download the CEWL, deliver it to Devo as a full replace, log the new CVEs, then advance the state."""
    config = run.config
    if "api_base_url" in run.raw and str(run.raw["api_base_url"] or "").strip() == "":
        raise ConfigError("SetupError 1: api_base_url must be specified.",
                          f"the key is present but empty: remove the line to use {DEFAULT_URL}, or set the CTCI "
                          "API URL.")
    fields = config.get("obfuscate_fields") or []
    if fields and not config.get("obfuscation_key"):
        raise ConfigError("'Obfuscate Fields' (obfuscate_fields) is set but 'Obfuscation Key' (obfuscation_key) is "
                          "not.", "set obfuscation_key (e.g. 'openssl rand -hex 32'), or clear obfuscate_fields.")
    spec = dataclasses.replace(CEWL, columns=tuple(Column(c.name) if c.name in fields else c for c in CEWL.columns))
    started = _now()
    last_id, since = _persisted(run, config)

    entries = source.download(run)
    limit = config.event_fetch_limit_in_items
    if len(entries) > limit:
        raise ConfigError(f"The CEWL has {len(entries)} rows, more than event_fetch_limit_in_items ({limit}); "
                          "nothing was delivered.", f"raise event_fetch_limit_in_items (at most {FETCH_LIMITS[1]}).")
    rows = _dedupe(run, run.records(entries, source.to_row, "CEWL row"))
    _warn_if_restricted(rows)
    new = [row for row in rows if _is_new(row, last_id, since)]

    key = config.obfuscation_key.reveal().encode("utf-8") if fields else None
    delivered = devo.deliver(run, spec, (source.obfuscated(r, fields, key) if fields else r for r in rows),
                             mode="replace")
    _log_new(new, rows, last_id, since)
    ids = [row["id_ref"] for row in rows if row["id_ref"] is not None]
    if ids:
        run.state["last_id_ref"] = max(ids + ([last_id] if last_id is not None else []))
    run.state["last_polled_time"] = source.iso(started)
    run.state.commit()
    log.info("Lookup %s holds %d CVEs; state saved: last_id_ref %s, last_polled_time %s.",
             spec.resolve_name(config), delivered, run.state.get("last_id_ref"), run.state["last_polled_time"])


def _persisted(run, config):
    """Return (highest id_ref, poll time) of the last delivered run; a changed reset_persistence_auth resets both."""
    state = run.state
    wanted = config.get("reset_persistence_auth") or ""
    stored = state.get("reset_persistence_auth")
    if stored is not None and stored != wanted:
        log.warning("reset_persistence_auth changed (%r -> %r): the persisted state is reset; this run starts over.",
                    stored, wanted)
        state.reset()
    state["reset_persistence_auth"] = wanted
    last_id, last_time = state.get("last_id_ref"), state.get("last_polled_time")
    if last_id is not None or last_time is not None:
        return last_id, source.parse_date(last_time)
    start = config.get("historical_poll_datetime")
    if start is None:
        return None, None
    when = source.parse_date(start)
    if when < _now() - _days(365):
        raise ConfigError("SetupError 16: Please enter valid date for historical_poll_datetime less than or equal to "
                          f"one year ({start} is older).",
                          f"set historical_poll_datetime after {source.iso(_now() - _days(365))}, or leave it empty.")
    return None, when


def _dedupe(run, rows):
    """Return the rows with one per CVE id (the highest id_ref, CTCI's newest entry, wins), in id_ref order."""
    best = {}
    for row in rows:
        held = best.get(row["cve"])
        if held is not None:
            run.stats.duplicates += 1
            log.info("CVE %s appears more than once in the CEWL; the entry with the highest id_ref is kept.",
                     row["cve"])
            if (row["id_ref"] or -1) <= (held["id_ref"] or -1):
                continue
        best[row["cve"]] = row
    return sorted(best.values(), key=lambda r: (r["id_ref"] is None, r["id_ref"] or 0, r["cve"]))


def _warn_if_restricted(rows):
    cves = {row["cve"] for row in rows}
    if cves and cves <= source.RESTRICTED:
        log.warning("CTCI sent only %d CVEs, all from the October 2020 NSA advisory: this is the restricted list "
                    "served to tokens without a CEWL subscription; use a token with the subscription role.", len(cves))


def _is_new(row, last_id, since):
    """Tell whether a row joined the CEWL after the last run (by id_ref; by date_added where id_ref is missing)."""
    if last_id is not None and row["id_ref"] is not None:
        return row["id_ref"] > last_id
    if since is None:
        return last_id is None
    added = source.parse_date(row["date_added"])
    return added is not None and added >= since


def _log_new(new, rows, last_id, since):
    if last_id is None and since is None:
        log.info("First run: %d CVEs on the CEWL; later runs name the CVEs added since the run before.", len(rows))
        return
    if not new:
        log.info("No CVE is new on the CEWL since the last run.")
        return
    names = [row["cve"] for row in new]
    shown = ", ".join(names[:100]) + (f" and {len(names) - 100} more (see -v 3)" if len(names) > 100 else "")
    log.info("%d CVE(s) new on the CEWL since %s: %s", len(names),
             f"id_ref {last_id}" if last_id is not None else source.iso(since), shown)
    if len(names) > 100:
        log.debug("All new CVEs: %s", ", ".join(names))


CONNECTOR = Connector(
    name="ctci", title="CTCI CEWL to a Devo lookup", params=PARAMS, run=run, load_config=load_config,
    description="Pulls the CTCI CEWL (CVE Early Warning List) into a Devo lookup keyed by CVE id.",
    errors=ERRORS)
main = CONNECTOR.main
