"""The Recorded Future connector declared: parameters, lookups, refresh times, and one run from risk lists to Devo."""

import hashlib
import json
import logging

from tq_conn_common import Column, Connector, LookupSpec, Param, Stream, checks, collector, devo, reveal
from tq_conn_recorded_future import source
from tq_conn_recorded_future.source import FUSION

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.recordedfuture.com/v2/{0}/risklist?format=csv/splunk"
TYPES = ("ip", "hash", "domain", "url", "vulnerability", FUSION)
# Seed 000: how often each list is pulled again.
REFRESH = {"ip": 3600, "hash": 86400, "domain": 7200, "url": 86400, "vulnerability": 86400, FUSION: 3600}
_MISSPELLED = {"vulnerabilitiy": "vulnerability"}  # seed 000's YAML example; existing configs carry it
_LIST_NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

# Per type: (parameter key, default name as seed 000's data-source table spells it, label). "Ukranie" is the
# spelling of the existing lookups; Devo queries depend on it.
_NAMES = (("ip", "ipv4", "IPv4_Address", "IPv4"), ("ip", "ipv6", "IPv6_Address", "IPv6"),
          ("domain", "domain", "Domain", "Domain"), ("hash", "hash", "File_Hash", "File Hash"),
          ("url", "url", "URL", "URL"),
          ("vulnerability", "vulnerability", "Vulnerability", "Vulnerability"),
          (FUSION, "ukraine_russia_ipv4", "IPv4_Public_Ukranie_Russia_List", "Ukraine/Russia IPv4"),
          (FUSION, "ukraine_russia_ipv6", "IPv6_Public_Ukranie_Russia_List", "Ukraine/Russia IPv6"))
LOOKUP_NAMES = {kind: tuple((f"{key}_lookup", "Recorded_Future_" + (name if name.endswith("List") else
                                                                       f"{name}_Threat_List"), f"{label} Lookup Name")
                            for k, key, name, label in _NAMES if k == kind)
                for kind in dict.fromkeys(k for k, *_ in _NAMES)}
# The columns in the order of source.rows()'s tuples: source.COLUMNS, Risk an integer; hash lists add Algorithm.
_COLUMNS = tuple(Column(name, "int" if name == "Risk" else "str") for name in source.COLUMNS)
SPECS = {kind: tuple(LookupSpec(key="Name", name_from=key,
                                columns=_COLUMNS + ((Column("Algorithm"),) if kind == "hash" else ()))
                     for key, _, _ in names)
         for kind, names in LOOKUP_NAMES.items()}


def canonical_type(value):
    """Return the type name as the connector spells it, or raise ValueError naming the choices."""
    text = str(value).strip()
    if kind := {k.lower(): k for k in TYPES}.get(text.lower()) or _MISSPELLED.get(text.lower()):
        return kind
    raise ValueError(f"{text!r} is not a data source; use any of {', '.join(TYPES)}.")


def _types(values):
    kinds = list(dict.fromkeys(canonical_type(v) for v in values))
    if not kinds:
        raise ValueError(f"at least one data source is needed; list any of {', '.join(TYPES)}.")
    return kinds


def _per_type(convert, what, allowed=TYPES):
    def check(mapping):
        kinds = {canonical_type(key): value for key, value in mapping.items()}
        wrong = next((kind for kind in kinds if kind not in allowed), None)
        if wrong:
            raise ValueError(f"{what} does not apply to {wrong}; remove it.")
        return {kind: convert(kind, value) for kind, value in kinds.items()}
    return check


def _risk(kind, value):
    whole = not isinstance(value, bool) and str(value).strip().isdigit()
    if not whole or not 0 <= int(value) <= 99:
        raise ValueError(f"{kind}: {int(value) if whole else repr(value)} is not a "
                         f"{'risk score; set 0 to 99' if whole else 'whole number; set a risk score from 0 to 99'}.")
    return int(value)


def _list_name(kind, value):
    text = str(value).strip()
    if not text or text.strip(_LIST_NAME):
        raise ValueError(f"{kind}: {text!r} is not a risk list name; set default, large or a risk rule name "
                         "such as cncSite.")
    return text


PARAMS = (
    source.API_TOKEN,
    Param("base_url", "Risk List URL", default=DEFAULT_URL, check=checks.http_url(DEFAULT_URL, placeholder="{0}"),
          help="URL of the risk lists; {0} is replaced by the type (ip, hash, domain, url, vulnerability). The "
               "Ukraine/Russia Fusion file is read from the same host."),
    Param("types", "Data Sources", type=list, default=list(TYPES), prompt=True, check=_types,
          help="The lists to pull, any of ip, hash, domain, url, vulnerability, PublicUkraineRussiaIps. Refresh "
               "times: ip 1 h, hash 1 day, domain 2 h, url 1 day, vulnerability 1 day, PublicUkraineRussiaIps 1 h."),
    checks.REQUESTS_PER_SECOND,
    Param("min_risk", "Minimum Risk per Type", type=dict, check=_per_type(_risk, "min_risk"),
          help="Optional mapping of type to the lowest Risk kept, e.g. {ip: 90, domain: 80}; rows scored lower "
               "are left out of the lookup."),
    Param("risk_list", "Risk List Name per Type", type=dict,
          check=_per_type(_list_name, "risk_list", tuple(t for t in TYPES if t != FUSION)),
          help="Optional mapping of type to a Recorded Future risk list (list=), e.g. {domain: cncSite, ip: large}; "
               "default: the default list. Not for PublicUkraineRussiaIps (a Fusion file)."),
    Param("fusion_path", "Fusion File Path", default=source.FUSION_PATH, check=checks.url_path(source.FUSION_PATH),
          help="The Fusion file of IPs pulled as PublicUkraineRussiaIps into the ukraine_russia_ipv4/ipv6 lookups; "
               "another Fusion IP file (risk-list CSV) can be pulled into lookups of its own by an instance (-n)."),
    Param("gzip", "Download Compressed", type=bool, default=True,
          help="Ask for the risk lists gzip-compressed (gzip=true); they are decompressed as they come."),
    *(Param(key, label, default=name, check=devo.check_name,
            help=f"Devo lookup for the {source.describe(kind)}"
                 + (f" ({'IPv4' if 'ipv4' in key else 'IPv6'} rows)" if len(LOOKUP_NAMES[kind]) > 1 else "")
                 + f"; queried as my.lookuplist.{name}.")
      for kind in ("ip", "domain", "hash", "url", "vulnerability", FUSION)
      for key, name, label in LOOKUP_NAMES[kind]),
) + devo.output_params(asked=devo.ASKED_FIRST)

load_config = collector.loader("recorded_future")   # the Devo collector's config.yaml, when the folder has one


def streams(run):
    """One stream per configured list, each on its refresh time; IP lists split into an IPv4 and an IPv6 lookup."""
    config = run.config
    raw_types = run.raw.get("types") or []
    for value in {str(v).strip() for v in (raw_types.split(",") if isinstance(raw_types, str) else raw_types)}:
        if value.lower() in _MISSPELLED:
            log.warning("Data source %r in types is a misspelling; read as %r. Write %r to silence this warning.",
                        value, *[_MISSPELLED[value.lower()]] * 2)
    client = run.http(source.RECORDED_FUTURE, headers={"X-RFToken": reveal(config.api_token)},
                      requests_per_second=config.requests_per_second)
    found = []
    for kind in config.types:
        url, head_url = source.list_urls(config.base_url, kind, (config.risk_list or {}).get(kind), config.gzip,
                                         config.fusion_path)
        title = source.describe(kind, config.fusion_path)
        rlist = source.RiskList(client, kind, url, head_url, (config.min_risk or {}).get(kind, 0), title)
        specs = SPECS[kind]
        # What shapes the lookups: a change uploads again even if the etag did not move.
        fingerprint = hashlib.sha256(json.dumps([head_url, rlist.min_risk, [config[k] for k, _, _ in
                                                                            LOOKUP_NAMES[kind]]]).encode()).hexdigest()
        found.append(Stream(kind, fetch=rlist.fetch, to_row=rlist.to_row, to=specs, state=("lists", kind),
                            split=source.ip_version if len(specs) == 2 else None, refresh=REFRESH[kind],
                            version=rlist.version, fingerprint=fingerprint[:16], allow_empty=True, done=rlist.report,
                            what="row", title=title, tally=rlist.tally,
                            messages={"rejected": (source.REJECTED.message, source.REJECTED.fix)}))
    return found


CONNECTOR = Connector(name="recorded_future", title="Recorded Future risk lists into Devo lookups", params=PARAMS,
                      description="Pulls the Recorded Future risk lists (ip, hash, domain, url, vulnerability) and a "
                                  "Fusion file of IPs (Ukraine/Russia) into Devo lookups, each on its refresh time.",
                      streams=streams, load_config=load_config)
main = CONNECTOR.main

__all__ = ["CONNECTOR", "main", "PARAMS", "SPECS", "TYPES", "REFRESH", "LOOKUP_NAMES", "DEFAULT_URL", "canonical_type"]
