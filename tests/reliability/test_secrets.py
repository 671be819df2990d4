"""Secrets: never printed or logged at any verbosity, private files, temporary key files gone, TLS verified."""

import shutil
import stat

import pytest
import yaml

from reliability_kit import ADAPTERS, CONNECTORS, TALLY, wait_for
from tq_conn_sandbox.pki import Authority
from tq_conn_sandbox.server import Running
from tq_conn_sandbox.services import available

pytestmark = pytest.mark.e2e


def _echo_secrets(h):
    """The source refuses the credential with a body that quotes every configured secret back."""
    echoed = " | ".join(h.secrets())
    h.fault(h.adapter.source, path=h.adapter.data_path, count=0, status=401,
            body={"error": {"status": 401, "message": f"invalid credentials: {echoed}"}, "detail": echoed,
                  "errors": [echoed]})


# (verbosity, log to a file, what happens): every verbosity, both log destinations, a clean run and two failures.
RUNS = [(1, False, "refused by the source, which quotes the secrets back"), (1, True, "clean"),
        (2, False, "Devo refuses the upload"), (2, True, "refused by the source, which quotes the secrets back"),
        (3, False, "refused by the source, which quotes the secrets back"), (3, True, "clean")]


@pytest.mark.parametrize("connector", CONNECTORS)
def test_no_secret_in_any_output_at_any_verbosity(connector, harness_for):
    h = harness_for(connector, reference=False)
    # An unknown key is warned about (named) and does not stop the run.
    h.write_config(colour="blue")
    TALLY.bad_inputs += 1
    for verbosity, to_log, what in RUNS:
        h.clear_faults()
        if what.startswith("refused"):
            _echo_secrets(h)
        elif what.startswith("Devo"):
            h.adapter.refuse_delivery(h)
        h.clear_logs()
        state = h.folder / h.adapter.state_file
        if state.exists():   # every run has something to deliver
            state.unlink()
        shutil.rmtree(h.folder / (h.adapter.command + ".index"), ignore_errors=True)   # and delivers it whole
        result = h.run(verbosity=verbosity, to_log=to_log, env={"TQ_CONN_HTTP_RETRIES": "1"})  # scans for secrets
        assert result.code == (0 if what == "clean" else 2 if what.startswith("refused") else 1), result
        if what == "clean" and verbosity < 3:
            assert "Unknown config key 'colour' ignored" in result.everything, result
            TALLY.bad_handled += verbosity == 1
        if to_log:
            logs = list(h.logdir.rglob("*.log"))
            assert logs, f"-ll wrote no log file: {result!r}"
            assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
        assert h.leftovers() == [], f"temporary files left: {h.leftovers()}"
    h.assert_private_files()
    # --show-config and --print-config-template print the config: masked.
    for flag in ("--show-config", "--print-config-template"):
        shown = h.run(flag, verbosity=None, to_log=False)
        assert shown.code == 0, shown
    assert "****" in h.run("--show-config", verbosity=None, to_log=False).out


def _env_of(h, values):
    """Return the values as the environment variables the connector reads (TQ_CONN_<KEY>, or the declared name)."""
    env = {}
    for param in h.adapter.connector().params:
        value = values.get(param.key)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(":".join([t, v["lookup_key"], v["lookup_status"]]) if isinstance(item, dict) else str(item)
                             for item in value for t, v in (item.items() if isinstance(item, dict) else [(item, None)]))
        env[param.env or f"TQ_CONN_{param.key.upper()}"] = str(value)
    return env


@pytest.mark.parametrize("connector", CONNECTORS)
def test_the_config_and_cron_entry_the_connector_writes(connector, harness_for, tmp_path):
    """With no config file, values from the environment and --cron, the connector writes its config: mode 0600,
    secrets in it (it is the config) but not in the cron entry or the output."""
    h = harness_for(connector, prepare=False, reference=False)
    h.values = h.adapter.config(h)
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir()
    result = h.run("--cron", "0 */2 * * *", "--cron-dir", cron_dir, verbosity=3, env=_env_of(h, h.values))
    h.assert_clean_exit(result, 0)
    written = h.folder / h.adapter.config_file
    assert written.exists(), result
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    entries = list(cron_dir.iterdir())
    assert len(entries) == 1, entries
    h.assert_no_secret(entries[0].read_text(), "the cron entry")
    assert entries[0].read_text().count("\n#") >= 1 and " -c " in entries[0].read_text()
    assert stat.S_IMODE(entries[0].stat().st_mode) == 0o644
    assert yaml.safe_load(written.read_text())   # a readable config, the secrets of which stay in this file
    h.assert_private_files()


def test_temporary_key_files_are_private_and_gone_after_the_run_also_after_a_failure(harness_for):
    """Pasted PEM text reaches devo-sdk as in-memory files: nothing in TMPDIR while the run sends, nor after."""
    h = harness_for("flashpoint", reference=False)
    h.write_config(devo_transport="tls", devo_tls_delay=0.3)
    for failing in (False, True):
        TALLY.scenarios += 1
        h.clear_faults()
        if failing:   # the collector refuses every connection: the run fails while the key files exist
            h.sandbox["devo"].settings["collector_refuse"] = True
        seen = {}
        (h.folder / h.adapter.state_file).unlink(missing_ok=True)
        proc = h.spawn(verbosity=2)

        def look():
            try:
                paths = list(h.tmpdir.rglob("*"))
            except FileNotFoundError:   # a folder went away while it was listed: look again next time
                paths = []
            for path in paths:
                try:
                    seen[path.name] = stat.S_IMODE(path.stat().st_mode)
                except FileNotFoundError:
                    pass
            return proc.poll() is not None
        wait_for(look, timeout=60, step=0.005)
        result = h.finish(proc)
        assert result.code == (1 if failing else 0), result
        credentials = {n: m for n, m in seen.items() if n.endswith(".pem") or n.startswith("tq-conn-devo-")}
        assert credentials == {}, f"credential files in TMPDIR during an X.509 run (PEM stays in memory): {seen}"
        assert h.leftovers() == [], f"temporary files left after the run: {h.leftovers()}"
        h.sandbox["devo"].settings["collector_refuse"] = False
        TALLY.survived += 1
        TALLY.record("flashpoint", "temporary key files (X.509)", True)


# ---- TLS ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def https_sources():
    """The source stand-ins again, served over HTTPS with a certificate of a CA nobody trusts."""
    authority = Authority("tq-conn reliability untrusted CA")
    issued = authority.issue("localhost", server=True, hosts=("localhost", "127.0.0.1"))
    running = Running()
    classes = available()
    for name in ("ctci", "logrhythm", "threatq", "recorded_future", "flashpoint"):
        running.add(classes[name](), ssl_context=authority.server_context(issued, require_client_cert=False))
    yield running
    running.stop()


TLS_FAILED = r"TLS failed talking to .* certificate verify failed|certificate verify failed"


@pytest.mark.parametrize("connector", CONNECTORS)
def test_tls_certificates_are_verified_by_default(connector, harness_for, https_sources):
    h = harness_for(connector, reference=False)
    base = https_sources.url(h.adapter.source)
    h.write_config(**{h.adapter.source_url_key: h.adapter.source_url(h, base)})
    result = h.run(verbosity=1, to_log=False)
    assert result.code in (1, 2), result
    h.assert_clean_exit(result, result.code, TLS_FAILED)
    assert not h.sandbox["devo"].lookups


@pytest.mark.parametrize("connector", [c for c in CONNECTORS if ADAPTERS[c].verify_param])
def test_turning_verification_off_logs_a_warning_every_run(connector, harness_for, https_sources):
    h = harness_for(connector, reference=False)
    base = https_sources.url(h.adapter.source)
    h.write_config(**{h.adapter.source_url_key: h.adapter.source_url(h, base), h.adapter.verify_param: False})
    for _ in range(2):
        result = h.run(verbosity=1, to_log=False)
        h.assert_clean_exit(result, 0)
        assert "TLS certificate verification is OFF for" in result.out, result


def test_turning_devo_verification_off_logs_a_warning_every_run(harness_for):
    h = harness_for("ctci", reference=False)
    h.write_config(devo_verify_ssl=False)
    for _ in range(2):
        result = h.run(verbosity=1, to_log=False)
        h.assert_clean_exit(result, 0)
        assert "TLS certificate verification is OFF for the Devo Lookups API" in result.out, result
