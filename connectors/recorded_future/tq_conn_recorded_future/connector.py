"""The Recorded Future connector declared: parameters, lookups, refresh times, and one run from risk lists to Devo."""

import dataclasses
import datetime
import hashlib
import itertools
import json
import logging
import os
import re
from urllib.parse import urlsplit

from tq_conn_common import Column, ConfigError, Connector, LookupSpec, Param, collector, devo, reveal
from tq_conn_recorded_future import source
from tq_conn_recorded_future.source import FUSION

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.recordedfuture.com/v2/{0}/risklist?format=csv/splunk"
TYPES = ("ip", "hash", "domain", "url", "vulnerability", FUSION)
# Seed 000: how often each list is pulled again.
REFRESH = {"ip": 3600, "hash": 86400, "domain": 7200, "url": 86400, "vulnerability": 86400, FUSION: 3600}
# A run started this early is still on time (cron starts a few seconds late or early).
GRACE_SECONDS = 60
NOW_VARIABLE = "TQ_CONN_NOW"
_MISSPELLED = {"vulnerabilitiy": "vulnerability"}  # seed 000's YAML example; existing configs carry it
_LOOKUP_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_LIST_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

# (parameter key, default name as seed 000's data-source table spells it, label)
LOOKUP_NAMES = {
    "ip": (("ipv4_lookup", "Recorded_Future_IPv4_Address_Threat_List", "IPv4 Lookup Name"),
           ("ipv6_lookup", "Recorded_Future_IPv6_Address_Threat_List", "IPv6 Lookup Name")),
    "domain": (("domain_lookup", "Recorded_Future_Domain_Threat_List", "Domain Lookup Name"),),
    "hash": (("hash_lookup", "Recorded_Future_File_Hash_Threat_List", "File Hash Lookup Name"),),
    "url": (("url_lookup", "Recorded_Future_URL_Threat_List", "URL Lookup Name"),),
    "vulnerability": (("vulnerability_lookup", "Recorded_Future_Vulnerability_Threat_List",
                       "Vulnerability Lookup Name"),),
    # "Ukranie" is the spelling of the existing lookups; Devo queries depend on it.
    FUSION: (("ukraine_russia_ipv4_lookup", "Recorded_Future_IPv4_Public_Ukranie_Russia_List",
              "Ukraine/Russia IPv4 Lookup Name"),
             ("ukraine_russia_ipv6_lookup", "Recorded_Future_IPv6_Public_Ukranie_Russia_List",
              "Ukraine/Russia IPv6 Lookup Name")),
}
# The columns in the order of source.rows()'s tuples: source.COLUMNS, Risk an integer; hash lists add Algorithm.
_COLUMNS = tuple(Column(name, "int" if name == "Risk" else "str") for name in source.COLUMNS)
SPECS = {kind: tuple(LookupSpec(key="Name", name_from=key,
                                columns=_COLUMNS + ((Column("Algorithm"),) if kind == "hash" else ()))
                     for key, _, _ in names)
         for kind, names in LOOKUP_NAMES.items()}


def canonical_type(value):
    """Return the type name as the connector spells it, or raise ValueError naming the choices."""
    text = str(value).strip()
    for kind in TYPES:
        if text.lower() == kind.lower():
            return kind
    if text.lower() in _MISSPELLED:
        return _MISSPELLED[text.lower()]
    raise ValueError(f"{text!r} is not a data source; use any of {', '.join(TYPES)}.")


def _types(values):
    kinds = list(dict.fromkeys(canonical_type(v) for v in values))
    if not kinds:
        raise ValueError(f"at least one data source is needed; list any of {', '.join(TYPES)}.")
    return kinds


def _base_url(value):
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or "{0}" not in value:
        raise ValueError(f"{value!r} must be an http(s) URL with the {{0}} placeholder for the type, such as "
                         f"{DEFAULT_URL}.")
    try:
        value.format("ip")
    except (IndexError, KeyError, ValueError):
        raise ValueError(f"{value!r} may hold no placeholder but {{0}}; set e.g. {DEFAULT_URL}.") from None
    return value


def _per_type(convert, what, allowed=TYPES):
    def check(mapping):
        out = {}
        for key, value in mapping.items():
            kind = canonical_type(key)
            if kind not in allowed:
                raise ValueError(f"{what} does not apply to {kind}; remove it.")
            out[kind] = convert(kind, value)
        return out
    return check


def _risk(kind, value):
    if isinstance(value, bool) or not isinstance(value, int) and not str(value).strip().isdigit():
        raise ValueError(f"{kind}: {value!r} is not a whole number; set a risk score from 0 to 99.")
    if not 0 <= int(value) <= 99:
        raise ValueError(f"{kind}: {value} is not a risk score; set 0 to 99.")
    return int(value)


def _list_name(kind, value):
    text = str(value).strip()
    if not _LIST_NAME.match(text):
        raise ValueError(f"{kind}: {text!r} is not a risk list name; set default, large or a risk rule name "
                         "such as cncSite.")
    return text


def _lookup_name(value):
    # Devo queries name lookups my.lookuplist.<name>; accept the name copied from a query.
    name = value[len("my.lookuplist."):] if value.startswith("my.lookuplist.") else value
    if not _LOOKUP_NAME.match(name):
        raise ValueError(f"{value!r} is not a valid Devo lookup name; use only letters, digits and underscore.")
    return name


PARAMS = (
    Param("api_token", "Recorded Future API Token", secret=True, required=True,
          help="The API token from Recorded Future (User Settings > API Access > Generate New API Token, "
               "integration Devo); sent as the X-RFToken header."),
    Param("base_url", "Risk List URL", default=DEFAULT_URL, check=_base_url,
          help="URL of the risk lists; {0} is replaced by the type (ip, hash, domain, url, vulnerability). The "
               "Ukraine/Russia Fusion file is read from the same host."),
    Param("types", "Data Sources", type=list, default=list(TYPES), prompt=True, check=_types,
          help="The lists to pull, any of ip, hash, domain, url, vulnerability, PublicUkraineRussiaIps. Refresh "
               "times: ip 1 h, hash 1 day, domain 2 h, url 1 day, vulnerability 1 day, PublicUkraineRussiaIps 1 h."),
    Param("requests_per_second", "Requests per Second", type=int, range=(1, 100_000),
          help="Most API requests per second; unset means no limit. Lower it if Recorded Future answers 429."),
    Param("min_risk", "Minimum Risk per Type", type=dict, check=_per_type(_risk, "min_risk"),
          help="Optional mapping of type to the lowest Risk kept, e.g. {ip: 90, domain: 80}; rows scored lower "
               "are left out of the lookup."),
    Param("risk_list", "Risk List Name per Type", type=dict,
          check=_per_type(_list_name, "risk_list", tuple(t for t in TYPES if t != FUSION)),
          help="Optional mapping of type to a Recorded Future risk list (list=), e.g. {domain: cncSite, ip: large}; "
               "default: the default list. Not for PublicUkraineRussiaIps (a Fusion file)."),
    Param("gzip", "Download Compressed", type=bool, default=True,
          help="Ask for the risk lists gzip-compressed (gzip=true); they are decompressed while streaming."),
    *(Param(key, label, default=name, check=_lookup_name,
            help=f"Devo lookup for the {source.describe(kind)}"
                 + (f" ({'IPv4' if 'ipv4' in key else 'IPv6'} rows)" if len(LOOKUP_NAMES[kind]) > 1 else "")
                 + f"; queried as my.lookuplist.{name}.")
      for kind in ("ip", "domain", "hash", "url", "vulnerability", FUSION)
      for key, name, label in LOOKUP_NAMES[kind]),
) + tuple(dataclasses.replace(p, prompt=True) if p.key in ("devo_region", "devo_token", "devo_domain") else p
          for p in devo.output_params())

ERRORS = (
    ("ConnectionError (exit 2 for 401/403, else 1)", source.API_ERROR.format(status="{status_code}"),
     "401: try valid credentials (api_token). 403: try a token with privileges for the list, or remove the type. "
     "404: try a valid endpoint (base_url, risk_list). 429: set requests_per_second to a lower value; the run "
     "first waits as Retry-After asks."),
    ("LookupError (exit 1)", source.REJECTED,
     "Every row of a list failed validation (for example the URL points at another type's list); its lookups "
     "were left as they were. Check base_url and risk_list."),
    ("exit 1", "The download of the ip risk list broke off after N rows (the connection closed early).",
     "Run again; nothing was uploaded from the broken download."),
    ("exit 1", "The ip risk list is not a csv/splunk risk list: Recorded Future sent an HTML page.",
     "base_url must ask for format=csv/splunk (the default)."),
    ("exit 2", "The clock in TQ_CONN_NOW ... is not a time.", "Unset TQ_CONN_NOW (a testing aid)."),
)


def add_arguments(parser):
    parser.add_argument("--force", action="store_true",
                        help="pull every configured list now, whatever its refresh time and etag")


def load_config(config_dir, name):
    """Return the values of the Devo collector's config.yaml (inputs.recorded_future), if the folder has one."""
    return collector.load(config_dir, "recorded_future")


def now():
    """Return the current UTC time; TQ_CONN_NOW (ISO 8601 or epoch seconds) sets it, as a testing aid."""
    value = os.environ.get(NOW_VARIABLE)
    if not value:
        return datetime.datetime.now(datetime.timezone.utc)
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
        when = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"The clock in {NOW_VARIABLE} ({value!r}) is not a time.",
                          f"unset {NOW_VARIABLE} (a testing aid), or give ISO 8601 or epoch seconds.") from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def due(entry, kind, when):
    """Return True if the list was never pulled or its refresh time has passed."""
    last = entry.get("pulled_at")
    if not last:
        return True
    elapsed = (when - datetime.datetime.fromisoformat(last)).total_seconds()
    return elapsed < 0 or elapsed >= REFRESH[kind] - GRACE_SECONDS


def _fingerprint(config, kind, url):
    """Return a digest of what shapes a list's lookups: a change uploads again even if the etag did not move."""
    names = [config[key] for key, _, _ in LOOKUP_NAMES[kind]]
    basis = [url, (config.min_risk or {}).get(kind, 0), names]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:16]


def run(run):
    """Pull every due list, deliver it to its lookups, and remember when and which version was pulled."""
    config = run.config
    raw_types = run.raw.get("types") or []
    raw_types = raw_types.split(",") if isinstance(raw_types, str) else raw_types
    for value in raw_types:
        if str(value).strip().lower() in _MISSPELLED:
            log.warning("Data source %r in types is a misspelling; read as %r. Write %r to silence this warning.",
                        str(value).strip(), _MISSPELLED[str(value).strip().lower()],
                        _MISSPELLED[str(value).strip().lower()])
    when = now()
    client = run.http(service="Recorded Future", credential=source.TOKEN_LABEL,
                      headers={"X-RFToken": reveal(config.api_token)},
                      requests_per_second=config.requests_per_second)
    lists = run.state.setdefault("lists", {})
    failures = []
    for kind in config.types:
        entry = lists.get(kind) or {}
        if not run.args.force and not due(entry, kind, when):
            log.info("%s: pulled at %s, refreshed every %s; not due before %s.", kind, entry["pulled_at"],
                     _duration(REFRESH[kind]), _next(entry, kind))
            continue
        try:
            entry = _pull(run, client, kind, entry, when)
        except source.ListFailed as exc:
            if exc.status in (401, 429):  # every other list would fail the same way
                raise
            log.info("%s failed; going on with the other lists.", source.describe(kind))
            failures.append((kind, exc))
            continue
        lists[kind] = entry
        run.state.commit()
    for kind, exc in failures[1:]:
        log.warning("%s also failed: %s Fix: %s", source.describe(kind), exc.message, exc.fix)
    if failures:
        raise failures[0][1]


def _pull(run, client, kind, entry, when):
    """Pull one list into its lookups; return its new state entry."""
    config = run.config
    risk_list = (config.risk_list or {}).get(kind)
    url, head_url = source.list_urls(config.base_url, kind, risk_list, compressed=config.gzip)
    fingerprint = _fingerprint(config, kind, head_url)
    specs = SPECS[kind]
    names = [config[key] for key, _, _ in LOOKUP_NAMES[kind]]
    stamp = when.isoformat(timespec="seconds")
    announced = None
    if not run.args.force and entry.get("etag") and entry.get("fingerprint") == fingerprint:
        announced = source.head_etag(client, head_url, kind)
        if announced and announced == entry["etag"]:
            log.info("%s: unchanged since %s (etag %s); %s not uploaded again.", kind, entry["pulled_at"],
                     announced, " and ".join(names))
            return {**entry, "pulled_at": stamp}
    min_risk = (config.min_risk or {}).get(kind, 0)
    split = len(specs) == 2
    counts = {}
    # One download: the IPv4 rows stream to their lookup, the IPv6 rows (the smaller share) wait in a private spool,
    # deleted when it closes, failure or not.
    with source.Spool() as ipv6, source.Download(client, url, kind) as download:
        etag = download.etag or announced
        tally = source.Tally()
        rows = source.rows(run, download.chunks(), kind, tally, min_risk, version=4 if split else None,
                           aside=ipv6.add if split else None)
        first = next(rows, None)
        if first is None and tally.rejected and not tally.valid:
            raise source.ListFailed(
                source.REJECTED,
                f"none of the {tally.rows} rows of the {source.describe(kind)} passed validation "
                f"(first: {tally.first_problem}); {' and '.join(names)} were left as they were. Check base_url "
                "and risk_list.")
        counts[names[0]] = _deliver(run, specs[0], itertools.chain([first] if first else [], rows))
        download.close()
        if split:
            counts[names[1]] = _deliver(run, specs[1], ipv6.rows())
    if tally.rejected:
        log.warning("%s: %d of %d rows failed validation and were skipped.", kind, tally.rejected, tally.rows)
    if tally.malformed:
        log.warning("%s: %d rows had EvidenceDetails that is not JSON; kept without their rules.", kind,
                    tally.malformed)
    if tally.below:
        log.info("%s: %d rows scored below min_risk %d were left out.", kind, tally.below, min_risk)
    log.info("%s: %s.", kind, ", ".join(f"{count} rows to {name}" for name, count in counts.items()))
    return {"pulled_at": stamp, "etag": etag, "fingerprint": fingerprint, "rows": counts}


def _deliver(run, spec, rows):
    """Replace a lookup's content with rows; an empty list empties it (the download itself was whole)."""
    # Recorded Future lists each entity once, so rows are not de-duplicated: that would hold every key in memory,
    # and a list of a million rows must stream in flat memory.
    return devo.deliver(run, spec, rows, mode="replace", dedupe=False, allow_empty=True)


def _next(entry, kind):
    when = datetime.datetime.fromisoformat(entry["pulled_at"]) + datetime.timedelta(seconds=REFRESH[kind])
    return when.isoformat(timespec="seconds")


def _duration(seconds):
    return f"{seconds // 86400} day" if seconds >= 86400 else f"{seconds // 3600} h"


CONNECTOR = Connector(
    name="recorded_future",
    title="Recorded Future risk lists into Devo lookups",
    description="Pulls the Recorded Future risk lists (ip, hash, domain, url, vulnerability) and the Ukraine/Russia "
                "IP Fusion file into Devo lookups, each on its refresh time.",
    params=PARAMS,
    run=run,
    add_arguments=add_arguments,
    load_config=load_config,
    errors=ERRORS,
    epilog=("exit codes: 0 ok, 1 run failed (rerun later; nothing is lost), 2 configuration or usage error,\n"
            "3 skipped because another run holds the lock.\n"
            "Environment: every parameter may also be set as TQ_CONN_<KEY> (see --print-config-template);\n"
            f"{NOW_VARIABLE} sets the clock the refresh times are measured with (a testing aid)."),
)
main = CONNECTOR.main

__all__ = ["CONNECTOR", "main", "PARAMS", "SPECS", "TYPES", "REFRESH", "LOOKUP_NAMES", "DEFAULT_URL", "run", "due",
           "now", "canonical_type"]
