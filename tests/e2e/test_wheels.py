"""The common and sandbox wheels install alone into a fresh virtual environment, online and from a wheelhouse;
the lowest devo-sdk they allow runs the X.509 path."""

import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WHEELS = os.path.join(ROOT, "wheels")
DISTS = {"common": "tq_conn_common", "sandbox": "tq_conn_sandbox"}

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def wheel_is_current(wheel, package, source):
    """Return True if the wheel holds exactly the working tree's .py files of package."""
    with zipfile.ZipFile(wheel) as zf:
        inside = {name: zf.read(name) for name in zf.namelist() if name.endswith(".py")}
    tree = {}
    for path in glob.glob(os.path.join(source, package, "**", "*.py"), recursive=True):
        with open(path, "rb") as fh:
            tree[os.path.relpath(path, source).replace(os.sep, "/")] = fh.read()
    return inside == tree


def build_wheel(dist, out, scratch):
    """Build dist from a copy of its source (the tree itself stays clean); return the wheel path."""
    copy = os.path.join(scratch, dist)
    shutil.copytree(os.path.join(ROOT, dist), copy,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "dist"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", out, copy], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = glob.glob(os.path.join(out, DISTS[dist] + "-*.whl"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The common and sandbox wheels: those in wheels/ when they are this tree's, freshly built otherwise."""
    scratch = str(tmp_path_factory.mktemp("build"))
    chosen = {}
    for dist, package in DISTS.items():
        current = [w for w in sorted(glob.glob(os.path.join(WHEELS, package + "-*.whl")))
                   if wheel_is_current(w, package, os.path.join(ROOT, dist))]
        chosen[dist] = current[-1] if current else build_wheel(dist, os.path.join(scratch, "out"), scratch)
        assert wheel_is_current(chosen[dist], package, os.path.join(ROOT, dist))
    return chosen


def make_venv(path):
    subprocess.run([sys.executable, "-m", "venv", path], check=True, timeout=300)
    return os.path.join(path, "bin")


def pip_install(bin_dir, *args):
    proc = subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def check_installed(bin_dir, venv):
    """The fresh environment imports both packages from itself and runs tq-conn-sandbox --help."""
    code = ("import tq_conn_common, tq_conn_sandbox, tq_conn_common.cli; "
            "from tq_conn_sandbox.services import available; assert 'echo' in available(); "
            "print(tq_conn_common.__file__); print(tq_conn_sandbox.__file__)")
    proc = subprocess.run([os.path.join(bin_dir, "python"), "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=venv, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr
    files = proc.stdout.split()
    assert len(files) == 2 and all(f.startswith(os.path.realpath(venv)) or f.startswith(venv) for f in files), files
    helped = subprocess.run([os.path.join(bin_dir, "tq-conn-sandbox"), "--help"], capture_output=True, text=True,
                            timeout=120)
    assert helped.returncode == 0 and "usage: tq-conn-sandbox" in helped.stdout, helped.stderr


def test_the_wheels_install_alone_into_a_fresh_venv(wheels, tmp_path):
    venv = str(tmp_path / "venv")
    bin_dir = make_venv(venv)
    pip_install(bin_dir, wheels["common"], wheels["sandbox"])
    check_installed(bin_dir, venv)


def _wheelhouse(wheels, tmp_path):
    """Return a folder holding the wheels and every dependency: wheels/ after `make wheelhouse`, or a new one."""
    has_dependencies = glob.glob(os.path.join(WHEELS, "requests-*.whl")) and glob.glob(
        os.path.join(WHEELS, "[Pp]y[Yy][Aa][Mm][Ll]-*.whl"))
    if has_dependencies and all(os.path.dirname(w) == WHEELS for w in wheels.values()):
        return WHEELS
    if os.environ.get("TQ_CONN_WHEELHOUSE_TEST") != "1":
        pytest.skip("no wheelhouse in wheels/ (make wheelhouse); set TQ_CONN_WHEELHOUSE_TEST=1 to build one here")
    house = str(tmp_path / "house")
    os.makedirs(house)
    for wheel in wheels.values():
        shutil.copy(wheel, house)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", house,
                           *glob.glob(os.path.join(house, "tq_conn_*.whl"))], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    return house


def test_the_wheels_install_offline_from_a_wheelhouse(wheels, tmp_path):
    house = _wheelhouse(wheels, tmp_path)
    venv = str(tmp_path / "venv")
    bin_dir = make_venv(venv)
    pip_install(bin_dir, "--no-index", "--find-links", house, "tq-conn-common", "tq-conn-sandbox")
    check_installed(bin_dir, venv)


def test_the_installed_common_in_this_environment_is_this_tree(current_install):
    """The environment running these tests runs this working tree's tq_conn_common and tq_conn_sandbox."""


def test_stale_install_detection(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("_root_conftest", os.path.join(ROOT, "tests", "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale_modules = module.stale_modules
    source = tmp_path / "src"
    source.mkdir()
    for name in ("errors.py", "cli.py"):
        shutil.copy(os.path.join(ROOT, "common", "tq_conn_common", name), source / name)
    assert stale_modules("tq_conn_common", str(source)) == []
    (source / "cli.py").write_text("# changed\n")
    (source / "new.py").write_text("")
    assert stale_modules("tq_conn_common", str(source)) == ["cli.py", "new.py"]
    assert filecmp.cmp(source / "errors.py", os.path.join(ROOT, "common", "tq_conn_common", "errors.py"))


# ---- the lowest devo-sdk allowed -------------------------------------------------------------------------------

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


def test_the_lowest_devo_sdk_allowed_sends_lookups_and_events_over_x509(wheels, sandbox, tmp_path):
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
