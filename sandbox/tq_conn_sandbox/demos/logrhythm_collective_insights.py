"""Demo: LogRhythm alarms' IOCs into Collective Insights, debug run first, then for real, then past 100 alarms."""

TITLE = "tq-conn-logrhythm-collective-insights: LogRhythm alarms to Recorded Future Collective Insights"
COMMAND = "tq-conn-logrhythm-collective-insights"


def _show(ci, since=0):
    rows = ci.detections[since:]
    print(f"  Collective Insights stored {len(rows)} new detection(s) ({len(ci.detections)} in all):")
    for det in rows[:12]:
        ioc = det["ioc"]
        print(f"    {ioc['type']:<13} {ioc['value']:<45} incident {det['incident']['name']}")
    if len(rows) > 12:
        print(f"    ... and {len(rows) - 12} more")
    return len(ci.detections)


def run(ctx):
    lr, ci = ctx.sandbox["logrhythm"], ctx.sandbox["collective_insights"]
    folder = ctx.folder("logrhythm_collective_insights")
    env = {"RF_API_KEY": ci.token, "LOGRHYTHM_API_KEY": lr.token, "LOGRHYTHM_API_URL": ctx.url("logrhythm"),
           "TQ_CONN_RF_API_URL": ctx.url("collective_insights")}

    print("Debug mode: build and log the detections, submit nothing.")
    ctx.sh(COMMAND, "-c", folder, "-d", env=env)
    print(f"  Collective Insights received {len(ci.submissions)} request(s).")

    print("\nFor real: the same detections go to Collective Insights (RFC 1918 and other internal values dropped).")
    ctx.sh(COMMAND, "-c", folder, env=env)
    seen = _show(ci)

    print("\nA rerun over the same window sends nothing twice.")
    ctx.sh(COMMAND, "-c", folder, "-l", "WARNING", env=env)
    seen = _show(ci, seen)

    print("\n250 alarms in the last hour, and a LogRhythm that ignores the search offset: all 250 arrive.")
    lr.add_burst(250, minutes=60)
    lr.configure(ignore_offset=True)
    ctx.sh(COMMAND, "-c", folder, "-l", "WARNING", env=env)
    _show(ci, seen)
    lr.configure(ignore_offset=False)
