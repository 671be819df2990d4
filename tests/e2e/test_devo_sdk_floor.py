"""The lowest devo-sdk that tq-conn-common allows runs its X.509 path: a lookup and events reach the Devo stand-in."""

import json
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # test_wheels beside it, whatever the import mode
from test_wheels import ROOT, make_venv, pip_install, wheels  # noqa: F401  (wheels is a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SCRIPT = r"""
import argparse, importlib.metadata, json, sys
from tq_conn_common import Connector, Param, config as cfg, devo
from tq_conn_common.session import Run
from tq_conn_common.state import State

values = json.loads(sys.argv[1])
params = devo.output_params() + (Param("lookup_name", "Devo Lookup Name"),)
run = Run(Connector(name="floor", title="floor", params=params), argparse.Namespace(name=None),
          cfg.validate(params, values), State(sys.argv[2]), {})
spec = devo.LookupSpec(name_from="lookup_name", key="value", columns=(devo.Column("value"), devo.Column("n", "int")))
rows = devo.deliver(run, spec, iter([{"value": "a\nb", "n": 1}, {"value": "c", "n": 2}]))
events = devo.send_events(run, "my.app.floor.events", [{"id": 1}, {"id": 2}, {"id": 3}])
print(json.dumps({"sdk": importlib.metadata.version("devo-sdk"), "rows": rows, "events": events}))
"""


def floor():
    with open(os.path.join(ROOT, "common", "setup.cfg"), encoding="utf-8") as fh:
        return re.search(r"devo-sdk>=([\d.]+)", fh.read()).group(1)


def test_the_lowest_devo_sdk_allowed_sends_lookups_and_events_over_x509(wheels, sandbox, tmp_path):  # noqa: F811
    version = floor()
    assert tuple(map(int, version.split("."))) >= (6, 0, 2)   # Lookup(escape_newline=...) came in 6.0.2
    bin_dir = make_venv(str(tmp_path / "venv"))
    pip_install(bin_dir, wheels["common"], f"devo-sdk=={version}")
    devo = sandbox["devo"]
    issued = devo.client_certificate()
    host, port = devo.collector_address
    values = {"devo_transport": "tls", "devo_host": host, "devo_port": port, "devo_cert": issued.cert_pem,
              "devo_key": issued.key_pem, "devo_chain": devo.authority.cert_pem, "devo_tls_delay": 0,
              "lookup_name": "Floor_Lookup"}
    proc = subprocess.run([os.path.join(bin_dir, "python"), "-c", SCRIPT, json.dumps(values),
                           str(tmp_path / "state.json")], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert said == {"sdk": version, "rows": 2, "events": 3}
    assert {r["value"]: r["n"] for r in devo.lookup("Floor_Lookup")["rows"]} == {"a\nb": 1, "c": 2}
    assert [json.loads(e["message"])["id"] for e in devo.table("my.app.floor.events")] == [1, 2, 3]
