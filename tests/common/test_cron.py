"""Cron: the cron.d line and the commented-out entry, from the module and from the command's --cron."""

import os
import stat
import sys

import pytest

from tq_conn_common import cron
from tq_conn_common.errors import UsageError


def test_schedules():
    assert cron.check_schedule(" 0 */2 * * * ") == "0 */2 * * *"
    assert cron.check_schedule("@daily") == "@daily"
    for bad in ("0 * * *", "@sometimes", "", None):
        with pytest.raises(UsageError, match="five fields"):
            cron.check_schedule(bad)


def test_line_names_the_command_and_its_locations(tmp_path):
    line = cron.line("*/15 * * * *", "/opt/venv/bin/tq-conn-x", str(tmp_path), str(tmp_path / "logs"), 2, "east")
    assert line == (f"*/15 * * * * root /opt/venv/bin/tq-conn-x -c {tmp_path} -ll {tmp_path / 'logs'} -v 2 "
                    "-n east")
    assert " -ll stdout -v 1" in cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1)
    assert f" -c {os.getcwd()} " in cron.line("@hourly", "/x/tq-conn-x", ".", "stdout", 1)


def test_line_finds_the_command_beside_the_running_one(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "venv" / "bin" / "tq-conn-x")])
    assert f"root {tmp_path}/venv/bin/tq-conn-x -c" in cron.line("@daily", "tq-conn-x", ".", "stdout", 1)


def test_write_makes_a_commented_entry_with_a_header(tmp_path):
    path = cron.write(str(tmp_path), "tq-conn-x", "@daily root /v/bin/tq-conn-x -c /c -ll /l -v 1", name="a.b")
    assert os.path.basename(path) == "tq-conn-x-a-b"  # cron.d ignores names with dots
    text = open(path).read()
    lines = text.splitlines()
    assert all(line.startswith("#") for line in lines)
    assert lines[-1] == "#@daily root /v/bin/tq-conn-x -c /c -ll /l -v 1"
    assert "To enable it, remove the '#'" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


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
    assert last.startswith("#0 */2 * * * root ") and last.endswith(f"tq-conn-toy -c {toy.dir} -ll {logdir} -v 2")
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
    (("--cron", "@daily", "--cron-dir", "/nonexistent/cron.d"), "The cron folder /nonexistent/cron.d does not exist"),
])
def test_a_bad_cron_flag_exits_2_before_anything_else(toy, args, message):
    result = toy.run(*args)  # no config either: the flag is checked first
    assert result.code == 2, result
    assert message in result.err
