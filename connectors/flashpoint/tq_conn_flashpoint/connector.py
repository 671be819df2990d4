"""The Flashpoint connector declared: parameters, streams (a lookup per indicator type, alerts), the collector form."""

import json
import logging
import os
import time
from dataclasses import replace
from functools import partial

from tq_conn_common import (ConfigError, Connector, Declared, EventTable, LookupSpec, Param, Stream, checks, clock,
                            collector, devo, flatten)

from tq_conn_flashpoint.settings import (ALERTING, APIS, DEFAULT_LOOKUP_NAME, TOKEN, TOKEN_MISSING, V4, check_lookups,
                                         lookup_names, parse_lookups, unknown_type_hint)
from tq_conn_flashpoint.source import Flashpoint

log = logging.getLogger(__name__)

DEFAULT_TAG = "threatintel.flashpoint.intelligence.alerts"
# Pipeline bookkeeping whose keys come and go with Flashpoint's enrichment versions (reference 3.4, 3.9):
# left out so that a type's column set stays stable.
BOOKKEEPING = ("_meta", "enrichments")
FIRST_PULL_DAYS = 30  # how far back the first run reaches when initial_start_time is not set


PARAMS = (
    TOKEN,
    Param("api", "Flashpoint API", default="v4", choices=tuple(APIS),
          help="v4: the FP Tools API v4 and Alerting API v1 (fp.tools); ignite: Ignite's attributes (the same "
               "documents) and alert notifications (api.flashpoint.io); ioc-v2: Ignite's IOC v2 and notifications."),
    Param("lookups", "Indicator Lookups", type=list, required=True, check=check_lookups,
          help="The indicator types to pull, as Flashpoint spells them, each with its lookup_key (a flattened key "
               "such as value.domain or fpid; default value.<type>, on ioc-v2 value), lookup_status (New: the first "
               "pull creates or overwrites the lookup; Created: rows are added to and updated in an existing lookup) "
               "and an optional lookup_name. YAML: [{domain: {lookup_key: value.domain, lookup_status: New}}]; at "
               "the prompt: domain:value.domain:New, sha1:fpid."),
    Param("lookup_name", "Lookup Name", default=DEFAULT_LOOKUP_NAME,
          help="The name of every lookup without its own lookup_name; {Type} is replaced by the type "
               "(ip-dst|port gives Ip_dst_port)."),
    Param("initial_start_time", "Initial Start Time", check=checks.past_time(),
          help="Where the first pull of each type and of the alerts starts (UTC, 2023-02-07T00:00:00Z); "
               "default: 30 days before the first run."),
    Param("alerts_enabled", "Pull Alerts", type=bool, default=True, prompt=True,
          help="Send Flashpoint alerts as events to the Devo table tag (needs devo_http_token or the X.509 keys)."),
    Param("tag", "Alerts Tag", default=DEFAULT_TAG, check=devo.check_tag, help="The Devo table the alerts are sent to."),
    Param("indicators_url", "Indicators API URL", check=checks.http_url(V4),
          help="Base URL of the indicators API; default https://fp.tools/api/v4 (v4), else https://api.flashpoint.io."),
    Param("indicators_paging", "Indicators Paging", default="scroll", choices=("scroll", "skip"),
          help="scroll: one scroll session per type and window; skip: skip/limit pages (ioc-v2 pages by from/size)."),
    Param("alerts_url", "Alerts API URL", check=checks.http_url(ALERTING),
          help="Base URL of the alerts API; default https://fp.tools/api/alerting/v1 (v4), else the Ignite URL."),
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
    default_key, ident = APIS[config.api][6], "id" if config.api == "ioc-v2" else "fpid"
    for hint in filter(None, (unknown_type_hint(entry.type, config.api) for entry in lookups)):
        log.warning("%s", hint)
    if config.alerts_enabled:
        devo.check_settings(config, events=True, also="Or set alerts_enabled: false to pull indicators only.")
    flashpoint = Flashpoint(run)
    flashpoint.check(alerts=config.alerts_enabled)
    found = []
    for entry in lookups:
        key = entry.key or default_key.replace("{type}", entry.type)
        configured = json.dumps({"lookup_name": names[entry.type], "lookup_key": key,
                                 "lookup_status": entry.status}, sort_keys=True)
        saved = (state.get("indicators") or {}).get(entry.type) or {}
        saved = saved if saved.get("fingerprint", configured) == configured else {}   # as the runner: pulled again
        status = saved.get("status", entry.status)
        window = {"from_checkpoint_time": saved.get("to_checkpoint_time", initial),
                  "to_checkpoint_time": clock.iso(now), "status": status}
        found.append(Stream(entry.type, fetch=partial(_indicators, flashpoint=flashpoint, window=window, now=now),
                            to_row=partial(flatten, leave_out=BOOKKEEPING, what="indicator", context=("type", ident)),
                            to=LookupSpec(key=key, name=names[entry.type]),
                            mode="replace" if status == "New" else "upsert", dedupe="last",
                            fingerprint=configured, state=("indicators", entry.type), columns=_columns,
                            what="indicator", title=f"Type '{entry.type}'",
                            messages={"no_key": (NO_KEY.message, NO_KEY.fix)}))
    if config.alerts_enabled:
        found.append(Stream("alerts", fetch=partial(_alerts, flashpoint=flashpoint, initial=initial, now=now),
                            to=EventTable(tag_from="tag", key=flashpoint.alert_id), state=("alerts",), what="alert"))
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
    ident, when = flashpoint.alert_id, flashpoint.alert_time   # v4: alert_id, ts; Ignite: id, created_at
    keep = [a[ident] for a in alerts if isinstance(a, dict) and a.get(ident)
            and ((made := clock.parse(a.get(when))) is None or made.timestamp() >= now - overlap)]
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
