"""Demo: the CTCI CEWL into a Devo lookup, then a new CVE, CTCI's body variants and faults, and a persistence reset."""

import datetime

from tq_conn_sandbox.demos import Step, call, config_file
from tq_conn_sandbox.services.ctci import TOKEN, UNSUBSCRIBED_TOKEN
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN

TITLE = "tq-conn-ctci: the CTCI CEWL (CVE Early Warning List) to a Devo lookup"
COMMAND = "tq-conn-ctci"
LOOKUP = "CTCI_CEWL"
FAST_RETRIES = {"TQ_CONN_HTTP_RETRIES": "1", "TQ_CONN_HTTP_BACKOFF": "0.1"}
# Thirty days before the demo: after the persistence reset, the CVEs added since then count as new.
SINCE = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

_config = config_file("tq-conn-ctci.yaml", lambda ctx: {
    "api_token": TOKEN, "api_base_url": ctx.url("ctci"), "reset_persistence_auth": "demo-1", "devo_transport": "rest",
    "devo_lookups_url": ctx.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN},
    style="lines")


def _lookup(limit):
    """Return an action printing the CEWL lookup in Devo, its newest rows first."""
    def show(ctx):
        view = ctx.sandbox["devo"].lookup(LOOKUP)
        if view is None:
            print(f"  Devo has no lookup {LOOKUP}.")
            return
        print(f"  Devo lookup {view['query_name']}: {view['total']} rows, key {view['key']}; newest first:")
        rows = sorted(view["rows"], key=lambda r: r["id_ref"] or 0, reverse=True)
        for row in rows[:limit]:
            print(f"    {row['cve']:<16} {row['base_score'] if row['base_score'] is not None else '-':>5}  "
                  f"{(row['vendor'] or '')[:18]:<18} {(row['product'] or '')[:24]:<24} added {row['date_added']}")
    return show


STEPS = (
    Step("First run with no config and no terminal: it names what is missing instead of waiting on a prompt.",
         args=("-c", "{home}"), check=False),
    Step("With the config written: the whole CEWL goes to the Devo lookup, keyed by CVE id.",
         set=(_config(),), args=("-c", "{home}", "-v", "2"), show=(_lookup(6),)),
    Step("CTCI adds two CVEs; the next run names them as new.",
         set=(call("ctci", "add_row", "CVE-2025-0282", vendor="ivanti", product="connect secure", base_score=9.0),
              call("ctci", "add_row", "CVE-2025-24813", vendor="apache", product="tomcat", base_score=9.8)),
         args=("-c", "{home}", "-v", "2"), show=(_lookup(3),)),
    Step("The other body forms CTCI may send (upper-case CVE key, bare array, ISO dates), rows with bad CVE ids, "
         "and a 429 with Retry-After then a 500: the same lookup arrives, the bad rows are counted and skipped.",
         set=(call("ctci", "configure", key_case="upper", envelope="bare", dates="iso", bad_cve=True, throttle=1,
                   retry_after=1, fail=1),),
         args=("-c", "{home}"),
         then=(call("ctci", "configure", key_case="lower", envelope="data", dates="epoch_ms", bad_cve=False),)),
    Step("CTCI answers with an HTML maintenance page: the run fails with the status and the page's text, "
         "and the state stays where it was.",
         set=(call("ctci", "configure", html=20),), args=("-c", "{home}"), env=FAST_RETRIES, check=False,
         then=(call("ctci", "configure", html=0),)),
    Step("A token without a CEWL subscription gets the restricted list, and the run says so.",
         set=(_config(api_token=UNSUBSCRIBED_TOKEN, lookup_name="CTCI_CEWL_restricted"),), args=("-c", "{home}"),
         check=False),
    Step("A misconfiguration carries the id of the collector's error table and the fix.",
         set=(_config(historical_poll_datetime="last tuesday"),), args=("-c", "{home}"), check=False),
    Step(f"reset_persistence_auth changed (and historical_poll_datetime {SINCE}): the state starts over, and "
         "the CVEs added since that date count as new.",
         set=(_config(reset_persistence_auth="demo-2", historical_poll_datetime=SINCE),),
         args=("-c", "{home}", "-v", "2"), show=(_lookup(3),)),
)
