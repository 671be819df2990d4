"""The Devo parameters of a connector and their check, done once per run: which transport, where, with what."""

import logging
import re
from dataclasses import dataclass, replace

from tq_conn_common import checks
from tq_conn_common.config import Param, reveal
from tq_conn_common.devo import certs
from tq_conn_common.devo.certs import CERT, CHAIN, KEY, PEM
from tq_conn_common.errors import ConfigError, Declared

log = logging.getLogger(__name__)

# Region presets: Lookups REST API base URL (the SDK's api-<region> form), TLS collector host (port 443), and the
# HTTP endpoint events go to (Devo docs "HTTP endpoint"; APAC: Singapore).
REGIONS = {
    "us": ("https://api-us.devo.com/lookup-api", "collector-us.devo.io", "https://http-us.devo.io:443"),
    "eu": ("https://api-eu.devo.com/lookup-api", "collector-eu.devo.io", "https://http-eu.devo.io"),
    "ca": ("https://api-ca.devo.com/lookup-api", "collector-ca.devo.io", "https://http-ca.devo.io:443"),
    "ap": ("https://api-apac.devo.com/lookup-api", "collector-ap.devo.io", "https://collector-ap.devo.io:8443"),
}
TRANSPORTS = ("auto", "rest", "tls")

TRANSPORT = Param("devo_transport", "Devo Transport", default="auto", choices=TRANSPORTS,
                  help="How lookups reach Devo: rest (Lookups API with a token, confirmed by Devo), tls (X.509 "
                       "certificates through devo-sdk: unconfirmed, and Devo announced its end for 2026-01-01), or "
                       "auto: rest (tls only when set on purpose). Events go through the HTTP endpoint when its token "
                       "is set, else through the X.509 collector.")
REGION = Param("devo_region", "Devo API Region", default="us", choices=tuple(REGIONS),
               help="Select which API region to connect to when communicating with Devo.")
LOOKUPS_URL = Param("devo_lookups_url", "Devo Lookups API URL",
                    help="Override the Lookups API base URL of the region, e.g. https://api-eu.devo.com/lookup-api.")
TOKEN = Param("devo_token", "Devo API Token", secret=True,
              help="Devo API token (Administration -> Credentials -> Authentication tokens) for the Lookups API.")
HTTP_TOKEN = Param("devo_http_token", "Devo HTTP Endpoint Token", secret=True,
                   help="Token of Devo's HTTP endpoint (Administration -> Credentials -> Authentication tokens, "
                        "created for the HTTP endpoint) to send events with an acknowledgement; without it events "
                        "go through the X.509 collector.")
HTTP_URL = Param("devo_http_url", "Devo HTTP Endpoint URL",
                 help="Override the HTTP endpoint of the region for events, e.g. https://http-eu.devo.io.")
DOMAIN = Param("devo_domain", "Devo Domain", help="The Devo domain that owns the lookups (needed by the Lookups API).")
VERIFY, CA_BUNDLE = checks.tls_params("devo", "Devo Lookups API", renamed_from=("devo_verify_ssl",))
JOB_TIMEOUT = Param("devo_job_timeout", "Devo Job Timeout", type=int, default=900, range=(1, 86400),
                    help="Seconds to wait for Devo to finish loading an upload before the run fails.")
HOST = Param("devo_host", "Devo Collector Host",
             help="Override the collector host of the region, e.g. a private relay (X.509 transport).")
PORT = Param("devo_port", "Devo Collector Port", type=int, range=(1, 65535),
             help="Override the collector port (default 443).")
TLS_DELAY = Param("devo_tls_delay", "Devo Lookup Control Delay", type=float, default=5.0, range=(0, 120),
                  help="Seconds devo-sdk waits after a lookup's START and before its END message (X.509 transport).")
DELTA = Param("devo_delta_delivery", "Devo Delta Delivery", type=bool, default=True,
              help="Send a lookup only what changed since the last run (rows added or changed, keys gone), over the "
                   "Lookups API; false sends every lookup whole on every run.")
DELTA_SHARE = Param("devo_delta_max_percent", "Devo Delta Maximum Percent", type=int, default=50, range=(1, 100),
                    help="A delta larger than this share of a lookup (rows upserted and deleted, in percent of its "
                         "rows) is sent as a full replacement instead.")
FULL_DAYS = Param("devo_full_replace_days", "Devo Full Replacement Days", type=int, default=7, range=(1, 365),
                  help="With delta delivery, a lookup is still sent whole once every this many days, to heal any "
                       "drift between Devo and what the connector remembers.")
PARAMS = (TRANSPORT, REGION, LOOKUPS_URL, TOKEN, DOMAIN, VERIFY, CA_BUNDLE, JOB_TIMEOUT, DELTA, DELTA_SHARE, FULL_DAYS,
          HTTP_TOKEN, HTTP_URL, CERT, KEY, CHAIN, HOST, PORT, TLS_DELAY)
NO_CREDENTIALS = Declared(ConfigError, "No Devo credentials are set, so nothing can be delivered to Devo.",
                          f"set {TOKEN.named} and {DOMAIN.named} to use the Lookups API (recommended), or "
                          f"{CERT.named}, {KEY.named} and {CHAIN.named} for the X.509 collector.")
X509_ONLY = Declared(ConfigError, "Only X.509 credentials are set for Devo, and Devo announced the end of the X.509 "
                     "lookup upload for 2026-01-01; it acknowledges nothing, so a run could succeed while nothing "
                     "arrives.",
                     f"set {TOKEN.named} (create it in Devo: Administration -> Credentials -> Authentication tokens) "
                     f"and {DOMAIN.named} to use the Lookups API; to keep the X.509 upload on purpose, set "
                     f"{TRANSPORT.named} to tls.")
ASKED_FIRST = ("devo_region", "devo_token", "devo_domain")   # what the first-run prompts of a connector ask


def output_params(ui=False, asked=()):
    """Return the Param declarations of Devo delivery, to append to a connector's PARAMS.

    ui: every one is set in the ThreatQ UI; asked: the keys the first-run prompts ask for.
    """
    return tuple(replace(p, ui=ui or p.ui, prompt=True if p.key in asked else p.prompt) for p in PARAMS)


@dataclass(frozen=True)
class Settings:
    """What the Devo parameters of one run select: the transport and its address and credentials."""

    transport: str
    config: object

    def value(self, key):
        value = reveal(self.config.get(key)) if self.config is not None else None
        return value.strip() if isinstance(value, str) else value

    @property
    def rest_url(self):
        """The Lookups API base URL: the explicit devo_lookups_url, else the region preset."""
        url = self.value("devo_lookups_url")
        return url.rstrip("/") if url else REGIONS[self.value("devo_region") or "us"][0]

    @property
    def collector(self):
        """(host, port) of the TLS collector: devo_host/devo_port, else the region preset on 443."""
        host = self.value("devo_host") or REGIONS[self.value("devo_region") or "us"][1]
        return host, int(self.config.get("devo_port") or 443)

    @property
    def http_url(self):
        """The HTTP endpoint events go to: devo_http_url, else the region preset."""
        url = self.value("devo_http_url")
        return url.rstrip("/") if url else REGIONS[self.value("devo_region") or "us"][2]


def check(config, events=False, also=""):
    """Return the Settings of config; raise ConfigError naming what to set (every problem at once).

    events=True checks for sending events: through the HTTP endpoint when its token is set (and tls is not chosen),
    else through the X.509 collector; also: a sentence the fix ends with (another way out, such as switching the
    events off).
    """
    try:
        return _check(config, events)
    except ConfigError as exc:
        if also:
            raise ConfigError(exc.message, f"{exc.fix + ' ' if exc.fix else ''}{also}", problems=exc.problems) from None
        raise


def _check(config, events):
    settings = Settings("rest", config)
    chosen = settings.value("devo_transport") or "auto"
    token, domain = settings.value("devo_token"), settings.value("devo_domain")
    pem = {p.key: settings.value(p.key) for p in PEM}
    if events:
        transport = "http" if settings.value("devo_http_token") and chosen != "tls" else "tls"
    elif chosen == "auto":
        if token:
            transport = "rest"
        elif any(pem.values()):
            raise X509_ONLY()
        else:
            raise NO_CREDENTIALS()
    elif chosen in ("rest", "tls"):
        transport = chosen
    else:
        raise ConfigError(f"{TRANSPORT.named} {chosen!r} is not allowed.", "set auto, rest or tls.")
    problems = []
    if transport == "http":
        if not domain:
            problems.append(f"{DOMAIN.named} is not set; events through the HTTP endpoint need the name of your Devo "
                            "domain.")
        url = settings.value("devo_http_url")
        if url and not re.match(r"^https?://[^/\s]+", url):
            problems.append(f"{HTTP_URL.named} {url!r} is not an http(s) URL; set e.g. https://http-eu.devo.io.")
    elif transport == "rest":
        if not token:
            problems.append(f"{TOKEN.named} is not set; create a token in Devo (Administration -> Credentials) and "
                            "set it.")
        if not domain:
            problems.append(f"{DOMAIN.named} is not set; set the name of your Devo domain.")
        url = settings.value("devo_lookups_url")
        if url and not re.match(r"^https?://[^/\s]+", url):
            problems.append(f"{LOOKUPS_URL.named} {url!r} is not an http(s) URL; set e.g. "
                            "https://api-us.devo.com/lookup-api.")
    else:
        missing = [p.named for p in PEM if not pem[p.key]]
        if missing:
            why, other = (("events are sent", f"set {HTTP_TOKEN.named} to send them through the HTTP endpoint")
                          if events else ("the X.509 transport is used", f"set {TOKEN.named} and {DOMAIN.named} to use "
                                          "the Lookups API"))
            problems.append(f"{', '.join(missing)} not set but {why}; paste the PEM text (or the file path) from "
                            f"Devo Administration -> Credentials -> X.509 Certificates, or {other}.")
        else:
            problems.extend(certs.check(pem))
    if len(problems) == 1:
        raise ConfigError(problems[0], problems=problems)
    if problems:
        raise ConfigError("The Devo settings have %d problems:\n  %s" % (len(problems), "\n  ".join(problems)),
                          problems=problems)
    return replace(settings, transport=transport)


__all__ = ["PARAMS", "REGIONS", "TRANSPORTS", "Settings", "check", "output_params", "TOKEN", "DOMAIN", "CERT", "KEY",
           "CHAIN", "ASKED_FIRST", "HTTP_TOKEN", "HTTP_URL", "X509_ONLY", "DELTA", "DELTA_SHARE", "FULL_DAYS"]
