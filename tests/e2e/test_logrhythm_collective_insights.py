"""tq-conn-logrhythm-collective-insights end to end: the installed command against the LogRhythm and CI stand-ins."""

import json
import sys
import time

import pytest

from tq_conn_sandbox.services.collective_insights import NO_CI_TOKEN
from tq_conn_sandbox.services.collective_insights import TOKEN as RF_TOKEN
from tq_conn_sandbox.services.logrhythm import NO_RIGHTS_TOKEN, event
from tq_conn_sandbox.services.logrhythm import TOKEN as LR_TOKEN

pytestmark = pytest.mark.e2e

COMMAND = "tq-conn-logrhythm-collective-insights"
CONFIG_FILE = COMMAND + ".yaml"
STATE_FILE = COMMAND + ".state.json"

# What the default sandbox day holds (services/logrhythm.py _seed), per rule, as (type, value).
C2 = {("ip", "203.0.113.7"), ("domain", "bad.example.com"), ("url", "http://bad.example.com/gate.php"),
      ("vulnerability", "CVE-2021-44228")}
DOMAIN = {("domain", "evil-updates.example.net"), ("domain", "cdn.evil-updates.example.net"),
          ("ip", "198.51.100.23")}
OUTBOUND = {("ip", "192.0.2.55")}
VULN = {("vulnerability", "CVE-2023-4966"), ("ip", "2001:db8:85a3::8a2e:370:7334"),
        ("url", "https://portal.example.org/oauth/idp/.well-known/openid-configuration")}
NOISY = {("ip", "192.0.2.44")}
DAY = C2 | DOMAIN | OUTBOUND | VULN | NOISY
INTERNAL = ("10.20.30.40", "192.168.10.12", "172.16.4.2", "192.168.1.15", "127.0.0.1", "169.254.10.1", "0.0.0.0",
            "fe80::1", "http://10.0.0.8/admin", "ws-0231.corp.local", "logr-siem-01")


class Harness:
    """The command with the three environment variables set to the sandbox, and what arrived."""

    def __init__(self, sandbox, cli, folder):
        self.sandbox, self.cli, self.folder = sandbox, cli, folder
        self.lr, self.ci = sandbox["logrhythm"], sandbox["collective_insights"]
        self.env = {"RF_API_KEY": RF_TOKEN, "LOGRHYTHM_API_KEY": LR_TOKEN,
                    "LOGRHYTHM_API_URL": sandbox.url("logrhythm"),
                    "TQ_CONN_RF_API_URL": sandbox.url("collective_insights")}

    def run(self, *args, env=None):
        return self.cli(COMMAND, "-c", self.folder, *args, env={**self.env, **(env or {})})

    def iocs(self):
        return [(d["ioc"]["type"], d["ioc"]["value"]) for d in self.ci.detections]

    def alarm_id(self, rule):
        return next(a["alarmId"] for a in self.lr.alarms.values() if a["alarmRuleName"] == rule)


@pytest.fixture
def lrci(sandbox, cli, tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    return Harness(sandbox, cli, folder)


def test_debug_mode_logs_the_detections_and_submits_nothing(lrci):
    result = lrci.run("-d")
    assert result.code == 0, result
    assert lrci.ci.submissions == [] and lrci.ci.detections == []
    logged = [json.loads(line.split("not submitted): ", 1)[1]) for line in result.out.splitlines()
              if "Detection (debug mode, not submitted)" in line]
    assert {(d["ioc"]["type"], d["ioc"]["value"]) for d in logged} == DAY
    assert "Debug mode (-d): 12 detections built, nothing submitted." in result.out
    assert not (lrci.folder / STATE_FILE).exists()


def test_a_run_submits_one_detection_per_public_ioc_with_the_alarm_as_incident(lrci):
    result = lrci.run()
    assert result.code == 0, result
    assert sorted(lrci.iocs()) == sorted(DAY)            # once each: deduplicated per alarm
    for internal in INTERNAL:
        assert all(internal not in value for _, value in lrci.iocs()), internal
    c2 = lrci.alarm_id("AIE: Recorded Future - C2 IP Communication")
    mine = [d for d in lrci.ci.detections if d["incident"]["id"] == str(c2)]
    assert {(d["ioc"]["type"], d["ioc"]["value"]) for d in mine} == C2
    for det in mine:
        assert det["incident"] == {"id": str(c2), "name": f"{c2}: AIE: Recorded Future - C2 IP Communication",
                                   "type": "LogRhythm Alarm"}
        assert det["detection"] == {"type": "correlation", "name": "AIE: Recorded Future - C2 IP Communication"}
        assert det["ioc"]["source_type"] == "LogRhythm" and det["timestamp"].endswith("Z")
    assert [s["options"] for s in lrci.ci.submissions] == [{"debug": False, "summary": True}]
    assert "processed: ip 5, domain 3, url 2, vulnerability 2, hash 0" in result.out
    assert "items delivered 12" in result.out


def test_a_rerun_over_an_overlapping_window_submits_nothing_twice(lrci):
    assert lrci.run().code == 0
    assert len(lrci.ci.detections) == 12
    again = lrci.run()
    assert again.code == 0, again
    assert len(lrci.ci.detections) == 12 and len(lrci.ci.submissions) == 1
    assert "6 already submitted" in again.out
    wider = lrci.run("-lb", "2")                         # overlaps the first day, adds the alarm of 30 h ago
    assert wider.code == 0, wider
    assert lrci.iocs()[12:] == [("ip", "203.0.113.99")]
    assert lrci.run("-lb", "2").code == 0
    assert len(lrci.ci.detections) == 13


@pytest.mark.parametrize("settings", [{}, {"ignore_offset": True}, {"ignore_offset": True, "max_count": 30},
                                      {"max_count": 30}],
                         ids=["offset-honoured", "offset-ignored", "offset-ignored-cap-30", "cap-30"])
def test_more_than_100_alarms_in_one_hour_are_all_submitted(lrci, settings):
    burst = lrci.lr.add_burst(250, minutes=60)
    lrci.lr.configure(**settings)
    result = lrci.run("-l", "WARNING")
    assert result.code == 0, result
    ids = {d["incident"]["id"] for d in lrci.ci.detections}
    assert {str(i) for i in burst} <= ids
    assert len([1 for kind, value in lrci.iocs() if value.startswith("198.18.")]) == 250
    assert len(lrci.iocs()) == 262 and len(set(lrci.iocs())) == 262     # nothing twice
    searches = [r for r in lrci.lr.requests if r["path"] == "/lr-alarm-api/alarms"]
    assert all("count=100" in r["query"] for r in searches)


def test_recorded_future_only(lrci):
    result = lrci.run("-rf")
    assert result.code == 0, result
    assert set(lrci.iocs()) == C2 | DOMAIN | VULN
    assert {d["detection"]["name"] for d in lrci.ci.detections} >= {"AIE: Recorded Future - Malicious Domain"}
    assert all("Recorded Future" in d["detection"]["name"] for d in lrci.ci.detections)


@pytest.mark.parametrize("priority,expected", [("60", C2 | DOMAIN | VULN), ("91", C2 | VULN), ("0", DAY),
                                               ("100", VULN)])
def test_risk_based_priority(lrci, priority, expected):
    result = lrci.run("-rbp", priority)
    assert result.code == 0, result
    assert set(lrci.iocs()) == expected


def test_risk_based_priority_out_of_range_is_a_usage_error(lrci):
    result = lrci.run("-rbp", "101")
    assert result.code == 2 and "-rbp" in result.err and "0 to 100" in result.err
    assert lrci.lr.requests == []


def test_exclusion_file(lrci, tmp_path):
    exclusions = tmp_path / "exclusions.txt"
    exclusions.write_text("Noisy Test Rule\n\nAIE: Suspicious Outbound Connection\n", encoding="utf-8")
    result = lrci.run("-ef", exclusions)
    assert result.code == 0, result
    assert set(lrci.iocs()) == C2 | DOMAIN | VULN


def test_a_missing_exclusion_file_is_named(lrci, tmp_path):
    result = lrci.run("-ef", tmp_path / "nope.txt")
    assert result.code == 2
    assert "nope.txt" in result.err and "-ef" in result.err
    assert lrci.ci.submissions == []


def test_lookback_days(lrci):
    result = lrci.run("-lb", "11")
    assert result.code == 0, result
    assert set(lrci.iocs()) == DAY | {("ip", "203.0.113.99"), ("domain", "old-campaign.example.com")}
    searches = [r["query"] for r in lrci.lr.requests if r["path"] == "/lr-alarm-api/alarms"]
    assert "orderby=DateInserted" in searches[0] and "dir=ascending" in searches[0]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_lookback_must_be_a_positive_number_of_days(lrci, value):
    result = lrci.run("-lb", value)
    assert result.code == 2 and "-lb" in result.err


def test_log_levels_and_the_rotating_log_in_the_log_folder(lrci, tmp_path):
    quiet = lrci.run("-d", "-l", "WARNING")
    assert quiet.code == 0 and " INFO tq_conn_logrhythm" not in quiet.out and "Run statistics" in quiet.out
    logdir = tmp_path / "logplace"
    logdir.mkdir()
    loud = lrci.run("-d", "-l", "DEBUG", "-ll", logdir)
    assert loud.code == 0, loud
    logfile = logdir / (COMMAND + ".log")     # in the -ll folder itself, as every connector's
    text = logfile.read_text(encoding="utf-8")
    assert " DEBUG " in text and "Detection (debug mode, not submitted)" in text
    assert "Run statistics" in loud.out                     # the summary still reaches the console
    real = lrci.run("-l", "DEBUG", "-ll", logdir)
    assert real.code == 0, real
    text = logfile.read_text(encoding="utf-8")
    assert "Collective Insights accepted 12 detections" in text
    assert not (logdir / "logs").exists()
    for secret in (RF_TOKEN, LR_TOKEN):
        assert secret not in text and secret not in loud.both and secret not in real.both


def test_info_is_the_default_level(lrci):
    result = lrci.run("-d")
    assert " INFO tq_conn_logrhythm_collective_insights.connector: Searching LogRhythm alarms" in result.out
    assert " DEBUG " not in result.out


def test_403_says_the_key_lacks_collective_insights_and_keeps_state(lrci):
    result = lrci.run(env={"RF_API_KEY": NO_CI_TOKEN})
    assert result.code == 2, result
    assert "HTTP 403" in result.err and "lacks Collective Insights permission" in result.err
    assert "RF_API_KEY" in result.err
    assert lrci.ci.detections == []
    retry = lrci.run()
    assert retry.code == 0 and len(lrci.ci.detections) == 12


@pytest.mark.parametrize("status,code,words", [
    (401, 2, "rejected the Recorded Future API key (RF_API_KEY, rf_api_key) (HTTP 401): injected fault"),
    (400, 1, "refused the detections as invalid (HTTP 400): injected fault"),
    (429, 1, "rate limiting (HTTP 429)"),
    (503, 1, "answered HTTP 503")])
def test_collective_insights_failures_are_explained_and_nothing_is_remembered(lrci, status, code, words):
    retried = status in (429, 503)                         # by TQ_CONN_HTTP_RETRIES: once here, then it fails
    lrci.sandbox.fault("collective_insights", path="^/collective-insights/detections$", status=status,
                       count=2 if retried else 1)
    result = lrci.run(env={"TQ_CONN_HTTP_RETRIES": "1", "TQ_CONN_HTTP_BACKOFF": "0.1"})
    assert result.code == code, result
    assert words in result.err
    assert lrci.run().code == 0                            # the rerun sends everything
    assert sorted(lrci.iocs()) == sorted(DAY)


def test_the_submission_follows_the_http_retry_settings_and_logs_as_every_call(lrci):
    lrci.sandbox.fault("collective_insights", path="^/collective-insights/detections$", status=503, count=2)
    began = time.monotonic()
    result = lrci.run(env={"TQ_CONN_HTTP_RETRIES": "2", "TQ_CONN_HTTP_BACKOFF": "0.1"})
    assert result.code == 0, result                        # two failures, two retries: delivered
    assert time.monotonic() - began < 10
    assert "HTTP 503 on POST /collective-insights/detections from Collective Insights; retry 1 of 2" in result.out
    assert "Retrying(" not in result.both and "urllib3" not in result.both
    assert sorted(lrci.iocs()) == sorted(DAY)
    lrci.sandbox.fault("collective_insights", path="^/collective-insights/detections$", status=503, count=0)
    began = time.monotonic()
    failed = lrci.run("--reset-state", env={"TQ_CONN_HTTP_RETRIES": "0"})
    assert failed.code == 1 and "answered HTTP 503" in failed.err, failed
    assert time.monotonic() - began < 10                   # no retry: at once, not after 30 s


def test_a_refused_logrhythm_key_is_named(lrci):
    result = lrci.run(env={"LOGRHYTHM_API_KEY": NO_RIGHTS_TOKEN})
    assert result.code == 2, result
    assert "HTTP 403" in result.err and "LOGRHYTHM_API_KEY" in result.err
    result = lrci.run(env={"LOGRHYTHM_API_KEY": "wrong-key"})
    assert result.code == 2 and "HTTP 401" in result.err


def test_a_malformed_rf_key_is_refused_before_any_request(lrci):
    result = lrci.run(env={"RF_API_KEY": "Not-A-Key"})
    assert result.code == 2
    assert "rf_api_key" in result.err and "32 lower-case" in result.err
    assert lrci.lr.requests == []


@pytest.mark.parametrize("missing", ["RF_API_KEY", "LOGRHYTHM_API_KEY", "LOGRHYTHM_API_URL"])
def test_a_missing_credential_with_no_terminal_is_named(lrci, missing):
    result = lrci.run(env={missing: ""})
    assert result.code == 2, result
    assert "Missing configuration" in result.err and missing in result.err
    others = {"RF_API_KEY", "LOGRHYTHM_API_KEY", "LOGRHYTHM_API_URL"} - {missing}
    assert not any(f"({name}" in result.err or f" {name}," in result.err for name in others)


def test_the_config_file_is_read_when_the_environment_is_empty(lrci):
    (lrci.folder / CONFIG_FILE).write_text(
        f"rf_api_key: {RF_TOKEN}\nlogrhythm_api_key: {LR_TOKEN}\n"
        f"logrhythm_api_url: {lrci.sandbox.url('logrhythm')}/lr-alarm-api\n", encoding="utf-8")
    result = lrci.run(env={"RF_API_KEY": "", "LOGRHYTHM_API_KEY": "", "LOGRHYTHM_API_URL": ""})
    assert result.code == 0, result
    assert len(lrci.ci.detections) == 12


def test_cron_entry_for_a_daily_run(lrci, tmp_path):
    crondir = tmp_path / "cron.d"
    crondir.mkdir()
    result = lrci.run("-ll", tmp_path, "--cron", "0 6 * * *", "--cron-dir", crondir)
    assert result.code == 0, result
    entry = (crondir / COMMAND).read_text()
    line = entry.splitlines()[-1]
    assert line.startswith("#0 6 * * * root ") and f"-c {lrci.folder}" in line and f"-ll {tmp_path}" in line
    # cron has no login environment: the credentials went to the config file (mode 0600)
    config = (lrci.folder / CONFIG_FILE).read_text(encoding="utf-8")
    assert f"rf_api_key: {RF_TOKEN}" in config
    assert lrci.lr.requests == []


def test_the_spec_spelling_of_the_events_key_is_read(lrci):
    lrci.lr.configure(events_key="alarmsEventDetails")
    assert lrci.run().code == 0
    assert sorted(lrci.iocs()) == sorted(DAY)


def test_batches_stay_within_batch_size_and_alarms_are_whole(lrci):
    result = lrci.run(env={"TQ_CONN_BATCH_SIZE": "3"})
    assert result.code == 0, result
    sizes = [s["count"] for s in lrci.ci.submissions]
    assert max(sizes) <= 3 and sum(sizes) == 12 and len(sizes) >= 4
    assert sorted(lrci.iocs()) == sorted(DAY)


def test_the_daily_limit_stops_the_run_and_keeps_what_was_sent(lrci):
    env = {"TQ_CONN_BATCH_SIZE": "3", "TQ_CONN_DAILY_LIMIT": "7"}
    result = lrci.run(env=env)
    assert result.code == 1, result
    assert "daily limit of 7" in result.err
    assert len(lrci.ci.detections) == 7
    state = json.loads((lrci.folder / STATE_FILE).read_text())
    assert state["daily"]["count"] == 7
    again = lrci.run(env=env)
    assert again.code == 1 and len(lrci.ci.detections) == 7
    assert lrci.run().code == 0                            # the default limit: the rest, nothing twice
    assert sorted(lrci.iocs()) == sorted(DAY)


def test_the_later_events_of_aie_alarms_come_from_the_drilldown(lrci):
    # /events returns one event per alarm (as LogRhythm does); the second events hold 198.51.100.23 and 192.0.2.55.
    assert lrci.lr.settings["first_event_only"]
    result = lrci.run()
    assert result.code == 0, result
    assert {("ip", "198.51.100.23"), ("ip", "192.0.2.55")} <= set(lrci.iocs()) and sorted(lrci.iocs()) == sorted(DAY)
    paths = {r["path"].rstrip("/") for r in lrci.lr.requests}
    aie = {a["alarmId"] for a in lrci.lr.alarms.values() if a["aie"]}
    other = {a["alarmId"] for a in lrci.lr.alarms.values() if not a["aie"]}
    noisy = lrci.alarm_id("Noisy Test Rule")
    assert f"/lr-alarm-api/alarms/{noisy}/events" in paths                       # not an AIE alarm: 404, then /events
    assert not any(f"/lr-alarm-api/alarms/{i}/events" in paths for i in aie if i not in other)


def test_a_fresh_alarm_whose_drilldown_is_not_filled_is_taken_by_the_next_run(lrci):
    fresh = lrci.lr.add_alarm("AIE: Recorded Future - C2 IP Communication", hours_ago=0.1, cached=False,
                              events=[event(originIP="10.1.1.1"), event(originIP="203.0.113.201")])
    result = lrci.run()
    assert result.code == 0, result
    assert sorted(lrci.iocs()) == sorted(DAY)                 # nothing of the fresh alarm, not even half of it
    assert "drill-down LogRhythm has not filled yet" in result.out + result.err
    lrci.lr.fill(fresh)
    again = lrci.run()
    assert again.code == 0, again
    assert {d["incident"]["id"] for d in lrci.ci.submissions[-1]["data"]} == {str(fresh)}
    assert ("ip", "203.0.113.201") in lrci.iocs()


def test_an_alarm_whose_events_fail_is_sent_by_the_next_run(lrci):
    failing = lrci.alarm_id("AIE: Recorded Future - Malicious Domain")
    lrci.sandbox.fault("logrhythm", path=rf"^/lr-drilldown-cache-api/drilldown/{failing}/?$", status=500, count=0)
    result = lrci.run(env={"TQ_CONN_HTTP_RETRIES": "1"})
    assert result.code == 1, result
    assert f"1 alarm(s) could not be read from LogRhythm ({failing})" in result.err
    assert set(lrci.iocs()) == DAY - DOMAIN
    lrci.lr.faults.clear()
    again = lrci.run()
    assert again.code == 0, again
    assert sorted(lrci.iocs()) == sorted(DAY)
    assert {d["incident"]["id"] for d in lrci.ci.submissions[-1]["data"]} == {str(failing)}


def test_organization_ids_are_sent(lrci):
    result = lrci.run(env={"TQ_CONN_ORGANIZATION_IDS": "uhash:abc123, uhash:def456"})
    assert result.code == 0, result
    assert lrci.ci.submissions[0]["organization_ids"] == ["uhash:abc123", "uhash:def456"]


def test_a_failing_logrhythm_search_fails_the_run_and_keeps_state(lrci):
    lrci.sandbox.fault("logrhythm", path=r"^/lr-alarm-api/alarms$", status=500, count=0)
    result = lrci.run(env={"TQ_CONN_HTTP_RETRIES": "1"})
    assert result.code == 1, result
    assert "LogRhythm answered HTTP 500" in result.err
    assert lrci.ci.submissions == [] and not (lrci.folder / STATE_FILE).exists()


def test_logrhythm_failing_for_every_alarm_stops_the_run_after_three(lrci):
    lrci.sandbox.fault("logrhythm", path=r"^/lr-drilldown-cache-api/drilldown/\d+/?$", status=503, count=0)
    result = lrci.run(env={"TQ_CONN_HTTP_RETRIES": "1"})
    assert result.code == 1, result
    assert "LogRhythm answered HTTP 503" in result.err
    events = [r for r in lrci.lr.requests if "/drilldown/" in r["path"]]
    assert len({r["path"] for r in events}) == 3           # three alarms tried (with retries), then it stopped
    assert lrci.ci.submissions == []


def test_a_deleted_alarm_is_skipped(lrci):
    gone = lrci.alarm_id("Noisy Test Rule")
    lrci.sandbox.fault("logrhythm", path=rf"^/lr-alarm-api/alarms/{gone}$", status=404, count=0)
    result = lrci.run("-d", "-l", "ERROR")                  # -l ERROR hides the warning
    assert result.code == 0 and "WARNING" not in result.out and "skipped as invalid 1" in result.out
    result = lrci.run()
    assert result.code == 0, result
    assert set(lrci.iocs()) == DAY - NOISY and "skipped as invalid 1" in result.out
    assert f"WARNING tq_conn_common.cli: Skipped alarm: alarm no longer found in LogRhythm (alarm_id={gone})" \
        in result.out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_the_first_run_prompts_with_hidden_keys_and_writes_the_config(sandbox, tmp_path, terminal):
    folder = tmp_path / "first"
    folder.mkdir()
    env = {"RF_API_KEY": "", "LOGRHYTHM_API_KEY": "", "LOGRHYTHM_API_URL": ""}
    answers = [("Recorded Future API Key:", RF_TOKEN), ("LogRhythm API Key:", LR_TOKEN),
               ("LogRhythm API URL:", sandbox.url("logrhythm"))]
    code, shown = terminal(COMMAND, ["-c", folder], answers, env=env)
    assert code == 0, shown
    assert "Configuration written" in shown, shown
    assert RF_TOKEN not in shown and LR_TOKEN not in shown       # keys are not echoed
    assert sandbox.url("logrhythm") in shown                        # the URL is
    config = (folder / CONFIG_FILE).read_text(encoding="utf-8")
    assert f"rf_api_key: {RF_TOKEN}" in config and f"logrhythm_api_key: {LR_TOKEN}" in config
    assert oct((folder / CONFIG_FILE).stat().st_mode & 0o777) == "0o600"
