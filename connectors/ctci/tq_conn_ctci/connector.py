"""The CTCI connector declared: its parameters with seed 001's error ids, its lookup, and its one stream."""

import dataclasses
import os
from functools import partial

from tq_conn_common import (Column, ConfigError, Connector, Declared, LookupSpec, Param, Stream, checks, clock,
                            collector, devo)
from tq_conn_ctci import source

DEFAULT_URL = "https://api.ctci.ai"
FETCH_LIMITS = (1, 100_000)
DATE_FORMAT = "YYYY-MM-DDTHH:MM:SSZ"
URL_FORMAT = "http[s]://{ip_address_or_domain}{:optional_port}"
_OBFUSCATABLE = tuple(name for name, _ in source.FIELDS if name != "cve") + (source.OTHER,)


BAD_URL = Declared(ConfigError, "SetupError 3: api_base_url {value!r} must match "
                   + URL_FORMAT.replace("{", "{{").replace("}", "}}")
                   + "; set the scheme, host and optional port only, e.g. {example}.")
BAD_DATE = Declared(ConfigError, "SetupError 15: historical_poll_datetime {value!r} does not match expected format "
                                 f"{DATE_FORMAT}; set a UTC date and time such as {{example}}.")
FUTURE_DATE = Declared(ConfigError, "SetupError 17: Please enter valid date for historical_poll_datetime less than "
                                    "or equal to the current date ({when} is in the future); set a past date or leave "
                                    "it empty.")


def _poll_datetime(value):
    when = clock.parse(value) if source.POLL_FORMAT.fullmatch(value) else None
    if when is None:
        raise ValueError(BAD_DATE.message.format(value=value, example=clock.iso(clock.ago(7))))
    if when > clock.now():
        raise ValueError(FUTURE_DATE.message.format(when=clock.iso(when)))
    return clock.iso(when)


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
    source.API_TOKEN,
    Param("api_base_url", "CTCI API Base URL", default=DEFAULT_URL,
          check=checks.http_url(DEFAULT_URL, path=False, message=BAD_URL.message),
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
    Param("reset_persistence_auth", "Reset Persistence Auth", resets_state=True,
          help="Any text; change it to make the next run forget the persisted state (highest id_ref, last poll "
               "time) and start over.",
          messages={"type": "SetupError 13: Required setting, reset_persistence_auth not of expected type: str; set "
                            "reset_persistence_auth to one text value.",
                    "changed": "reset_persistence_auth changed ({old!r} -> {new!r}): the persisted state is reset; "
                               "this run starts over."}),
    Param("lookup_name", "Devo Lookup Name", default="CTCI_CEWL", check=devo.check_name,
          help="The Devo lookup that receives the CEWL, keyed by CVE id (query it as my.lookuplist.<name>)."),
    Param("cewl_path", "CEWL Path", default="/api/v1/cewl", check=checks.url_path("/api/v1/cewl"),
          help="Path of the CEWL download under api_base_url; change it only if CTCI moves the endpoint."),
    OBFUSCATE := Param("obfuscate_fields", "Obfuscate Fields", type=list, check=_obfuscate_fields,
                       help="CEWL fields whose values are replaced by a keyed hash (HMAC-SHA256, hex) before "
                            "delivery, e.g. external_note; the key column cve cannot be hashed."),
    OBFUSCATION_KEY := Param("obfuscation_key", "Obfuscation Key", secret=True, check=_obfuscation_key,
                             help="Key of the obfuscation hash, at least 16 characters; required with "
                                  "obfuscate_fields. Keep it: another key gives other hashes."),
) + devo.output_params(asked=devo.ASKED_FIRST)

CEWL = LookupSpec(name_from="lookup_name", key="cve",
                  columns=tuple(Column(name, "str" if kind == "date" else kind) for name, kind in source.FIELDS)
                  + (Column(source.OTHER),))

EMPTY_URL = Declared(ConfigError, "SetupError 1: api_base_url must be specified.",
                     f"the key is present but empty: remove the line to use {DEFAULT_URL}, or set the CTCI API URL.")
NO_CREDENTIALS = Declared(ConfigError, "SetupError 4: Required setting, credentials not found in user configuration.",
                          "add a credentials section with api_token under inputs.ctci in config.yaml.")
BAD_CREDENTIALS = Declared(ConfigError, "SetupError 5: Required setting, credentials not of expected type: dict.",
                           "make inputs.ctci.credentials in config.yaml a mapping holding api_token: <token>.")
TOO_OLD = Declared(ConfigError, "SetupError 16: Please enter valid date for historical_poll_datetime less than or "
                                "equal to one year ({start} is older).",
                   "set historical_poll_datetime after {after}, or leave it empty.")
NO_KEY = Declared(ConfigError, f"{OBFUSCATE.named} is set but {OBFUSCATION_KEY.named} is not.",
                  "set obfuscation_key (e.g. 'openssl rand -hex 32'), or clear obfuscate_fields.")


def _credentials(section, raw):
    """The collector form of the token, inputs.ctci.credentials.api_token (SetupError 4 and 5)."""
    if "credentials" not in section and raw.get("api_token") in (None, "") and not os.environ.get("TQ_CONN_API_TOKEN"):
        raise NO_CREDENTIALS()
    if "credentials" in raw:   # left there by the collector reader: not a mapping
        raise BAD_CREDENTIALS()


load_config = collector.loader("ctci", _credentials)   # the Devo collector's config.yaml, when the folder has one


def streams(run):
    """The one stream: the CEWL into its lookup as a full replacement, one row per CVE (the newest entry wins)."""
    config, state = run.config, run.state
    if "api_base_url" in run.raw and str(run.raw["api_base_url"] or "").strip() == "":
        raise EMPTY_URL()
    fields = config.get("obfuscate_fields") or []
    if fields and not config.get("obfuscation_key"):
        raise NO_KEY()
    key = config.obfuscation_key.reveal().encode("utf-8") if fields else None
    spec = dataclasses.replace(CEWL, columns=tuple(Column(c.name) if c.name in fields else c for c in CEWL.columns))
    last_id, since = state.get("last_id_ref"), clock.parse(state.get("last_polled_time"))
    if last_id is None and since is None and config.get("historical_poll_datetime"):
        since = clock.parse(config.historical_poll_datetime)
        if since < clock.ago(365):
            raise TOO_OLD(start=config.historical_poll_datetime, after=clock.iso(clock.ago(365)))
    tally = source.Tally(last_id, since)
    return (Stream("cewl", fetch=partial(source.fetch, tally=tally), to=spec, dedupe="last", state=(),
                   to_row=partial(source.mapped, tally=tally, fields=fields, key=key), done=tally.report,
                   what="CEWL row"),)


CONNECTOR = Connector(
    name="ctci", title="CTCI CEWL to a Devo lookup", params=PARAMS, streams=streams, load_config=load_config,
    description="Pulls the CTCI CEWL (CVE Early Warning List) into a Devo lookup keyed by CVE id.")
main = CONNECTOR.main
