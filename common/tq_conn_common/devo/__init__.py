"""Devo as a destination: lookups as data, the transports that upload them (rest, tls), and events to tables."""

from tq_conn_common.devo.lookup import (Column, LookupSpec, cell, check_name, query_name, text, texts, key_getter,  # noqa
                                        MAX_CELL, NAME_RULE, COLUMN_TYPES)
from tq_conn_common.devo.settings import (Settings, check as check_settings, output_params, REGIONS, TRANSPORTS,  # noqa
                                          ASKED_FIRST)
from tq_conn_common.devo.transport import upload, settings_of, MODES  # noqa
from tq_conn_common.devo import rest, tls  # noqa: F401  (they register the transports)
from tq_conn_common.devo import delta  # noqa: F401
from tq_conn_common.devo.events import EventTable, EventUpload, check_tag, TAG_RULE  # noqa


def deliver(run, spec, rows, mode="replace", name=None, allow_empty=False):
    """Deliver rows (dicts or sequences in column order) to the lookup of spec; return how many were delivered."""
    name = check_name(name) if name else spec.resolve_name(run.config)
    with upload(run, spec, name, mode, allow_empty) as up:
        batch = []
        for row in texts(spec, rows):
            batch.append(row)
            if len(batch) >= 1024:
                up.add(batch)
                batch = []
        if batch:
            up.add(batch)
        count = up.send()
    run.stats.delivered += count
    return count


def send_events(run, table, events):
    """Send events (dicts as JSON, or text) to a Devo table (an EventTable or a tag); return how many."""
    table = table if isinstance(table, EventTable) else EventTable(tag=table)
    with EventUpload(run, table) as up:
        up.add(events)
        count = up.send()
    run.stats.delivered += count
    return count


__all__ = ["Column", "LookupSpec", "EventTable", "cell", "check_name", "check_tag", "query_name", "text", "texts",
           "output_params", "check_settings", "Settings", "upload", "deliver", "send_events", "REGIONS", "TRANSPORTS",
           "MODES", "MAX_CELL", "NAME_RULE", "TAG_RULE", "COLUMN_TYPES", "ASKED_FIRST", "key_getter", "settings_of",
           "EventUpload"]
