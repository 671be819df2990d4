"""Deliver a million lookup rows through each Devo transport to the sandbox; print rows, seconds, peak RSS.

Each delivery runs in a child process (what a connector run is); its peak RSS is the kernel's high-water mark of that
process (VmHWM), interpreter included. A 1,000-row run first gives the baseline: flat memory means the 1M figure
stays close to it.

    python bench/devo_1m.py [--rows 1000000] [--transport rest|tls|both]
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(args):
    """Deliver args.rows generated rows through one transport; print a JSON line with rows and seconds."""
    from tq_conn_common import Connector, Param, devo
    from tq_conn_common import config as cfg
    from tq_conn_common.session import Run
    from tq_conn_common.state import State
    import logging
    import tempfile

    logging.basicConfig(level=logging.WARNING, format="  child: %(levelname)s %(message)s")
    settings = json.loads(args.settings)
    params = devo.output_params() + (Param("lookup_name", "Devo Lookup Name", default=args.lookup),)
    config = cfg.validate(params, settings)
    folder = tempfile.mkdtemp(prefix="tq-conn-bench-")
    run = Run(Connector(name="bench", title="bench", params=params), argparse.Namespace(name=None), config,
              State(os.path.join(folder, "state.json")), {})
    spec = devo.LookupSpec(name_from="lookup_name", key="value",
                           columns=(devo.Column("value"), devo.Column("type"), devo.Column("score", "int"),
                                    devo.Column("first_seen"), devo.Column("source")))

    def rows():
        for i in range(args.rows):
            yield {"value": f"ioc-{i:07d}.bad.example", "type": "FQDN" if i % 3 else "IP Address",
                   "score": i % 100, "first_seen": "2025-01-31T00:00:00Z", "source": 'feed "A", batch 7'}
    started = time.monotonic()
    delivered = devo.deliver(run, spec, rows())
    seconds = round(time.monotonic() - started, 2)
    print(json.dumps({"rows": delivered, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}), flush=True)


def _peak_rss_mb():
    """Return this process's peak resident set size in MB (VmHWM: only this program, not the parent it forked from)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(transport, rows, settings):
    """Run one child delivery; return (rows, seconds, peak RSS in MB)."""
    command = [sys.executable, __file__, "--child", "--rows", str(rows), "--settings", json.dumps(settings),
               "--lookup", f"Bench_{transport}_{rows}"]
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if process.returncode != 0:
        raise SystemExit(f"the {transport} child failed (exit {process.returncode}): {process.stdout}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return result["rows"], result["seconds"], result["peak_rss_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--transport", choices=("rest", "tls", "both"), default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--lookup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from tq_conn_sandbox.server import start_services
    from tq_conn_sandbox.services.devo import DEFAULT_TOKEN, Devo

    running = start_services([Devo])
    service = running["devo"]
    issued = service.client_certificate()
    host, port = service.collector_address
    settings = {
        "rest": {"devo_transport": "rest", "devo_token": DEFAULT_TOKEN, "devo_domain": "sandbox",
                 "devo_lookups_url": service.url + "/lookup-api"},
        "tls": {"devo_transport": "tls", "devo_cert": issued.cert_pem, "devo_key": issued.key_pem,
                "devo_chain": service.authority.cert_pem, "devo_host": host, "devo_port": port,
                "devo_tls_delay": 0},
    }
    transports = ("rest", "tls") if args.transport == "both" else (args.transport,)
    print(f"{'transport':<10} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>12} {'landed':>9}")
    results = []
    try:
        for transport in transports:
            for size in (1000, args.rows):
                rows, seconds, peak = measure(transport, size, settings[transport])
                deadline = time.monotonic() + 60
                landed = 0
                while time.monotonic() < deadline:
                    view = service.lookup(f"Bench_{transport}_{size}", limit=0)
                    landed = view["total"] if view else 0
                    if landed >= rows:
                        break
                    time.sleep(0.2)
                rate = rows / seconds if seconds else 0
                print(f"{transport:<10} {rows:>9} {seconds:>8.1f} {rate:>8.0f} {peak:>12.1f} {landed:>9}", flush=True)
                results.append({"transport": transport, "rows": rows, "seconds": seconds,
                                "peak_rss_mb": round(peak, 1), "landed": landed})
    finally:
        running.stop()
    print(json.dumps(results))
    return 0 if all(r["landed"] == r["rows"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
