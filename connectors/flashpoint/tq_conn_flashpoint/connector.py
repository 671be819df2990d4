"""The Flashpoint connector declared: parameters, its streams (a lookup per indicator type, the alerts table) and
the Devo collector config.yaml form."""

import json
import logging
import os
import time
from dataclasses import replace
from functools import partial

from tq_conn_common import (ConfigError, Connector, Declared, EventTable, LookupSpec, Param, Stream, checks, clock,
                            collector, devo, flatten)

from tq_conn_flashpoint.settings import (DEFAULT_LOOKUP_NAME, TOKEN, TOKEN_MISSING, check_lookups, lookup_names,
                                         parse_lookups, unknown_type_hint)
from tq_conn_flashpoint.source import Flashpoint

log = logging.getLogger(__name__)

DEFAULT_TAG = "threatintel.flashpoint.intelligence.alerts"
# Pipeline bookkeeping whose keys come and go with Flashpoint's enrichment versions (reference 3.4, 3.9):
# left out so that a type's column set stays stable.
BOOKKEEPING = ("_meta", "enrichments")
V4, ALERTING = "https://fp.tools/api/v4", "https://fp.tools/api/alerting/v1"
FIRST_PULL_DAYS = 30  # how far back the first run reaches when initial_start_time is not set


PARAMS = (
    TOKEN,
    Param("lookups", "Indicator Lookups", type=list, required=True, check=check_lookups,
          help="The indicator types to pull, as Flashpoint spells them, each with its lookup_key (a flattened key "
               "such as value.domain or fpid), lookup_status (New: the first pull creates or overwrites the lookup; "
               "Created: rows are added to and updated in an existing lookup) and an optional lookup_name. YAML: "
               "[{domain: {lookup_key: value.domain, lookup_status: New}}]; at the prompt: domain:value.domain:New, "
               "sha1:fpid."),
    Param("lookup_name", "Lookup Name", default=DEFAULT_LOOKUP_NAME,
          help="The name of every lookup without its own lookup_name; {Type} is replaced by the type "
               "(ip-dst|port gives Ip_dst_port)."),
    Param("initial_start_time", "Initial Start Time", check=checks.past_time(),
          help="Where the first pull of each type and of the alerts starts (UTC, 2023-02-07T00:00:00Z); "
               "default: 30 days before the first run."),
    Param("alerts_enabled", "Pull Alerts", type=bool, default=True, prompt=True,
          help="Send Flashpoint alerts as events to the Devo table tag (needs devo_http_token or the X.509 keys)."),
    Param("tag", "Alerts Tag", default=DEFAULT_TAG, check=devo.check_tag, help="The Devo table the alerts are sent to."),
    Param("indicators_url", "Indicators API URL", default=V4, check=checks.http_url(V4),
          help="Base URL of the Flashpoint indicators API (Ignite: https://api.flashpoint.io)."),
    Param("indicators_path", "Indicators Path", default="indicators",
          help="Path under indicators_url holding attribute and scroll (Ignite: technical-intelligence/v1)."),
    Param("indicators_paging", "Indicators Paging", default="scroll", choices=("scroll", "skip"),
          help="scroll: one scroll session per type and window (API v4); skip: skip/limit pages (Ignite)."),
    Param("alerts_url", "Alerts API URL", default=ALERTING, check=checks.http_url(ALERTING),
          help="Base URL of the Flashpoint alerting API v1 (alerts are read from <alerts_url>/alerts)."),
    Param("page_size", "Indicators Page Size", type=int, default=500, range=(1, 1000), help="Indicators per request."),
    Param("alerts_page_size", "Alerts Page Size", type=int, default=100, range=(1, 100), help="Alerts per request."),
    Param("alerts_overlap_seconds", "Alerts Overlap", type=int, default=300, range=(0, 86400),
          help="Seconds each alerts window reaches back before the last checkpoint, for alerts indexed late; "
               "repeats are dropped by alert_id."),
    checks.REQUESTS_PER_SECOND,
    Param("reset_persistence_auth", "Reset Persistence", resets_state=True,
          messages={"changed": "reset_persistence_auth changed: the checkpoints are forgotten and this run starts "
                               "over from initial_start_time."},
          help="Change this to any new text to forget the checkpoints once: every type and the alerts are pulled "
               "again from initial_start_time (as --reset-state does)."),
) + tuple(replace(p, prompt=True, ask_if=lambda answers: answers.get("alerts_enabled") is not False) if p.multiline
          else p for p in devo.output_params(asked=devo.ASKED_FIRST))   # the X.509 PEMs, asked when alerts need them

NO_KEY = Declared(ConfigError, "The lookup_key '{key}' of the type '{stream}' is not in its flattened Flashpoint "
                               "data; the keys are: {keys}.",
                  "set lookups.<type>.lookup_key to one of the keys listed, e.g. value.<type> or fpid; the other "
                  "types were delivered.")


def _collector_form(section, raw):
    """Translate what the collector form nests: credentials, and the indicators and alerts services."""
    services = section.get("services")
    if isinstance(services, dict):
        alerts = next((services[k] for k in ("alerts", "flashpoint_alert") if k in services), False)
        raw["alerts_enabled"] = alerts is not False and (alerts or {}).get("enabled", True) is not False
    if not raw.get("bearer_token_base64") and not os.environ.get("TQ_CONN_BEARER_TOKEN_BASE64"):
        raise ConfigError(TOKEN_MISSING, "add credentials: {bearer_token_base64: <token in base64>} under "
                                         f"inputs.flashpoint in {collector.FILENAME}.")


load_config = collector.loader("flashpoint", _collector_form)   # the Devo collector's config.yaml, if any


def streams(run):
    """One stream per configured indicator type, each into its own lookup from its checkpoint; then the alerts."""
    config, state = run.config, run.state
    now = int(time.time())
    initial = config.get("initial_start_time") or state.get("initial_start_time") or clock.iso(
        now - FIRST_PULL_DAYS * 86400)
    state["initial_start_time"] = initial
    lookups = parse_lookups(config.lookups)
    names = lookup_names(lookups, config.get("lookup_name"))
    for hint in filter(None, map(unknown_type_hint, (entry.type for entry in lookups))):
        log.warning("%s", hint)
    if config.alerts_enabled:
        devo.check_settings(config, events=True, also="Or set alerts_enabled: false to pull indicators only.")
    flashpoint = Flashpoint(run)
    flashpoint.check(alerts=config.alerts_enabled)
    found = []
    for entry in lookups:
        configured = json.dumps({"lookup_name": names[entry.type], "lookup_key": entry.key,
                                 "lookup_status": entry.status}, sort_keys=True)
        saved = (state.get("indicators") or {}).get(entry.type) or {}
        saved = saved if saved.get("fingerprint", configured) == configured else {}   # as the runner: pulled again
        status = saved.get("status", entry.status)
        window = {"from_checkpoint_time": saved.get("to_checkpoint_time", initial),
                  "to_checkpoint_time": clock.iso(now), "status": status}
        found.append(Stream(entry.type, fetch=partial(_indicators, flashpoint=flashpoint, window=window, now=now),
                            to_row=partial(flatten, leave_out=BOOKKEEPING, what="indicator", context=("type", "fpid")),
                            to=LookupSpec(key=entry.key, name=names[entry.type]),
                            mode="replace" if status == "New" else "upsert", dedupe="last",
                            fingerprint=configured, state=("indicators", entry.type), columns=_columns,
                            what="indicator", title=f"Type '{entry.type}'",
                            messages={"no_key": (NO_KEY.message, NO_KEY.fix)}))
    if config.alerts_enabled:
        found.append(Stream("alerts", fetch=partial(_alerts, flashpoint=flashpoint, initial=initial, now=now),
                            to=EventTable(tag_from="tag", key="alert_id"), state=("alerts",), what="alert"))
    return found


def _indicators(ctx, flashpoint, window, now):
    """Yield the documents of one type updated since its checkpoint (the oldest first; the newest per key wins)."""
    ctx.checkpoint = dict(window)
    log.info("Latest state data in pre-pull of '%s': from_checkpoint_time %s, to_checkpoint_time %s, status %s.",
             ctx.stream.name, window["from_checkpoint_time"], window["to_checkpoint_time"], window["status"])
    return flashpoint.indicators(ctx.stream.name, clock.epoch(window["from_checkpoint_time"]), now)


def _columns(ctx, found):
    """Return the lookup's columns: those this run saw, or, once the lookup exists, the ones it was created with."""
    columns = (ctx.saved.get("columns") if ctx.stream.mode == "upsert" else None) or found
    if set(found) - set(columns):   # the lookup keeps the columns it was created with; new keys wait for a rebuild
        log.warning("Type '%s' has keys the lookup %s lacks, left out: %s. Reset the persistence to rebuild it.",
                    ctx.stream.name, ctx.stream.to.name, ", ".join(sorted(set(found) - set(columns))))
    if columns:
        ctx.checkpoint.update(columns=columns, status="Created")
    return columns


def _alerts(ctx, flashpoint, initial, now):
    """Yield the alerts of the window; the checkpoint remembers those of the overlap, not to be sent again."""
    overlap, saved = ctx.config.alerts_overlap_seconds, ctx.saved
    # Alerts can be indexed after their creation time: every window after the first reaches back by the overlap,
    # and the alerts of the previous window's overlap are remembered so that none is sent twice.
    since = clock.epoch(saved["to_checkpoint_time"]) - overlap if saved.get("to_checkpoint_time") else \
        clock.epoch(initial)
    ctx.known.update(saved.get("recent_alert_ids") or ())
    log.info("Latest state data in pre-pull of alerts: from_checkpoint_time %s, to_checkpoint_time %s.",
             clock.iso(since), clock.iso(now))
    # Collected first, handed over after: a failed pull sends nothing, so a rerun cannot repeat events.
    alerts = list(flashpoint.alerts(since, now))
    keep = [a["alert_id"] for a in alerts if isinstance(a, dict) and a.get("alert_id")
            and (not isinstance(a.get("ts"), (int, float)) or a["ts"] >= now - overlap)]
    ctx.checkpoint = {"from_checkpoint_time": clock.iso(since), "to_checkpoint_time": clock.iso(now),
                      "recent_alert_ids": list(dict.fromkeys(keep))}
    yield from alerts


CONNECTOR = Connector(
    name="flashpoint",
    title="Flashpoint indicators and alerts to Devo",
    description="Pull Flashpoint indicators (one Devo lookup per indicator type, flattened) and alerts "
                "(events in a Devo table), from checkpoints kept between runs.",
    params=PARAMS,
    streams=streams,
    load_config=load_config,
)
main = CONNECTOR.main
