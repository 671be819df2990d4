"""An upgrade as the top README describes it: the config and state a 1.1.0 release wrote work with this code."""

import json
import os
import shutil

import pytest
import yaml

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN

pytestmark = pytest.mark.e2e

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASE = os.path.join(HERE, "upgrade", "ctci-1.1.0")   # written by tq-conn-ctci 1.1.0: --cron first run, one run
CMD, CONFIG, STATE, LOOKUP = "tq-conn-ctci", "tq-conn-ctci.yaml", "tq-conn-ctci.state.json", "CTCI_CEWL"


@pytest.fixture
def installed(tmp_path, sandbox):
    """The 1.1.0 files in a config folder, pointed at this session's stand-ins (the only change made to them)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    text = open(os.path.join(RELEASE, CONFIG), encoding="utf-8").read()
    (folder / CONFIG).write_text(text.replace("@CTCI_URL@", sandbox.url("ctci")).replace("@DEVO_URL@",
                                                                                         sandbox.url("devo")))
    shutil.copy(os.path.join(RELEASE, STATE), folder / STATE)
    return folder


def test_the_config_and_state_of_the_previous_release_work_after_an_upgrade(installed, cli, sandbox):
    before = json.loads((installed / STATE).read_text())
    result = cli(CMD, "-c", installed, "-v", "2")
    assert result.code == 0, result
    assert "starts over" not in result.both                       # the state was read, not forgotten
    assert f"Config key 'devo_verify_ssl' is now 'devo_verify_tls'; rewritten in {installed / CONFIG}." in result.out
    text = (installed / CONFIG).read_text()
    assert "devo_verify_tls: true" in text and "\ndevo_verify_ssl:" not in text
    assert "# Other parameters: remove the '#'" in text          # the rest of the file as it was
    assert yaml.safe_load(text)["devo_domain"] == DEFAULT_DOMAIN
    after = json.loads((installed / STATE).read_text())
    assert after["last_id_ref"] >= before["last_id_ref"] and after["reset_persistence_auth"] == "first"
    assert after["last_run"] > before["last_run"]
    assert sandbox["devo"].lookup(LOOKUP)["total"] > 0
    again = cli(CMD, "-c", installed)                             # and the notice is given once
    assert again.code == 0 and "devo_verify_ssl" not in again.both, again
