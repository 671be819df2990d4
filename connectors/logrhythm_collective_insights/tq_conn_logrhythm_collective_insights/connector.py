"""The LogRhythm Collective Insights connector: parameters, flags (seed 004) and the run sequence."""

import argparse
import logging
import time
from datetime import datetime, timezone

from tq_conn_common import BadRecord, Connector, Param, SourceError, UsageError, DeliveryError
from tq_conn_common.http import HttpError

from tq_conn_logrhythm_collective_insights import indicators, insights, source

log = logging.getLogger(__name__)

RECORDED_FUTURE = "Recorded Future"
_FAILURES_IN_A_ROW = 3
_LEVELS = {"DEBUG": 3, "INFO": 2, "WARNING": 1, "ERROR": 1, "CRITICAL": 1}


def _rf_key(value):
    # psengine refuses any other token shape before sending (recorded-future.md 2).
    if len(value) != 32 or not value.isascii() or not value.isalnum() or value.lower() != value:
        raise ValueError("is not 32 lower-case letters and digits; copy the API key from the Recorded Future portal.")
    return value


def _url(value):
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError(f"{value!r} does not start with http:// or https://; set e.g. http://localhost:8505.")
    value = value.rstrip("/")
    # Users copy the alarm API address too; the gateway root is what is meant.
    return value[: -len(source.API_PREFIX)] if value.endswith(source.API_PREFIX) else value


PARAMS = (
    Param("rf_api_key", "Recorded Future API Key", secret=True, required=True, env="RF_API_KEY", check=_rf_key,
          help="Recorded Future API key with Collective Insights enabled."),
    Param("logrhythm_api_key", "LogRhythm API Key", secret=True, required=True, env="LOGRHYTHM_API_KEY",
          help="Token of the LogRhythm Third Party Application registered in the Client Console."),
    Param("logrhythm_api_url", "LogRhythm API URL", required=True, env="LOGRHYTHM_API_URL", check=_url,
          help="LogRhythm API gateway, e.g. http://localhost:8505 on the Platform Manager, "
               "https://<platform manager>:8501 from another host; cloud customers get it from LogRhythm."),
    Param("logrhythm_verify_tls", "Verify LogRhythm TLS Certificate", type=bool, default=True,
          help="Check the LogRhythm gateway's certificate (set false only for a self-signed gateway you trust; "
               "better: give its CA in logrhythm_ca_bundle)."),
    Param("logrhythm_ca_bundle", "LogRhythm CA Bundle",
          help="Path of a PEM file with the CA that signed the LogRhythm gateway's certificate."),
    Param("rf_api_url", "Recorded Future API URL", default=insights.DEFAULT_URL, check=_url,
          help="Base URL of the Recorded Future API; Collective Insights is at <URL>/collective-insights/detections."),
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


class _LogLevel(argparse.Action):
    """-l LEVEL sets the verbosity of the common flags: DEBUG is -v 3, INFO -v 2, WARNING and ERROR -v 1."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.log_level = values
        namespace.verbosity = _LEVELS[values]


def _positive_days(text):
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"{days} is not a positive number of days; give 1 or more")
    return days


def _priority(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 100") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not from 0 to 100")
    return value


def add_arguments(parser):
    """Add the flags of seed 004."""
    group = parser.add_argument_group("LogRhythm Collective Insights")
    group.add_argument("-d", "--debug", action="store_true",
                       help="build and log the detections, submit nothing")
    group.add_argument("-lb", "--lookback", metavar="DAYS", type=_positive_days,
                       help="search alarms of the last DAYS days instead of the previous 24 hours (backfill)")
    group.add_argument("-rf", "--recorded-future", action="store_true",
                       help=f"only alarms whose rule name contains '{RECORDED_FUTURE}'")
    group.add_argument("-rbp", "--risk-based-priority", metavar="N", type=_priority,
                       help="0 to 100: drop alarms whose Risk Based Priority is lower than N")
    group.add_argument("-ef", "--exclusion-file", metavar="FILE",
                       help="text file of alarm rule names to leave out, one a line")
    group.add_argument("-l", "--log-level", metavar="LEVEL", action=_LogLevel, type=str.upper,
                       choices=tuple(_LEVELS),
                       help="DEBUG, INFO (default), WARNING or ERROR; the same as -v 3, -v 2, -v 1")
    # Seed 004 FAQ 9: INFO unless asked otherwise.
    parser.set_defaults(verbosity=2, log_level="INFO")
    for action in parser._actions:
        if action.dest == "verbosity":
            action.help = "1 warnings and the summary, 2 progress (default: -l INFO), 3 debug with the effective config"


def read_exclusions(path):
    """Return the rule names of an exclusion file: one a line, blanks and surrounding spaces ignored."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return {line.strip() for line in fh if line.strip()}
    except FileNotFoundError:
        raise UsageError(f"The exclusion file {path} given with -ef does not exist.",
                         "check the path, or run without -ef.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"The exclusion file {path} given with -ef cannot be read ({exc}).",
                         "save it as UTF-8 text with one alarm rule name a line.") from None


def _selected(alarm, args, exclusions):
    """Return why an alarm is left out by the -rf and -ef flags, or None."""
    rule = str(alarm.get("alarmRuleName") or "")
    if args.recorded_future and RECORDED_FUTURE not in rule:
        return "not a Recorded Future rule (-rf)"
    if rule.strip() in exclusions:
        return "rule in the exclusion file (-ef)"
    return None


class _Outbox:
    """Detections waiting for Collective Insights, an alarm never split between two commits of the state."""

    def __init__(self, run, submitter, dry_run):
        self.run, self.submitter, self.dry_run = run, submitter, dry_run
        self.batch_size = run.config.batch_size
        self.limit = run.config.daily_limit
        self.insights, self.alarms = [], []
        self.processed = {}
        self.built = 0

    def add(self, alarm_id, epoch, detections):
        items = []
        for det in detections:
            try:
                items.append(self.submitter.insight(det))
            except BadRecord as bad:
                self.run.skip(bad, "detection")
                continue
            self.built += 1
            if self.dry_run:
                log.info("Detection (debug mode, not submitted): %s", insights.describe(det))
            else:
                log.debug("Detection: %s", insights.describe(det))
        if self.insights and len(self.insights) + len(items) > self.batch_size:
            self.flush()
        self.insights.extend(items)
        self.alarms.append((alarm_id, epoch))
        if len(self.insights) >= self.batch_size:
            self.flush()

    def flush(self):
        """Submit what is waiting, in batches within the daily limit; remember the alarms, commit the state."""
        if self.dry_run:
            self.insights, self.alarms = [], []
            return
        state = self.run.state
        for start in range(0, len(self.insights), self.batch_size):
            batch = self.insights[start:start + self.batch_size]
            day = time.strftime("%Y-%m-%d", time.gmtime())
            used = state.get("daily", {}).get("count", 0) if state.get("daily", {}).get("day") == day else 0
            if used + len(batch) > self.limit:
                state.commit()
                raise DeliveryError(f"Stopped at the daily limit of {self.limit} Collective Insights submissions "
                                    f"({used} sent on {day} UTC); the remaining alarms were not submitted.",
                                    "run again after 00:00 UTC with -lb covering them; state remembers what was "
                                    "sent, so nothing is sent twice.", retryable=True)
            processed = self.submitter.submit(batch)
            state["daily"] = {"day": day, "count": used + len(batch)}
            self.run.stats.delivered += len(batch)
            if processed is not None:
                for kind, count in processed.items():
                    self.processed[kind] = self.processed.get(kind, 0) + count
                log.info("Collective Insights accepted %d detections; processed: %s.", len(batch), _counts(processed))
            else:
                log.info("Collective Insights accepted %d detections.", len(batch))
            state.commit()
        submitted = state.setdefault("submitted", {})
        for alarm_id, epoch in self.alarms:
            submitted[str(alarm_id)] = epoch
        state.commit()
        self.insights, self.alarms = [], []


def _counts(processed):
    return ", ".join(f"{kind} {count}" for kind, count in processed.items())


def run(run):
    """Search the alarms of the window, extract their IOCs, and submit one detection per IOC."""
    args = run.args
    if args.log_level in ("ERROR", "CRITICAL") and args.verbosity == 1:
        logging.getLogger().setLevel(getattr(logging, args.log_level))
    exclusions = read_exclusions(args.exclusion_file) if args.exclusion_file else set()
    start, end = source.window(args.lookback)
    dry_run = args.debug
    submitter = insights.Submitter(run, dry_run=dry_run)
    lr = source.client(run)
    state = run.state
    keep_after = end.timestamp() - 86400 * max(run.config.state_days, args.lookback or 1)
    submitted = {k: v for k, v in state.get("submitted", {}).items() if v >= keep_after}
    state["submitted"] = submitted
    log.info("Searching LogRhythm alarms inserted from %s to %s UTC%s.", source.format_date(start),
             source.format_date(end), " (debug mode: nothing is submitted)" if dry_run else "")

    outbox = _Outbox(run, submitter, dry_run)
    tally = {"found": 0, "left out": 0, "already submitted": 0, "below priority": 0, "without IOCs": 0,
             "with IOCs": 0}
    failed, in_a_row = [], 0
    for alarm in source.search(run, lr, start, end, run.config.page_size):
        tally["found"] += 1
        alarm_id = alarm.get("alarmId")
        why = _selected(alarm, args, exclusions)
        if why:
            tally["left out"] += 1
            log.debug("Alarm %s (%s) left out: %s.", alarm_id, alarm.get("alarmRuleName"), why)
            continue
        if str(alarm_id) in submitted:
            tally["already submitted"] += 1
            log.debug("Alarm %s was submitted by an earlier run.", alarm_id)
            continue
        try:
            detail = source.details(lr, alarm_id)
            priority = source.risk_based_priority(detail)
            if args.risk_based_priority is not None and (priority or 0) < args.risk_based_priority:
                tally["below priority"] += 1
                log.debug("Alarm %s left out: Risk Based Priority %s is below %d (-rbp).", alarm_id, priority,
                          args.risk_based_priority)
                continue
            found, duplicates = indicators.alarm_iocs(source.events(lr, alarm_id))
        except BadRecord as bad:
            run.skip(bad, "alarm")
            continue
        except HttpError as exc:
            if exc.status == 404:
                run.skip(BadRecord("alarm no longer found in LogRhythm", alarm_id=alarm_id), "alarm")
                continue
            if exc.status in (401, 403):
                raise
            log.warning("Alarm %s could not be read from LogRhythm: %s", alarm_id, exc.message)
            failed.append(alarm_id)
            in_a_row += 1
            if in_a_row >= _FAILURES_IN_A_ROW:
                # LogRhythm itself is failing, not one alarm: stop instead of retrying every alarm in turn.
                outbox.flush()
                raise
            continue
        in_a_row = 0
        run.stats.duplicates += duplicates
        inserted = source.parse_date(alarm["dateInserted"])
        tally["with IOCs" if found else "without IOCs"] += 1
        log.debug("Alarm %s (%s), Risk Based Priority %s: %d IOCs.", alarm_id, alarm.get("alarmRuleName"),
                  priority, len(found))
        detections = [insights.detection(alarm, inserted, kind, value, field) for kind, value, field in found]
        outbox.add(alarm_id, int(inserted.timestamp()), detections)
    outbox.flush()

    log.info("Alarms: %s.", ", ".join(f"{count} {what}" for what, count in tally.items()))
    if dry_run:
        log.info("Debug mode (-d): %d detections built, nothing submitted.", outbox.built)
    elif outbox.processed:
        log.info("Collective Insights processed in total: %s.", _counts(outbox.processed))
    run.state["last_run"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not dry_run:
        run.state.commit()
    if failed:
        shown = ", ".join(map(str, failed[:10])) + (" ..." if len(failed) > 10 else "")
        raise SourceError(f"{len(failed)} alarm(s) could not be read from LogRhythm ({shown}); the others were "
                          "submitted.", "run again with the same window (-lb); state remembers what was sent, "
                          "so only these are sent.", retryable=True)


CONNECTOR = Connector(
    name="logrhythm_collective_insights",
    title="LogRhythm Collective Insights",
    description="Send the IOCs of LogRhythm alarms (IPs, domains, URLs, CVEs) to Recorded Future "
                "Collective Insights as detections.",
    params=PARAMS,
    run=run,
    add_arguments=add_arguments,
    log_subdir="logs",
    errors=(
        ("exit 2", "Recorded Future refused the Collective Insights submission (HTTP 403): the API key lacks "
                   "Collective Insights permission.",
         "ask your Recorded Future account team to enable Collective Insights for the key (FAQ 2)"),
        ("exit 2", "Recorded Future rejected the Recorded Future API key (HTTP 401).", "check RF_API_KEY"),
        ("exit 2", "LogRhythm answered HTTP 401 / 403 ...", "check LOGRHYTHM_API_KEY and the application's rights"),
        ("exit 2", "The exclusion file ... given with -ef does not exist.", "check the path"),
        ("exit 2", "Recorded Future API Key (rf_api_key): is not 32 lower-case letters and digits ...",
         "copy the key again from the Recorded Future portal"),
        ("exit 1", "Stopped at the daily limit of 15000 Collective Insights submissions ...",
         "run again after 00:00 UTC with -lb covering the rest"),
        ("exit 1", "N alarm(s) could not be read from LogRhythm (...); the others were submitted.",
         "run again with the same window; only these are sent"),
        ("exit 1", "Collective Insights refused the detections as invalid (HTTP 400) ...",
         "run with -l DEBUG and report the request"),
    ),
)
main = CONNECTOR.main

__all__ = ["CONNECTOR", "main", "PARAMS", "read_exclusions"]
