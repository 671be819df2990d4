"""Demo: Recorded Future risk lists into Devo lookups: refresh times, etags, bad rows, errors, the collector config."""

import datetime
import os

from tq_conn_sandbox.demos import Step, call, config_file
from tq_conn_sandbox.services.devo import DEFAULT_DOMAIN, DEFAULT_TOKEN
from tq_conn_sandbox.services.recorded_future import TOKEN

TITLE = "tq-conn-recorded-future: Recorded Future risk lists to Devo lookups"
COMMAND = "tq-conn-recorded-future"
LOOKUPS = ("Recorded_Future_IPv4_Address_Threat_List", "Recorded_Future_IPv6_Address_Threat_List",
           "Recorded_Future_Domain_Threat_List", "Recorded_Future_File_Hash_Threat_List",
           "Recorded_Future_URL_Threat_List", "Recorded_Future_Vulnerability_Threat_List",
           "Recorded_Future_IPv4_Public_Ukranie_Russia_List", "Recorded_Future_IPv6_Public_Ukranie_Russia_List")
T0 = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)
COLLECTOR = "devo-collectors/recorded_future"

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

_config = config_file("tq-conn-recorded-future.yaml", lambda ctx: {
    "api_token": TOKEN, "base_url": ctx.url("recorded_future") + "/v2/{0}/risklist?format=csv/splunk",
    "devo_transport": "rest", "devo_lookups_url": ctx.url("devo") + "/lookup-api", "devo_token": DEFAULT_TOKEN,
    "devo_domain": DEFAULT_DOMAIN})


def _at(offset):
    """Return the environment that sets the connector's clock (a testing aid) to offset after T0."""
    return {"TQ_CONN_NOW": (T0 + offset).isoformat()}


def _lists(names=LOOKUPS, rows=2):
    """Return an action printing the lookups names in Devo, with the first rows of each."""
    def show(ctx):
        for name in names:
            view = ctx.sandbox["devo"].lookup(name, limit=rows)
            if view is None:
                print(f"  {name}: (no lookup)")
                continue
            print(f"  my.lookuplist.{name}: {view['total']} rows")
            for row in view["rows"]:
                print(f"    {row['Name'][:50]:<50} Risk {row['Risk']:>2}  {row['CriticalityLabel']:<14} "
                      f"{row['CriticalRule'][:40]}")
    return show


def _calls(ctx):
    """Return the requests Recorded Future saw since the last call, and forget them."""
    service = ctx.sandbox["recorded_future"]
    with service.lock:
        calls = [f"{r['method']} {r['path']}" for r in service.requests]
        service.requests.clear()
    return calls


def _saw(ctx):
    print("  Recorded Future saw: " + ", ".join(_calls(ctx)))


def _collector(ctx):
    """Write the Devo collector's layout: config/config.yaml and the certificates in certs/."""
    home = ctx.folder(COLLECTOR)
    os.makedirs(os.path.join(home, "config"), exist_ok=True)
    ctx.sandbox["devo"].write_client_bundle(os.path.join(home, "certs"), DEFAULT_DOMAIN)
    host, port = ctx.sandbox["devo"].collector_address
    with open(os.path.join(home, "config", "config.yaml"), "w", encoding="utf-8") as fh:
        fh.write(COLLECTOR_YAML.format(host=host, port=port, domain=DEFAULT_DOMAIN, token=TOKEN,
                                       url=ctx.url("recorded_future")))


STEPS = (
    Step("First run with no config and no terminal: it names what is missing instead of waiting on a prompt.",
         args=("-c", "{home}"), check=False),
    Step("With the config written: all six data sources, into the lookups the Devo collector created "
         "(IP lists split into IPv4 and IPv6).",
         set=(_config(), _calls), args=("-c", "{home}"), env=_at(datetime.timedelta()), show=(_lists(),)),
    Step("Refresh times (the clock set with TQ_CONN_NOW, a testing aid): 30 minutes later nothing is due; "
         "1 hour later ip and the Ukraine/Russia file are, and an unchanged etag means no download, no upload.",
         set=(_calls,), args=("-c", "{home}", "-v", "2"), env=_at(datetime.timedelta(minutes=30))),
    Step(args=("-c", "{home}", "-v", "2"), env=_at(datetime.timedelta(hours=1)), show=(_saw,)),
    Step("Recorded Future publishes a new domain list with some unusable rows: 2 hours later it is downloaded "
         "again; the bad rows are counted and skipped.",
         set=(call("recorded_future", "configure", "domain", rows=60, bad_every=12, malformed_evidence_every=20),),
         args=("-c", "{home}", "-v", "2"), env=_at(datetime.timedelta(hours=2)),
         show=(_lists(("Recorded_Future_Domain_Threat_List",)),)),
    Step("Every row of the URL list is unusable: the list is rejected and its lookup is left as it was.",
         set=(call("recorded_future", "configure", "url", all_bad=True), _config(types=["url"])),
         args=("-c", "{home}", "--force"), check=False, show=(_lists(("Recorded_Future_URL_Threat_List",), rows=1),),
         then=(call("recorded_future", "configure", "url"),)),
    Step("The seed's error table: a refused token (401), a list the token may not read (403), and a rate "
         "limit answered with Retry-After (the run waits and goes on).",
         set=(_config(api_token="0" * 32),), args=("-c", "{home}", "--force"), check=False),
    Step(set=(_config(types=["hash", "vulnerability"]),
              call("recorded_future", "faults.add", path="^/v2/vulnerability/", status=403)),
         args=("-c", "{home}", "--force"), check=False),
    Step(set=(call("recorded_future", "faults.add", path="^/v2/hash/risklist$", method="GET", status=429,
                   retry_after=1, count=2),),
         args=("-c", "{home}", "--force", "-v", "2"), env={"TQ_CONN_HTTP_BACKOFF": "0.2"}),
    Step("The Devo collector's config.yaml, exactly in the collector's layout (config/ and certs/), read as it "
         "is; the lookups arrive over the X.509 transport.",
         set=(_collector,), args=("-c", lambda ctx: os.path.join(ctx.folder(COLLECTOR), "config")),
         env={"TQ_CONN_DEVO_TLS_DELAY": "0"},
         show=(_lists(("Recorded_Future_Vulnerability_Threat_List",
                       "Recorded_Future_IPv6_Public_Ukranie_Russia_List")),)),
)
