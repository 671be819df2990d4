"""Demo: the CTCI CEWL into a Devo lookup, then a new CVE, CTCI's body variants and faults, and a persistence reset."""

import datetime
import os

from tq_conn_sandbox.services.ctci import TOKEN, UNSUBSCRIBED_TOKEN
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN

TITLE = "tq-conn-ctci: the CTCI CEWL (CVE Early Warning List) to a Devo lookup"
COMMAND = "tq-conn-ctci"
LOOKUP = "CTCI_CEWL"


def _write(folder, ctx, **extra):
    values = {"api_token": TOKEN, "api_base_url": ctx.url("ctci"), "reset_persistence_auth": "demo-1",
              "devo_transport": "rest", "devo_lookups_url": ctx.url("devo") + "/lookup-api",
              "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, **extra}
    lines = [f"{key}: {value}" for key, value in values.items()]
    with open(os.path.join(folder, "tq-conn-ctci.yaml"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(os.path.join(folder, "tq-conn-ctci.yaml"), 0o600)


def _show(ctx, limit=6):
    view = ctx.sandbox["devo"].lookup(LOOKUP)
    if view is None:
        print(f"  Devo has no lookup {LOOKUP}.")
        return
    print(f"  Devo lookup {view['query_name']}: {view['total']} rows, key {view['key']}; newest first:")
    rows = sorted(view["rows"], key=lambda r: r["id_ref"] or 0, reverse=True)
    for row in rows[:limit]:
        print(f"    {row['cve']:<16} {row['base_score'] if row['base_score'] is not None else '-':>5}  "
              f"{(row['vendor'] or '')[:18]:<18} {(row['product'] or '')[:24]:<24} added {row['date_added']}")


def run(ctx):
    ctci = ctx.sandbox["ctci"]
    folder = ctx.folder("ctci")

    print("First run with no config and no terminal: it names what is missing instead of waiting on a prompt.")
    ctx.sh(COMMAND, "-c", folder, check=False)

    print("\nWith the config written: the whole CEWL goes to the Devo lookup, keyed by CVE id.")
    _write(folder, ctx)
    ctx.sh(COMMAND, "-c", folder, "-v", "2")
    _show(ctx)

    print("\nCTCI adds two CVEs; the next run names them as new.")
    ctci.add_row("CVE-2025-0282", vendor="ivanti", product="connect secure", base_score=9.0)
    ctci.add_row("CVE-2025-24813", vendor="apache", product="tomcat", base_score=9.8)
    ctx.sh(COMMAND, "-c", folder, "-v", "2")
    _show(ctx, 3)

    print("\nThe other body forms CTCI may send (upper-case CVE key, bare array, ISO dates), rows with bad CVE ids, "
          "and a 429 with Retry-After then a 500: the same lookup arrives, the bad rows are counted and skipped.")
    ctci.configure(key_case="upper", envelope="bare", dates="iso", bad_cve=True, throttle=1, retry_after=1, fail=1)
    ctx.sh(COMMAND, "-c", folder)
    ctci.configure(key_case="lower", envelope="data", dates="epoch_ms", bad_cve=False)

    print("\nCTCI answers with an HTML maintenance page: the run fails with the status and the page's text, "
          "and the state stays where it was.")
    ctci.configure(html=20)
    ctx.sh(COMMAND, "-c", folder, env={"TQ_CONN_HTTP_RETRIES": "1", "TQ_CONN_HTTP_BACKOFF": "0.1"}, check=False)
    ctci.configure(html=0)

    print("\nA token without a CEWL subscription gets the restricted list, and the run says so.")
    _write(folder, ctx, api_token=UNSUBSCRIBED_TOKEN, lookup_name="CTCI_CEWL_restricted")
    ctx.sh(COMMAND, "-c", folder, check=False)

    print("\nA misconfiguration carries the id of the collector's error table and the fix.")
    _write(folder, ctx, historical_poll_datetime="last tuesday")
    ctx.sh(COMMAND, "-c", folder, check=False)

    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"\nreset_persistence_auth changed (and historical_poll_datetime {since}): the state starts over, and "
          "the CVEs added since that date count as new.")
    _write(folder, ctx, reset_persistence_auth="demo-2", historical_poll_datetime=since)
    ctx.sh(COMMAND, "-c", folder, "-v", "2")
    _show(ctx, 3)
