"""Demo: Recorded Future risk lists into Devo lookups: refresh times, etags, bad rows, errors, the collector config."""

import datetime
import os

import yaml

from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.recorded_future import TOKEN

TITLE = "tq-conn-recorded-future: Recorded Future risk lists to Devo lookups"
COMMAND = "tq-conn-recorded-future"
CONFIG = "tq-conn-recorded-future.yaml"
LOOKUPS = ("Recorded_Future_IPv4_Address_Threat_List", "Recorded_Future_IPv6_Address_Threat_List",
           "Recorded_Future_Domain_Threat_List", "Recorded_Future_File_Hash_Threat_List",
           "Recorded_Future_URL_Threat_List", "Recorded_Future_Vulnerability_Threat_List",
           "Recorded_Future_IPv4_Public_Ukranie_Russia_List", "Recorded_Future_IPv6_Public_Ukranie_Russia_List")
T0 = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)

COLLECTOR_YAML = """\
globals:
  debug: false
  id: 1
  name: rf
  persistence:
    type: filesystem
    config:
      directory_name: state
outputs:
  devo_1:
    type: devo_platform
    config:
      address: {host}
      port: {port}
      type: SSL
      chain: chain.crt
      cert: {domain}.crt
      key: {domain}.key
inputs:
  recorded_future:
    id: 100
    enabled: true
    requests_per_second: 100
    base_url: {url}/v2/{{0}}/risklist?format=csv/splunk
    api_token: {token}
    services:
      lookup_puller:
        types:
          - ip
          - vulnerabilitiy
          - PublicUkraineRussiaIps
"""


def _write(folder, ctx, **extra):
    values = {"api_token": TOKEN, "base_url": ctx.url("recorded_future") + "/v2/{0}/risklist?format=csv/splunk",
              "devo_transport": "rest", "devo_lookups_url": ctx.url("devo") + "/lookup-api",
              "devo_token": DEFAULT_TOKEN, "devo_domain": DEFAULT_DOMAIN, **extra}
    path = os.path.join(folder, CONFIG)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(values, fh, sort_keys=False)
    os.chmod(path, 0o600)


def _show(ctx, names=LOOKUPS, rows=2):
    for name in names:
        view = ctx.sandbox["devo"].lookup(name, limit=rows)
        if view is None:
            print(f"  {name}: (no lookup)")
            continue
        print(f"  my.lookuplist.{name}: {view['total']} rows")
        for row in view["rows"]:
            print(f"    {row['Name'][:50]:<50} Risk {row['Risk']:>2}  {row['CriticalityLabel']:<14} "
                  f"{row['CriticalRule'][:40]}")


def _at(offset):
    return {"TQ_CONN_NOW": (T0 + offset).isoformat()}


def _calls(ctx):
    service = ctx.sandbox["recorded_future"]
    with service.lock:
        calls = [f"{r['method']} {r['path']}" for r in service.requests]
        service.requests.clear()
    return calls


def run(ctx):
    rf = ctx.sandbox["recorded_future"]
    folder = ctx.folder("recorded_future")

    print("First run with no config and no terminal: it names what is missing instead of waiting on a prompt.")
    ctx.sh(COMMAND, "-c", folder, check=False)

    print("\nWith the config written: all six data sources, into the lookups the Devo collector created "
          "(IP lists split into IPv4 and IPv6).")
    _write(folder, ctx)
    _calls(ctx)
    ctx.sh(COMMAND, "-c", folder, env=_at(datetime.timedelta()))
    _show(ctx)

    print("\nRefresh times (the clock set with TQ_CONN_NOW, a testing aid): 30 minutes later nothing is due; "
          "1 hour later ip and the Ukraine/Russia file are, and an unchanged etag means no download, no upload.")
    _calls(ctx)
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=_at(datetime.timedelta(minutes=30)))
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=_at(datetime.timedelta(hours=1)))
    print("  Recorded Future saw: " + ", ".join(_calls(ctx)))

    print("\nRecorded Future publishes a new domain list with some unusable rows: 2 hours later it is downloaded "
          "again; the bad rows are counted and skipped.")
    rf.configure("domain", rows=60, bad_every=12, malformed_evidence_every=20)
    ctx.sh(COMMAND, "-c", folder, "-v", "2", env=_at(datetime.timedelta(hours=2)))
    _show(ctx, ("Recorded_Future_Domain_Threat_List",))

    print("\nEvery row of the URL list is unusable: the list is rejected and its lookup is left as it was.")
    rf.configure("url", all_bad=True)
    _write(folder, ctx, types=["url"])
    ctx.sh(COMMAND, "-c", folder, "--force", check=False)
    _show(ctx, ("Recorded_Future_URL_Threat_List",), rows=1)
    rf.configure("url")

    print("\nThe seed's error table: a refused token (401), a list the token may not read (403), and a rate "
          "limit answered with Retry-After (the run waits and goes on).")
    _write(folder, ctx, api_token="0" * 32)
    ctx.sh(COMMAND, "-c", folder, "--force", check=False)
    _write(folder, ctx, types=["hash", "vulnerability"])
    rf.faults.add(path="^/v2/vulnerability/", status=403)
    ctx.sh(COMMAND, "-c", folder, "--force", check=False)
    rf.faults.add(path="^/v2/hash/risklist$", method="GET", status=429, retry_after=1, count=2)
    ctx.sh(COMMAND, "-c", folder, "--force", "-v", "2", env={"TQ_CONN_HTTP_BACKOFF": "0.2"})

    print("\nThe Devo collector's config.yaml, exactly in the collector's layout (config/ and certs/), read as it "
          "is; the lookups arrive over the X.509 transport.")
    collector = ctx.folder("devo-collectors/recorded_future")
    os.makedirs(os.path.join(collector, "config"), exist_ok=True)
    ctx.sandbox["devo"].write_client_bundle(os.path.join(collector, "certs"), DEFAULT_DOMAIN)
    host, port = ctx.sandbox["devo"].collector_address
    with open(os.path.join(collector, "config", "config.yaml"), "w", encoding="utf-8") as fh:
        fh.write(COLLECTOR_YAML.format(host=host, port=port, domain=DEFAULT_DOMAIN, token=TOKEN,
                                       url=ctx.url("recorded_future")))
    ctx.sh(COMMAND, "-c", os.path.join(collector, "config"), env={"TQ_CONN_DEVO_TLS_DELAY": "0"})
    _show(ctx, ("Recorded_Future_Vulnerability_Threat_List", "Recorded_Future_IPv6_Public_Ukranie_Russia_List"))
