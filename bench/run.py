"""The benchmarks: every case against the sandbox on loopback, one table, the same figures in bench/results.json.

    python bench/run.py                                  # every case at 1M rows, 100k for memory growth, 3 runs
    python bench/run.py --cases exporter --size 200000   # one case at another size
    python bench/run.py --cases tls --size 100000 --runs 5

Cases: exporter (ThreatQ collection -> Devo lookup, REST, beside its floor: the same pages over one keep-alive
connection parsed with orjson.loads; and, for information, the same pages with only the fields the exporter reads
decoded, and our own ThreatQ client paging and parsing them),
recorded_future (IP risk list -> Devo lookups, REST, beside its floor: the same download split into fields by
csv.reader; and psengine's fetch_risklist), tls (our devo-sdk TLS transport beside devo-sdk's Lookup.send_csv), delta
(the exporter's full run, then its delta run of the same collection a while later), growth (peak RSS at --size over
peak RSS at --small for the exporter and the Recorded Future connector). Each connector run is a child process: the
installed command of this Python's environment; its wall time, its own peak RSS (wait4) and CPU time are taken from
outside. The stand-ins run in two processes of their own (bench/sandbox.py: ThreatQ and Recorded Future; Devo), and
their CPU time during each run is shown beside it.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
CASES = ("exporter", "recorded_future", "tls", "growth", "delta")
MB = 1024.0
TICK = os.sysconf("SC_CLK_TCK")

# The targets of the issue (judged at 1M rows for absolute times; ratios at any size).
TARGETS = {
    "exporter_seconds": 20.0, "exporter_ratio_to_floor": 1.5, "exporter_peak_rss_mb": 150.0,
    "recorded_future_seconds": 10.0, "recorded_future_ratio_to_floor": 1.5, "recorded_future_peak_rss_mb": 100.0,
    "psengine_over_ours_rss": 10.0, "ours_over_send_csv": 1.1, "memory_growth": 1.3,
    "delta_rows_sent_ratio": 0.02, "delta_time_ratio": 0.25, "delta_peak_rss_mb": 150.0,
}


class CaseFailed(Exception):
    """A case could not be measured (a command failed, or delivered other than it said); the others go on."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- processes ------------------------------------------------------------------------------------------------

def cpu_seconds(pid):
    """Return the CPU seconds (user + system) a live process has used so far, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_mb(pid):
    """Return a live process's peak resident set size (VmHWM) in MB, or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / MB
    except OSError:
        pass
    return None


def cpu_sample():
    """Return (all CPU seconds, busy CPU seconds) of the machine so far, from /proc/stat; None if unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(values) / TICK, (sum(values) - values[3] - values[4]) / TICK


def own_cpu():
    """Return the CPU seconds of this process and every child it waited for (connectors, stand-ins)."""
    import resource
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def machine_busy(seconds=1.0):
    """Return the share of all CPUs busy over a short sample (other work on the machine), 0 to 1."""
    first = cpu_sample()
    time.sleep(seconds)
    second = cpu_sample()
    if not first or not second:
        return None
    return round((second[1] - first[1]) / max(1e-9, second[0] - first[0]), 2)


class Sandbox:
    """One bench/sandbox.py process: its URLs, collector address and CPU time."""

    def __init__(self, work, label, *args):
        self.label = label
        self.stderr = open(os.path.join(work, f"sandbox-{label}.log"), "w", encoding="utf-8")
        command = [sys.executable, os.path.join(HERE, "sandbox.py"), *args]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env=child_env())
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise SystemExit(f"The {label} sandbox did not start; see {self.stderr.name}.")
        self.info = json.loads(line)
        self.pid = self.process.pid

    def url(self, name):
        return self.info["urls"][name]

    def cpu(self):
        return cpu_seconds(self.pid)

    def peak_rss_mb(self):
        return peak_rss_mb(self.pid)

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                self.process.wait(timeout=15)
        self.stderr.close()


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQ_CONN_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


class Measured:
    """One measured child run."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def result(self):
        try:
            return json.loads(self.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}


def measure(argv, work, label, sandboxes, cwd=None):
    """Run argv as a child; return its wall seconds, peak RSS (wait4 ru_maxrss), CPU seconds and sandbox CPU.

    What earlier runs wrote (a million rows' spool and index: hundreds of MB) is flushed to disk first, outside the
    timing: otherwise the kernel writes it back some 30 s later, in the middle of whichever run comes then."""
    os.sync()
    out_path = os.path.join(work, f"{label}.out")
    err_path = os.path.join(work, f"{label}.err")
    before = {s.label: s.cpu() for s in sandboxes}
    with open(out_path, "w") as out, open(err_path, "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd or work,
                                   env=child_env())
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    after = {s.label: s.cpu() for s in sandboxes}
    with open(out_path, encoding="utf-8", errors="replace") as fh:
        out_text = fh.read()
    with open(err_path, encoding="utf-8", errors="replace") as fh:
        err_text = fh.read()
    run = Measured(label=label, seconds=seconds, peak_rss_mb=usage.ru_maxrss / MB,
                   cpu_seconds=usage.ru_utime + usage.ru_stime, code=process.returncode, out=out_text, err=err_text,
                   sandbox_cpu={k: (after[k] - before[k]) if None not in (after[k], before[k]) else None
                                for k in before})
    if run.code != 0:
        tail = "\n".join((out_text + err_text).strip().splitlines()[-15:])
        raise CaseFailed(f"{label} failed (exit {run.code}); its output ends:\n{tail}\n(all of it: {out_path}, "
                         f"{err_path})")
    return run


def command(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise CaseFailed(f"{name} is not installed in {BIN}; run 'make bench' (it installs the connectors).")
    return path


def summary_counts(text):
    """Return {received, delivered, duplicates} from a connector's run statistics line."""
    counts = {}
    for key, pattern in (("received", r"items received (\d+)"), ("delivered", r"items delivered (\d+)"),
                         ("duplicates", r"duplicates dropped (\d+)"), ("skipped", r"skipped as invalid (\d+)")):
        found = re.findall(pattern, text)
        if found:
            counts[key] = int(found[-1])
    return counts


def lookup_total(devo_url, name):
    response = requests.get(f"{devo_url}/_sandbox/devo/lookups/{name}", params={"limit": 0}, timeout=60)
    return response.json().get("total", 0) if response.status_code == 200 else 0


def drop_lookups(devo_url):
    """Delete every lookup the Devo stand-in holds: each case, and each full run of the exporter and of Recorded
    Future, starts with it empty, whatever ran before. A run that found the last run's lookup would make the
    stand-in (on the same two cores) free that lookup's million rows while the run waits for its job: a cost of
    this machine's stand-in, not of a user's, that grew from run to run (exporter 10.5, 11.1, 11.5 s)."""
    listed = requests.get(f"{devo_url}/_sandbox/devo/lookups", timeout=60).json().get("lookups", [])
    for lookup in listed:
        drop_lookup(devo_url, lookup["name"])


def drop_lookup(devo_url, name, timeout=60):
    """Delete a lookup from the Devo stand-in (Lookups API) and wait until it is gone."""
    from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
    requests.delete(f"{devo_url}/lookup-api/lookup/{DEFAULT_DOMAIN}/{name}", timeout=60,
                    headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    deadline = time.monotonic() + timeout
    while lookup_total(devo_url, name) and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_landed(devo_url, name, rows, started, timeout=300):
    """Wait until the Devo stand-in holds rows rows in lookup name; return seconds since started (None: never)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lookup_total(devo_url, name) >= rows:
            return time.perf_counter() - started
        time.sleep(0.2)
    return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def figures(runs):
    """Return the medians of a list of Measured: seconds, peak RSS, CPU, sandbox CPU by label."""
    labels = runs[0].sandbox_cpu.keys() if runs else ()
    return {"seconds": median([r.seconds for r in runs]), "peak_rss_mb": median([r.peak_rss_mb for r in runs]),
            "cpu_seconds": median([r.cpu_seconds for r in runs]),
            "sandbox_cpu_seconds": {k: median([r.sandbox_cpu[k] for r in runs]) for k in labels},
            "runs_seconds": [round(r.seconds, 2) for r in runs],
            "runs_peak_rss_mb": [round(r.peak_rss_mb, 1) for r in runs]}


def beside(prefix, runs, ours):
    """Return the figures of the runs of a comparison (floor_seconds, ...) and ours over them (ratio_to_floor, ...)."""
    theirs = figures(runs)
    return {f"{prefix}_seconds": theirs["seconds"], f"{prefix}_cpu_seconds": theirs["cpu_seconds"],
            f"{prefix}_peak_rss_mb": theirs["peak_rss_mb"], f"{prefix}_runs_seconds": theirs["runs_seconds"],
            f"{prefix}_sandbox_cpu_seconds": theirs["sandbox_cpu_seconds"],
            f"ratio_to_{prefix}": ours["seconds"] / theirs["seconds"],
            f"cpu_ratio_to_{prefix}": ours["cpu_seconds"] / theirs["cpu_seconds"]}


def rounded(value, digits=2):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


# ---- cases --------------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.source = self.devo = None
        self.results = {}
        self.rows = []       # table lines: (label, rows, Measured figures, note)

    def start(self, collections):
        log("Starting the Devo stand-in (its own process)...")
        self.devo = Sandbox(self.work, "devo", "--only", "devo")
        self.start_source(collections)

    def start_source(self, collections):
        """Start the ThreatQ and Recorded Future stand-ins (one process), rendering these collections' pages, in
        place of those running (a new process: what the last one held is gone)."""
        from tq_conn_common import threatq
        if self.source is not None:
            self.source.stop()
        names = [f"--collection=Bench {size}={size}" for size in collections]
        if names:
            log(f"Starting the ThreatQ and Recorded Future stand-ins and rendering {', '.join(map(str, collections))} "
                "indicators (once, before any timing)...")
        self.source = Sandbox(self.work, "source", "--only", "threatq", "recorded_future", *names,
                              "--batch", str(self.args.batch), "--sort=-updated_at", "--with", ",".join(threatq.WITH))
        self.sandboxes = (self.source, self.devo)
        self.rendered = {item["indicators"]: item for item in self.source.info["warmed"]}
        for item in self.source.info["warmed"]:
            log(f"  ThreatQ stand-in rendered {item['indicators']} indicators ({item['pages']} pages) in "
                f"{item['render_seconds']} s, {item['render_cpu_seconds']} s CPU.")

    def stop(self):
        for sandbox in (self.source, self.devo):
            if sandbox is not None:
                sandbox.stop()

    def cache(self, clear=False):
        url = f"{self.source.url('recorded_future')}/_sandbox/bench/cache"
        if clear:
            requests.delete(url, timeout=10)
        tq = requests.get(f"{self.source.url('threatq')}/_sandbox/bench/cache", timeout=10).json()
        return {"threatq": tq, "recorded_future": requests.get(url, timeout=10).json()}

    def folder(self, label):
        path = os.path.join(self.work, label)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    # -- the exporter --

    def exporter_config(self, label, size):
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        from tq_conn_sandbox.services.threatq import CLIENT_ID, PASSWORD, USERNAME
        folder = self.folder(label)
        values = {"threatq_host": self.source.url("threatq"), "threatq_client_id": CLIENT_ID,
                  "threatq_username": USERNAME, "threatq_password": PASSWORD, "status": "Review",
                  "threatq_ui": False, "collection_name": f"Bench {size}", "lookup_name": f"Bench_IOCs_{size}",
                  "batch_size": self.args.batch, "devo_transport": "rest", "devo_token": DEFAULT_TOKEN,
                  "devo_domain": DEFAULT_DOMAIN, "devo_lookups_url": self.devo.url("devo") + "/lookup-api"}
        with open(os.path.join(folder, "tq-conn-devo-ioc-exporter.yaml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(values, fh, sort_keys=False)
        return folder

    def exporter(self, size, floor=True, runs=None):
        """Run the exporter and its floors (the honest one, the fields floor, our client's) --runs times,
        interleaved; return the figures."""
        exe = command("tq-conn-devo-ioc-exporter")
        ours, floors = [], {"floor": [], "fields_floor": [], "client_floor": []}
        hits = self.cache()["threatq"]["hits"]
        workloads = (("floor", ["threatq-pages"]), ("fields_floor", ["threatq-pages", "--shaped"]),
                     ("client_floor", ["threatq-floor"]))
        for i in range(runs or self.args.runs):
            for prefix, workload in workloads if floor else ():
                label = f"{prefix.replace('_', '-')}-{size}-{i}"
                floors[prefix].append(measure([sys.executable, os.path.join(HERE, "workloads.py"), *workload,
                                               "--config", self.exporter_config(label, size)], self.work, label,
                                              self.sandboxes))
                log(f"  {prefix.replace('_', ' ')} {size} run {i + 1}: {floors[prefix][-1].seconds:.1f} s")
            folder = self.exporter_config(f"exporter-{size}-{i}", size)
            drop_lookups(self.devo.url("devo"))   # every run creates the lookup, as the first did (see drop_lookups)
            ours.append(measure([exe, "-c", folder, "-v", "2"], self.work, f"exporter-{size}-{i}", self.sandboxes,
                                cwd=folder))
            log(f"  exporter {size} run {i + 1}: {ours[-1].seconds:.1f} s, {ours[-1].peak_rss_mb:.0f} MB")
        counts = summary_counts(ours[-1].out + ours[-1].err)
        landed = lookup_total(self.devo.url("devo"), f"Bench_IOCs_{size}")
        if counts.get("delivered") != landed:
            raise CaseFailed(f"The exporter reported {counts.get('delivered')} rows delivered but the Devo lookup "
                             f"holds {landed}.")
        cache = self.cache()["threatq"]
        result = {"rows": counts.get("received"), "delivered": landed, "duplicates": counts.get("duplicates"),
                  **figures(ours), "page_cache_misses": cache["misses"],
                  "pages_served": cache["hits"] - hits}
        for prefix, runs in floors.items() if floor else ():
            rows = runs[-1].result().get("rows")
            if rows != result["rows"]:
                raise CaseFailed(f"The {prefix.replace('_', ' ')} read {rows} indicators, the exporter "
                                 f"{result['rows']}.")
            result.update(beside(prefix, runs, result))
        rendered = self.rendered.get(size)
        if rendered:
            result["sandbox_render_cpu_seconds"] = rendered["render_cpu_seconds"]
        return result

    # -- delta delivery --

    def delta(self, size):
        """The exporter delivering a collection (full), then the same collection a while later, with 1% of its
        indicators changed and 0.5% removed (delta), into one lookup; return both runs' figures and the ratios.

        The collection "Bench <size>" is changed for good: run this case after every other one that reads it."""
        exe = command("tq-conn-devo-ioc-exporter")
        folder = self.exporter_config(f"delta-{size}", size)
        path = os.path.join(folder, "tq-conn-devo-ioc-exporter.yaml")
        with open(path, encoding="utf-8") as fh:
            values = yaml.safe_load(fh)
        values["lookup_name"] = f"Bench_Delta_{size}"
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(values, fh, sort_keys=False)
        runs = {}

        def run(label):
            runs[label] = measure([exe, "-c", folder, "-v", "2"], self.work, f"delta-{size}-{label}",
                                  self.sandboxes, cwd=folder)
            log(f"  {label} run: {runs[label].seconds:.1f} s, {runs[label].peak_rss_mb:.0f} MB")

        run("full")
        self.change_collection(size)
        run("delta")
        text = runs["delta"].out + runs["delta"].err
        found = re.findall(r"delta \((\d+) upserted, (\d+) deleted\)", text)
        if not found:
            raise CaseFailed(f"the second run was not sent as a delta; see {self.work}/delta-{size}-delta.out")
        upserted, deleted = map(int, found[-1])
        landed = lookup_total(self.devo.url("devo"), f"Bench_Delta_{size}")
        sent = summary_counts(text).get("delivered")
        return {"rows": landed, "upserted": upserted, "deleted": deleted, "rows_sent": sent,
                "rows_sent_ratio": sent / max(1, landed), "time_ratio": runs["delta"].seconds / runs["full"].seconds,
                "peak_rss_mb": runs["delta"].peak_rss_mb, "seconds": runs["delta"].seconds,
                "cpu_seconds": runs["delta"].cpu_seconds, "full_seconds": runs["full"].seconds,
                "full_peak_rss_mb": runs["full"].peak_rss_mb, "full_cpu_seconds": runs["full"].cpu_seconds,
                "full_rows_sent": summary_counts(runs["full"].out + runs["full"].err).get("delivered"),
                "sandbox_cpu_seconds": runs["delta"].sandbox_cpu}

    def change_collection(self, size):
        """Change "Bench <size>" in the ThreatQ stand-in (1% changed, the newest 0.5% removed) and have its listing
        pages rendered, outside any timing."""
        response = requests.post(f"{self.source.url('threatq')}/_sandbox/bench/threatq/change", timeout=3600, json={
            "name": f"Bench {size}", "size": size - size // 200, "changed_every": 100, "revision": 1,
            "batch": self.args.batch, "sort": "id"})
        if not response.ok:
            raise CaseFailed(f"the ThreatQ stand-in did not change Bench {size}: HTTP {response.status_code} "
                             f"{response.text[:200]}")
        done = response.json()
        log(f"  changed at {done['changed_at']}; ThreatQ stand-in rendered its {done['listing_pages']} listing pages "
            f"in {done['render_seconds']} s, {done['render_cpu_seconds']} s CPU ({done['dropped_pages']} pages "
            "dropped).")

    # -- Recorded Future --

    def rf_list(self, size):
        """Give the stand-in's ip risk list size rows; render both bodies (gzip, plain) once; return their cost."""
        from tq_conn_sandbox.services.recorded_future import TOKEN
        base = self.source.url("recorded_future")
        response = requests.post(f"{base}/_sandbox/recorded_future/lists", json={"list": "ip", "rows": size},
                                 timeout=30)
        response.raise_for_status()
        self.cache(clear=True)
        cost = {}
        for label, params in (("gzip", {"format": "csv/splunk", "gzip": "true"}),
                              ("plain", {"format": "csv/splunk", "list": "default"})):
            before, started = self.source.cpu(), time.perf_counter()
            with requests.get(f"{base}/v2/ip/risklist", params=params, headers={"X-RFToken": TOKEN}, stream=True,
                              timeout=600) as got:
                got.raise_for_status()
                size_bytes = sum(len(block) for block in got.raw.stream(1 << 20, decode_content=False))
            cost[label] = {"seconds": time.perf_counter() - started, "cpu_seconds": self.source.cpu() - before,
                           "bytes": size_bytes}
        return cost

    def rf_config(self, label, size):
        from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
        from tq_conn_sandbox.services.recorded_future import TOKEN
        folder = self.folder(label)
        values = {"api_token": TOKEN, "base_url": self.source.url("recorded_future") + "/v2/{0}/risklist?format=csv/splunk",
                  "types": ["ip"], "ipv4_lookup": f"Bench_RF_IPv4_{size}", "ipv6_lookup": f"Bench_RF_IPv6_{size}",
                  "devo_transport": "rest", "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN,
                  "devo_lookups_url": self.devo.url("devo") + "/lookup-api"}
        with open(os.path.join(folder, "tq-conn-recorded-future.yaml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(values, fh, sort_keys=False)
        return folder

    def recorded_future(self, size, floor=True, runs=None):
        """Run the connector and its floor --runs times and psengine's fetch_risklist --rss-runs times, interleaved."""
        from tq_conn_sandbox.services.recorded_future import TOKEN
        exe = command("tq-conn-recorded-future")
        serving = self.rf_list(size)
        log(f"  the Recorded Future stand-in serves the {size}-row list in {serving['gzip']['seconds']:.1f} s "
            f"(gzip) / {serving['plain']['seconds']:.1f} s (plain), rendered once")
        misses = self.cache()["recorded_future"]["misses"]   # the two renders above
        ours, floors, theirs = [], [], []
        for i in range(runs or self.args.runs):
            if floor:
                label = f"rf-floor-{size}-{i}"
                floors.append(measure([sys.executable, os.path.join(HERE, "workloads.py"), "rf-floor", "--config",
                                       self.rf_config(label, size)], self.work, label, self.sandboxes))
                log(f"  floor {size} run {i + 1}: {floors[-1].seconds:.1f} s")
            folder = self.rf_config(f"rf-{size}-{i}", size)
            drop_lookups(self.devo.url("devo"))   # every run creates the lookups, as the first did (see drop_lookups)
            ours.append(measure([exe, "-c", folder, "--force", "-v", "2"], self.work, f"rf-{size}-{i}",
                                self.sandboxes, cwd=folder))
            log(f"  recorded_future {size} run {i + 1}: {ours[-1].seconds:.1f} s, {ours[-1].peak_rss_mb:.0f} MB")
            if floor and i < self.args.rss_runs:
                theirs.append(measure([sys.executable, os.path.join(HERE, "workloads.py"), "psengine-risklist",
                                       "--url", self.source.url("recorded_future"), "--token", TOKEN],
                                      self.work, f"psengine-{size}-{i}", self.sandboxes))
                log(f"  psengine {size} run {i + 1}: {theirs[-1].seconds:.1f} s, {theirs[-1].peak_rss_mb:.0f} MB")
        counts = summary_counts(ours[-1].out + ours[-1].err)
        landed = sum(lookup_total(self.devo.url("devo"), f"Bench_RF_IPv{v}_{size}") for v in (4, 6))
        if counts.get("delivered") != landed:
            raise CaseFailed(f"The Recorded Future connector reported {counts.get('delivered')} rows delivered but "
                             f"the Devo lookups hold {landed}.")
        cache = self.cache()["recorded_future"]
        result = {"rows": counts.get("received"), "delivered": landed, **figures(ours),
                  "sandbox_live_serving": serving, "list_cache_misses": cache["misses"] - misses}
        if floor:
            rows = floors[-1].result().get("rows")
            if rows != result["rows"]:
                raise CaseFailed(f"The floor read {rows} rows of the list, the connector {result['rows']}.")
            result.update(beside("floor", floors, result))
            other = figures(theirs)
            rows = theirs[-1].result().get("rows")
            if rows != size:
                raise CaseFailed(f"psengine read {rows} rows of the {size}-row list.")
            result.update(psengine_seconds=other["seconds"], psengine_peak_rss_mb=other["peak_rss_mb"],
                          psengine_cpu_seconds=other["cpu_seconds"], psengine_runs_seconds=other["runs_seconds"],
                          psengine_over_ours_rss=other["peak_rss_mb"] / result["peak_rss_mb"])
        return result

    # -- TLS --

    def tls(self, size):
        """Send the same CSV rows through our TLS transport and through Lookup.send_csv, interleaved."""
        path = os.path.join(self.work, f"tls-{size}.csv")
        measure([sys.executable, os.path.join(HERE, "workloads.py"), "make-csv", "--rows", str(size), "--out", path],
                self.work, f"make-csv-{size}", ())
        bundle = requests.get(f"{self.devo.url('devo')}/_sandbox/devo/client-bundle", timeout=30).json()
        settings = json.dumps({"devo_cert": bundle["cert"], "devo_key": bundle["key"], "devo_chain": bundle["chain"],
                               "devo_host": bundle["host"], "devo_port": bundle["port"], "devo_tls_delay": 0})
        devo_url = self.devo.url("devo")
        runs = {"ours": [], "send_csv": []}
        landed = {"ours": [], "send_csv": []}
        for i in range(self.args.runs):
            for who, workload in (("ours", "tls-ours"), ("send_csv", "tls-send-csv")):
                name = f"Bench_TLS_{who}_{size}"
                drop_lookups(devo_url)   # each run starts with the stand-in holding no lookup (see drop_lookups)
                started = time.perf_counter()
                runs[who].append(measure([sys.executable, os.path.join(HERE, "workloads.py"), workload, "--csv", path,
                                          "--settings", settings, "--lookup", name], self.work,
                                         f"tls-{who}-{size}-{i}", self.sandboxes))
                landed[who].append(wait_landed(devo_url, name, size, started))
                if landed[who][-1] is None:
                    raise CaseFailed(f"The Devo stand-in did not receive the {size} rows of {name} ({who}).")
                log(f"  tls {who} {size} run {i + 1}: {runs[who][-1].seconds:.1f} s sent, "
                    f"{landed[who][-1]:.1f} s landed")
        ours, theirs = figures(runs["ours"]), figures(runs["send_csv"])
        return {"rows": size, **ours, "landed_seconds": median(landed["ours"]),
                "send_csv_seconds": theirs["seconds"], "send_csv_peak_rss_mb": theirs["peak_rss_mb"],
                "send_csv_cpu_seconds": theirs["cpu_seconds"], "send_csv_runs_seconds": theirs["runs_seconds"],
                "send_csv_landed_seconds": median(landed["send_csv"]),
                "send_csv_sandbox_cpu_seconds": theirs["sandbox_cpu_seconds"],
                "ours_over_send_csv": ours["seconds"] / theirs["seconds"],
                "ours_over_send_csv_cpu": ours["cpu_seconds"] / theirs["cpu_seconds"]}


# ---- report -------------------------------------------------------------------------------------------------------

def machine_info(busy):
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "busy_before_start": busy}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), None)
        with open("/proc/meminfo", encoding="ascii") as fh:
            info["memory_gb"] = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version
    for package in ("tq-conn-common", "devo-sdk", "psengine", "requests"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    return info


def judge(cases, size):
    """Return [(what, value text, target text, met)] for every target the cases allow to judge."""
    full = size >= 1_000_000
    out = []

    def add(what, value, unit, target, below=True, absolute=False):
        if value is None:
            return
        met = (value <= target) if below else (value >= target)
        if absolute and not full:
            out.append((what, f"{value:.2f}{unit}", f"{'<=' if below else '>='} {target:g}{unit} (at 1M)", None))
            return
        out.append((what, f"{value:.2f}{unit}", f"{'<=' if below else '>='} {target:g}{unit}", met))

    def info(what, value, unit):
        if value is not None:
            out.append((what, f"{value:.2f}{unit}", "(for information)", None))

    exporter = cases.get("exporter_1m") or {}
    add("exporter time", exporter.get("seconds"), " s", TARGETS["exporter_seconds"], absolute=True)
    add("exporter / floor", exporter.get("ratio_to_floor"), "x", TARGETS["exporter_ratio_to_floor"])
    info("exporter / floor, CPU seconds", exporter.get("cpu_ratio_to_floor"), "x")
    info("exporter / fields floor", exporter.get("ratio_to_fields_floor"), "x")
    info("exporter / client floor", exporter.get("ratio_to_client_floor"), "x")
    info("exporter / client floor, CPU seconds", exporter.get("cpu_ratio_to_client_floor"), "x")
    add("exporter peak RSS", exporter.get("peak_rss_mb"), " MB", TARGETS["exporter_peak_rss_mb"], absolute=True)
    rf = cases.get("recorded_future_1m") or {}
    add("recorded_future time", rf.get("seconds"), " s", TARGETS["recorded_future_seconds"], absolute=True)
    add("recorded_future / floor", rf.get("ratio_to_floor"), "x", TARGETS["recorded_future_ratio_to_floor"])
    info("recorded_future / floor, CPU seconds", rf.get("cpu_ratio_to_floor"), "x")
    add("recorded_future peak RSS", rf.get("peak_rss_mb"), " MB", TARGETS["recorded_future_peak_rss_mb"],
        absolute=True)
    add("psengine RSS / ours", rf.get("psengine_over_ours_rss"), "x", TARGETS["psengine_over_ours_rss"], below=False)
    tls = cases.get("tls_1m") or {}
    add("TLS ours / send_csv time", tls.get("ours_over_send_csv"), "x", TARGETS["ours_over_send_csv"])
    info("TLS ours / send_csv, CPU seconds", tls.get("ours_over_send_csv_cpu"), "x")
    delta = cases.get("delta_1m") or {}
    add("delta rows sent / lookup rows", delta.get("rows_sent_ratio"), "x", TARGETS["delta_rows_sent_ratio"])
    add("delta time / full time", delta.get("time_ratio"), "x", TARGETS["delta_time_ratio"])
    add("delta peak RSS", delta.get("peak_rss_mb"), " MB", TARGETS["delta_peak_rss_mb"], absolute=True)
    growth = cases.get("memory_growth") or {}
    add("memory growth exporter", growth.get("exporter"), "x", TARGETS["memory_growth"])
    add("memory growth recorded_future", growth.get("recorded_future"), "x", TARGETS["memory_growth"])
    return out


def table(results, size, small):
    """Return the printed table of results."""
    cases = results["cases"]
    lines = []
    head = (f"{'case':<38} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak MB':>8} {'CPU s':>7} "
            f"{'src CPU s':>9} {'devo CPU s':>10}")
    lines += [head, "-" * len(head)]

    def row(label, rows, seconds, rss, cpu, sandbox=None):
        rate = f"{rows / seconds:8.0f}" if rows and seconds else f"{'':>8}"
        src = (sandbox or {}).get("source")
        dev = (sandbox or {}).get("devo")
        lines.append(f"{label:<38} {rows or '':>9} {seconds or 0:8.1f} {rate} {rss or 0:8.1f} {cpu or 0:7.1f} "
                     f"{'' if src is None else f'{src:.1f}':>9} {'' if dev is None else f'{dev:.1f}':>10}")

    def size_label(n):
        return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)

    e = cases.get("exporter_1m")
    if e:
        row(f"exporter {size_label(e['rows'] or size)} (REST)", e["rows"], e["seconds"], e["peak_rss_mb"],
            e["cpu_seconds"], e["sandbox_cpu_seconds"])
        for prefix, label in (("floor", "  floor: pages + orjson.loads"),
                              ("fields_floor", "  fields floor: pages + fields read"),
                              ("client_floor", "  client floor: our client pages")):
            if f"{prefix}_seconds" in e:
                row(label, e["rows"], e[f"{prefix}_seconds"], e[f"{prefix}_peak_rss_mb"], e[f"{prefix}_cpu_seconds"],
                    e[f"{prefix}_sandbox_cpu_seconds"])
    r = cases.get("recorded_future_1m")
    if r:
        row(f"recorded_future ip {size_label(r['rows'] or size)} (REST)", r["rows"], r["seconds"], r["peak_rss_mb"],
            r["cpu_seconds"], r["sandbox_cpu_seconds"])
        if "floor_seconds" in r:
            row("  floor: download + csv.reader", r["rows"], r["floor_seconds"], r["floor_peak_rss_mb"],
                r["floor_cpu_seconds"], r["floor_sandbox_cpu_seconds"])
        if "psengine_seconds" in r:
            row("  psengine fetch_risklist", r["rows"], r["psengine_seconds"], r["psengine_peak_rss_mb"],
                r["psengine_cpu_seconds"])
    t = cases.get("tls_1m")
    if t:
        row(f"TLS {size_label(t['rows'])}: ours (devo.deliver)", t["rows"], t["seconds"], t["peak_rss_mb"],
            t["cpu_seconds"], t["sandbox_cpu_seconds"])
        row("  devo-sdk Lookup.send_csv", t["rows"], t["send_csv_seconds"], t["send_csv_peak_rss_mb"],
            t["send_csv_cpu_seconds"], t["send_csv_sandbox_cpu_seconds"])
    d = cases.get("delta_1m")
    if d:
        row(f"exporter {size_label(d['rows'] or size)}: full run", d["full_rows_sent"], d["full_seconds"],
            d["full_peak_rss_mb"], d["full_cpu_seconds"])
        row(f"  delta run ({d['upserted']} up, {d['deleted']} del)", d["rows_sent"], d["seconds"], d["peak_rss_mb"],
            d["cpu_seconds"], d["sandbox_cpu_seconds"])
    g = cases.get("memory_growth") or {}
    for who in ("exporter", "recorded_future"):
        large_run = g.get(f"{who}_large")
        if large_run:
            row(f"{who} {size_label(large_run['rows'] or size)} (memory)", large_run["rows"], large_run["seconds"],
                large_run["peak_rss_mb"], large_run["cpu_seconds"], large_run["sandbox_cpu_seconds"])
        small_run = g.get(f"{who}_small")
        if small_run:
            row(f"{who} {size_label(small)} (memory baseline)", small_run["rows"], small_run["seconds"],
                small_run["peak_rss_mb"], small_run["cpu_seconds"], small_run["sandbox_cpu_seconds"])
    lines.append("")
    lines.append("src CPU s / devo CPU s: CPU the ThreatQ + Recorded Future stand-ins / the Devo stand-in spent during "
                 "the run (their own processes).")
    sandbox = cases.get("sandbox") or {}
    for note in sandbox.get("notes", ()):
        lines.append(note)
    lines.append("")
    lines.append(f"{'ratio / target':<38} {'value':>10}  {'target':<22} met")
    for what, value, target, met in results["targets"]:
        verdict = ("" if target == "(for information)" else "n/a") if met is None else "yes" if met else "NO"
        lines.append(f"{what:<38} {value:>10}  {target:<22} {verdict}")
    return "\n".join(lines)


def sandbox_section(bench, cases):
    """Return the sandbox's own figures and the notes saying whether it held back any connector."""
    section = {"threatq_rendered": list(bench.rendered.values()), "peak_rss_mb": {
        "source": bench.source.peak_rss_mb(), "devo": bench.devo.peak_rss_mb()}}
    notes = []
    e = cases.get("exporter_1m")
    if e:
        serve = e["sandbox_cpu_seconds"].get("source")
        section["threatq_serve_cpu_seconds"] = serve
        section["exporter_devo_cpu_seconds"] = e["sandbox_cpu_seconds"].get("devo")
        section["threatq_live_render_cpu_seconds"] = e.get("sandbox_render_cpu_seconds")
        notes.append(f"ThreatQ stand-in: serving the {e['rows']} indicators took {serve:.1f} s CPU per run "
                     f"(pages rendered once beforehand; rendering them live costs "
                     f"{e.get('sandbox_render_cpu_seconds') or 0:.1f} s CPU) against the exporter's "
                     f"{e['cpu_seconds']:.1f} s CPU.")
        if e.get("page_cache_misses"):
            notes.append(f"WARNING: {e['page_cache_misses']} ThreatQ pages were asked for that had not been rendered "
                         "beforehand (the exporter's requests changed?); they were rendered live.")
    r = cases.get("recorded_future_1m")
    if r:
        serve = r["sandbox_cpu_seconds"].get("source")
        live = r["sandbox_live_serving"]
        section["recorded_future_serve_cpu_seconds"] = serve
        section["recorded_future_devo_cpu_seconds"] = r["sandbox_cpu_seconds"].get("devo")
        section["recorded_future_live_serving"] = live
        notes.append(f"Recorded Future stand-in: {serve:.1f} s CPU per connector run (the list rendered once: "
                     f"{live['gzip']['cpu_seconds']:.1f} s CPU gzip, {live['plain']['cpu_seconds']:.1f} s plain) "
                     f"against the connector's {r['cpu_seconds']:.1f} s CPU.")
        if r.get("list_cache_misses"):
            notes.append(f"WARNING: the risk list was asked for {r['list_cache_misses']} times in a form not rendered "
                         "beforehand (the requests changed?); it was rendered live.")
    t = cases.get("tls_1m")
    if t:
        section["tls_collector_cpu_seconds"] = t["sandbox_cpu_seconds"].get("devo")
        notes.append(f"Devo TLS collector: {t['sandbox_cpu_seconds'].get('devo') or 0:.1f} s CPU to take in our "
                     f"{t['rows']} rows, {t['send_csv_sandbox_cpu_seconds'].get('devo') or 0:.1f} s for send_csv's; "
                     f"the rows landed {t['landed_seconds']:.1f} s / {t['send_csv_landed_seconds']:.1f} s after "
                     "the start.")
    section["notes"] = notes
    return section


def write_readme(text, closing, results):
    """Put the table between the figures markers of bench/README.md."""
    path = os.path.join(HERE, "README.md")
    with open(path, encoding="utf-8") as fh:
        readme = fh.read()
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    if start not in readme or end not in readme:
        log(f"{path} has no figures markers; not updated.")
        return
    params = results["parameters"]
    block = (f"{start}\n`python bench/run.py` with --size {params['size']}, --small {params['small']}, --runs "
             f"{params['runs']}, on {time.strftime('%Y-%m-%d')}:\n\n```\n{text}\n\n{closing}\n```\n{end}")
    readme = readme[:readme.index(start)] + block + readme[readme.index(end) + len(end):]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(readme)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="rows of each case (default 1000000)")
    parser.add_argument("--small", type=int, default=100_000,
                        help="rows of the memory-growth baseline (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    parser.add_argument("--rss-runs", type=int, default=1,
                        help="runs of what is measured for its peak RSS only: psengine and the memory-growth "
                             "baseline (default 1)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases to run, of {', '.join(CASES)} (default: all)")
    parser.add_argument("--batch", type=int, default=1000, help="the exporter's ThreatQ batch size (default 1000)")
    parser.add_argument("--output", default=os.path.join(HERE, "results.json"),
                        help="where to write the figures (default bench/results.json)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (connector logs, CSV files)")
    parser.add_argument("--readme", action="store_true",
                        help="also write the table into bench/README.md (between its figures markers)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CASES))
    if unknown or not chosen:
        parser.error(f"--cases takes any of {', '.join(CASES)}, not {', '.join(unknown) or 'nothing'}")
    if min(args.runs, args.rss_runs, args.size, args.small) < 1:
        parser.error("--runs, --rss-runs, --size and --small must be positive")

    busy = machine_busy()
    started = time.monotonic()
    sample, mine = cpu_sample(), own_cpu()
    work = tempfile.mkdtemp(prefix="tq-conn-bench-")
    collections = sorted(({args.size} if {"exporter", "delta"} & set(chosen) else set())
                         | ({args.small, args.size} if "growth" in chosen else set()))
    bench = Bench(args, work)
    cases = {}
    try:
        # Recorded Future goes first, before the ThreatQ stand-in holds the other cases' rendered pages (GBs):
        # beside them its runs took seconds of system time more (in 16 of 22 runs against none of 15 without).
        rf_first = "recorded_future" in chosen and collections
        bench.start([] if rf_first else collections)

        failed = {}

        def attempt(name, func, *args, **kwargs):   # each case starts with the Devo stand-in holding no lookup
            drop_lookups(bench.devo.url("devo"))
            try:
                return func(*args, **kwargs)
            except CaseFailed as exc:
                log(f"  {name} could not be measured: {exc}")
                failed[name] = str(exc)
                return None

        if "recorded_future" in chosen:
            log(f"Recorded Future: {args.size}-row ip risk list -> Devo (REST), beside its floor and psengine...")
            cases["recorded_future_1m"] = attempt("recorded_future_1m", bench.recorded_future, args.size)
        if rf_first:
            bench.start_source(collections)
        if "exporter" in chosen:
            log(f"Exporter: {args.size} indicators, ThreatQ -> Devo (REST), beside its floors...")
            cases["exporter_1m"] = attempt("exporter_1m", bench.exporter, args.size)
        if "tls" in chosen:
            log(f"TLS: {args.size} rows, our transport beside devo-sdk's Lookup.send_csv...")
            cases["tls_1m"] = attempt("tls_1m", bench.tls, args.size)
        if "growth" in chosen:
            log(f"Memory growth: {args.small} rows beside {args.size}...")
            growth = {"small_rows": args.small, "large_rows": args.size}
            for who, func, key in (("exporter", bench.exporter, "exporter_1m"),
                                   ("recorded_future", bench.recorded_future, "recorded_future_1m")):
                large = cases.get(key) or attempt(f"{who} (memory growth)", func, args.size, floor=False)
                small = attempt(f"{who} (memory growth)", func, args.small, floor=False, runs=args.rss_runs)
                if large and small:
                    growth.update({who: large["peak_rss_mb"] / small["peak_rss_mb"], f"{who}_small": small,
                                   f"{who}_large_peak_rss_mb": large["peak_rss_mb"]})
                    if not cases.get(key):
                        growth[f"{who}_large"] = large
            cases["memory_growth"] = growth
        if "delta" in chosen:   # last: it changes the collection the others read
            log(f"Delta: {args.size} indicators delivered whole, then 1% changed and 0.5% removed...")
            cases["delta_1m"] = attempt("delta_1m", bench.delta, args.size)
        cases = {k: v for k, v in cases.items() if v is not None}
        if failed:
            cases["failed"] = failed
        cases["sandbox"] = sandbox_section(bench, cases)
    finally:
        bench.stop()
        if not args.keep and not cases.get("failed"):  # a failed case's logs stay for a look
            shutil.rmtree(work, ignore_errors=True)
    info = machine_info(busy)
    end = cpu_sample()
    if sample and end:
        others = (end[1] - sample[1]) - (own_cpu() - mine)
        info["others_cpu_share"] = round(max(0.0, others) / max(1e-9, end[0] - sample[0]), 2)
    info.update(bench_seconds=round(time.monotonic() - started, 1),
                note=f"{info['cpus']} CPUs shared by the connector, the stand-ins (two processes) and anything else "
                     "running; CPU seconds are shown beside wall times for that reason.")
    results = {"machine": info, "parameters": {"size": args.size, "small": args.small, "runs": args.runs,
                                               "cases": chosen, "batch": args.batch},
               "cases": rounded(cases)}
    results["targets"] = [(w, v, t, m) for w, v, t, m in judge(results["cases"], args.size)]
    text = table(results, args.size, args.small)
    closing = (f"{info['cpus']} CPUs ({info.get('cpu')}); {int((busy or 0) * 100)}% of them busy before the start, "
               f"{int(info.get('others_cpu_share', 0) * 100)}% used by other processes during the bench (wall times "
               f"suffer from that, CPU seconds much less); bench took {info['bench_seconds']:.0f} s.")
    print(text)
    print("\n" + closing + (f" Work folder kept: {work}" if args.keep else ""))
    if args.readme:
        write_readme(text, closing, results)
    results["targets"] = [{"what": w, "value": v, "target": t, "met": m} for w, v, t, m in results["targets"]]
    with open(args.output, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
        fh.write("\n")
    print(f"Figures written to {os.path.relpath(args.output)}.")
    for name, message in (cases.get("failed") or {}).items():
        print(f"NOT MEASURED: {name}: {message}")
    return 1 if cases.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
