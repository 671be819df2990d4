"""Events for a Devo table: the table as data, and sending events to it through Devo's HTTP endpoint (a 2xx says
it received them) or the X.509 collector (a connection closed in order says it read them)."""

import gzip
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote

from tq_conn_common import checks
from tq_conn_common.devo import settings as devo_settings
from tq_conn_common.devo import tls
from tq_conn_common.devo.settings import HTTP_TOKEN, HTTP_URL
from tq_conn_common.errors import ConfigError, DeliveryError
from tq_conn_common.service import Service

log = logging.getLogger(__name__)

BATCH = 1000                 # events sent together: at most these are sent twice after a run died mid-send
MAX_BODY = 30 * 1024 * 1024  # bytes of events in one request, before gzip (Devo takes up to 32 MB per request)
UNSENT = "run again later; the batch stays marked in flight and the next run sends it once."
HTTP_ENDPOINT = Service(
    "the Devo HTTP endpoint", credential=HTTP_TOKEN, url=HTTP_URL,
    messages={"status": "Devo's HTTP endpoint did not take {count} events for table {tag} (HTTP {status}{said}).",
              "connection": "Sending {count} events for table {tag} to Devo's HTTP endpoint failed: {message}"},
    fixes={"credential": f"{HTTP_TOKEN.named} was rejected; create a token for the HTTP endpoint in Devo and set it.",
           "status": UNSENT, "connection": UNSENT},
    classes={"status": DeliveryError, "connection": DeliveryError})

TAG_RULE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")


def check_tag(value):
    """Param check of a Devo table tag: dot-separated words of letters, digits, '_' or '-'."""
    if not TAG_RULE.match(str(value)):
        raise ValueError(f"{value!r} is not a Devo table tag; use dot-separated words of letters, digits, '_' or '-', "
                         "e.g. my.app.vendor.alerts.")
    return str(value)


@dataclass(frozen=True)
class EventTable:
    """A Devo table events go to: its tag, fixed or taken from a parameter, and the field that identifies an event
    (events are dicts; with a key, one without a value for it is skipped and a repeated one dropped)."""

    tag: str = None
    tag_from: str = None
    key: str = None

    def resolve_tag(self, config=None):
        """Return the table tag, from the declaration or the config; raise ConfigError if it is not one."""
        try:
            return check_tag(self.tag if self.tag else config.get(self.tag_from))
        except ValueError as exc:
            raise ConfigError(f"The Devo table tag: {exc}".split(";")[0] + ".",
                              "use dot-separated words of letters, digits, '_' or '-', e.g. my.app.vendor.alerts.") \
                from None


class EventUpload:
    """Events of one table on their way to Devo, sent together by send()."""

    def __init__(self, run, table):
        self.run, self.tag, self.events = run, table.resolve_tag(run.config), []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def count(self):
        return len(self.events)

    def add(self, events):
        self.events.extend(events)

    def send(self, events=None):
        """Send events (by default those added since the last send) as one batch; return how many Devo took."""
        events, self.events = (self.events, []) if events is None else (events, self.events)
        if not events:
            return 0
        settings = events_settings(self.run)
        if settings.transport == "http":
            return _post(self.run, settings, self.tag, events)
        return tls.send_events(self.run, self.tag, events)

    def close(self):
        self.events = []


def events_settings(run):
    """Return the Devo settings events of this run go out with (checked once a run)."""
    found = getattr(run, "devo_events", None)
    if found is None:
        found = run.devo_events = devo_settings.check(run.config, events=True)
    return found


def _post(run, settings, tag, events):
    """POST events to the HTTP endpoint in stream mode, gzip bodies under its size limit; return how many."""
    client = run.http(HTTP_ENDPOINT, settings.http_url, timeout=(15, 120), verify=checks.verify(run.config, "devo"))
    path = (f"stream/{quote(settings.value('devo_domain'), safe='')}/token!{settings.value('devo_http_token')}/"
            f"{quote(socket.gethostname() or '-', safe='')}/{tag}")
    part, size, sent = [], 0, 0
    for event in events:
        line = (tls.event_line(event).replace("\n", "\\n") + "\n").encode("utf-8")
        if part and size + len(line) > MAX_BODY:
            sent += _request(client, path, part, tag)
            part, size = [], 0
        part.append(line)
        size += len(line)
    sent += _request(client, path, part, tag)
    log.info("Sent %d events to table %s through Devo's HTTP endpoint %s.", sent, tag, settings.http_url)
    return sent


def _request(client, path, lines, tag):
    # Not retried: a request that failed part way may have arrived; the next run sends the batch once more.
    client.request("POST", path, data=gzip.compress(b"".join(lines), 6), retry=False,
                   headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
                   context={"count": len(lines), "tag": tag})
    return len(lines)


__all__ = ["EventTable", "EventUpload", "check_tag", "TAG_RULE", "events_settings", "HTTP_ENDPOINT", "BATCH"]
