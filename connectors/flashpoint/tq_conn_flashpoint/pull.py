"""One run: each configured indicator type into its Devo lookup, then the alerts into a Devo table, checkpointed."""

import logging
import time

from tq_conn_common import BadRecord, Column, ConfigError, LookupSpec
from tq_conn_common import devo

from tq_conn_flashpoint.flatten import Spool, cell, flatten
from tq_conn_flashpoint.settings import lookup_names, parse_lookups, unknown_type_hint
from tq_conn_flashpoint.source import Flashpoint, epoch, iso

log = logging.getLogger(__name__)

FIRST_PULL_DAYS = 30  # how far back the first run reaches when initial_start_time is not set


def run(run):
    """Pull every configured type and the alerts; each checkpoint moves only after Devo accepted its data."""
    config, state = run.config, run.state
    _reset_if_asked(config, state)
    now = int(time.time())
    initial = config.get("initial_start_time") or state.get("initial_start_time") or iso(now - FIRST_PULL_DAYS * 86400)
    state["initial_start_time"] = initial
    lookups = parse_lookups(config.lookups)
    names = lookup_names(lookups, config.get("lookup_name"))
    for entry in lookups:
        hint = unknown_type_hint(entry.type)
        if hint:
            log.warning("%s", hint)
    devo.check_output(config)
    if config.alerts_enabled:
        try:
            devo.check_output(config, events=True)
        except ConfigError as exc:
            raise ConfigError(exc.message, f"{exc.fix + ' ' if exc.fix else ''}Or set alerts_enabled: false to pull "
                                           "indicators only.", problems=exc.problems) from None
    flashpoint = Flashpoint(run)
    flashpoint.check(alerts=config.alerts_enabled)
    problems = [p for p in (_indicators(run, flashpoint, entry, names[entry.type], initial, now) for entry in lookups)
                if p]
    if config.alerts_enabled:
        _alerts(run, flashpoint, initial, now)
    if problems:
        raise ConfigError("\n  ".join(problems), "set lookups.<type>.lookup_key to one of the keys listed, "
                                                 "e.g. value.<type> or fpid; the other types were delivered.")


def _reset_if_asked(config, state):
    """Forget the checkpoints when reset_persistence_auth holds a value other than the one stored."""
    value = config.get("reset_persistence_auth")
    if value is None or str(value) == state.get("reset_persistence_auth"):
        return
    if state.get("indicators") or state.get("alerts"):
        log.warning("reset_persistence_auth changed: the checkpoints are forgotten and this run starts over from "
                    "initial_start_time.")
    state.reset()
    state["reset_persistence_auth"] = str(value)


def _indicators(run, flashpoint, entry, name, initial, now):
    """Pull one type's window into its lookup, then advance its checkpoint; return a problem line if lookup_key is
    not in the data (the checkpoint then stays)."""
    saved = (run.state.get("indicators") or {}).get(entry.type)
    configured = {"lookup_name": name, "lookup_key": entry.key, "lookup_status": entry.status}
    if saved and saved.get("configured") == configured:
        start, status, columns = saved["to_checkpoint_time"], saved["status"], saved.get("columns") or {}
    else:
        if saved:
            log.warning("The settings of type '%s' changed; its lookup %s is pulled again from %s.",
                        entry.type, name, initial)
        start, status, columns = initial, entry.status, {}
    log.info("Latest state data in pre-pull of '%s': from_checkpoint_time %s, to_checkpoint_time %s, status %s.",
             entry.type, start, iso(now), status)
    with Spool(entry.key) as spool:
        keyless, examples = 0, []   # documents without a value for lookup_key: skipped once the key is known to exist
        for doc in flashpoint.indicators(entry.type, epoch(start), now):
            run.stats.received += 1
            if not isinstance(doc, dict):
                run.skip(BadRecord("indicator that is not a JSON object", type=entry.type), "indicator")
                continue
            try:
                row = flatten(doc)
            except BadRecord as bad:  # too many keys, too deep, a cell too large: Devo would refuse the lookup
                run.skip(BadRecord(bad.reason, type=entry.type, **bad.context), "indicator")
                continue
            if not spool.add(row):
                keyless += 1
                examples += [doc.get("fpid")] if len(examples) < 20 else []
        if spool.received and entry.key not in spool.kinds:
            return (f"The lookup_key '{entry.key}' of the type '{entry.type}' is not in its flattened Flashpoint data; "
                    f"the keys are: {', '.join(sorted(spool.kinds))}.")
        for fpid in examples:
            run.skip(BadRecord(f"no value for lookup_key '{entry.key}'", type=entry.type, fpid=fpid), "indicator")
        run.stats.skipped += keyless - len(examples)
        run.stats.duplicates += spool.duplicates
        if spool.kept:
            mode = "replace" if status == "New" else "upsert"
            columns = _columns(spool.columns, columns if mode == "upsert" else {}, entry.type, name)
            spec = LookupSpec(key=entry.key, columns=tuple(Column(n, t) for n, t in columns.items()), name=name)
            sent = devo.deliver(run, spec, _rows(spool, spec), mode=mode, dedupe=False)
            log.info("Type '%s': %d rows delivered to lookup %s (%s).", entry.type, sent, name, mode)
            status = "Created"
    book = run.state.setdefault("indicators", {})
    book[entry.type] = {"from_checkpoint_time": start, "to_checkpoint_time": iso(now), "status": status,
                        "configured": configured, "columns": columns}
    run.state.commit()
    return None


def _columns(seen, existing, type_, name):
    """Return {column: type}: what this run saw, or, once the lookup exists, the columns it was created with."""
    if not existing:
        return seen
    extra = sorted(set(seen) - set(existing))
    if extra:
        # The lookup keeps the columns it was created with; new keys wait for a rebuild (see the README).
        log.warning("Type '%s' has keys the lookup %s lacks, left out: %s. Reset the persistence to rebuild it.",
                    type_, name, ", ".join(extra))
    return existing


def _rows(spool, spec):
    """Yield the spooled rows with one value per column, each as its column type wants it."""
    for row in spool.rows():
        yield {c.name: cell(row.get(c.name), c.type) for c in spec.columns}


def _alerts(run, flashpoint, initial, now):
    """Send the alerts of the window not seen before as events to the tag, then advance the checkpoint."""
    config = run.config
    saved = run.state.get("alerts") or {}
    overlap = config.alerts_overlap_seconds
    # Alerts can be indexed after their creation time: every window after the first reaches back by the overlap,
    # and the alerts of the previous window's overlap are remembered so that none is sent twice.
    since = epoch(saved["to_checkpoint_time"]) - overlap if saved.get("to_checkpoint_time") else epoch(initial)
    recent = set(saved.get("recent_alert_ids") or ())
    edge = now - overlap
    log.info("Latest state data in pre-pull of alerts: from_checkpoint_time %s, to_checkpoint_time %s.",
             iso(since), iso(now))
    fresh, seen, keep = [], set(), {}
    for alert in flashpoint.alerts(since, now):
        run.stats.received += 1
        alert_id = alert.get("alert_id") if isinstance(alert, dict) else None
        if not alert_id:
            run.skip(BadRecord("alert without alert_id", fpid=alert.get("fpid") if isinstance(alert, dict) else None),
                     "alert")
            continue
        ts = alert.get("ts")
        if not isinstance(ts, (int, float)) or ts >= edge:
            keep[alert_id] = True
        if alert_id in seen or alert_id in recent:
            run.stats.duplicates += 1
            continue
        seen.add(alert_id)
        fresh.append(alert)
    # Collected first, sent after: a failed pull sends nothing, so a rerun cannot repeat events.
    if fresh:
        devo.send_events(run, config.tag, fresh)
    log.info("Alerts: %d sent to %s.", len(fresh), config.tag)
    run.state["alerts"] = {"from_checkpoint_time": iso(since), "to_checkpoint_time": iso(now),
                           "recent_alert_ids": list(keep)}
    run.state.commit()


__all__ = ["run"]
