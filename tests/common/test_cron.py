"""Cron: the cron.d line and the commented-out entry, from the module and from the command's --cron."""

import getpass
import os
import re
import stat
import sys

import pytest

from tq_conn_common import cron
from tq_conn_common.errors import UsageError


def test_schedules():
    assert cron.check_schedule(" 0 */2 * * * ") == "0 */2 * * *"
    assert cron.check_schedule("@daily") == "@daily"
    assert cron.check_schedule("0,30 8-18/2 1-31 jan-DEC mon-fri") == "0,30 8-18/2 1-31 jan-DEC mon-fri"
    assert cron.check_schedule("59 23 31 12 7") == "59 23 31 12 7"
    for bad in ("0 * * *", "", None, "* * * * * *"):
        with pytest.raises(UsageError, match="five fields"):
            cron.check_schedule(bad)
    with pytest.raises(UsageError, match="not a cron macro"):
        cron.check_schedule("@sometimes")


@pytest.mark.parametrize("schedule, message", [
    ("61 * * * *", "the minute field '61' holds 61, outside 0 to 59"),
    ("0 24 * * *", "the hour field '24' holds 24, outside 0 to 23"),
    ("0 0 0 * *", "the day of month field '0' holds 0, outside 1 to 31"),
    ("0 0 * 13 *", "the month field '13' holds 13, outside 1 to 12"),
    ("0 0 * * 8", "the day of week field '8' holds 8, outside 0 to 7"),
    ("0 0 * * funday", "holds 'funday', which is neither a number nor a name"),
    ("*/0 * * * *", "has the step '0'"),
    ("30-10 * * * *", "has the range 30-10, which runs backwards"),
    ("1- * * * *", "is not a number, a range a-b"),
    ("every hour * * *", "holds 'every'"),
])
def test_schedules_out_of_range_name_the_field(schedule, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        cron.check_schedule(schedule)


def test_line_names_the_command_its_user_and_its_locations(tmp_path):
    line = cron.line("*/15 * * * *", "/opt/venv/bin/tq-conn-x", str(tmp_path), str(tmp_path / "logs"), 2, "east",
                     user="tqsvc")
    assert line == (f"*/15 * * * * tqsvc /opt/venv/bin/tq-conn-x -c {tmp_path} -ll {tmp_path / 'logs'} -v 2 "
                    "-n east")
    # no -ll: the entry logs into the documented default folder, never to stdout (cron would mail or drop it)
    assert f" -ll {cron.DEFAULT_LOG_DIR} -v 1" in cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1)
    assert f" -c {os.getcwd()} " in cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1)
    # the user running --cron, by default
    assert f"@hourly {getpass.getuser()} /x/tq-conn-x " in cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1)
    with pytest.raises(UsageError, match="is not a user name"):
        cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1, user="root; rm -rf /")


def test_line_finds_the_command_beside_the_running_one(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "venv" / "bin" / "tq-conn-x")])
    assert f"root {tmp_path}/venv/bin/tq-conn-x -c" in cron.line("@daily", "tq-conn-x", ".", "stdout", 1, user="root")


def test_write_makes_a_commented_entry_with_a_header(tmp_path):
    path, enabled = cron.write(str(tmp_path), "tq-conn-x", "@daily root /v/bin/tq-conn-x -c /c -ll /l -v 1", name="a.b")
    assert os.path.basename(path) == "tq-conn-x-a-b"  # cron.d ignores names with dots
    text = open(path).read()
    lines = text.splitlines()
    assert all(line.startswith("#") for line in lines)
    assert lines[-1] == "#@daily root /v/bin/tq-conn-x -c /c -ll /l -v 1"
    assert "To enable it, remove the '#'" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert not enabled


def test_write_again_keeps_an_enabled_entry_enabled(tmp_path):
    path, _ = cron.write(str(tmp_path), "tq-conn-x", "@daily root /v/bin/tq-conn-x -c /c -ll /l -v 1")
    text = open(path).read().replace("#@daily", "@daily")   # the user enabled it
    with open(path, "w") as fh:
        fh.write(text)
    path, enabled = cron.write(str(tmp_path), "tq-conn-x", "@hourly root /v/bin/tq-conn-x -c /c -ll /l -v 2")
    assert enabled
    assert open(path).read().splitlines()[-1] == "@hourly root /v/bin/tq-conn-x -c /c -ll /l -v 2"


def test_write_into_a_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        cron.write(str(tmp_path / "none"), "tq-conn-x", "line")


def test_the_cron_flag_writes_the_entry_into_cron_dir(toy, tmp_path):
    toy.configure()
    crondir, logdir = tmp_path / "cron.d", tmp_path / "logs"
    crondir.mkdir()
    logdir.mkdir()
    result = toy.run("--cron", "0 */2 * * *", "--cron-dir", crondir, "-ll", logdir, "-v", "2")
    assert result.code == 0, result
    text = (crondir / "tq-conn-toy").read_text()
    last = text.splitlines()[-1]
    assert last.startswith(f"#0 */2 * * * {getpass.getuser()} ") and last.endswith(f"tq-conn-toy -c {toy.dir} -ll {logdir} -v 2")
    assert f"Cron entry written (commented out) to {crondir / 'tq-conn-toy'}" in result.out
    assert not os.path.exists(os.path.join(toy.dir, "tq-conn-toy.state.json"))  # it did not run


def test_the_cron_flag_with_a_name_and_a_first_run_from_the_environment(toy, tmp_path, sandbox):
    crondir = tmp_path / "cron.d"
    crondir.mkdir()
    result = toy.run("--cron", "@daily", "--cron-dir", crondir, "-n", "east",
                     env={"TQ_CONN_URL": sandbox.url("echo"), "TQ_CONN_TOKEN": "sandbox-token"})
    assert result.code == 0, result
    assert (crondir / "tq-conn-toy-east").read_text().splitlines()[-1].endswith(" -v 1 -n east")
    # the first run wrote the config the cron job will need
    assert os.path.exists(os.path.join(toy.dir, "tq-conn-toy-east.yaml"))


@pytest.mark.parametrize("args, message", [
    (("--cron", "every hour"), "does not have five fields"),
    (("--cron", "61 * * * *"), "the minute field '61' holds 61, outside 0 to 59"),
    (("--cron", "@daily", "--cron-user", "a b"), "The cron user 'a b' is not a user name"),
    (("--cron", "@daily", "--cron-dir", "/nonexistent/cron.d"), "The cron folder /nonexistent/cron.d does not exist"),
])
def test_a_bad_cron_flag_exits_2_before_anything_else(toy, args, message):
    result = toy.run(*args)  # no config either: the flag is checked first
    assert result.code == 2, result
    assert message in result.err


def test_the_cron_flag_works_with_no_config_and_no_terminal(toy, tmp_path):
    crondir = tmp_path / "cron.d"
    crondir.mkdir()
    result = toy.run("--cron", "@hourly", "--cron-dir", crondir, "--cron-user", "tqsvc")  # automation, before config
    assert result.code == 0, result
    last = (crondir / "tq-conn-toy").read_text().splitlines()[-1]
    assert last.startswith("#@hourly tqsvc ") and last.endswith(f" -c {toy.dir} -ll {cron.DEFAULT_LOG_DIR} -v 1")
    assert f"It logs into {cron.DEFAULT_LOG_DIR} (no -ll given)" in result.out
    assert f"Configure tq-conn-toy before enabling the entry" in result.out
    assert not os.path.exists(toy.config_path) and "Run statistics" not in result.out


def test_repeating_the_cron_flag_keeps_an_enabled_entry_enabled_and_says_so(toy, tmp_path):
    toy.configure()
    crondir, logdir = tmp_path / "cron.d", tmp_path / "logs"
    crondir.mkdir()
    logdir.mkdir()
    assert toy.run("--cron", "0 */2 * * *", "--cron-dir", crondir, "-ll", logdir).code == 0
    entry = crondir / "tq-conn-toy"
    entry.write_text(entry.read_text().replace("\n#0 */2", "\n0 */2"))   # the user enables it
    result = toy.run("--cron", "*/30 * * * *", "--cron-dir", crondir, "-ll", logdir, "-v", "2")
    assert result.code == 0, result
    assert f"Cron entry updated in {entry}; it stays enabled:" in result.out
    last = entry.read_text().splitlines()[-1]
    assert last.startswith("*/30 * * * * ") and last.endswith(f" -ll {logdir} -v 2")
    # still commented out: a repeat leaves it commented out
    entry.write_text(entry.read_text().replace("\n*/30", "\n#*/30"))
    assert "written (commented out)" in toy.run("--cron", "@daily", "--cron-dir", crondir, "-ll", logdir).out
    assert entry.read_text().splitlines()[-1].startswith("#@daily ")
