"""The Devo IOC Exporter declared: its parameters (prompted, set in the ThreatQ UI, local), its lookup and errors."""

from dataclasses import replace
from functools import partial

from tq_conn_common import Column, Connector, LookupSpec, Param, Stream, devo, threatq
from tq_conn_devo_ioc_exporter import source

_DEVO = {p.key: p for p in devo.output_params()}
# The Lookups API token and domain come before the X.509 fields: X.509 lookups are unconfirmed and past their end.
_DEVO_UI = ("devo_region", "devo_token", "devo_domain", "devo_transport", "devo_cert", "devo_key", "devo_chain")
_UI_HELP = " Set it in the ThreatQ UI (Configuration tab of the connector) or in the config file."

# The Configuration tab: the vendor guide's fields (seed 003), the Lookups API token and domain first.
UI_PARAMS = tuple(replace(_DEVO[key], ui=True) for key in _DEVO_UI) + (
    Param("lookup_name", "Lookup Table Name", required=True, ui=True, check=devo.check_name,
          help="Name of the Devo lookup the IOCs are pushed to (letters, digits and underscore)." + _UI_HELP),
    Param("collection_name", "ThreatQ Data Collection Name", required=True, ui=True,
          help="Exact name (case-sensitive) of the ThreatQ data collection holding the IOCs to export." + _UI_HELP),
    Param("threatq_hostname", "ThreatQ Hostname", ui=True, check=threatq.check_host,
          help="Host name or IP of your ThreatQ instance as users reach it, for the links back to ThreatQ in the "
               "lookup (https unless http:// is given). Default: ThreatQ Host."),
    Param("batch_size", "Batch Size", type=int, default=1000, range=(1, 10000), ui=True,
          help="Indicators asked for per Threat Library API request."),
    Param("allow_multiple_runs", "Allow Multiple Runs", type=bool, default=False, ui=True,
          help="Checked: no PID lock, runs may overlap (the guide's 'Disable Multiple Runs' field, 'Allow "
               "Multiple Runs' in its change log). Unchecked: one run at a time; a run that finds another "
               "still going exits 3."),
    Param("kill_after_seconds", "Kill Previous Runs After X Seconds", type=int, default=0, range=(0, 604800),
          ui=True, help="A run that finds the previous one holding the lock longer than this ends it and runs "
                        "(0: never; a lock left by a dead run is always taken over)."),
)
LOCAL_DEVO = tuple(p for p in devo.output_params() if p.key not in _DEVO_UI)
READ_CHANGES = Param("threatq_read_changes", "Read Only Changes", type=bool, default=True,
                     help="With delta delivery, read in full only the indicators touched in ThreatQ since the last "
                          "run, and of the others only their id, value and touched time (to see which left the "
                          "collection); false reads the whole collection on every run.")
PARAMS = threatq.params() + UI_PARAMS + LOCAL_DEVO + (READ_CHANGES,)

IOCS = LookupSpec(name_from="lookup_name", key="value", columns=(
    Column("value"), Column("type"), Column("status"), Column("score", "float"), Column("link"),
    Column("attack_phase"), Column("threat_type"), Column("adversary"), Column("has_adversary", "int"),
    Column("created_at"), Column("updated_at"),
))



def streams(run):
    """The one stream: the collection into the lookup as a full replacement, the newest row of a value kept."""
    links = threatq.ui_base(run.config.get("threatq_hostname") or run.config.threatq_host)
    return (Stream("iocs", fetch=source.fetch, to_row=partial(source.to_row, links=links), to=IOCS, dedupe="first",
                   state=(), done=source.record_run, what="indicator", shared_pages=source.shared_pages,
                   changes=source.changes),)


CONNECTOR = Connector(
    name="devo_ioc_exporter",
    title="Devo IOC Exporter",
    description="Exports the indicators of a ThreatQ data collection to a Devo lookup, as a full replacement.",
    params=PARAMS,
    streams=streams,
    on_configured=threatq.on_configured,
    remote_values=threatq.remote_values,
    lock_params=("allow_multiple_runs", "kill_after_seconds"),
)
main = CONNECTOR.main

__all__ = ["CONNECTOR", "PARAMS", "UI_PARAMS", "IOCS", "main"]
