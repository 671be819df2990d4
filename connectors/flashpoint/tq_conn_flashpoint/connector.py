"""The Flashpoint connector declared: parameters, error ids, and the Devo collector config.yaml form."""

import dataclasses
import os
import re

from tq_conn_common import ConfigError, Connector, Param
from tq_conn_common import collector, devo

from tq_conn_flashpoint.flatten import MAX_CELL, MAX_DEPTH, MAX_KEYS
from tq_conn_flashpoint.pull import run
from tq_conn_flashpoint.settings import DEFAULT_LOOKUP_NAME, check_lookups, check_token
from tq_conn_flashpoint.source import check_time

TOKEN_MISSING = "SetupError 1: Please provide the bearer_token_base64 in the inputs."
TOKEN_UNUSABLE = ("SetupError 2: Please ensure the bearer token is prepared: bearer_token_base64 must be the "
                  "Flashpoint API token encoded in base64 (printf %s TOKEN | base64 -w0).")
DEFAULT_TAG = "threatintel.flashpoint.intelligence.alerts"


def _url(value):
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL; set e.g. https://fp.tools/api/v4.")
    return value.rstrip("/")


def _tag(value):
    if not devo.TAG_RULE.match(value):
        raise ValueError(f"{value!r} is not a Devo table tag; use dot-separated words, e.g. {DEFAULT_TAG}.")
    return value


PARAMS = (
    Param("bearer_token_base64", "Bearer Token (base64)", secret=True, required=True, check=check_token,
          messages={"missing": TOKEN_MISSING, "format": TOKEN_UNUSABLE, "type": TOKEN_UNUSABLE},
          help="The Flashpoint API token (fp.tools: profile icon > Manage API Tokens > Generate Token), "
               "encoded in base64."),
    Param("lookups", "Indicator Lookups", type=list, required=True, check=check_lookups,
          help="The indicator types to pull, as Flashpoint spells them, each with its lookup_key (a flattened key "
               "such as value.domain or fpid), lookup_status (New: the first pull creates or overwrites the "
               "lookup; Created: rows are added to and updated in an existing lookup) and an optional "
               "lookup_name. YAML: [{domain: {lookup_key: value.domain, lookup_status: New}}]; at the prompt: "
               "domain:value.domain:New, sha1:fpid:Created."),
    Param("lookup_name", "Lookup Name", default=DEFAULT_LOOKUP_NAME,
          help="The name of every lookup without its own lookup_name; {Type} is replaced by the type "
               "(ip-dst|port gives Ip_dst_port)."),
    Param("initial_start_time", "Initial Start Time", check=check_time,
          help="Where the first pull of each type and of the alerts starts (UTC, 2023-02-07T00:00:00Z); "
               "default: 30 days before the first run."),
    Param("alerts_enabled", "Pull Alerts", type=bool, default=True, prompt=True,
          help="Send Flashpoint alerts as events to the Devo table tag (needs the Devo X.509 credentials)."),
    Param("tag", "Alerts Tag", default=DEFAULT_TAG, check=_tag, help="The Devo table the alerts are sent to."),
    Param("indicators_url", "Indicators API URL", default="https://fp.tools/api/v4", check=_url,
          help="Base URL of the Flashpoint indicators API (Ignite: https://api.flashpoint.io)."),
    Param("indicators_path", "Indicators Path", default="indicators",
          help="Path under indicators_url holding attribute and scroll (Ignite: technical-intelligence/v1)."),
    Param("indicators_paging", "Indicators Paging", default="scroll", choices=("scroll", "skip"),
          help="scroll: one scroll session per type and window (API v4); skip: skip/limit pages (Ignite)."),
    Param("alerts_url", "Alerts API URL", default="https://fp.tools/api/alerting/v1", check=_url,
          help="Base URL of the Flashpoint alerting API v1 (alerts are read from <alerts_url>/alerts)."),
    Param("page_size", "Indicators Page Size", type=int, default=500, range=(1, 1000),
          help="Indicators per request."),
    Param("alerts_page_size", "Alerts Page Size", type=int, default=100, range=(1, 100), help="Alerts per request."),
    Param("alerts_overlap_seconds", "Alerts Overlap", type=int, default=300, range=(0, 86400),
          help="Seconds each alerts window reaches back before the last checkpoint, for alerts indexed late; "
               "repeats are dropped by alert_id."),
    Param("requests_per_second", "Requests per Second", type=float, range=(0.01, 100),
          help="Limit the request rate to Flashpoint; default: no limit."),
    Param("reset_persistence_auth", "Reset Persistence",
          help="Change this to any new text to forget the checkpoints once: every type and the alerts are pulled "
               "again from initial_start_time (as --reset-state does)."),
) + tuple(dataclasses.replace(p, prompt=True) if p.key in ("devo_region", "devo_token", "devo_domain") else p
          for p in devo.output_params())

ERRORS = (
    ("SetupError 1", TOKEN_MISSING.split(": ", 1)[1],
     "Set bearer_token_base64 (in the collector config.yaml: credentials.bearer_token_base64 of inputs.flashpoint)."),
    ("SetupError 2", "Please ensure the bearer token is prepared: ... (not base64, or Flashpoint refused it: "
                     "HTTP 401/403)",
     "Encode the API token with base64; if Flashpoint refused it, generate a new token on fp.tools."),
    ("SetupError 102", "Api {error_log}.",
     "The first call to the indicators or alerts API failed; follow the API's reason. A 404 means "
     "indicators_url, indicators_path or alerts_url is wrong."),
    ("PullError 101", "Error in fetch_indicators {e}.",
     "Fetching indicators failed (connection, malformed answer); run again later, state was kept."),
    ("PullError 101", "Error in fetch_alerts {e}.",
     "Fetching alerts failed (connection, malformed answer, a repeated page link); run again later."),
    ("PullError 102", "Api {error_log}.",
     "Flashpoint answered an error status while pulling; follow its reason (400: a setting, 5xx: run later)."),
    ("exit 2", "The lookup_key '<key>' of the type '<type>' is not in its flattened Flashpoint data; the keys "
               "are: ...", "Set lookups.<type>.lookup_key to one of the keys listed; the other types were delivered."),
    ("exit 2", "The types 'a' and 'b' would both be delivered to the lookup X.",
     "Put {Type} in lookup_name or give each type its own lookup_name."),
    ("skipped (exit 0)", f"Skipped indicator: indicator has more than {MAX_KEYS} keys / nested more than {MAX_DEPTH} "
                         f"levels deep / key K has a name or value of N characters, more than the {MAX_CELL} a Devo "
                         "lookup cell may hold",
     "Nothing to set: that indicator is counted as skipped and the others of its type delivered; report its fpid to "
     "Flashpoint."),
)


def load_config(config_dir, name):
    """Return the settings of the Devo collector config.yaml (inputs.flashpoint), or None if there is none."""
    return collector.load(config_dir, "flashpoint", extra=_collector_form)


def _collector_form(section, raw):
    """Translate what the collector form nests: credentials, and the indicators and alerts services."""
    credentials = raw.pop("credentials", None)
    if isinstance(credentials, dict):
        for key, value in credentials.items():
            raw.setdefault(key, value)
    raw.pop("enabled", None)  # a service's own switch, lifted by the generic reader
    raw.pop("request_period_in_seconds", None)  # the collector's own schedule; cron schedules the runs here
    services = section.get("services")
    if isinstance(services, dict):
        alerts = next((services[k] for k in ("alerts", "flashpoint_alert") if k in services), False)
        raw["alerts_enabled"] = alerts is not False and (alerts or {}).get("enabled", True) is not False
    if not raw.get("bearer_token_base64") and not os.environ.get("TQ_CONN_BEARER_TOKEN_BASE64"):
        raise ConfigError(TOKEN_MISSING, "add credentials: {bearer_token_base64: <token in base64>} under "
                                         f"inputs.flashpoint in {collector.FILENAME}.")


CONNECTOR = Connector(
    name="flashpoint",
    title="Flashpoint indicators and alerts to Devo",
    description="Pull Flashpoint indicators (one Devo lookup per indicator type, flattened) and alerts "
                "(events in a Devo table), from checkpoints kept between runs.",
    params=PARAMS,
    run=run,
    load_config=load_config,
    errors=ERRORS,
)
main = CONNECTOR.main
