"""Demo: a ThreatQ data collection into a Devo lookup, set up as a user would: prompts' answers, the UI, the runs."""

import json
import urllib.request

from tq_conn_sandbox.demos import Step, call
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.threatq import CLIENT_ID, PASSWORD, USERNAME

TITLE = "tq-conn-devo-ioc-exporter: a ThreatQ data collection to a Devo lookup"
COMMAND = "tq-conn-devo-ioc-exporter"
LOOKUP = "ThreatQ_IOCs"


def ENV(ctx):
    """The five first-run answers, and where the sandbox's Devo listens (local settings, not in the UI).

    On a terminal the answers are prompted; for automation they may come from the environment or the config file.
    """
    host, port = ctx.sandbox["devo"].collector_address
    return {"TQ_CONN_THREATQ_HOST": ctx.url("threatq"), "TQ_CONN_THREATQ_CLIENT_ID": CLIENT_ID,
            "TQ_CONN_THREATQ_USERNAME": USERNAME, "TQ_CONN_THREATQ_PASSWORD": PASSWORD, "TQ_CONN_STATUS": "Review",
            "TQ_CONN_DEVO_LOOKUPS_URL": ctx.url("devo") + "/lookup-api", "TQ_CONN_DEVO_HOST": host,
            "TQ_CONN_DEVO_PORT": str(port), "TQ_CONN_DEVO_TLS_DELAY": "0"}


def _ui(values=None, is_active=None):
    """Return an action playing the user on the ThreatQ integrations page: the Configuration tab, the toggle."""
    def action(ctx):
        body = {"values": (values(ctx) if callable(values) else values) or {}}
        if is_active is not None:
            body["is_active"] = is_active
        request = urllib.request.Request(f"{ctx.url('threatq')}/_sandbox/threatq/connectors/{COMMAND}",
                                         data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
    return action


def _x509(ctx):
    """Return the Configuration tab's values for the X.509 collector: a client certificate, its key and the chain."""
    issued = ctx.sandbox["devo"].client_certificate()
    return {"devo_token": "", "devo_domain": "", "devo_cert": issued.cert_pem, "devo_key": issued.key_pem,
            "devo_chain": ctx.sandbox["devo"].authority.cert_pem, "lookup_name": "ThreatQ_IOCs_X509"}


def _lookup(name=LOOKUP, limit=4):
    """Return an action printing a Devo lookup: a few rows, and the columns that arrived without values."""
    def show(ctx):
        view = ctx.sandbox["devo"].lookup(name)
        if view is None:
            print(f"  Devo has no lookup {name}.")
            return
        print(f"  Devo lookup {view['query_name']}: {view['total']} rows, key {view['key']}; a few of them:")
        for row in view["rows"][:limit]:
            print("    " + ", ".join(f"{key}={value}" for key, value in row.items()))
        empty = [c["name"] for c in view["columns"] if not any(r[c["name"]] not in ("", None) for r in view["rows"])]
        print("  Every column has values." if not empty else f"  Columns without values: {', '.join(empty)}")
    return show


def _registered(ctx):
    record = ctx.sandbox["threatq"].connector(COMMAND)
    print(f"  ThreatQ now shows '{record['display_name']}' with {len(record['custom_fields'])} fields on its "
          "Configuration tab: " + ", ".join(f["label"] for f in record["custom_fields"]) + ".")


def _last_import(ctx):
    record = ctx.sandbox["threatq"].connector(COMMAND)
    print(f"  ThreatQ records the run: last import {record['last_import_at']}, {record['last_import_count']} items.")


STEPS = (
    Step("First run: it logs in to ThreatQ, registers the connector on the integrations page (category Labs) "
         "and says what to do next.",
         args=("-c", "{home}"), show=(_registered,)),
    Step("It is not enabled yet, so a run (from cron, say) stops with a message and sends nothing.",
         args=("-c", "{home}")),
    Step("The user fills the Configuration tab (Devo API token and domain, lookup, data collection, ThreatQ "
         "hostname for the links) and flips the toggle; the next run delivers the collection.",
         set=(_ui({"devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "lookup_name": LOOKUP,
                  "collection_name": "Devo Export", "threatq_hostname": "threatq.example.com"}, is_active=True),),
         args=("-c", "{home}", "-v", "2"), show=(_lookup(), _last_import)),
    Step("Only the Devo X.509 certificate, key and chain pasted into the UI instead of the token, as the vendor "
         "guide had it: Devo announced the end of that lookup upload for 2026-01-01 and it confirms nothing, so "
         "the run stops and says what to set.",
         set=(_ui(_x509),), args=("-c", "{home}"), check=False),
    Step("Chosen on purpose (Devo Transport: tls), the X.509 collector delivers the same collection; the "
         "statistics line says the lookup went out unconfirmed.",
         set=(_ui({"devo_transport": "tls"}),), args=("-c", "{home}", "-v", "2"),
         show=(_lookup("ThreatQ_IOCs_X509", limit=1),)),
    Step("ThreatQ revokes the token in the middle of the paging (page 3, batch size 100): the connector renews "
         "it and goes on.",
         set=(_ui({"devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "devo_cert": "", "devo_key": "",
                  "devo_chain": "", "devo_transport": "auto", "lookup_name": LOOKUP, "batch_size": 100}),
              call("threatq", "configure", revoke_on_page=3)),
         args=("-c", "{home}", "-v", "2"), then=(call("threatq", "configure", revoke_on_page=0),)),
    Step("A data collection name with a typo: the run stops, lists the collections that exist, and leaves the "
         "lookup as it was.",
         set=(_ui({"collection_name": "Devo export"}),), args=("-c", "{home}"), check=False,
         then=(_ui({"collection_name": "Devo Export", "batch_size": 1000}),)),
)
