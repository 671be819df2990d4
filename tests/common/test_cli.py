"""The driver, run as a real command (the toy connector) against the echo stand-in: flags, exit codes, summary."""

import os
import re
import stat

import yaml

SUMMARY = re.compile(r"Run statistics: requests made (\d+), items received (\d+), skipped as invalid (\d+), "
                     r"duplicates dropped (\d+), items delivered (\d+), items per second [\d.]+, elapsed [\d.]+ s")


def summaries(text):
    return SUMMARY.findall(text)


def test_a_run_delivers_commits_state_and_ends_with_the_statistics_line(toy, sandbox):
    toy.configure()
    result = toy.run()
    assert result.code == 0, result
    assert result.err == ""
    last = result.out.strip().splitlines()[-1]
    assert SUMMARY.search(last), result
    assert summaries(result.out) == [("6", "25", "3", "0", "22")]
    assert len(sandbox["echo"].items) == 22
    assert toy.state()["next"] == 25 and toy.state()["runs"] == 1 and toy.state()["last_count"] >= 0


def test_the_next_run_continues_from_the_committed_state(toy, sandbox):
    toy.configure(total=25)
    assert toy.run().code == 0
    toy.configure(total=40)
    result = toy.run()
    assert result.code == 0, result
    assert [item["n"] for item in sandbox["echo"].items][-3:] == [37, 38, 39]
    assert summaries(result.out)[0][1] == "15"  # received only the 15 new numbers
    assert toy.state()["next"] == 40 and toy.state()["runs"] == 2 and toy.state()["last_count"] >= 0


def test_help_lists_the_standard_flags_and_exit_codes(toy):
    result = toy.run("-h")
    assert result.code == 0
    for flag in ("-c CONFIG, --config CONFIG", "-ll LOGLOCATION, --loglocation LOGLOCATION",
                 "-v {1,2,3}, --verbosity {1,2,3}", "-n NAME, --name NAME", "--cron SCHEDULE", "--cron-dir DIR",
                 "--print-config-template", "--show-config"):
        assert flag in result.out
    assert "0 ok, 1 run failed" in result.out and "3 skipped" in result.out


def test_a_usage_error_exits_2(toy):
    toy.configure()
    assert toy.run("--no-such-flag").code == 2
    bad_verbosity = toy.run("-v", "4")
    assert bad_verbosity.code == 2 and "invalid choice" in bad_verbosity.err
    bad_name = toy.run("-n", "a/b")
    assert bad_name.code == 2 and "instance name" in bad_name.err


def test_no_config_and_no_terminal_exits_2_listing_what_is_missing(toy):
    result = toy.run(timeout=20)
    assert result.code == 2, result
    assert "Missing configuration and no terminal to ask" in result.err
    assert "Echo URL (url)" in result.err and "API Token (token)" in result.err
    assert "TQ_CONN_URL" in result.err and "--print-config-template" in result.err
    assert not os.path.exists(toy.config_path)


def test_a_missing_config_folder_exits_2(toy):
    result = toy.run("-c", os.path.join(toy.dir, "nope"))
    assert result.code == 2 and "does not exist" in result.err


def test_validation_reports_every_problem_naming_the_parameter_and_the_fix(toy):
    with open(toy.config_path, "w") as fh:
        yaml.safe_dump({"token": "t0ken-value", "batch_size": 0, "mode": "bogus", "sleep_seconds": "soon"}, fh)
    result = toy.run()
    assert result.code == 2, result
    err = result.err
    assert "has 4 problem(s)" in err
    assert "Echo URL (url): is required and not set" in err
    assert "Batch Size (batch_size): 0 is below the minimum 1; set 1 to 1000." in err
    assert "Mode (mode): 'bogus' is not allowed; set one of ok, sleep" in err
    assert "Sleep Seconds (sleep_seconds): 'soon' is not a number; set a number." in err


def test_environment_variables_complete_the_config(toy, sandbox):
    result = toy.run(env={"TQ_CONN_URL": sandbox.url("echo"), "TQ_CONN_TOKEN": "sandbox-token"})
    assert result.code == 0, result


def test_unknown_keys_warn_and_renamed_keys_are_not_needed(toy):
    toy.configure(colour="blue")
    result = toy.run()
    assert result.code == 0
    assert "Unknown config key 'colour' ignored" in result.out


def test_unknown_keys_get_a_did_you_mean(toy):
    toy.configure(batchsize=5, totl=3)
    result = toy.run()
    assert result.code == 0
    assert "Unknown config key 'batchsize' ignored; did you mean 'batch_size'?" in result.out
    assert "Unknown config key 'totl' ignored; did you mean 'total'?" in result.out


def test_version_names_the_connector_and_common(toy):
    from tq_conn_common import __version__
    result = toy.run("--version")
    assert result.code == 0, result
    assert result.out.startswith("tq-conn-toy ") and f"(tq-conn-common {__version__})" in result.out


def test_a_configuration_error_ends_with_the_statistics_line_and_names_where_a_value_was_set(toy):
    toy.configure(total=-1)
    result = toy.run(env={"TQ_CONN_BATCH_SIZE": "0"})
    assert result.code == 2, result
    assert "Error: The configuration has 2 problem(s):" in result.err   # not all of them are in the file
    assert ("Batch Size (batch_size): 0 is below the minimum 1; set 1 to 1000. (set in the environment variable "
            "TQ_CONN_BATCH_SIZE)") in result.err
    assert f"Total (total): -1 is below the minimum 0; set 0 to 100000. (set in {toy.config_path})" in result.err
    assert len(summaries(result.out)) == 1
    only_file = toy.run()
    assert f"Error: The configuration in {toy.config_path} has 1 problem(s):" in only_file.err
    assert len(summaries(only_file.out)) == 1


def test_print_config_template_lists_every_parameter(toy):
    result = toy.run("--print-config-template")
    assert result.code == 0
    import toyconn
    for param in toyconn.PARAMS:
        assert f"# {param.key}:" in result.out
    assert "secret" in result.out


def test_show_config_hides_secrets_and_is_a_config_file_the_command_reads_back(toy, tmp_path):
    toy.configure(api_key="key-value-1234", batch_size=7)
    result = toy.run("--show-config", env={"TQ_CONN_TOTAL": "12"})
    assert result.code == 0, result
    assert "sandbox-token" not in result.both and "key-value-1234" not in result.both
    assert "# token: '****'   # secret, set but not shown: write it here or set TQ_CONN_TOKEN" in result.out
    assert "batch_size: 7\n" in result.out
    assert "total: 12\n# (total above is set in the environment variable TQ_CONN_TOTAL)" in result.out
    assert "Run statistics" not in result.out
    # the output is a config file: with the secret given again, the command runs on it
    with open(toy.config_path, "w") as fh:
        fh.write(result.out)
    again = toy.run(env={"TQ_CONN_TOKEN": "sandbox-token"})
    assert again.code == 0, again
    assert "Unknown config key" not in again.both
    assert toy.state()["next"] == 12


def test_a_failed_run_exits_1_with_the_fix_and_leaves_state_alone(toy, sandbox):
    toy.configure()
    assert toy.run().code == 0
    before = toy.state()
    toy.configure(mode="fail")
    result = toy.run()
    assert result.code == 1, result
    assert result.err == "Error: Echo failed on purpose.\nFix: set mode to ok.\n"
    assert "Echo failed on purpose" not in result.out  # logged to stdout it would repeat stderr
    assert len(summaries(result.out)) == 1
    assert toy.state() == before


def test_a_delivery_failure_does_not_advance_state(toy, sandbox):
    toy.configure()
    sandbox.fault("echo", path="^/items$", method="POST", status=500, count=0)
    result = toy.run()
    assert result.code == 1, result
    assert "Echo answered HTTP 500 to POST /items: injected fault." in result.err
    assert "failing on its side" in result.err
    assert not os.path.exists(os.path.join(toy.dir, "tq-conn-toy.state.json"))
    assert len(summaries(result.out)) == 1


def test_an_unexpected_failure_exits_1_without_a_traceback_or_the_secret(toy):
    toy.configure(mode="crash")
    result = toy.run()
    assert result.code == 1, result
    assert "Error: unexpected failure: RuntimeError: crashed with ****" in result.err
    assert "Traceback" not in result.both
    assert "sandbox-token" not in result.both
    assert len(summaries(result.out)) == 1


def test_a_refused_credential_exits_2_naming_it(toy, sandbox):
    toy.configure(token="wrong-token")
    result = toy.run()
    assert result.code == 2, result
    assert "Echo answered HTTP 401 to GET /secure/numbers: missing or wrong bearer token." in result.err
    assert "Echo rejected 'API Token' (token)" in result.err
    assert "wrong-token" not in result.both
    assert len(summaries(result.out)) == 1


def test_sandbox_faults_are_retried_and_counted(toy, sandbox):
    toy.configure()
    sandbox.fault("echo", path="^/secure/numbers$", status=503, count=2)
    result = toy.run("-v", "2")
    assert result.code == 0, result
    assert summaries(result.out)[0][0] == "8"  # 6 requests and 2 retries
    assert result.out.count("HTTP 503 on GET /secure/numbers from Echo; retry") == 2


def test_stop_ends_the_run_with_its_message(toy):
    toy.configure(mode="stop")
    result = toy.run()
    assert result.code == 0, result
    assert "Disabled on purpose." in result.out


def test_instances_have_their_own_config_and_state(toy, sandbox):
    toy.configure()
    os.rename(toy.config_path, os.path.join(toy.dir, "tq-conn-toy-east.yaml"))
    assert toy.run("-n", "east").code == 0
    assert os.path.exists(os.path.join(toy.dir, "tq-conn-toy-east.state.json"))
    assert toy.run("-n", "west").code == 2  # west has no config yet
    assert not os.path.exists(os.path.join(toy.dir, "tq-conn-toy.state.json"))


def test_log_to_a_folder_writes_a_private_log_and_prints_the_summary(toy, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    toy.configure(mode="fail")
    result = toy.run("-ll", logs, "-v", "2")
    assert result.code == 1
    log_file = logs / "tq-conn-toy.log"
    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o600
    text = log_file.read_text()
    assert text.count("Echo failed on purpose.") == 1  # the error is in the log file once
    assert len(summaries(text)) == 1
    assert SUMMARY.search(result.out) and "Echo failed on purpose" not in result.out
    assert "Error: Echo failed on purpose." in result.err


def test_a_missing_log_folder_exits_2(toy):
    toy.configure()
    result = toy.run("-ll", os.path.join(toy.dir, "nope"))
    assert result.code == 2 and "The log location" in result.err and "-ll stdout" in result.err


def test_verbosity_levels(toy):
    toy.configure()
    quiet, info, debug = (toy.run("-v", level).out for level in ("1", "2", "3"))
    assert "INFO tq_conn_common.runner: numbers:" not in quiet and "WARNING" in quiet
    assert "INFO tq_conn_common.runner: numbers:" in info and "DEBUG" not in info
    assert "DEBUG" in debug and "Effective config:" in debug and "'token': '****'" in debug
    for out in (quiet, info, debug):
        assert len(summaries(out)) == 1


def test_corrupt_state_exits_2_with_the_fix(toy):
    toy.configure()
    with open(os.path.join(toy.dir, "tq-conn-toy.state.json"), "w") as fh:
        fh.write("{not json")
    result = toy.run()
    assert result.code == 2 and "cannot be read" in result.err and "delete it to start over" in result.err


def test_reset_state_starts_over(toy, sandbox):
    toy.configure()
    assert toy.run().code == 0
    result = toy.run("--reset-state")
    assert result.code == 0
    assert "State reset" in result.out
    assert toy.state()["next"] == 25 and toy.state()["runs"] == 1 and toy.state()["last_count"] >= 0


# In-process checks of driver pieces.

def test_a_connector_needing_another_common_version_exits_2(tmp_path, capsys):
    import dataclasses

    import toyconn
    connector = dataclasses.replace(toyconn.CONNECTOR, requires_common=">=2,<3")
    assert connector.execute(["-c", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tq-conn-toy needs tq-conn-common >=2,<3, but 1." in err and "pip install 'tq-conn-common>=2,<3'" in err


def test_skips_are_counted_and_quiet_down_after_20(caplog):
    import argparse

    from tq_conn_common import BadRecord
    from tq_conn_common.session import Run

    run = Run(None, argparse.Namespace(name=None), None, None, {})
    with caplog.at_level("DEBUG"):
        for n in range(1, 60, 2):
            run.skip(BadRecord("odd", n=n))
    assert run.stats.skipped == 30
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 21 and "the rest are logged at -v 3 only" in warnings[-1].getMessage()
    assert "Skipped record: odd (n=59)" in caplog.text
    run.stats.received = 60
    line = run.stats.line()
    assert SUMMARY.fullmatch(line) and "items received 60, skipped as invalid 30" in line
