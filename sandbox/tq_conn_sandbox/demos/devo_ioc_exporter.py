"""Demo: a ThreatQ data collection into a Devo lookup, set up as a user would: prompts' answers, the UI, the runs."""

import json
import urllib.request

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.threatq import CLIENT_ID, PASSWORD, USERNAME

TITLE = "tq-conn-devo-ioc-exporter: a ThreatQ data collection to a Devo lookup"
COMMAND = "tq-conn-devo-ioc-exporter"
LOOKUP = "ThreatQ_IOCs"


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _in_ui(ctx, values=None, is_active=None):
    """Play the user on the ThreatQ integrations page: the Configuration tab and the enable toggle."""
    body = {"values": values or {}}
    if is_active is not None:
        body["is_active"] = is_active
    _post(f"{ctx.url('threatq')}/_sandbox/threatq/connectors/{COMMAND}", body)


def _show(ctx, name=LOOKUP, limit=4):
    view = ctx.sandbox["devo"].lookup(name)
    if view is None:
        print(f"  Devo has no lookup {name}.")
        return
    print(f"  Devo lookup {view['query_name']}: {view['total']} rows, key {view['key']}; a few of them:")
    for row in view["rows"][:limit]:
        print("    " + ", ".join(f"{key}={value}" for key, value in row.items()))
    empty = [c["name"] for c in view["columns"] if not any(r[c["name"]] not in ("", None) for r in view["rows"])]
    print("  Every column has values." if not empty else f"  Columns without values: {', '.join(empty)}")


def run(ctx):
    threatq = ctx.sandbox["threatq"]
    folder = ctx.folder("devo_ioc_exporter")
    host, port = ctx.sandbox["devo"].collector_address
    # The five first-run answers (on a terminal they are prompted; for automation they may come from the
    # environment or the config file), and where the sandbox's Devo listens (local settings, not in the UI).
    env = {"TQ_CONN_THREATQ_HOST": ctx.url("threatq"), "TQ_CONN_THREATQ_CLIENT_ID": CLIENT_ID,
           "TQ_CONN_THREATQ_USERNAME": USERNAME, "TQ_CONN_THREATQ_PASSWORD": PASSWORD, "TQ_CONN_STATUS": "Review",
           "TQ_CONN_DEVO_LOOKUPS_URL": ctx.url("devo") + "/lookup-api", "TQ_CONN_DEVO_HOST": host,
           "TQ_CONN_DEVO_PORT": str(port), "TQ_CONN_DEVO_TLS_DELAY": "0"}

    print("First run: it logs in to ThreatQ, registers the connector on the integrations page (category Labs) "
          "and says what to do next.")
    ctx.sh(COMMAND, "-c", folder, env=env)
    record = threatq.connector(COMMAND)
    print(f"  ThreatQ now shows '{record['display_name']}' with {len(record['custom_fields'])} fields on its "
          "Configuration tab: " + ", ".join(f["label"] for f in record["custom_fields"]) + ".")

    print("\nIt is not enabled yet, so a run (from cron, say) stops with a message and sends nothing.")
    ctx.sh(COMMAND, "-c", folder, env=env)

    print("\nThe user fills the Configuration tab (Devo API token and domain, lookup, data collection, ThreatQ "
          "hostname for the links) and flips the toggle; the next run delivers the collection.")
    _in_ui(ctx, {"devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "lookup_name": LOOKUP,
                 "collection_name": "Devo Export", "threatq_hostname": "threatq.example.com"}, is_active=True)
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=env)
    _show(ctx)
    record = threatq.connector(COMMAND)
    print(f"  ThreatQ records the run: last import {record['last_import_at']}, {record['last_import_count']} items.")

    print("\nThe same collection over the X.509 collector: the Devo certificate, key and chain pasted into the UI "
          "instead of the token (the log names the transport).")
    issued = ctx.sandbox["devo"].client_certificate()
    _in_ui(ctx, {"devo_token": "", "devo_domain": "", "devo_cert": issued.cert_pem, "devo_key": issued.key_pem,
                 "devo_chain": ctx.sandbox["devo"].authority.cert_pem, "lookup_name": "ThreatQ_IOCs_X509"})
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=env)
    _show(ctx, "ThreatQ_IOCs_X509", limit=1)

    print("\nThreatQ revokes the token in the middle of the paging (page 3, batch size 100): the connector renews "
          "it and goes on.")
    _in_ui(ctx, {"devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "devo_cert": "", "devo_key": "",
                 "devo_chain": "", "lookup_name": LOOKUP, "batch_size": 100})
    threatq.configure(revoke_on_page=3)
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=env)
    threatq.configure(revoke_on_page=0)

    print("\nA data collection name with a typo: the run stops, lists the collections that exist, and leaves the "
          "lookup as it was.")
    _in_ui(ctx, {"collection_name": "Devo export"})
    ctx.sh(COMMAND, "-c", folder, env=env, check=False)
    _in_ui(ctx, {"collection_name": "Devo Export", "batch_size": 1000})
