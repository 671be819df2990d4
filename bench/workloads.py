"""The child processes the benchmarks measure beside the installed commands: floors and the tools users would run.

Each subcommand does one workload and prints one JSON line (rows and what it saw); the parent measures the process
from outside (wall time, peak RSS from wait4, CPU time).

    python bench/workloads.py threatq-pages --config DIR
    python bench/workloads.py threatq-floor --config DIR
    python bench/workloads.py rf-floor --config DIR [--kind ip]
    python bench/workloads.py psengine-risklist --url URL --token TOKEN [--kind ip]
    python bench/workloads.py tls-ours --csv FILE --settings JSON --lookup NAME
    python bench/workloads.py tls-send-csv --csv FILE --settings JSON --lookup NAME
    python bench/workloads.py make-csv --rows N --out FILE
"""

import argparse
import csv
import gc
import gzip
import io
import json
import logging
import os
import sys
import tempfile

# The TLS lookup rows: the exporter's IOC lookup, key first, with its Devo column types.
TLS_COLUMNS = (("value", "str"), ("type", "str"), ("status", "str"), ("score", "float"), ("link", "str"),
               ("attack_phase", "str"), ("threat_type", "str"), ("adversary", "str"), ("has_adversary", "int"),
               ("created_at", "str"), ("updated_at", "str"))
_TYPES = ("IP Address", "FQDN", "URL", "MD5", "SHA-256", "Email Address")
_PHASES = ("Delivery", "Exploitation", "Command and Control", "Installation")
_THREATS = ("Malware", "Phishing", "Botnet", "Command and Control, Ransomware")
_ADVERSARIES = ("", "APT28", "Lazarus Group, FIN7", "Sandworm Team", 'TA505 "Evil Corp"')


def _run(connector, config, folder):
    """Return a cli.Run for connector with a validated config (what the driver builds for one run)."""
    from tq_conn_common.session import Run
    from tq_conn_common.state import State
    return Run(connector, argparse.Namespace(name=None, force=True), config,
               State(os.path.join(folder, "bench.state.json")), {"config": os.path.join(folder, "bench.yaml")})


def _settings(folder, name):
    import yaml
    with open(os.path.join(folder, name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _exporter(folder):
    """Return the exporter's validated config, a run and the run's ThreatQ client, from its config folder."""
    from tq_conn_common import config as cfg, threatq
    from tq_conn_devo_ioc_exporter.connector import CONNECTOR

    config = cfg.validate(CONNECTOR.params, _settings(folder, "tq-conn-devo-ioc-exporter.yaml"))
    run = _run(CONNECTOR, config, folder)  # the token cache and state go beside the floor's own config
    return config, run, threatq.client(run)


def threatq_pages(args):
    """Fetch the pages the exporter fetches over one keep-alive connection and parse each with orjson.loads, nothing
    else (the honest floor: no client, no names, no rows). --shaped: decode each page as the exporter's client does,
    only the fields it reads (msgspec, threatq.indicator.Page), for information."""
    import orjson
    import requests
    from tq_conn_common.threatq import FIELDS, WITH

    decode = orjson.loads
    if args.shaped:
        import msgspec
        from tq_conn_common.threatq.indicator import Page
        decode = msgspec.json.Decoder(Page).decode

    config, run, tq = _exporter(args.config)
    if config.threatq_paging != "offset":
        raise SystemExit("threatq-pages reads offset pages only; the bench's exporter config uses them.")
    collection = tq.collection(config.collection_name)
    # The request ThreatQ.indicators builds for the exporter's call (tq_conn_devo_ioc_exporter.source): the same
    # cleaned query and fields, sort, batch size and with=, so that the pages are the ones the exporter fetches.
    query = collection.get("json", {}).get("api_query") or {}
    body = tq.clean_query({key: query[key] for key in ("criteria", "filters") if key in query}, collection.get("name"))
    body["fields"] = list(FIELDS)
    params = {"limit": config.batch_size, "sort": "-updated_at", "with": ",".join(WITH)}
    url, headers = tq.http.url("indicators/query"), {"Authorization": f"Bearer {tq.access_token()}"}
    run.close()
    rows = pages = 0
    gc.disable()   # pages are trees without cycles, freed by reference counting: the fastest way to read them
    with requests.Session() as session:
        while True:  # offset paging's end as tq_conn_common.paging.offset_pages sees it
            response = session.post(url, params={**params, "offset": rows}, json=body, headers=headers, timeout=600,
                                    stream=True)
            response.raise_for_status()
            page = decode(response.raw.read(decode_content=True))   # the body in one read
            pages += 1
            items, total = page.get("data") or [], page.get("total")
            rows += len(items)
            if not items or (rows >= total if total is not None else len(items) < config.batch_size):
                break
    return {"rows": rows, "requests": run.stats.requests + pages}


def threatq_floor(args):
    """Page and parse the exporter's collection with the exporter's own ThreatQ client, and nothing else."""
    config, run, tq = _exporter(args.config)
    collection = tq.collection(config.collection_name)
    # The exporter's request: newest first, its batch size and paging (tq_conn_devo_ioc_exporter.source.run).
    rows = 0
    for _ in tq.indicators(collection, config.batch_size, config.threatq_paging, sort="-updated_at"):
        rows += 1
    run.close()
    return {"rows": rows, "requests": run.stats.requests}


def rf_floor(args):
    """Download a risk list as the Recorded Future connector asks for it and split it into CSV fields with csv.reader
    over the decoded text, counting rows, and nothing else."""
    import requests
    from tq_conn_common import config as cfg, reveal
    from tq_conn_recorded_future import source
    from tq_conn_recorded_future.connector import CONNECTOR

    config = cfg.validate(CONNECTOR.params, _settings(args.config, "tq-conn-recorded-future.yaml"))
    url, _ = source.list_urls(config.base_url, args.kind, (config.risk_list or {}).get(args.kind), config.gzip,
                              config.fusion_path)
    with requests.get(url, headers={"X-RFToken": reveal(config.api_token)}, stream=True, timeout=600) as response:
        response.raise_for_status()
        response.raw.decode_content = True  # a Content-Encoding: gzip transfer undone, as the connector's Download
        body = gzip.GzipFile(fileobj=response.raw) if config.gzip else response.raw  # gzip=true: a gzip file
        rows = sum(1 for _ in csv.reader(io.TextIOWrapper(body, encoding="utf-8-sig", newline=""))) - 1
    return {"rows": rows, "requests": 1}


def psengine_risklist(args):
    """Read a risk list with psengine's RisklistMgr.fetch_risklist (rows as dicts), counting them."""
    os.environ["RF_BASE_URL"] = args.url  # psengine computes its endpoints from it on first import
    from psengine.risklists import RisklistMgr
    manager = RisklistMgr(rf_token=args.token)
    rows = 0
    for _ in manager.fetch_risklist(args.list, args.kind):
        rows += 1
    return {"rows": rows}


def make_csv(args):
    """Write N realistic rows of the exporter's IOC lookup as a CSV file with a header."""
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([name for name, _ in TLS_COLUMNS])
        for i in range(args.rows):
            kind = _TYPES[i % len(_TYPES)]
            value = (f"{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 251}" if kind == "IP Address"
                     else f"update-login{i:x}.example.net" if kind == "FQDN"
                     else f"https://cdn-{i:x}.example.org/gate.php?id={i}" if kind == "URL"
                     else f"{i:032x}" if kind == "MD5" else f"{i:064x}" if kind == "SHA-256"
                     else f"billing.{i:x}@example.com")
            writer.writerow([value, kind, "Active" if i % 5 else "Review", f"{(i * 37) % 1000 / 100:.2f}",
                             f"https://threatq.example.com/indicators/{i + 1}/details", _PHASES[i % 4],
                             _THREATS[i % 4], _ADVERSARIES[i % 5], str(i % 3),
                             "2024-01-01 00:00:00", f"2024-03-{1 + i % 28:02d} 12:00:00"])
    return {"rows": args.rows}


def _tls_settings(args):
    settings = json.loads(args.settings)
    settings.update(devo_transport="tls", lookup_name=args.lookup)
    return settings


def tls_ours(args):
    """Deliver the CSV's rows to a lookup through our devo-sdk TLS transport (devo.deliver)."""
    from tq_conn_common import Column, Connector, LookupSpec, Param, config as cfg, devo

    params = devo.output_params() + (Param("lookup_name", "Devo Lookup Name"),)
    config = cfg.validate(params, _tls_settings(args))
    spec = LookupSpec(name_from="lookup_name", key=TLS_COLUMNS[0][0],
                      columns=tuple(Column(name, kind) for name, kind in TLS_COLUMNS))
    with tempfile.TemporaryDirectory(prefix="tq-conn-bench-tls-") as folder, \
            open(args.csv, newline="", encoding="utf-8") as fh:
        run = _run(Connector(name="bench", title="bench", params=params), config, folder)
        rows = csv.reader(fh)   # as send_csv reads the file: rows in column order after the header
        if next(rows) != list(spec.names):
            raise SystemExit(f"{args.csv}: the header is not {list(spec.names)}")
        count = devo.deliver(run, spec, rows, mode="replace")
    return {"rows": count}


def tls_send_csv(args):
    """Send the same CSV file with devo-sdk's own Lookup.send_csv through its Sender (what users would run)."""
    from devo.sender import Lookup, Sender
    from tq_conn_common import devo
    from tq_conn_common.devo import tls as devo_tls

    settings = _tls_settings(args)
    with devo_tls.credential_files(devo.Settings("tls", settings)) as files:  # the PEM texts as files, as devo-sdk wants them
        con = Sender(config={"address": settings["devo_host"], "port": int(settings["devo_port"]),
                             "key": files["key"], "cert": files["cert"], "chain": files["chain"],
                             "check_hostname": True})
        try:
            lookup = Lookup(name=args.lookup, con=con, delay=float(settings.get("devo_tls_delay", 0)),
                            escape_quotes=True, escape_newline=True)
            lookup.send_csv(args.csv, has_header=True, key=TLS_COLUMNS[0][0], action="FULL",
                            types=[kind for _, kind in TLS_COLUMNS])
        finally:
            con.close()
    with open(args.csv, "rb") as fh:
        rows = sum(1 for _ in fh) - 1
    return {"rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    for name, func in (("threatq-pages", threatq_pages), ("threatq-floor", threatq_floor)):
        sub.add_parser(name, help=func.__doc__).add_argument("--config", required=True,
                                                             help="the exporter's config folder")
    sub.choices["threatq-pages"].add_argument("--shaped", action="store_true",
                                              help="decode only the fields the exporter reads")
    floor = sub.add_parser("rf-floor", help=rf_floor.__doc__)
    floor.add_argument("--config", required=True, help="the Recorded Future connector's config folder")
    floor.add_argument("--kind", default="ip", help="the risk list's type (default ip)")
    rf = sub.add_parser("psengine-risklist", help=psengine_risklist.__doc__)
    rf.add_argument("--url", required=True, help="the Recorded Future API root (RF_BASE_URL)")
    rf.add_argument("--token", required=True)
    rf.add_argument("--kind", default="ip")
    rf.add_argument("--list", default="default")
    for name, func in (("tls-ours", tls_ours), ("tls-send-csv", tls_send_csv)):
        tls = sub.add_parser(name, help=func.__doc__)
        tls.add_argument("--csv", required=True)
        tls.add_argument("--settings", required=True, help="JSON: the devo_* settings of the collector")
        tls.add_argument("--lookup", required=True)
    rows = sub.add_parser("make-csv", help=make_csv.__doc__)
    rows.add_argument("--rows", type=int, required=True)
    rows.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = {"threatq-pages": threatq_pages, "threatq-floor": threatq_floor, "rf-floor": rf_floor,
            "psengine-risklist": psengine_risklist, "tls-ours": tls_ours, "tls-send-csv": tls_send_csv,
            "make-csv": make_csv}[args.workload]
    print(json.dumps(work(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
