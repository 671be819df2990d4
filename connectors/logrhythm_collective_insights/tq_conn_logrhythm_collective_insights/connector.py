"""LogRhythm Collective Insights: parameters, seed 004's flags, one stream from a window's alarms to detections."""

import logging
from collections import Counter

from tq_conn_common import BadRecord, Connector, Declared, Param, SourceError, Stream, UsageError, checks, cli, clock
from tq_conn_logrhythm_collective_insights import indicators, insights, source

log = logging.getLogger(__name__)

RECORDED_FUTURE = "Recorded Future"
_TALLY = ("found", "left out", "already submitted", "below priority", "without IOCs", "with IOCs")

PARAMS = (
    insights.RF_KEY, source.LR_KEY, source.LR_URL,
    *checks.tls_params("logrhythm", "LogRhythm"),
    insights.RF_URL,
    Param("organization_ids", "Organization IDs", type=list, default=[],
          help="Multi-organization enterprises: the uhash:... ids the detections belong to (comma-separated)."),
    Param("batch_size", "Batch Size", type=int, default=200, range=(1, 1000),
          help="Detections per Collective Insights request."),
    Param("daily_limit", "Daily Submission Limit", type=int, default=insights.DAILY_LIMIT, range=(1, 1_000_000),
          help="Detections submitted per UTC day at most; Collective Insights accepts 15000."),
    Param("page_size", "Alarms Per Request", type=int, default=source.PAGE_SIZE, range=(1, 1000),
          help="Alarms asked for per search request; LogRhythm answers at most 100."),
    Param("state_days", "Days Remembered", type=int, default=30, range=(1, 3650),
          help="Days the state remembers submitted alarms, so that reruns over the same window send nothing twice."),
)
BAD_FILE = Declared(UsageError, "The exclusion file {path} given with -ef cannot be read ({why}).",
                    "check the path, and save the file as UTF-8 text with one alarm rule name a line; or run without "
                    "-ef.")
UNREAD = Declared(SourceError, "{count} alarm(s) could not be read from LogRhythm ({shown}); the others were sent.",
                  "run again with the same window (-lb); state remembers what was sent, so only these are sent.")
GONE = Declared(BadRecord, "alarm no longer found in LogRhythm")


def add_arguments(parser):
    """Add the flags of seed 004 (-d is the common --dry-run)."""
    group = parser.add_argument_group("LogRhythm Collective Insights")
    group.add_argument("-d", "--debug", dest="dry_run", action="store_true",
                       help="build and log the detections, submit nothing (the same as --dry-run)")
    group.add_argument("-lb", "--lookback", metavar="DAYS", type=cli.whole(1),
                       help="search alarms of the last DAYS days instead of the previous 24 hours (backfill)")
    group.add_argument("-rf", "--recorded-future", action="store_true",
                       help=f"only alarms whose rule name contains '{RECORDED_FUTURE}'")
    group.add_argument("-rbp", "--risk-based-priority", metavar="N", type=cli.whole(0, 100),
                       help="0 to 100: drop alarms whose Risk Based Priority is lower than N")
    group.add_argument("-ef", "--exclusion-file", metavar="FILE",
                       help="text file of alarm rule names to leave out, one a line")


def read_exclusions(path):
    """Return the rule names of an exclusion file: one a line, blanks and surrounding spaces ignored."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return {line.strip() for line in fh if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise BAD_FILE(path=path, why=getattr(exc, "strerror", None) or exc) from None


class Alarms:
    """One run's alarms: searched, left out as the flags say or when an earlier run submitted them, then read."""

    def __init__(self, run, outbox):
        self.args, self.outbox, self.tally = run.args, outbox, Counter(dict.fromkeys(_TALLY, 0))
        self.exclusions = read_exclusions(self.args.exclusion_file) if self.args.exclusion_file else set()

    def fetch(self, ctx):
        """Yield (alarm, when inserted, IOCs) of each alarm to submit; one that fails is retried by the next run."""
        args, config = self.args, ctx.config
        start, end = source.window(args.lookback, clock.now())
        keep_after = end.timestamp() - 86400 * max(config.state_days, args.lookback or 1)
        submitted = ctx.checkpoint["submitted"] = {k: v for k, v in ctx.saved.get("submitted", {}).items()
                                                   if v >= keep_after}
        log.info("Searching LogRhythm alarms inserted from %s to %s UTC%s.", source.format_date(start),
                 source.format_date(end), " (debug mode: nothing is submitted)" if ctx.dry_run else "")
        lr = source.client(ctx)
        for alarm in source.Search(ctx, lr, start, end).alarms():
            alarm_id, rule = alarm["alarmId"], str(alarm.get("alarmRuleName") or "")
            left = ("left out" if args.recorded_future and RECORDED_FUTURE not in rule or rule.strip() in
                    self.exclusions else "already submitted" if str(alarm_id) in submitted else None)
            self.tally["found"] += 1
            if left:
                self.tally[left] += 1
                continue
            read = ctx.read(alarm_id, self._read, lr, alarm_id, gone=GONE)
            if ctx.halted:   # three alarms in a row could not be read: LogRhythm is failing
                return
            if read is None or read[1] is None:   # skipped, left to the next run, or below the priority asked
                self.tally["below priority"] += read is not None
                continue
            priority, found, duplicates = read
            ctx.run.stats.duplicates += duplicates
            self.tally["with IOCs" if found else "without IOCs"] += 1
            log.debug("Alarm %s (%s), Risk Based Priority %s: %d IOCs.", alarm_id, rule, priority, len(found))
            if found:
                yield alarm, source.inserted(alarm), found
            else:   # nothing to submit: remembered at once
                submitted[str(alarm_id)] = int(source.inserted(alarm).timestamp())

    def _read(self, lr, alarm_id):
        """Return (Risk Based Priority, IOCs, duplicates dropped) of one alarm, IOCs None when it is below -rbp."""
        priority = source.risk_based_priority(source.details(lr, alarm_id))
        if self.args.risk_based_priority is not None and (priority or 0) < self.args.risk_based_priority:
            return priority, None, 0
        return (priority, *indicators.alarm_iocs(source.events(lr, alarm_id)))

    def report(self, ctx):
        """Log the alarm counts, and what Collective Insights processed (in debug mode: what was built)."""
        log.info("Alarms: %s.", ", ".join(f"{count} {what}" for what, count in self.tally.items()))
        if ctx.dry_run:
            log.info("Debug mode (-d): %d detections built, nothing submitted.", self.outbox.built)
        elif self.outbox.processed:
            log.info("Collective Insights processed in total: %s.", insights.counts(self.outbox.processed))


def streams(run):
    """The one stream: the alarms of the window to Collective Insights, the detections of an alarm kept together."""
    alarms = Alarms(run, insights.Outbox(run))
    return (Stream("alarms", fetch=alarms.fetch, to_row=insights.detections, to=alarms.outbox, state=(), what="alarm",
                   batch_size=run.config.batch_size, done=alarms.report,
                   messages={"unread": (UNREAD.message, UNREAD.fix)}),)


CONNECTOR = Connector(
    name="logrhythm_collective_insights", title="LogRhythm Collective Insights", params=PARAMS, streams=streams,
    add_arguments=add_arguments, verbosity=2,   # seed 004 FAQ 9: INFO unless asked otherwise
    description="Send the IOCs of LogRhythm alarms (IPs, domains, URLs, CVEs) to Recorded Future Collective Insights "
                "as detections.")
main = CONNECTOR.main
