"""tq-conn-devo-ioc-exporter end to end: the installed command against the ThreatQ and Devo stand-ins."""

import getpass
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.threatq import CLIENT_ID, PASSWORD, USERNAME

pytestmark = pytest.mark.e2e

CMD = "tq-conn-devo-ioc-exporter"
RECORD = CMD
LOOKUP = "ThreatQ_IOCs"
HOSTNAME = "threatq.example.com"
ADVERSARY_ATTRIBUTES = ("Actor", "Related Adversary", "Related Actor")
WITH_ALL = ("attributes", "adversaries", "score", "status", "type")


def config_name(name=None):
    return CMD + (f"-{name}" if name else "") + ".yaml"


def bin_path():
    return os.path.join(os.path.dirname(sys.executable), CMD)


def env_of(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQ_CONN_")}
    env.update({"TQ_CONN_HTTP_BACKOFF": "0.05", "PYTHONWARNINGS": "ignore", **(extra or {})})
    return env


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "tq_labs"
    path.mkdir()
    return path


def answers(sandbox):
    return {"threatq_host": sandbox.url("threatq"), "threatq_client_id": CLIENT_ID, "threatq_username": USERNAME,
            "threatq_password": PASSWORD, "status": "Review"}


def local_devo(sandbox):
    """The local (config file) Devo settings that point at the stand-in: Lookups API URL, collector address."""
    host, port = sandbox["devo"].collector_address
    return {"devo_lookups_url": sandbox.url("devo") + "/lookup-api", "devo_host": host, "devo_port": port,
            "devo_tls_delay": 0}


def write_config(folder, sandbox, name=None, **extra):
    values = {**answers(sandbox), **local_devo(sandbox), **extra}
    path = folder / config_name(name)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    path.chmod(0o600)   # as the README asks; a file others may read is made 0600 with a warning


def in_ui(sandbox, values=None, is_active=True, record=RECORD):
    """Play the user on the ThreatQ integrations page, over HTTP."""
    response = requests.post(f"{sandbox.url('threatq')}/_sandbox/threatq/connectors/{record}",
                             json={"values": values or {}, "is_active": is_active}, timeout=5)
    response.raise_for_status()


def rest_values(**more):
    return {"devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, "lookup_name": LOOKUP,
            "collection_name": "Devo Export", "threatq_hostname": HOSTNAME, **more}


def tls_values(sandbox, **more):
    issued = sandbox["devo"].client_certificate()
    return {"devo_cert": issued.cert_pem, "devo_key": issued.key_pem, "devo_chain": sandbox["devo"].authority.cert_pem,
            "devo_transport": "tls", "lookup_name": LOOKUP, "collection_name": "Devo Export", "threatq_hostname": HOSTNAME, **more}


@pytest.fixture
def configured(folder, sandbox, cli):
    """An instance set up as the README says: answers in the config file, first run registers the connector."""
    def setup(name=None, values=None, **extra):
        write_config(folder, sandbox, name, **extra)
        args = ("-n", name) if name else ()
        first = cli(CMD, "-c", folder, *args)
        assert first.code == 0 and "Connector configured. Set information in UI" in first.out, first
        in_ui(sandbox, values if values is not None else rest_values(), record=RECORD + (f"-{name}" if name else ""))
        return folder
    return setup


@pytest.fixture
def exporter(cli, folder):
    def run(*args, env=None, timeout=120):
        return cli(CMD, "-c", folder, *args, env=env, timeout=timeout)
    return run


def expected_rows(sandbox, collection="Devo Export", hostname=HOSTNAME):
    """The rows the lookup must hold, computed from the stand-in's generated collection (newest first wins)."""
    source = sandbox["threatq"].collection(collection)
    rows = {}
    for index in reversed(range(source.size)):
        item = source.indicator(index, WITH_ALL)
        value = item["value"].strip()
        if not value or value in rows:
            continue
        attributes = item["attributes"]

        def values(*names):
            return [a["value"] for n in names for a in attributes if a["name"] == n and a["value"].strip()]
        score = item["score"]["manual_score"]
        score = float(item["score"]["generated_score"]) if score is None else float(score)
        score = str(int(score)) if score.is_integer() else repr(score)   # text: Devo documents no float type
        adversaries = list(dict.fromkeys(values(*ADVERSARY_ATTRIBUTES) + [a["name"] for a in item["adversaries"]]))
        rows[value] = {"value": value, "type": item["type"]["name"], "status": item["status"]["name"], "score": score,
                       "link": f"https://{hostname}/indicators/{item['id']}/details",
                       "attack_phase": ", ".join(dict.fromkeys(values("Attack Phase"))),
                       "threat_type": ", ".join(dict.fromkeys(values("Threat Type"))),
                       "adversary": ", ".join(adversaries), "has_adversary": len(item["adversaries"]),
                       "created_at": item["created_at"], "updated_at": item["updated_at"]}
    return rows


def lookup_rows(sandbox, name=LOOKUP):
    view = sandbox["devo"].lookup(name)
    return None if view is None else {row["value"]: row for row in view["rows"]}


def indicator_requests(sandbox):
    return [r for r in sandbox["threatq"].requests if r["path"].startswith("/api/indicators/query")]


# ---- first run ----------------------------------------------------------------------------------------------------

def test_first_run_on_a_terminal_prompts_registers_the_connector_and_says_set_information_in_ui(
        sandbox, folder, exporter, terminal):
    code, screen = terminal(CMD, ["-c", folder, "-ll", "stdout"], [
        ("ThreatQ Host: ", sandbox.url("threatq")), ("ThreatQ Client ID: ", CLIENT_ID),
        ("ThreatQ Username: ", USERNAME), ("ThreatQ Password: ", PASSWORD), ("Status [Review]: ", "")])
    assert code == 0, screen
    said = screen.rstrip().splitlines()
    assert said[-2].strip() == "Connector configured. Set information in UI", screen   # the guide's words, then
    assert "Run statistics: requests made " in said[-1], screen                        # the statistics line
    order = [screen.index(p) for p in ("ThreatQ Host:", "ThreatQ Client ID:", "ThreatQ Username:",
                                       "ThreatQ Password:", "Status [Review]:")]
    assert order == sorted(order)
    assert PASSWORD not in screen and USERNAME in screen           # the password is not echoed
    path = folder / config_name()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    written = yaml.safe_load(path.read_text())
    assert {k: written[k] for k in answers(sandbox)} == answers(sandbox)
    assert written["threatq_token"]["access_token"] and written["threatq_token"]["expires_at"]
    record = sandbox["threatq"].connector(RECORD)
    assert record["category"]["name"] == "Labs" and record["is_active"] is False
    assert record["indicator_status_id"] == 4                      # Review
    labels = [f["label"] for f in record["custom_fields"]]
    # The Lookups API's token and domain before the X.509 fields (X.509 lookups are unconfirmed, past their end).
    assert labels[:7] == ["Devo API Region", "Devo API Token", "Devo Domain", "Devo Transport",
                          "Devo X.509 Certificate", "Devo X.509 Private Key", "Devo X.509 Chain CA"]
    assert "Kill Previous Runs After X Seconds" in labels and "ThreatQ Password" not in labels
    # not yet enabled in the UI: the next run (from cron: no terminal) says so and touches nothing
    result = exporter()
    assert result.code == 0, result
    assert "is not enabled in ThreatQ" in result.out and "Enable it" in result.out
    assert indicator_requests(sandbox) == [] and sandbox["devo"].lookup(LOOKUP) is None


def test_setup_from_environment_variables_registers_without_a_terminal(sandbox, exporter):
    env = {f"TQ_CONN_{k.upper()}": str(v) for k, v in answers(sandbox).items()}
    result = exporter(env=env)
    assert result.code == 0, result
    said = result.out.strip().splitlines()
    assert said[0] == "Connector configured. Set information in UI" and len(said) == 2, result
    assert said[1].startswith("Run statistics: requests made ") or " Run statistics: " in said[1], result
    assert sandbox["threatq"].connector(RECORD) is not None


def test_a_refused_registration_still_ends_the_first_run_well(sandbox, folder, exporter):
    sandbox["threatq"].configure(refuse_registration=403)
    write_config(folder, sandbox)
    result = exporter()
    assert result.code == 0, result
    lines = [line for line in result.out.splitlines() if line.strip() and "Run statistics" not in line]
    assert len(lines) == 1, result.out                                          # one line, then the statistics
    assert "the connector could not be registered in the ThreatQ UI (ThreatQ answered HTTP 403)" in lines[0]
    assert "set threatq_ui: false and the parameters" in lines[0] and "lookup_name" in lines[0]
    written = yaml.safe_load((folder / config_name()).read_text())
    assert {k: written[k] for k in answers(sandbox)} == answers(sandbox)        # the answers are kept
    assert sandbox["threatq"].connectors == {}
    # Done as the line says, the next run exports from the config file alone.
    write_config(folder, sandbox, threatq_ui=False, **rest_values())
    again = exporter()
    assert again.code == 0, again
    assert len(lookup_rows(sandbox)) == 491


def test_a_registration_whose_answer_is_lost_creates_one_record(sandbox, folder, exporter):
    sandbox["threatq"].configure(create_timeout=3)       # the record is created; the answer comes too late
    write_config(folder, sandbox)
    result = exporter(env={"TQ_CONN_HTTP_TIMEOUT": "1"})
    assert result.code == 0, result
    assert "Connector configured. Set information in UI" in result.out
    posts = [r for r in sandbox["threatq"].requests if r["method"] == "POST" and r["path"] == "/api/connectors"]
    assert len(posts) == 1 and len(sandbox["threatq"].connectors) == 1


def test_custom_fields_in_threatqs_mapping_form_are_read(sandbox, configured, exporter):
    sandbox["threatq"].configure(custom_fields_shape="mapping")
    configured()
    result = exporter()
    assert result.code == 0, result
    assert lookup_rows(sandbox) == expected_rows(sandbox)
    assert [r["method"] for r in sandbox["threatq"].requests if r["path"].startswith("/api/connectors/")] == ["PUT"]


# ---- runs ---------------------------------------------------------------------------------------------------------

def test_values_set_in_the_ui_deliver_the_collection_field_by_field(sandbox, configured, exporter, folder):
    configured()
    result = exporter("-v", "2")
    assert result.code == 0, result
    rows, expected = lookup_rows(sandbox), expected_rows(sandbox)
    assert len(expected) == 491                                  # 500 indicators, 9 values held twice
    assert rows == expected
    assert all(all(v not in ("", None) for v in row.values()) for row in rows.values())   # every column filled
    assert "Devo transport: Lookups REST API" in result.out
    assert "items received 500, skipped as invalid 0, duplicates dropped 9, items delivered 491" in result.out
    record = sandbox["threatq"].connector(RECORD)
    assert record["last_import_count"] == 491 and record["last_import_at"]
    state = json.loads((folder / f"{CMD}.state.json").read_text())
    assert state["last_count"] == 491 and state["last_run"]
    queries = indicator_requests(sandbox)
    assert all("sort=-updated_at" in r["query"] and "limit=1000" in r["query"] for r in queries)


@pytest.mark.parametrize("paging", ["offset", "cursor"])
def test_attack_phase_threat_type_and_adversary_come_with_fields_from_an_untidy_collection(
        sandbox, configured, exporter, paging):
    # ThreatQ (2026) leaves attributes out unless fields asks; the saved query names a retired type and empty clauses.
    sandbox["threatq"].add_collection("Untidy", 120, seed=31, untidy=True)
    configured(values=rest_values(collection_name="Untidy"), threatq_paging=paging)
    result = exporter()
    assert result.code == 0, result
    rows = lookup_rows(sandbox)
    assert rows == expected_rows(sandbox, "Untidy")
    assert all(row["attack_phase"] and row["threat_type"] and row["adversary"] for row in rows.values())
    assert "names type 'Retired Type', which this ThreatQ does not have" in result.err + result.out
    queries = indicator_requests(sandbox)
    assert paging == "offset" or all("fields=%2A%2Cattributes%2Cadversaries" in r["query"] for r in queries)


def test_the_x509_transport_delivers_the_same_rows(sandbox, configured, exporter):
    configured(values=tls_values(sandbox))
    result = exporter("-v", "2")
    assert result.code == 0, result
    assert "Devo transport: X.509 collector" in result.out
    # The table path types the score as a float (devo-sdk's types); the values are those of the Lookups API.
    def scored(rows):
        return {k: {**row, "score": float(row["score"])} for k, row in rows.items()}
    assert scored(lookup_rows(sandbox)) == scored(expected_rows(sandbox))
    assert "sent unconfirmed: lookups ThreatQ_IOCs went through the X.509 collector" in result.both


def test_a_changed_ui_value_applies_to_the_next_run(sandbox, configured, exporter):
    configured()
    assert exporter().code == 0
    in_ui(sandbox, {"collection_name": "High Confidence C2", "lookup_name": "C2_IOCs", "batch_size": 50})
    result = exporter()
    assert result.code == 0, result
    assert lookup_rows(sandbox, "C2_IOCs") == expected_rows(sandbox, "High Confidence C2")
    assert all("limit=50" in r["query"] for r in indicator_requests(sandbox)[-3:])


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("how", ["revoked on page 3", "expired during a slow page"])
def test_a_token_that_expires_mid_run_is_renewed_and_the_run_completes(sandbox, configured, exporter, how, workers):
    configured(values=rest_values(batch_size=100))
    threatq = sandbox["threatq"]
    if how == "revoked on page 3":
        threatq.configure(revoke_on_page=3)
        renewals = 1
    else:
        # tokens now live 2 s; the cached one is void, the first page takes 2.5 s: the next token dies under it
        threatq.configure(expires_in=2)
        threatq.expire_tokens()
        sandbox.fault("threatq", path="^/api/indicators/query$", delay=2.5, count=1)
        renewals = 2
    before = len(threatq.logins)
    result = exporter("-v", "2", env={"TQ_CONN_WORKERS": workers})
    assert result.code == 0, result
    assert lookup_rows(sandbox) == expected_rows(sandbox)
    grants = [x["grant"] for x in threatq.logins[before:]]
    if workers == "1":
        assert grants == ["refresh_token"] * renewals
    else:   # each worker renews the token it holds; a refresh token used once already falls back to the password
        assert grants[0] == "refresh_token" and set(grants) <= {"refresh_token", "password"}, grants
    assert "renewing it and retrying" in result.out
    assert "items received 500" in result.out


def test_an_upgrade_updates_the_ui_definition_and_keeps_the_values(sandbox, configured, exporter):
    configured()
    record = sandbox["threatq"].connector(RECORD)
    fields = record["custom_fields"]
    record["custom_fields"] = [f for f in fields if f["name"] != "kill_after_seconds"]   # as an older release left it
    result = exporter()
    assert result.code == 0, result
    record = sandbox["threatq"].connector(RECORD)
    assert [f["name"] for f in record["custom_fields"]] == [f["name"] for f in fields]
    assert {f["name"]: f.get("value") for f in record["custom_fields"] if f.get("value")} == rest_values()
    assert record["is_active"] is True and len(lookup_rows(sandbox)) == 491


def test_a_refused_upload_records_no_run(sandbox, configured, exporter, folder):
    configured()
    sandbox["devo"].settings["job_error"] = "lookup storage is full"
    result = exporter(env={"TQ_CONN_HTTP_RETRIES": "1"})
    assert result.code == 1, result
    assert "lookup storage is full" in result.err
    assert sandbox["threatq"].connector(RECORD)["last_import_at"] is None
    assert not (folder / f"{CMD}.state.json").exists()


def test_an_unknown_collection_name_lists_the_names_and_delivers_nothing(sandbox, configured, exporter, folder):
    configured(values=rest_values(collection_name="Devo export"))
    result = exporter()
    assert result.code == 2, result
    assert "ThreatQ Data Collection Name (collection_name): ThreatQ has no data collection named 'Devo export'" \
        in result.err
    assert "did you mean 'Devo Export'" in result.err and "'All Indicators 1M'" in result.err
    assert sandbox["devo"].lookup(LOOKUP) is None and not (folder / f"{CMD}.state.json").exists()


def test_a_disabled_connector_skips_the_run(sandbox, configured, exporter):
    configured()
    in_ui(sandbox, is_active=False)
    result = exporter()
    assert result.code == 0, result
    assert "Skipped: the connector 'Devo IOC Exporter' (tq-conn-devo-ioc-exporter) is not enabled in ThreatQ" \
        in result.out
    assert sandbox["devo"].lookup(LOOKUP) is None and indicator_requests(sandbox) == []


def test_missing_ui_values_are_named(sandbox, configured, exporter):
    configured(values={})
    result = exporter()
    assert result.code == 2, result
    assert "Lookup Table Name (lookup_name)" in result.err and "collection_name" in result.err


def test_a_bad_value_set_in_the_ui_is_named_as_the_ui_field_not_the_local_file(sandbox, configured, exporter, folder):
    configured(values=rest_values(batch_size="0"))
    result = exporter()
    assert result.code == 2, result
    assert "Error: The configuration has 1 problem(s):" in result.err     # the local file is not blamed
    assert ("Batch Size (batch_size): 0 is below the minimum 1; set 1 to 10000. (set in the ThreatQ UI "
            "(Configuration tab of the connector, field 'Batch Size'))") in result.err
    assert str(folder) not in result.err
    assert "Run statistics:" in result.out


def test_dry_run_fetches_and_maps_everything_delivers_nothing_and_records_no_run(sandbox, configured, exporter):
    configured()
    result = exporter("--dry-run", "-v", "2")
    assert result.code == 0, result
    assert f"Dry run: 491 rows would go to lookup {LOOKUP} (replace); nothing was sent." in result.out
    assert sandbox["devo"].lookup(LOOKUP) is None and "items delivered 0" in result.out
    assert "Recorded the run in ThreatQ" not in result.out                  # the connector record is left alone
    assert exporter("-v", "2").code == 0 and len(lookup_rows(sandbox)) == 491


def test_empty_values_are_skipped_and_counted(sandbox, configured, exporter):
    sandbox["threatq"].add_collection("With Gaps", 100, seed=21, empty_value_every=10)
    configured(values=rest_values(collection_name="With Gaps"))
    result = exporter()
    assert result.code == 0, result
    assert "skipped as invalid 10" in result.out
    assert lookup_rows(sandbox) == expected_rows(sandbox, "With Gaps")


def test_an_empty_collection_leaves_the_lookup_as_it_was(sandbox, configured, exporter):
    configured()
    assert exporter().code == 0
    in_ui(sandbox, {"collection_name": "Empty Collection"})
    result = exporter()
    assert result.code == 0, result
    assert "left unchanged" in result.out
    assert len(lookup_rows(sandbox)) == 491


def test_the_ui_may_be_left_out_entirely(sandbox, folder, exporter):
    write_config(folder, sandbox, threatq_ui=False, **rest_values())
    result = exporter()
    assert result.code == 0, result
    assert sandbox["threatq"].connectors == {}
    assert len(lookup_rows(sandbox)) == 491


def test_local_values_fill_what_the_ui_leaves_empty(sandbox, configured, exporter):
    configured(values=rest_values(lookup_name=""), lookup_name="Local_Name")
    result = exporter()
    assert result.code == 0, result
    assert len(lookup_rows(sandbox, "Local_Name")) == 491


def test_no_secret_reaches_the_log_at_verbosity_3(sandbox, configured, exporter, folder, tmp_path):
    configured(values=rest_values())
    logs = tmp_path / "logs"
    logs.mkdir()
    result = exporter("-v", "3", "-ll", logs)
    assert result.code == 0, result
    text = (logs / f"{CMD}.log").read_text()
    token = yaml.safe_load((folder / config_name()).read_text())["threatq_token"]
    assert "Effective config" in text
    for secret in (PASSWORD, DEFAULT_TOKEN, token["access_token"], token["refresh_token"]):
        assert secret not in text


# ---- instances, lock, cron ----------------------------------------------------------------------------------------

def test_two_instances_run_side_by_side_with_their_own_config_state_and_record(sandbox, configured, folder):
    configured("alpha", values=rest_values(lookup_name="Alpha_IOCs"))
    configured("beta", values=rest_values(lookup_name="Beta_IOCs", collection_name="High Confidence C2"))
    procs = [subprocess.Popen([bin_path(), "-c", str(folder), "-n", name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env_of(), stdin=subprocess.DEVNULL)
             for name in ("alpha", "beta")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert lookup_rows(sandbox, "Alpha_IOCs") == expected_rows(sandbox)
    assert lookup_rows(sandbox, "Beta_IOCs") == expected_rows(sandbox, "High Confidence C2")
    for name in ("alpha", "beta"):
        assert (folder / f"{CMD}-{name}.state.json").exists()
        assert sandbox["threatq"].connector(f"{RECORD}-{name}")["display_name"] == f"Devo IOC Exporter ({name})"


@pytest.mark.slow
def test_kill_previous_runs_after_x_seconds_ends_a_hung_run(sandbox, configured, exporter, folder):
    configured(values=rest_values(batch_size=100))
    sandbox.fault("threatq", path="^/api/indicators/query$", delay=20, count=1)   # the first page hangs
    hung = subprocess.Popen([bin_path(), "-c", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_of(), stdin=subprocess.DEVNULL)
    try:
        pid_file = folder / f"{CMD}.pid"
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_file.exists(), "the first run never took the lock"
        blocked = exporter()
        assert blocked.code == 3, blocked                       # default: one run at a time
        assert "Skipped" in blocked.err
        time.sleep(1.2)
        in_ui(sandbox, {"kill_after_seconds": 1})
        result = exporter()
        assert result.code == 0, result
        assert hung.wait(timeout=15) == 1   # SIGTERM ends it like an error: cleanup ran, lock let go
    finally:
        if hung.poll() is None:
            hung.kill()
    assert lookup_rows(sandbox) == expected_rows(sandbox)


def test_allow_multiple_runs_takes_no_lock(sandbox, configured, exporter, folder):
    configured(values=rest_values(allow_multiple_runs=True))
    result = exporter("-v", "2")
    assert result.code == 0, result
    assert "Multiple runs allowed" in result.out


def test_a_cron_entry_from_cron_works_when_uncommented(sandbox, configured, exporter, folder, tmp_path):
    configured()
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir()
    written = exporter("--cron", "0 */2 * * *", "--cron-dir", cron_dir, "-ll", folder)
    assert written.code == 0, written
    entry = (cron_dir / CMD).read_text().splitlines()[-1]
    assert entry.startswith(f"#0 */2 * * * {getpass.getuser()} ")
    command = entry.lstrip("#").split(None, 6)[6]               # after the five fields and the user
    assert command.startswith(bin_path()) and f"-c {folder}" in command
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd="/")
    assert ran.returncode == 0, ran
    assert "Run statistics:" in ran.stdout
    assert len(lookup_rows(sandbox)) == 491


# ---- worker processes ---------------------------------------------------------------------------------------------

def test_workers_reading_pages_the_server_caps_fill_the_same_lookup_as_one_process(sandbox, configured, exporter):
    configured(values=rest_values(batch_size=100))
    sandbox["threatq"].configure(max_limit=30)   # each page comes in four answers: 30, 30, 30 and 10 indicators
    alone = exporter("-v", "2", env={"TQ_CONN_WORKERS": "1"})
    assert alone.code == 0 and "worker processes" not in alone.out, alone
    assert lookup_rows(sandbox) == expected_rows(sandbox)
    sandbox["devo"].lookups.clear()
    shared = exporter("-v", "2", "--force", env={"TQ_CONN_WORKERS": "2"})
    assert shared.code == 0 and "read by 2 worker processes, 100 indicators a page" in shared.out, shared
    assert lookup_rows(sandbox) == expected_rows(sandbox)
    assert "items received 500" in shared.out and "duplicates dropped 9" in shared.out, shared


def test_a_run_killed_while_its_workers_read_leaves_none_of_them_behind(sandbox, configured, folder):
    configured(values=rest_values(batch_size=100))
    sandbox.fault("threatq", path="^/api/indicators/query$", delay=30, count=2)   # both workers wait on a page
    run = subprocess.Popen([bin_path(), "-c", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env_of({"TQ_CONN_WORKERS": "2"}), stdin=subprocess.DEVNULL)
    children = f"/proc/{run.pid}/task/{run.pid}/children"
    workers, deadline = [], time.monotonic() + 20
    while len(workers) < 2 and time.monotonic() < deadline:
        with open(children, encoding="ascii") as fh:
            workers = [int(pid) for pid in fh.read().split()]
        time.sleep(0.05)
    assert len(workers) == 2, workers
    run.kill()
    run.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid) for pid in workers) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)]


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
