"""The connector in the ThreatQ UI (reference section 9): its record, the Configuration tab built from the UI
parameters, the values the user set there, and the run hooks of a connector configured in ThreatQ."""

import json
import logging
import time

from tq_conn_common import checks
from tq_conn_common.config import ui_definition
from tq_conn_common.errors import AuthError, Declared, SourceError, Stop, stop
from tq_conn_common.threatq.auth import TokenCache
from tq_conn_common.threatq.client import SERVICE, ThreatQ, data_list
from tq_conn_common.threatq.settings import base_url

log = logging.getLogger(__name__)

CATEGORY = "Labs"
_TIME = "%Y-%m-%d %H:%M:%S"   # ThreatQ timestamps: no zone, UTC (reference 1)


def connector_record(tq, name):
    """Return the connector record with this name, or None."""
    for item in data_list(tq.call("GET", "connectors", params={"name": name})):
        if item.get("name") == name:
            return item
    return None


def register_record(tq, name, display_name, definition, *, status=None, description=""):
    """Create or update the connector record with this UI definition, keeping the values set in the UI."""
    status_id = tq.status_id(status) if status else None
    existing = connector_record(tq, name)
    fields = merge_definition(definition, (existing or {}).get("custom_fields"))
    body = {"display_name": display_name, "category": CATEGORY, "custom_fields": fields,
            "description": description, "namespace": name.replace("-", "_")}
    if status_id is not None:
        body["indicator_status_id"] = status_id
    if existing:
        data = tq.call("PUT", f"connectors/{existing['id']}", json=body)
        log.info("Updated the ThreatQ connector record %r (id %s).", name, existing["id"])
    else:
        # A POST that creates is never retried blindly: a retry after a lost answer could create a second record.
        # After a failure the record is looked up by name; one that is there was created (reference, 2026 corrections).
        try:
            data = tq.call("POST", "connectors", json={"name": name, "is_active": False, **body}, retry=False)
        except SourceError as exc:
            if exc.kind not in ("failing", "unreachable", "unreadable"):
                raise
            data = {"data": connector_record(tq, name)}
            if not data["data"]:
                raise
            log.info("ThreatQ did not confirm the registration of %r, but the record exists.", name)
        log.info("Registered the ThreatQ connector record %r.", name)
    record = data.get("data") if isinstance(data, dict) else None
    if isinstance(record, list):
        record = record[0] if record else None
    return record or connector_record(tq, name)


def write_run(tq, record_id, count, when=None):
    """Write the last import time and count of a finished run into the connector record."""
    stamp = time.strftime(_TIME, time.gmtime(when if when is not None else time.time()))
    tq.call("PUT", f"connectors/{record_id}", json={"last_import_at": stamp, "last_import_count": count})
    log.info("Recorded the run in ThreatQ: last import %s, %d items.", stamp, count)


def merge_definition(definition, existing):
    """Return the UI fields of definition carrying over the values already set in existing fields (by name)."""
    values = field_values(existing)
    merged = []
    for item in definition:
        item = dict(item)
        if item["name"] in values:
            item["value"] = values[item["name"]]
        merged.append(item)
    return merged


def field_values(custom_fields):
    """Return {key: value} of a connector record's custom_fields (a list of fields, a mapping, or JSON text)."""
    if isinstance(custom_fields, str):
        try:
            custom_fields = json.loads(custom_fields) if custom_fields.strip() else []
        except ValueError:
            return {}
    if isinstance(custom_fields, dict):
        return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in custom_fields.items()}
    values = {}
    for item in custom_fields or ():
        if isinstance(item, dict) and item.get("name") and "value" in item:
            values[item["name"]] = item["value"]
    return values


def definition_changed(fields, definition):
    """Return True if the record's UI fields differ from definition in any key the definition sets."""
    fields = [item for item in fields or () if isinstance(item, dict)]
    if len(fields) != len(definition):
        return True
    return any(any(field.get(key) != value for key, value in want.items()) for field, want in zip(fields, definition))


def _is_true(value):
    """Return ThreatQ's is_active as a bool; it may come back as '', 'False', 0 or 'true' (reference 9)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "on")
    return bool(value)


def client(run):
    """Return the run's ThreatQ client (one per run), built from the threatq_* parameters."""
    tq = getattr(run, "threatq", None)
    if tq is None:
        config = run.config
        verify = checks.verify(config, "threatq")
        http = run.http(SERVICE, base_url(config.threatq_host), verify=verify)
        tq = run.threatq = ThreatQ(http, config.threatq_client_id, config.threatq_username, config.threatq_password,
                                   client_secret=config.get("threatq_client_secret"),
                                   login_encoding=config.get("threatq_login_encoding", "query"),
                                   cache=TokenCache(run.paths["config"]))
    return tq


def record_name(run):
    """Return the connector record's name: the command, with the instance name of -n."""
    return run.connector.command + (f"-{run.name}" if run.name else "")


def _display_name(run):
    return run.connector.title + (f" ({run.name})" if run.name else "")


def _definition(run):
    return ui_definition(run.connector.params)


CONFIGURED = "Connector configured. Set information in UI"
SET_UP = Declared(Stop, CONFIGURED)
NOT_ENABLED = Declared(Stop, "Skipped: the connector {title!r} ({name}) is not enabled in ThreatQ. Enable it on its "
                             "integration page (category Labs) with the toggle above Additional Information, then run "
                             "again.")


def on_configured(run):
    """After the first-run answers: register the connector record in ThreatQ and stop with the vendor's message.

    If ThreatQ refuses the registration (a 4xx answer), the answers are kept and the run still ends well, saying how
    to set the same parameters in the config file instead.
    """
    if not run.config.get("threatq_ui", True):
        stop(f"Configuration written to {run.paths['config']}. Set the remaining parameters there "
             "(see --print-config-template).")
    _first_registration(run)


def _first_registration(run):
    """Register the connector record, then stop with the vendor's message; a refusal stops saying what to do."""
    try:
        register(run)
    except (SourceError, AuthError) as exc:
        if exc.kind not in _REFUSALS:
            raise
        log.info("ThreatQ refused the registration of the connector: %s", exc.message)
        keys = ", ".join(p.key for p in run.connector.params if p.ui)
        stop(f"Configuration written to {run.paths['config']}, but the connector could not be registered in the "
             f"ThreatQ UI (ThreatQ answered HTTP {exc.status}); set threatq_ui: false and the parameters {keys} in "
             "that file instead (see --print-config-template), then run again.")
    raise SET_UP()


_REFUSALS = ("permission", "not_found", "refused")   # 403, 404, other 4xx: the server will not take the record


def register(run):
    """Create or update this instance's connector record; return it."""
    return register_record(client(run), record_name(run), _display_name(run), _definition(run),
                           status=run.config.get("status"), description=run.connector.description)


def remote_values(run):
    """Return the values set in the ThreatQ UI; register first if needed, and stop while the connector is disabled."""
    if not run.config.get("threatq_ui", True):
        return {}
    tq = client(run)
    name = record_name(run)
    record = connector_record(tq, name)
    if record is None:
        _first_registration(run)
    if definition_changed(_as_fields(record.get("custom_fields")), _definition(run)):
        log.info("The UI definition of %r changed; updating the connector record.", name)
        record = register_record(tq, name, _display_name(run), _definition(run),
                                 description=run.connector.description) or record
    run.threatq_record = record
    if not _is_true(record.get("is_active")):
        raise NOT_ENABLED(title=_display_name(run), name=name)
    values = field_values(record.get("custom_fields"))
    log.info("Read %d settings of %r from ThreatQ.", sum(1 for v in values.values() if v not in (None, "")), name)
    return values


def _as_fields(custom_fields):
    """Return a record's custom_fields as a list of fields: ThreatQ's records carry a mapping ({} by default), ours
    may carry a list, either possibly as JSON text."""
    if isinstance(custom_fields, str):
        try:
            custom_fields = json.loads(custom_fields) if custom_fields.strip() else []
        except ValueError:
            return []
    if isinstance(custom_fields, dict):
        return [{"name": k, **v} if isinstance(v, dict) else {"name": k, "value": v} for k, v in custom_fields.items()]
    return custom_fields if isinstance(custom_fields, list) else []


def record_run(run, count):
    """Write the last import time and count into this instance's connector record (after delivery).

    The data already reached its destination, so a failure here is a warning, not a failed run.
    """
    record = getattr(run, "threatq_record", None)
    if record is None or record.get("id") is None:
        return
    try:
        write_run(client(run), record["id"], count)
    except (SourceError, AuthError) as exc:
        log.warning("Delivered, but the run could not be recorded in ThreatQ: %s", exc.message)


__all__ = ["client", "register", "on_configured", "remote_values", "record_run", "record_name", "connector_record",
           "register_record", "write_run", "merge_definition", "field_values", "definition_changed", "CONFIGURED"]
