"""Devo Lookups REST API transport: deploy-csv uploads streamed from a spooled temporary file, then job polling."""

import itertools
import json
import logging
import time
import uuid
from urllib.parse import quote

from tq_conn_common import checks
from tq_conn_common.devo.lookup import query_name
from tq_conn_common.devo.settings import DOMAIN, JOB_TIMEOUT, LOOKUPS_URL, TOKEN
from tq_conn_common.devo.transport import Upload, register
from tq_conn_common.errors import DeliveryError
from tq_conn_common.service import Service

log = logging.getLogger(__name__)

# Table-path type names to the Lookups API names (STRING and INT8 are Devo's own examples; the rest inferred).
REST_TYPES = {"str": "STRING", "int": "INT8", "int8": "INT8", "int4": "INT4", "float": "FLOAT8", "bool": "BOOLEAN",
              "ip4": "IP4"}
READ_SIZE = 256 * 1024
WRITE_ROWS = 1024   # rows written to the spool together
_CONTROL = bytes(range(32)) + b"\x7f"   # the ASCII characters that are not printable


def csv_field(value):
    """Return one CSV field: quoted (RFC 4180, inner quotes doubled) unless it is plain printable ASCII."""
    if value == "":
        return '""'
    if (value.isascii() and value.isprintable() and "," not in value and '"' not in value
            and value[0] != " " and value[-1] != " "):
        return value
    return '"' + value.replace('"', '""') + '"'


def csv_line(values):
    """Return one CSV line (newline-terminated) of text values."""
    return ",".join(map(csv_field, values)) + "\n"


def csv_lines(rows):
    """Return the CSV lines of rows (tuples of text values, all of one width), as csv_line writes each of them.

    The usual batch, where no value needs quotes, is checked and joined whole: a value needs quotes when it is empty,
    not printable ASCII, or holds a comma or a quote or begins or ends with a space; with no comma in any value, the
    commas of the joined batch are the separators, so each of those shows in the joined text.
    """
    if not rows:
        return ""
    values = list(itertools.chain.from_iterable(rows))
    joined = ",".join(values)
    if ("" not in values and joined.isascii() and '"' not in joined
            and joined.count(",") == len(values) - 1
            and len(joined.encode("ascii").translate(None, _CONTROL)) == len(joined)
            and ", " not in joined and " ," not in joined and joined[0] != " " and joined[-1] != " "):
        return "\n".join(map(",".join, rows)) + "\n"
    return "".join(map(csv_line, rows))


class _Multipart:
    """A multipart/form-data body read from a spooled CSV file: iterable from the start again for each attempt."""

    def __init__(self, config_json, spool, name):
        self.boundary = "tqconn-" + uuid.uuid4().hex
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"deploy-config\"\r\n"
                     f"Content-Type: application/json\r\n\r\n{config_json}\r\n"
                     f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"{name}.csv\"\r\n"
                     "Content-Type: text/csv\r\n\r\n").encode("utf-8")
        self.tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self.spool = spool
        spool.seek(0, 2)
        self.csv_size = spool.tell()

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self):
        return len(self.head) + self.csv_size + len(self.tail)

    def __iter__(self):
        yield self.head
        self.spool.seek(0)
        while True:
            block = self.spool.read(READ_SIZE)
            if not block:
                break
            yield block
        yield self.tail


def deploy_config(spec, mode):
    """Return the deploy-config of a CSV upload in this mode (replace, upsert or delete)."""
    config = {"columns": [{"name": c.name, "type": REST_TYPES[c.type]} for c in spec.columns],
              "hasHeader": True, "key": {"type": "column", "column": spec.key}}
    if mode in ("upsert", "delete"):
        config["append"] = True
    if mode == "delete":
        config["contribution"] = {"type": "del"}
    return config


LOOKUPS_API = Service(
    "the Devo Lookups API", credential=TOKEN, url=LOOKUPS_URL,
    messages={"credential": "Devo refused the API token for lookup '{name}' (HTTP {status}{said}).",
              "permission": "Devo refused access to lookup '{name}' (HTTP {status}{said}).",
              "status": "Devo refused the {action} of lookup '{name}' (HTTP {status}{said}).",
              "connection": "The {action} of lookup '{name}' failed: {message}"},
    fixes={"credential": f"{TOKEN.named} was rejected; create a new token in Devo and run with it again.",
           "permission": f"{TOKEN.named} is valid but may not manage lookups in this domain; check {DOMAIN.named} or "
                         "give the token lookup permissions in Devo."},
    classes={"status": DeliveryError, "connection": DeliveryError})


@register("rest")
class RestUpload(Upload):
    """A deploy-csv upload of the spooled CSV, confirmed by the status of Devo's load job."""

    def __init__(self, *args):
        super().__init__(*args)
        self.spool.write(csv_line(self.spec.names).encode("utf-8"))

    def add(self, rows):
        self.spool.write(csv_lines(rows).encode("utf-8"))
        self.count += len(rows)

    def send(self):
        run, name, mode = self.run, self.name, self.mode
        base, domain = self.settings.rest_url, self.settings.value("devo_domain")
        log.info("Devo transport: Lookups REST API at %s, domain %s; lookup %s (%s), mode %s.",
                 base, domain, name, query_name(name), mode)
        log.info("Spooled %d rows for lookup %s (%d bytes).", self.count, name, self.spool.tell())
        if self.nothing_to_send():
            return 0
        client = run.http(LOOKUPS_API, base, timeout=(15, 600),
                          verify=checks.verify(run.config, "devo"),
                          headers={"Authorization": f"Bearer {self.settings.value('devo_token')}",
                                   "Accept": "application/json"})
        path = f"lookup/{quote(domain, safe='')}/{quote(name, safe='')}"
        context = {"name": name, "action": "check"}
        exists = client.get(path, expect=(200, 404), context=context).status_code == 200
        if not exists and mode == "delete":
            log.warning("Lookup %s does not exist in domain %s; no rows to delete.", name, domain)
            return 0
        body = _Multipart(json.dumps(deploy_config(self.spec, mode)), self.spool, name)
        started = time.monotonic()
        response = client.request("PUT" if exists else "POST", f"{path}/deploy-csv", data=body,
                                  headers={"Content-Type": body.content_type, **_stamp()},
                                  context={**context, "action": "upload"})
        log.info("Sent %d rows (%d bytes) to lookup %s in %.1f s; waiting for Devo to load them.",
                 self.count, len(body), name, time.monotonic() - started)
        answer = _json(response)
        job = answer.get("id") if isinstance(answer, dict) else None
        if job:
            _wait(client, path, name, str(job), int(run.config.get(JOB_TIMEOUT.key) or JOB_TIMEOUT.default))
        else:
            log.warning("Devo did not return a job id for lookup %s; not waiting for the load to finish.", name)
        return self.count


def _stamp():
    return {"x-logtrust-timestamp": str(int(time.time() * 1000))}


def _json(response):
    try:
        return response.json() if response.content else None
    except ValueError:
        log.debug("Non-JSON answer to %s %s: %r", response.request.method, response.url, response.content[:300])
        return None


def _status(entry):
    """Return the status code of one job status entry (tolerant of the field name)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        for field in ("status", "code", "statusCode", "state", "type"):
            value = entry.get(field)
            if isinstance(value, str) and "." in value:
                return value
    return ""


def _wait(client, path, name, job, timeout):
    """Poll the job until a final status: *.ok returns, *.err raises DeliveryError, no end within timeout raises."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    last = ""
    while True:
        answer = _json(client.get(f"{path}/job/{quote(job, safe='')}", headers=_stamp(),
                                  context={"name": name, "action": "job status check"}))
        entries = answer.get("jobs") if isinstance(answer, dict) else answer
        for entry in reversed(entries or []):
            status = _status(entry)
            if not status:
                continue
            last = status
            message = entry.get("msg") if isinstance(entry, dict) else ""
            if status.endswith(".ok"):
                log.info("Devo loaded lookup %s (%s): %s.", name, status, message or "ok")
                return
            if status.endswith(".err") or status.endswith(".error"):
                raise DeliveryError(f"Devo could not load lookup '{name}' (job {job}, {status}): "
                                    f"{message or 'no reason given'}.",
                                    "fix what Devo names (columns, types, the lookup name) and run again; "
                                    "the lookup keeps its previous content.")
            break
        if time.monotonic() >= deadline:
            raise DeliveryError(f"Devo did not finish loading lookup '{name}' within {timeout} s "
                                f"(job {job}, last status {last or 'not started'}).",
                                f"check the lookup in Devo; raise {JOB_TIMEOUT.named} if loads there take longer.",
                                retryable=True)
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 5.0)


__all__ = ["RestUpload", "LOOKUPS_API", "deploy_config", "csv_field", "csv_line", "csv_lines", "REST_TYPES"]
