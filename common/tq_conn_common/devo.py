"""Devo delivery: lookups as data, the Lookups REST API and devo-sdk TLS transports, events to tables."""

import datetime
import hashlib
import itertools
import logging
import operator
import re
from dataclasses import dataclass, replace

from tq_conn_common.config import Param, reveal
from tq_conn_common.errors import BadRecord, ConfigError

log = logging.getLogger(__name__)

NAME_RULE = re.compile(r"^[A-Za-z0-9_]+$")
TAG_RULE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
COLUMN_TYPES = ("str", "int", "int4", "int8", "float", "bool", "ip4")
# Python types and the timestamp alias a declaration may use; timestamps travel as ISO-8601 text.
_TYPE_ALIASES = {str: "str", int: "int", float: "float", bool: "bool", "timestamp": "str", "string": "str"}

# Region presets: Lookups REST API base URL (the SDK's api-<region> form) and TLS collector host (port 443).
REGIONS = {
    "us": ("https://api-us.devo.com/lookup-api", "collector-us.devo.io"),
    "eu": ("https://api-eu.devo.com/lookup-api", "collector-eu.devo.io"),
    "ca": ("https://api-ca.devo.com/lookup-api", "collector-ca.devo.io"),
    "ap": ("https://api-apac.devo.com/lookup-api", "collector-ap.devo.io"),
}
TRANSPORTS = ("auto", "rest", "tls")
MODES = ("replace", "upsert", "delete")

TOKEN = "'Devo API Token' (devo_token)"
DOMAIN = "'Devo Domain' (devo_domain)"
CERT = "'Devo X.509 Certificate' (devo_cert)"
KEY = "'Devo X.509 Private Key' (devo_key)"
CHAIN = "'Devo X.509 Chain CA' (devo_chain)"
_BATCH = 1024   # rows checked and converted together


@dataclass(frozen=True)
class Column:
    """One lookup column: its name and Devo type (str, int, int4, int8, float, bool, ip4)."""

    name: str
    type: str = "str"

    def __post_init__(self):
        kind = _TYPE_ALIASES.get(self.type, self.type)
        if kind not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}")
        object.__setattr__(self, "type", kind)


@dataclass(frozen=True)
class LookupSpec:
    """A lookup's shape: its name (fixed, or taken from a parameter), key column and typed columns."""

    key: str
    columns: tuple
    name: str = None
    name_from: str = None

    def __post_init__(self):
        columns = tuple(c if isinstance(c, Column) else Column(c) for c in self.columns)
        object.__setattr__(self, "columns", columns)
        names = [c.name for c in columns]
        if self.key not in names:
            raise ValueError(f"lookup key {self.key!r} is not one of its columns {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"lookup columns repeat a name: {names}")

    @property
    def key_index(self):
        return [c.name for c in self.columns].index(self.key)

    def resolve_name(self, config=None):
        """Return the lookup name, from the spec or the config; raise ConfigError if Devo cannot carry it."""
        name = self.name if self.name else (config.get(self.name_from) if config is not None else None)
        return check_name(name, self.name_from)


def check_name(name, key=None):
    """Return name if it is a valid Devo lookup name (letters, digits, underscore); raise ConfigError otherwise."""
    if not name or not NAME_RULE.match(str(name)):
        where = f" ({key})" if key else ""
        raise ConfigError(f"Lookup name{where} {name!r} is not valid for Devo.",
                          "use only letters, digits and underscore, e.g. My_Lookup_1.")
    return str(name)


def query_name(name):
    """Return the name Devo queries use for a lookup: my.lookuplist.<name>."""
    return f"my.lookuplist.{name}"


def output_params(ui=False):
    """Return the Param declarations of Devo delivery, to append to a connector's PARAMS."""
    pem_help = ("Copy & paste the PEM text (or give the path of the file) from Administration -> Credentials -> "
                "X.509 Certificates in Devo.")
    params = (
        Param("devo_transport", "Devo Transport", default="auto", choices=TRANSPORTS,
              help="How lookups reach Devo: rest (Lookups API with a token), tls (X.509 certificates, devo-sdk), "
                   "or auto: rest when a token is set, else tls."),
        Param("devo_region", "Devo API Region", default="us", choices=tuple(REGIONS),
              help="Select which API region to connect to when communicating with Devo."),
        Param("devo_lookups_url", "Devo Lookups API URL",
              help="Override the Lookups API base URL of the region, e.g. https://api-eu.devo.com/lookup-api."),
        Param("devo_token", "Devo API Token", secret=True,
              help="Devo API token (Administration -> Credentials -> Authentication tokens) for the Lookups API."),
        Param("devo_domain", "Devo Domain", help="The Devo domain that owns the lookups (needed by the Lookups API)."),
        Param("devo_verify_ssl", "Devo Verify SSL", type=bool, default=True,
              help="Verify the Lookups API TLS certificate (keep true outside tests)."),
        Param("devo_ca_bundle", "Devo CA Bundle",
              help="Path of a CA bundle to verify the Lookups API with (a TLS-inspecting proxy); default: system CAs."),
        Param("devo_job_timeout", "Devo Job Timeout", type=int, default=900, range=(1, 86400),
              help="Seconds to wait for Devo to finish loading an upload before the run fails."),
        Param("devo_cert", "Devo X.509 Certificate", multiline=True, help=pem_help),
        Param("devo_key", "Devo X.509 Private Key", secret=True, multiline=True, help=pem_help),
        Param("devo_chain", "Devo X.509 Chain CA", multiline=True, help=pem_help),
        Param("devo_host", "Devo Collector Host",
              help="Override the collector host of the region, e.g. a private relay (X.509 transport)."),
        Param("devo_port", "Devo Collector Port", type=int, range=(1, 65535),
              help="Override the collector port (default 443)."),
        Param("devo_tls_delay", "Devo Lookup Control Delay", type=float, default=5.0, range=(0, 120),
              help="Seconds devo-sdk waits after a lookup's START and before its END message (X.509 transport)."),
    )
    if not ui:
        return params
    return tuple(replace(p, ui=True) for p in params)


def _value(config, key):
    value = reveal(config.get(key)) if config is not None else None
    return value.strip() if isinstance(value, str) else value


def check_output(config, events=False):
    """Return the transport the Devo settings select ("rest" or "tls"); raise ConfigError naming what to set.

    events=True checks for sending events, which always go through the X.509 collector.
    """
    chosen = _value(config, "devo_transport") or "auto"
    token, domain = _value(config, "devo_token"), _value(config, "devo_domain")
    pem = {"devo_cert": _value(config, "devo_cert"), "devo_key": _value(config, "devo_key"),
           "devo_chain": _value(config, "devo_chain")}
    labels = {"devo_cert": CERT, "devo_key": KEY, "devo_chain": CHAIN}
    if events:
        transport = "tls"
    elif chosen == "auto":
        if token:
            transport = "rest"
        elif any(pem.values()):
            transport = "tls"
        else:
            raise ConfigError(
                "No Devo credentials are set, so nothing can be delivered to Devo.",
                f"set {TOKEN} and {DOMAIN} to use the Lookups API (recommended), or {CERT}, {KEY} and {CHAIN} "
                "for the X.509 collector.")
    elif chosen in ("rest", "tls"):
        transport = chosen
    else:
        raise ConfigError(f"'Devo Transport' (devo_transport) {chosen!r} is not allowed.", "set auto, rest or tls.")
    problems = []
    if transport == "rest":
        if not token:
            problems.append(f"{TOKEN} is not set; create a token in Devo (Administration -> Credentials) and set it.")
        if not domain:
            problems.append(f"{DOMAIN} is not set; set the name of your Devo domain.")
        url = _value(config, "devo_lookups_url")
        if url and not re.match(r"^https?://[^/\s]+", url):
            problems.append(f"'Devo Lookups API URL' (devo_lookups_url) {url!r} is not an http(s) URL; "
                            "set e.g. https://api-us.devo.com/lookup-api.")
    else:
        missing = [labels[k] for k, v in pem.items() if not v]
        if missing:
            why = "events are sent" if events else "the X.509 transport is used"
            problems.append(f"{', '.join(missing)} not set but {why}; paste the PEM text (or the file path) from "
                            "Devo Administration -> Credentials -> X.509 Certificates"
                            + ("." if events or token else f", or set {TOKEN} and {DOMAIN} to use the Lookups API."))
        else:
            from tq_conn_common import devo_certs
            problems.extend(devo_certs.check(pem))
    if len(problems) == 1:
        raise ConfigError(problems[0], problems=problems)
    if problems:
        raise ConfigError("The Devo settings have %d problems:\n  %s" % (len(problems), "\n  ".join(problems)),
                          problems=problems)
    return transport


def rest_base_url(config):
    """Return the Lookups API base URL: the explicit devo_lookups_url, else the region preset."""
    url = _value(config, "devo_lookups_url")
    return url.rstrip("/") if url else REGIONS[_value(config, "devo_region") or "us"][0]


def collector_address(config):
    """Return (host, port) of the TLS collector: devo_host/devo_port, else the region preset on 443."""
    host = _value(config, "devo_host") or REGIONS[_value(config, "devo_region") or "us"][1]
    return host, int(config.get("devo_port") or 443)


def deliver(run, spec, rows, mode="replace", name=None, dedupe=True, allow_empty=False):
    """Deliver rows to the lookup of spec; return the number of rows delivered.

    rows: dicts keyed by column name, or tuples (or lists) of values in the order of spec.columns.
    mode: "replace" the whole lookup, "upsert" (add or update rows by key), or "delete" (rows by key).
    Rows stream to a temporary file, then to Devo; nothing is delivered if the upload fails. With dedupe the
    first row of a repeated key wins (counted in run.stats.duplicates). A replace with no rows leaves the lookup
    unchanged unless allow_empty. Raises ConfigError, AuthError or DeliveryError.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    transport = check_output(run.config)
    name = check_name(name, spec.name_from) if name else spec.resolve_name(run.config)
    values = _table(run, spec, rows, dedupe)
    if transport == "rest":
        from tq_conn_common import devo_rest
        count = devo_rest.upload(run, spec, name, values, mode, allow_empty)
    else:
        from tq_conn_common import devo_tls
        count = devo_tls.upload(run, spec, name, values, mode, allow_empty)
    run.stats.delivered += count
    return count


def send_events(run, tag, events):
    """Send events (dicts as JSON, or text) to the Devo table tag through devo-sdk's Sender; return how many."""
    if not tag or not TAG_RULE.match(str(tag)):
        raise ConfigError(f"The Devo table tag {tag!r} is not valid.",
                          "use dot-separated words of letters, digits, '_' or '-', e.g. my.app.vendor.alerts.")
    check_output(run.config, events=True)
    from tq_conn_common import devo_tls
    count = devo_tls.send_events(run, str(tag), events)
    run.stats.delivered += count
    return count


def text(value):
    """Return the text form of one value as both transports write it (None is empty, booleans lower case)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _table(run, spec, rows, dedupe):
    """Yield each row as a tuple of texts in column order; rows without a key are skipped, repeats dropped.

    Rows are dicts keyed by column name, or sequences of values in column order. They are taken in batches: a batch
    of texts with a key in every row passes through whole (the common case costs no Python work per value).
    Dedupe remembers a 128-bit digest per key, not the key: about 80 bytes a key whatever its length (measured:
    80 MB for a million keys, where a set of the key texts took 106 MB for 23-character keys and 163 MB for URLs).
    """
    names = [c.name for c in spec.columns]
    width = len(names)
    key = spec.key
    index = names.index(key)
    get_key = operator.itemgetter(index)
    seen = set() if dedupe else None
    digest = hashlib.blake2b
    rows = iter(rows)
    while True:
        batch = list(itertools.islice(rows, _BATCH))
        if not batch:
            return
        batch = [row if isinstance(row, (tuple, list)) else tuple(map(row.get, names)) for row in batch]
        if set(map(len, batch)) != {width}:
            raise ValueError(f"rows of lookup columns {names} must have {width} values, one per column")
        flat = list(itertools.chain.from_iterable(batch))
        if set(map(type, flat)) != {str}:
            flat = [v if type(v) is str else text(v) for v in flat]
            batch = list(zip(*[iter(flat)] * width))
        keys = list(map(get_key, batch))
        if seen is None and "" not in keys:
            yield from map(tuple, batch)
            continue
        for row, key_value in zip(batch, keys):
            if key_value == "":
                run.skip(BadRecord(f"row without a value for the lookup key '{key}'"), "row")
                continue
            if seen is not None:
                mark = digest(key_value.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                if mark in seen:
                    run.stats.duplicates += 1
                    if run.stats.duplicates <= 5:
                        log.info("Duplicate key %r dropped (the first row with it is kept).", key_value)
                    continue
                seen.add(mark)
            yield tuple(row)


__all__ = ["Column", "LookupSpec", "check_name", "query_name", "output_params", "check_output", "deliver",
           "send_events", "rest_base_url", "collector_address", "text", "NAME_RULE", "TAG_RULE", "COLUMN_TYPES",
           "REGIONS", "TRANSPORTS", "MODES"]
