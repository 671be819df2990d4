"""Demo: Flashpoint indicators into one Devo lookup per type and alerts into a Devo table, then only what changed."""

import json
import os
import time

from tq_conn_sandbox.demos import Step, call, config_file
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.flashpoint import TOKEN, TOKEN_BASE64

TITLE = "tq-conn-flashpoint: Flashpoint indicators to Devo lookups per type, alerts to a Devo table"
COMMAND = "tq-conn-flashpoint"
TAG = "threatintel.flashpoint.intelligence.alerts"
LOOKUPS = [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}},
           {"ip-dst|port": {"lookup_key": "fpid", "lookup_status": "New"}},
           {"sha256": {"lookup_key": "value.sha256", "lookup_status": "Created"}}]
NAMES = {"domain": "Threatintel_Flashpoint_Intelligence_Domain",
         "ip-dst|port": "Threatintel_Flashpoint_Intelligence_Ip_dst_port",
         "sha256": "Threatintel_Flashpoint_Intelligence_Sha256"}
FAST_RETRIES = {"TQ_CONN_HTTP_RETRIES": "1", "TQ_CONN_HTTP_BACKOFF": "0.1"}


def _settings(ctx):
    """Return the config's base: Flashpoint's URLs and token, Devo over REST, and a client bundle for its collector."""
    devo = ctx.sandbox["devo"]
    paths = devo.write_client_bundle(os.path.join(ctx.home, "certs"))
    host, port = devo.collector_address
    return {"bearer_token_base64": TOKEN_BASE64, "lookups": LOOKUPS,
            "indicators_url": ctx.url("flashpoint") + "/api/v4",
            "alerts_url": ctx.url("flashpoint") + "/api/alerting/v1",
            "devo_transport": "rest", "devo_lookups_url": ctx.url("devo") + "/lookup-api",
            "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN,
            "devo_host": host, "devo_port": port, "devo_cert": paths["cert"], "devo_key": paths["key"],
            "devo_chain": paths["chain"]}


_config = config_file("tq-conn-flashpoint.yaml", _settings)


def _show(ctx):
    devo = ctx.sandbox["devo"]
    for type_, name in NAMES.items():
        view = devo.lookup(name)
        if view is None:
            print(f"  {type_:<12} no lookup {name}")
            continue
        print(f"  {type_:<12} {view['query_name']}: {view['total']} rows, key {view['key']}, "
              f"{len(view['columns'])} columns")
    events = devo.table(TAG)
    print(f"  alerts       table {TAG}: {len(events)} events")


def _sample(ctx):
    view = ctx.sandbox["devo"].lookup(NAMES["domain"])
    row = view["rows"][0]
    print("  one row of the domain lookup (flattened, lists as JSON text):")
    for key in ("value.domain", "type", "category", "Event.info", "Event.attack_ids", "first_observed_at.date-time",
                "header_.indexed_at", "header_.is_visible"):
        print(f"    {key:<30} {row[key]!r}")
    alert = json.loads(ctx.sandbox["devo"].table(TAG)[0]["message"])
    print(f"  one alert event: keyword {alert['keyword']['keyword_text']}, source {alert['source'].get('site', {})}")


def _next_second(ctx):
    """Wait for the next second, so that what was just published is after the last run's checkpoint."""
    time.sleep(1.02 - time.time() % 1)


STEPS = (
    Step("First run with no config and no terminal: it names what is missing instead of waiting on a prompt.",
         args=("-c", "{home}"), check=False),
    Step(f"The token goes in base64 (printf %s {TOKEN} | base64 -w0 gives {TOKEN_BASE64}). With the config "
         "written, each type goes to its own lookup and the alerts to the table.",
         set=(_config(),), args=("-c", "{home}", "-v", "2"), show=(_show, _sample)),
    Step("Flashpoint publishes 3 domains, re-enriches 2 and raises 2 alerts: the next run moves only those.",
         set=(call("flashpoint", "publish", "domain", 3), call("flashpoint", "update", "domain", 2),
              call("flashpoint", "raise_alerts", 2), _next_second),
         args=("-c", "{home}", "-v", "2"), show=(_show,)),
    Step("A lookup_key that is not in the flattened data: the run names the keys that are; the other types "
         "are delivered.",
         set=(_config(lookups=LOOKUPS + [{"url": {"lookup_key": "value.link", "lookup_status": "New"}}],
                      alerts_enabled=False),),
         args=("-c", "{home}"), check=False),
    Step("A token Flashpoint refuses, and one that is not base64: SetupError 2.",
         set=(_config(bearer_token_base64="cmV2b2tlZC10b2tlbi0xMjM0"),), args=("-c", "{home}"), check=False),
    Step(set=(_config(bearer_token_base64=TOKEN),), args=("-c", "{home}"), check=False),
    Step("Flashpoint failing mid-scroll (HTTP 503 on every retry): PullError 102, and the checkpoints stay; "
         "the next run delivers what the failed one could not.",
         set=(_config(), call("flashpoint", "publish", "domain", 2), _next_second,
              call("flashpoint", "faults.add", path="/indicators/scroll$", method="POST", status=503, count=0)),
         args=("-c", "{home}"), env=FAST_RETRIES, check=False, then=(call("flashpoint", "faults.clear"),)),
    Step(args=("-c", "{home}")),
    Step("reset_persistence_auth changed: everything is pulled again from initial_start_time; the New lookups "
         "are replaced, the Created one is added to.",
         set=(_config(reset_persistence_auth="demo-2"),), args=("-c", "{home}", "-v", "2"), show=(_show,)),
)
