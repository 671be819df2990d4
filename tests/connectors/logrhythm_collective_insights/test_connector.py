"""Small pure pieces of the connector: flags, parameter checks, dates, window, the detection shape."""

from datetime import datetime, timedelta, timezone

import pytest

from tq_conn_common import UsageError, cli
from tq_conn_common import config as cfg
import tq_conn_logrhythm_collective_insights as package
from tq_conn_logrhythm_collective_insights.connector import read_exclusions
from tq_conn_logrhythm_collective_insights.insights import detection
from tq_conn_logrhythm_collective_insights.source import format_date, inserted, window

# the package, not its CONNECTOR, is imported: docs._package() takes any module holding CONNECTOR for its package
PARAMS = {p.key: p for p in package.CONNECTOR.params}


def parse(*argv):
    return cli.parser(package.CONNECTOR).parse_args(list(argv))


def test_flags_default_to_info_and_the_previous_day():
    args = parse()
    assert args.verbosity == 2 and args.log_level == "INFO"
    assert not args.dry_run and args.lookback is None and not args.recorded_future
    assert args.risk_based_priority is None and args.exclusion_file is None


@pytest.mark.parametrize("argv,verbosity", [(("-l", "DEBUG"), 3), (("-l", "info"), 2), (("-l", "WARNING"), 1),
                                            (("-l", "ERROR"), 1), (("-v", "3", "-l", "WARNING"), 1),
                                            (("-l", "WARNING", "-v", "3"), 3)])
def test_log_level_maps_onto_verbosity_last_one_wins(argv, verbosity):
    assert parse(*argv).verbosity == verbosity


@pytest.mark.parametrize("argv", [("-lb", "0"), ("-lb", "-3"), ("-lb", "x"), ("-rbp", "101"), ("-rbp", "-1"),
                                  ("-l", "LOUD")])
def test_bad_flag_values_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2


def test_the_seed_flags_parse():
    args = parse("-d", "-lb", "3", "-rf", "-rbp", "50", "-ef", "x.txt")
    assert args.dry_run and args.lookback == 3 and args.recorded_future and args.risk_based_priority == 50
    assert args.exclusion_file == "x.txt"


@pytest.mark.parametrize("value,ok", [("a" * 32, True), ("0123456789abcdef0123456789abcdef", True),
                                      ("A" * 32, False), ("a" * 31, False), ("a" * 31 + "-", False)])
def test_the_rf_key_must_have_psengine_format(value, ok):
    _, problem = cfg.check_value(PARAMS["rf_api_key"], value)
    assert (problem is None) is ok
    if not ok:
        assert "rf_api_key" in problem and "32 lower-case" in problem


@pytest.mark.parametrize("value,expected", [("http://localhost:8505/", "http://localhost:8505"),
                                            ("https://pm:8501/lr-alarm-api", "https://pm:8501")])
def test_the_logrhythm_url_is_the_gateway_root(value, expected):
    converted, problem = cfg.check_value(PARAMS["logrhythm_api_url"], value)
    assert problem is None and converted == expected
    _, problem = cfg.check_value(PARAMS["logrhythm_api_url"], "localhost:8505")
    assert "http://" in problem


def test_dates_are_utc_without_zone_both_ways():
    when = inserted({"dateInserted": "2021-08-17T13:36:39.78"})
    assert when == datetime(2021, 8, 17, 13, 36, 39, 780000, tzinfo=timezone.utc)
    assert format_date(when) == "2021-08-17T13:36:39.780"
    assert inserted({"dateInserted": "2021-08-17T15:36:39+02:00"}) == datetime(2021, 8, 17, 13, 36, 39, tzinfo=timezone.utc)


def test_the_window_is_24_hours_or_the_lookback_days():
    now = datetime(2026, 1, 2, 12, tzinfo=timezone.utc)
    assert window(None, now) == (now - timedelta(hours=24), now)
    assert window(7, now) == (now - timedelta(days=7), now)


def test_exclusions_file_lines(tmp_path):
    path = tmp_path / "ex.txt"
    path.write_text("\ufeffNoisy Test Rule\n\n  LogRhythm Agent Heartbeat Missed  \r\n", encoding="utf-8")
    assert read_exclusions(str(path)) == {"Noisy Test Rule", "LogRhythm Agent Heartbeat Missed"}
    with pytest.raises(UsageError) as exc:
        read_exclusions(str(tmp_path / "missing.txt"))
    assert "-ef" in exc.value.message


def test_a_detection_carries_the_alarm_as_incident():
    alarm = {"alarmId": 18755, "alarmRuleName": "AIE: Recorded Future - C2 IP Communication"}
    det = detection(alarm, datetime(2026, 11, 21, 13, 36, 39, 807000, tzinfo=timezone.utc), "ip", "203.0.113.7",
                    "originIP")
    assert det == {
        "timestamp": "2026-11-21T13:36:39Z",
        "ioc": {"type": "ip", "value": "203.0.113.7", "source_type": "LogRhythm", "field": "originIP"},
        "incident": {"id": "18755", "name": "18755: AIE: Recorded Future - C2 IP Communication",
                     "type": "LogRhythm Alarm"},
        "detection": {"type": "correlation", "name": "AIE: Recorded Future - C2 IP Communication"}}
