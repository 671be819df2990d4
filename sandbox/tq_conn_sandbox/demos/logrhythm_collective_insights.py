"""Demo: LogRhythm alarms' IOCs into Collective Insights, debug run first, then for real, then past 100 alarms."""

from tq_conn_sandbox.demos import Step, call

TITLE = "tq-conn-logrhythm-collective-insights: LogRhythm alarms to Recorded Future Collective Insights"
COMMAND = "tq-conn-logrhythm-collective-insights"


def ENV(ctx):
    """The API keys and URLs of both stand-ins, as a cron job would have them in its environment."""
    lr, ci = ctx.sandbox["logrhythm"], ctx.sandbox["collective_insights"]
    return {"RF_API_KEY": ci.token, "LOGRHYTHM_API_KEY": lr.token, "LOGRHYTHM_API_URL": ctx.url("logrhythm"),
            "TQ_CONN_RF_API_URL": ctx.url("collective_insights")}


def _requests(ctx):
    print(f"  Collective Insights received {len(ctx.sandbox['collective_insights'].submissions)} request(s).")


def _detections(ctx):
    """Print the detections stored since the last time this was shown."""
    ci = ctx.sandbox["collective_insights"]
    rows = ci.detections[ctx.notes.get("seen", 0):]
    print(f"  Collective Insights stored {len(rows)} new detection(s) ({len(ci.detections)} in all):")
    for det in rows[:12]:
        ioc = det["ioc"]
        print(f"    {ioc['type']:<13} {ioc['value']:<45} incident {det['incident']['name']}")
    if len(rows) > 12:
        print(f"    ... and {len(rows) - 12} more")
    ctx.notes["seen"] = len(ci.detections)


STEPS = (
    Step("Debug mode: build and log the detections, submit nothing.", args=("-c", "{home}", "-d"), show=(_requests,)),
    Step("For real: the same detections go to Collective Insights (RFC 1918 and other internal values dropped).",
         args=("-c", "{home}"), show=(_detections,)),
    Step("A rerun over the same window sends nothing twice.",
         args=("-c", "{home}", "-l", "WARNING"), show=(_detections,)),
    Step("250 alarms in the last hour, and a LogRhythm that ignores the search offset: all 250 arrive.",
         set=(call("logrhythm", "add_burst", 250, minutes=60), call("logrhythm", "configure", ignore_offset=True)),
         args=("-c", "{home}", "-l", "WARNING"), show=(_detections,),
         then=(call("logrhythm", "configure", ignore_offset=False),)),
)
