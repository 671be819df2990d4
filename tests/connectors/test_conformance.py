"""Checks every connector gets for free: a valid declaration, current README tables, no hanging without a terminal."""

import configparser
import glob
import importlib
import os
import re

import pytest

from tq_conn_common import config as cfg
from tq_conn_common import docs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def connectors():
    """Return [(dir name, import package, command, README path)] of every connector in connectors/."""
    found = []
    for setup in sorted(glob.glob(os.path.join(ROOT, "connectors", "*", "setup.cfg"))):
        parser = configparser.ConfigParser()
        parser.read(setup)
        scripts = parser.get("options.entry_points", "console_scripts", fallback="").strip().splitlines()
        command, _, target = scripts[0].partition("=") if scripts else ("", "", "")
        package = target.strip().split(":")[0].split(".")[0]
        folder = os.path.dirname(setup)
        found.append((os.path.basename(folder), package, command.strip(), os.path.join(folder, "README.md")))
    return found


def load(package):
    """Return the CONNECTOR declared by an installed connector package."""
    return importlib.import_module(package).CONNECTOR

CONNECTORS = connectors()
IDS = [c[0] for c in CONNECTORS]


def test_every_connector_is_found():
    assert CONNECTORS, "no connector distributions found under connectors/"


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_declaration_is_valid(folder, package, command, readme):
    connector = load(package)
    assert connector.command == command, f"console script {command} differs from the declared {connector.command}"
    keys = [p.key for p in connector.params]
    assert len(keys) == len(set(keys)), f"duplicate parameter keys in {package}"
    for param in connector.params:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", param.key), f"{param.key} is not snake_case"
        assert param.label and param.help, f"{param.key} needs a label and a help text"
        if param.default is not None:
            _, problem = cfg.check_value(param, param.default)
            assert problem is None, f"the default of {param.key} does not pass its own validation: {problem}"
        if any(word in param.key for word in ("token", "password", "api_key", "secret")) and not param.key.endswith(
                ("_url", "_name", "_auth")):
            assert param.secret, f"{param.key} looks like a credential but is not declared secret=True"


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_readme_tables_are_current(folder, package, command, readme):
    stale = docs.update(readme, load(package), check=True)
    assert not stale, (f"{readme}: {stale}; regenerate with "
                       f"python -m tq_conn_common.docs {package} connectors/{folder}/README.md")


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_help_lists_the_standard_flags(cli, folder, package, command, readme):
    result = cli(command, "--help")
    assert result.code == 0, result
    for flag in ("--config", "--loglocation", "--verbosity", "--name", "--cron"):
        assert flag in result.out


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_no_config_and_no_terminal_exits_2_naming_what_is_missing(cli, tmp_path, folder, package, command, readme):
    env = {"RF_API_KEY": "", "LOGRHYTHM_API_KEY": "", "LOGRHYTHM_API_URL": ""}
    result = cli(command, "-c", tmp_path, env=env, timeout=60)
    assert result.code == 2, result
    assert "Missing configuration" in result.both, result
    required = [p for p in load(package).params if p.required and p.default is None and not p.ui]
    for param in required:
        assert param.key in result.both, f"{param.key} not named in: {result.both}"


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_config_template_lists_every_parameter(cli, folder, package, command, readme):
    result = cli(command, "--print-config-template")
    assert result.code == 0, result
    for param in load(package).params:
        assert f"{param.key}:" in result.out


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_version_names_the_connector_and_common(cli, folder, package, command, readme):
    from importlib.metadata import version
    result = cli(command, "--version")
    assert result.code == 0, result
    assert result.out.strip() == f"{command} {version(command)} (tq-conn-common {version('tq-conn-common')})"


@pytest.mark.parametrize("folder,package,command,readme", CONNECTORS, ids=IDS)
def test_cron_before_any_configuration_and_without_a_terminal(cli, tmp_path, folder, package, command, readme):
    crondir, config = tmp_path / "cron.d", tmp_path / "conf"
    crondir.mkdir()
    config.mkdir()
    env = {"RF_API_KEY": "", "LOGRHYTHM_API_KEY": "", "LOGRHYTHM_API_URL": ""}
    result = cli(command, "-c", config, "--cron", "@hourly", "--cron-dir", crondir, "--cron-user", "tqsvc", env=env)
    assert result.code == 0, result
    last = (crondir / command).read_text().splitlines()[-1]
    assert last.startswith("#@hourly tqsvc /") and f" -c {config} -ll " in last and " -ll stdout" not in last
    assert "before enabling the entry" in result.out
