"""The reliability suite's toolkit: one adapter per connector, a harness running the installed commands, the tally."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter

import requests
import yaml

BIN = os.path.dirname(sys.executable)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
UNEXPECTED = re.compile(r"unexpected failure", re.I)
RETRIES_FEW = "2"   # lasting faults: two retries show the behaviour, five only take longer


# ---- the tally printed at the end of the suite ------------------------------------------------------------------

class Tally:
    """Counts collected by the tests, printed by pytest_terminal_summary."""

    def __init__(self):
        self.scenarios = 0          # fault scenarios run (connector x scenario)
        self.survived = 0           # of those, passed every check: exit code, message, state, rerun, secrets
        self.bad_inputs = 0         # bad config files and vendor data tried
        self.bad_handled = 0        # of those, ended in a clear message or a counted skip
        self.fuzz_cases = 0         # hypothesis examples run against the vendor-data parsers
        self.iocs_lost = 0          # keys of the reference delivery missing after the rerun
        self.secrets_leaked = 0     # secret values found in output, logs or the cron entry
        self.key_files_left = 0     # files holding a line of the X.509 private key, after a signal and the next run
        self.outputs_scanned = 0    # stdout/stderr/log/cron texts scanned for secrets
        self.matrix = {}            # connector -> Counter(scenario -> "ok" / "FAILED")

    def record(self, connector, scenario, ok):
        self.matrix.setdefault(connector, {})[scenario] = "ok" if ok else "FAILED"


TALLY = Tally()


def nothing_lost(h):
    """Assert the destination holds the whole reference delivery; what it lacks counts as lost in the summary."""
    lost = h.lost()
    TALLY.iocs_lost += sum(len(v) for v in lost.values())
    assert not lost, f"lost: { {k: sorted(v)[:5] for k, v in lost.items()} }"


def rerun_delivers(h, private=True):
    """Run again with the faults cleared: it ends well, nothing of the reference is missing, the state is covered
    (and every file it left is private); return the run."""
    h.clear_faults()
    again = h.run(verbosity=1, to_log=False)
    h.assert_clean_exit(again, 0)
    nothing_lost(h)
    assert not h.state_problems()
    if private:
        h.assert_private_files()
    return again


def scenario(connector, name, body):
    """Run body() as one scenario of the summary, counted and recorded for connector; a failed one fails its test."""
    TALLY.scenarios += 1
    ok = False
    try:
        body()
        ok = True
    finally:
        TALLY.survived += ok
        TALLY.record(connector, name, ok)


# ---- running the installed commands ------------------------------------------------------------------------------

class Result:
    """What a finished command left: exit code, stdout, stderr, and the texts of its log files."""

    def __init__(self, code, out, err, logs=""):
        self.code, self.out, self.err, self.logs = code, out, err, logs

    @property
    def both(self):
        return self.out + self.err

    @property
    def everything(self):
        return self.out + self.err + self.logs

    def __repr__(self):
        logs = f"\nlogs:\n{self.logs[-3000:]}" if self.logs else ""
        return f"<exit {self.code}\nstdout:\n{self.out[-4000:]}\nstderr:\n{self.err[-3000:]}{logs}>"


def command_path(command):
    path = os.path.join(BIN, command)
    if not os.path.exists(path):
        raise AssertionError(f"{command} is not installed in {BIN}; run 'make test' (it installs the wheels)")
    return path


def environment(tmpdir, extra=None):
    """Return the environment of a run: no TQ_CONN_* settings of the caller, quick retries, a private TMPDIR."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TQ_CONN_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))}
    env.update({"TQ_CONN_HTTP_BACKOFF": "0.05", "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmpdir),
                "TQ_CONN_LOCK_GRACE": "2"})
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


# ---- the adapters: what differs per connector ---------------------------------------------------------------------

class Adapter:
    """How the suite drives one connector: a valid config for the sandbox, what to fault, what was delivered."""

    name = ""
    command = ""
    source = ""                 # the stand-in the connector reads from
    data_path = ""              # regex of the source path(s) carrying the data (faulted by the matrix)
    auth_path = ""              # regex of a request made after others succeeded (an expired token mid-run)
    delivery = "devo"           # devo, or ci (Collective Insights)
    delivery_path = r"/deploy-csv$"
    lock_kill_param = True      # has Kill Previous Runs After X Seconds (every connector, through common)
    verify_param = None         # the parameter turning TLS verification of the source off
    source_url_key = None       # the parameter holding the source URL
    event_key = None            # what identifies an event sent to a Devo table (default: its text)

    @property
    def config_file(self):
        return self.command + ".yaml"

    @property
    def state_file(self):
        return self.command + ".state.json"

    def connector(self):
        """Return the CONNECTOR declaration (imported here: the suite reads its parameter list)."""
        module = __import__(f"tq_conn_{self.name}", fromlist=["CONNECTOR"])
        return module.CONNECTOR

    def config(self, h):
        """Return a valid config (dict) for the sandbox."""
        raise NotImplementedError

    def source_url(self, h, base):
        """Return the config value pointing the source at base (scheme://host:port)."""
        raise NotImplementedError

    def prepare(self, h):
        """Anything a fresh test needs before its first run."""

    def args(self):
        return ()

    def extra_secrets(self, h, config):
        return []

    def expire_midrun(self, h):
        """Make the source refuse the credential after the run has started."""
        h.fault(self.source, path=self.auth_path, count=0, status=401,
                body={"error": {"status": 401, "message": "token expired"}})

    def refuse_delivery(self, h):
        h.fault("devo", path=self.delivery_path, count=0, status=500,
                body={"error": {"message": "lookup service unavailable"}})

    def fail_delivery_job(self, h):
        h.sandbox["devo"].settings["job_error"] = "column types do not match"

    def state_problems(self, h, state, snap):
        """Return what in state is ahead of what the destination accepted (an empty list when none)."""
        return []


def devo_snapshot(sandbox, event_key=None):
    """Return what the Devo stand-in holds: {("lookup", name): frozenset(keys), ("table", tag): event keys}."""
    devo = sandbox["devo"]
    snap = {}
    with devo.lock:
        names = sorted({name for (_, name) in devo.lookups})
    for name in names:
        view = devo.lookup(name)
        if view is not None:
            snap[("lookup", name)] = frozenset(str(row[view["key"]]) for row in view["rows"])
    with devo.lock:
        tags = sorted(devo.events)
    for tag in tags:
        snap[("table", tag)] = frozenset((event_key or str)(event["message"]) for event in devo.table(tag))
    return snap


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _pem_lines(text):
    return [line.strip() for line in str(text).splitlines() if len(line.strip()) >= 16 and "-----" not in line]


class Ctci(Adapter):
    name, command, source = "ctci", "tq-conn-ctci", "ctci"
    data_path = auth_path = r"^/api/v1/cewl$"
    verify_param, source_url_key = "verify_host_ssl_cert", "api_base_url"

    def config(self, h):
        from tq_conn_sandbox.services.ctci import TOKEN
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        return {"api_token": TOKEN, "api_base_url": h.url("ctci"), "reset_persistence_auth": "first",
                "devo_transport": "rest", "devo_lookups_url": h.url("devo") + "/lookup-api",
                "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN,
                "obfuscate_fields": ["external_note"], "obfuscation_key": "reliability-obfuscation-key-0001"}

    def source_url(self, h, base):
        return base

    def state_problems(self, h, state, snap):
        last = state.get("last_id_ref")
        if last is None:
            return []
        view = h.sandbox["devo"].lookup("CTCI_CEWL")
        held = [row.get("id_ref") for row in (view or {}).get("rows", []) if row.get("id_ref") is not None]
        if not held or max(held) < last:
            return [f"state last_id_ref {last} but the lookup holds id_ref up to {max(held) if held else None}"]
        return []


class RecordedFuture(Adapter):
    name, command, source = "recorded_future", "tq-conn-recorded-future", "recorded_future"
    data_path = r"^/v2/(ip|hash)/risklist"
    auth_path = r"^/v2/hash/risklist"          # the ip list went through, then the token is refused
    source_url_key = "base_url"

    def config(self, h):
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        from tq_conn_sandbox.services.recorded_future import TOKEN
        return {"api_token": TOKEN, "base_url": self.source_url(h, h.url("recorded_future")),
                "types": ["ip", "hash"], "devo_transport": "rest",
                "devo_lookups_url": h.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
                "devo_domain": DEFAULT_DOMAIN}

    def source_url(self, h, base):
        return base + "/v2/{0}/risklist?format=csv/splunk"

    def state_problems(self, h, state, snap):
        problems = []
        for kind, entry in (state.get("lists") or {}).items():
            for name, count in (entry.get("rows") or {}).items():
                held = snap.get(("lookup", name))   # repeated Names are sent as they come: count them not
                if count and not held:
                    problems.append(f"state says {count} rows of {kind} reached {name}, Devo holds "
                                    f"{None if held is None else len(held)}")
        return problems


class Flashpoint(Adapter):
    name, command, source = "flashpoint", "tq-conn-flashpoint", "flashpoint"
    data_path = r"^/api/(v4/indicators/(attribute|scroll)|alerting/v1/alerts)$"
    auth_path = r"^/api/v4/indicators/scroll$"  # the first page went through, the next page is refused
    source_url_key = "indicators_url"
    LOOKUPS = [{"domain": {"lookup_key": "value.domain", "lookup_status": "New"}},
               {"ip-dst|port": {"lookup_key": "fpid", "lookup_status": "Created"}}]
    TAG = "threatintel.flashpoint.intelligence.alerts"

    def config(self, h):
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        from tq_conn_sandbox.services.flashpoint import TOKEN_BASE64
        devo = h.sandbox["devo"]
        issued = h.client_certificate()
        host, port = devo.collector_address
        url = h.url("flashpoint")
        # PEM text pasted into the config: the run writes temporary key files, which the suite watches.
        return {"bearer_token_base64": TOKEN_BASE64, "lookups": self.LOOKUPS,
                "indicators_url": f"{url}/api/v4", "alerts_url": f"{url}/api/alerting/v1", "page_size": 25,
                "alerts_page_size": 15, "devo_transport": "rest",
                "devo_lookups_url": h.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
                "devo_domain": DEFAULT_DOMAIN, "devo_host": host, "devo_port": port,
                "devo_cert": issued.cert_pem, "devo_key": issued.key_pem, "devo_chain": devo.authority.cert_pem,
                "devo_tls_delay": 0}

    def source_url(self, h, base):
        return base + "/api/v4"

    @staticmethod
    def event_key(message):
        return json.loads(message).get("alert_id")

    def extra_secrets(self, h, config):
        from tq_conn_sandbox.services.flashpoint import TOKEN
        return [TOKEN]

    def state_problems(self, h, state, snap):
        problems = []
        names = {"domain": "Threatintel_Flashpoint_Intelligence_Domain",
                 "ip-dst|port": "Threatintel_Flashpoint_Intelligence_Ip_dst_port"}
        for type_, entry in (state.get("indicators") or {}).items():
            if entry.get("status") == "Created" and ("lookup", names.get(type_)) not in snap:
                problems.append(f"state marks type {type_} delivered but its lookup does not exist")
        sent = snap.get(("table", self.TAG), frozenset())
        for alert_id in (state.get("alerts") or {}).get("recent_alert_ids") or ():
            if alert_id not in sent:
                problems.append(f"state remembers alert {alert_id} as sent but Devo has no such event")
        return problems


class LogRhythm(Adapter):
    name, command, source = "logrhythm_collective_insights", "tq-conn-logrhythm-collective-insights", "logrhythm"
    data_path = r"^/lr-alarm-api/alarms"
    auth_path = r"^/lr-alarm-api/alarms/\d+/events"   # the search and the details went through
    delivery = "ci"
    delivery_path = r"^/collective-insights/detections"
    verify_param, source_url_key = "logrhythm_verify_tls", "logrhythm_api_url"

    def config(self, h):
        from tq_conn_sandbox.services.collective_insights import TOKEN as RF_TOKEN
        from tq_conn_sandbox.services.logrhythm import TOKEN as LR_TOKEN
        return {"rf_api_key": RF_TOKEN, "logrhythm_api_key": LR_TOKEN, "logrhythm_api_url": h.url("logrhythm"),
                "rf_api_url": h.url("collective_insights"), "batch_size": 5}

    def source_url(self, h, base):
        return base

    def refuse_delivery(self, h):
        h.fault("collective_insights", path=self.delivery_path, count=0, status=500,
                body={"message": "internal error"})

    def fail_delivery_job(self, h):
        # Collective Insights has no load job: its refusal of the detections as invalid stands for it.
        h.fault("collective_insights", path=self.delivery_path, count=0, status=400,
                body={"message": "data[0].ioc.value is missing"})

    def state_problems(self, h, state, snap):
        held = {i for (i, _, _) in snap.get(("ci", ""), ())}
        reference = h.reference_incidents()
        return [f"state marks alarm {alarm} submitted but Collective Insights has none of its detections"
                for alarm in (state.get("submitted") or {}) if alarm in reference and alarm not in held]


class DevoIocExporter(Adapter):
    name, command, source = "devo_ioc_exporter", "tq-conn-devo-ioc-exporter", "threatq"
    data_path = r"^/api/indicators/query"
    auth_path = r"^/api/indicators/query"
    verify_param, source_url_key = "threatq_verify_tls", "threatq_host"
    LOOKUP = "ThreatQ_IOCs"

    def config(self, h):
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        from tq_conn_sandbox.services.threatq import CLIENT_ID, PASSWORD, USERNAME
        return {"threatq_host": h.url("threatq"), "threatq_client_id": CLIENT_ID, "threatq_username": USERNAME,
                "threatq_password": PASSWORD, "status": "Review", "threatq_ui": False,
                "collection_name": "Devo Export", "lookup_name": self.LOOKUP, "batch_size": 100,
                "devo_transport": "rest", "devo_lookups_url": h.url("devo") + "/lookup-api",
                "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN}

    def source_url(self, h, base):
        return base

    def expire_midrun(self, h):
        # ThreatQ revokes every token when the third page is asked for: the client must log in again.
        h.sandbox["threatq"].configure(revoke_on_page=3)

    def state_problems(self, h, state, snap):
        count = state.get("last_count")
        held = snap.get(("lookup", self.LOOKUP))
        if count and (held is None or len(held) < count):
            return [f"state says {count} rows were delivered, the lookup holds {None if held is None else len(held)}"]
        return []


ADAPTERS = {a.name: a for a in (Ctci(), RecordedFuture(), Flashpoint(), LogRhythm(), DevoIocExporter())}
CONNECTORS = sorted(ADAPTERS)


# ---- the harness ---------------------------------------------------------------------------------------------------

_REFERENCE = {}


class Harness:
    """One connector instance in a test: its folders, config, runs, and checks of what it left behind."""

    def __init__(self, adapter, sandbox, tmp_path):
        self.adapter, self.sandbox = adapter, sandbox
        self.root = tmp_path
        self.folder = tmp_path / "conf"
        self.logdir = tmp_path / "logs"
        self.tmpdir = tmp_path / "tmp"
        for path in (self.folder, self.logdir, self.tmpdir):
            path.mkdir(parents=True, exist_ok=True)
        self.values = {}
        self._issued = None

    # -- sandbox --
    def url(self, name):
        return self.sandbox.url(name)

    def fault(self, service, **rule):
        """Add a fault rule to a stand-in (in process: a body may be raw bytes)."""
        self.sandbox[service].faults.add(**rule)

    def clear_faults(self):
        for service in self.sandbox.running.services.values():
            service.faults.clear()
        self.sandbox["devo"].settings["job_error"] = None
        self.sandbox["threatq"].configure(revoke_on_page=0)

    def client_certificate(self):
        if self._issued is None:
            self._issued = self.sandbox["devo"].client_certificate()
        return self._issued

    # -- config --
    def write_config(self, **overrides):
        values = {**self.adapter.config(self), **overrides}
        self.values = {k: v for k, v in values.items() if v is not None}
        (self.folder / self.adapter.config_file).write_text(yaml.safe_dump(self.values, sort_keys=False))
        os.chmod(self.folder / self.adapter.config_file, 0o600)
        return self.values

    def secrets(self):
        """Return every configured secret: secret parameters' values (PEM keys also line by line), and extras."""
        found = []
        for param in self.adapter.connector().params:
            value = self.values.get(param.key)
            if not param.secret or value in (None, ""):
                continue
            for leaf in _leaves(value):
                found.append(str(leaf).strip())
                if "-----BEGIN" in str(leaf):
                    found.extend(_pem_lines(leaf))
        found.extend(self.adapter.extra_secrets(self, self.values))
        return [s for s in found if len(s) >= 6]

    # -- runs --
    def argv(self, args, verbosity, to_log):
        argv = [command_path(self.adapter.command), "-c", str(self.folder), *self.adapter.args(), *map(str, args)]
        if verbosity:
            argv += ["-v", str(verbosity)]
        if to_log:
            argv += ["-ll", str(self.logdir)]
        return argv

    def run(self, *args, verbosity=3, to_log=True, env=None, timeout=120, scan=True):
        """Run the command; scan what it printed and logged for secrets; return a Result."""
        proc = subprocess.run(self.argv(args, verbosity, to_log), capture_output=True, text=True, timeout=timeout,
                              env=environment(self.tmpdir, env), stdin=subprocess.DEVNULL, cwd=self.root)
        result = Result(proc.returncode, proc.stdout, proc.stderr, self.read_logs())
        if scan:
            self.assert_no_secret(result.everything, f"run {' '.join(map(str, args))}")
        return result

    def spawn(self, *args, verbosity=3, to_log=True, env=None):
        """Start the command without waiting; return the Popen."""
        return subprocess.Popen(self.argv(args, verbosity, to_log), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=environment(self.tmpdir, env), stdin=subprocess.DEVNULL,
                                cwd=self.root, start_new_session=True)

    def finish(self, proc, timeout=60):
        out, err = proc.communicate(timeout=timeout)
        result = Result(proc.returncode, out, err, self.read_logs())
        self.assert_no_secret(result.everything, "spawned run")
        return result

    def read_logs(self):
        texts = []
        for base, _, files in os.walk(self.logdir):
            for name in sorted(files):
                with open(os.path.join(base, name), encoding="utf-8", errors="replace") as fh:
                    texts.append(fh.read())
        return "".join(texts)

    def clear_logs(self):
        for base, _, files in os.walk(self.logdir):
            for name in files:
                os.unlink(os.path.join(base, name))

    # -- what was delivered, what is remembered --
    def snapshot(self):
        """Return what the destination holds now."""
        if self.adapter.delivery == "ci":
            detections = list(self.sandbox["collective_insights"].detections)
            return {("ci", ""): frozenset((d["incident"]["id"], d["ioc"]["type"], d["ioc"]["value"])
                                          for d in detections)}
        return devo_snapshot(self.sandbox, self.adapter.event_key)

    def delivered_twice(self):
        """Return the Collective Insights detections submitted more than once."""
        if self.adapter.delivery != "ci":
            return []
        seen = Counter((d["incident"]["id"], d["ioc"]["type"], d["ioc"]["value"])
                       for d in self.sandbox["collective_insights"].detections)
        return [k for k, n in seen.items() if n > 1]

    def state(self):
        path = self.folder / self.adapter.state_file
        if not path.exists():
            return {}
        return json.loads(path.read_text())

    def state_problems(self):
        return self.adapter.state_problems(self, self.state(), self.snapshot())

    def reference(self):
        """Return what a clean run delivers (measured once per session in a scratch folder, then the sandbox reset)."""
        name = self.adapter.name
        if name not in _REFERENCE:
            scratch = Harness(self.adapter, self.sandbox, self.root / "reference")
            self.sandbox.reset()
            scratch.prepare()
            result = scratch.run(verbosity=1, to_log=False)
            assert result.code == 0, f"the clean reference run of {name} failed: {result!r}"
            snap = scratch.snapshot()
            assert snap and all(snap.values()), f"the clean reference run of {name} delivered nothing: {result!r}"
            _REFERENCE[name] = snap
            self.sandbox.reset()
        return _REFERENCE[name]

    def reference_incidents(self):
        return {i for (i, _, _) in self.reference().get(("ci", ""), ())}

    def lost(self):
        """Return {what: missing keys} of the reference delivery that the destination lacks now."""
        now = self.snapshot()
        missing = {}
        for what, keys in self.reference().items():
            gone = keys - now.get(what, frozenset())
            if gone:
                missing[what] = gone
        return missing

    def prepare(self, **overrides):
        self.write_config(**overrides)
        self.adapter.prepare(self)

    # -- checks --
    def assert_no_secret(self, text, where):
        TALLY.outputs_scanned += 1
        leaked = [s for s in self.secrets() if s in text]
        if leaked:
            TALLY.secrets_leaked += len(leaked)
            raise AssertionError(f"{len(leaked)} secret(s) of {self.adapter.name} appear in the output of {where}: "
                                 f"{[s[:6] + '...' for s in leaked]}")

    def assert_clean_exit(self, result, code, message=None):
        """The exit code, a message matching message, and no traceback."""
        # At -v 3 the log holds the traceback of an error on purpose (engineer detail); what a user reads does not.
        assert not TRACEBACK.search(result.both), f"a traceback: {result!r}"
        assert not UNEXPECTED.search(result.everything), f"an unexpected failure: {result!r}"
        assert result.code == code, f"exit {result.code}, expected {code}: {result!r}"
        if message:
            assert re.search(message, result.err, re.S), f"stderr does not say {message!r}: {result!r}"
        if code:
            first = result.err.strip().splitlines()[0] if result.err.strip() else ""
            assert first.startswith("Error: ") or code == 3, f"no one-line error on stderr: {result!r}"

    def assert_private_files(self):
        """Config, state and every file the run left in the config folder and log folder are mode 0600."""
        for base in (self.folder, self.logdir):
            for path in base.rglob("*"):
                if path.is_file() and not path.name.endswith(".lock"):
                    mode = stat.S_IMODE(path.stat().st_mode)
                    assert mode & 0o077 == 0, f"{path.name} is mode {oct(mode)}, not private (0600)"

    def leftovers(self):
        """Return the temporary files and folders a run left in its TMPDIR."""
        return sorted(str(p.relative_to(self.tmpdir)) for p in self.tmpdir.rglob("*"))


def kill_group(proc):
    """SIGKILL a spawned command (its own session) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)


def wait_for(predicate, timeout=20.0, step=0.02):
    """Poll predicate until it holds; return whether it did within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def requests_to(sandbox, service, path_regex):
    pattern = re.compile(path_regex)
    with sandbox[service].lock:
        return [r for r in sandbox[service].requests if pattern.search(r["path"])]


def post(url, payload):
    requests.post(url, json=payload, timeout=30).raise_for_status()


# ---- defects found in code owned elsewhere, open until fixed there -------------------------------------------------
# Each entry marks the test xfail(strict=True): the suite stays green while the defect is open and fails as soon as
# it is fixed, so that the entry is removed and the test guards the fix from then on.
KNOWN_DEFECTS = {}   # test name -> the open defect it shows (a strict xfail until it is fixed)
