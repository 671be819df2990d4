"""Devo Lookups REST API transport: deploy-csv uploads streamed from a spooled temporary file, then job polling."""

import json
import logging
import os
import re
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

# Column types to the Lookups API names. Only STRING and INT8 appear in Devo's documents; the other columns travel
# as text (a number that is not whole, a boolean, an IPv4 address) until their Devo type names are confirmed.
REST_TYPES = {"str": "STRING", "int": "INT8", "int8": "INT8", "int4": "INT8", "float": "STRING", "bool": "STRING",
              "ip4": "STRING"}
UPLOAD_ATTEMPTS = 3   # an upload without an answer is sent again only when Devo started no job for it
DONE = "successfully"  # in the msg of a finished job ("Lookup successfully created"), when its code is not found
READ_SIZE = 256 * 1024
WRITE_ROWS = 1024   # rows written to the spool together
_CONTROL = bytes(range(32)) + b"\x7f"   # the ASCII characters that are not printable (a line end among them)


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
    """Return the CSV lines of rows (tuples of text values, all of one width), as csv_line writes each of them."""
    if not rows:
        return ""
    return "\n".join(csv_records(rows)) + "\n"


def csv_records(rows):
    """Return each row (a tuple of text values, all of one width) as its CSV record, without the line end.

    Column by column: a column whose values need no quotes (none empty, all printable ASCII, no comma or quote, no
    space at either end) is checked in one joined text and passes whole; only the others go value by value through
    csv_field. The usual batch has one or two such columns, so most values cost no Python work of their own.
    """
    if not rows:
        return []
    columns = []
    for values in zip(*rows):
        text = "\n".join(values)
        if not (text.isascii() and '"' not in text and "," not in text and text[:1] not in ("", " ", "\n")
                and text[-1] not in " \n" and "\n\n" not in text and " \n" not in text and "\n " not in text
                and len(text.encode("ascii").translate(None, _CONTROL)) == len(text) - len(values) + 1):
            values = list(map(csv_field, values))
        columns.append(values)
    return list(map(",".join, zip(*columns)))


class _Multipart:
    """A multipart/form-data body read from a spooled CSV file: iterable from the start again for each attempt. The
    ranges left_out ((offset, length), in order) of the file are not sent."""

    def __init__(self, config_json, spool, name, left_out=()):
        self.boundary = "tqconn-" + uuid.uuid4().hex
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"deploy-config\"\r\n"
                     f"Content-Type: application/json\r\n\r\n{config_json}\r\n"
                     f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"{name}.csv\"\r\n"
                     "Content-Type: text/csv\r\n\r\n").encode("utf-8")
        self.tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self.spool, self.left_out = spool, left_out
        spool.seek(0, 2)
        self.csv_size = spool.tell() - sum(length for _, length in left_out)

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self):
        return len(self.head) + self.csv_size + len(self.tail)

    def __iter__(self):
        yield self.head
        at = 0
        for start, length in (*self.left_out, (None, 0)):
            self.spool.seek(at)
            while start is None or at < start:
                block = self.spool.read(READ_SIZE if start is None else min(READ_SIZE, start - at))
                if not block:
                    break
                at += len(block)
                yield block
            at += length
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


class LookupMissing(DeliveryError):
    """An upsert or delete meant for a lookup Devo does not hold (a delta needs the content it was computed on)."""


@register("rest")
class RestUpload(Upload):
    """A deploy-csv upload of the spooled CSV, confirmed by the status of Devo's load job.

    must_exist: raise LookupMissing, sending nothing, when the lookup is not in Devo (set by delta delivery).
    """

    must_exist = False
    left_out = ()   # (offset, length) of the spooled lines not to send (see adopt)

    def __init__(self, *args):
        super().__init__(*args)
        self.spool.write(csv_line(self.spec.names).encode("utf-8"))

    def add(self, rows):
        self.spool.write(csv_lines(rows).encode("utf-8"))
        self.count += len(rows)

    def adopt(self, path, count, left_out=()):
        """Send the CSV file at path (header line, then count records) instead of what was spooled, but for the
        ranges left_out ((offset, length) of lines, in order)."""
        self.spool.close()
        self.spool = open(path, "rb")
        self.spool.seek(0, os.SEEK_END)
        self.count, self.left_out = count, left_out

    def add_records(self, records):
        """Spool CSV records (texts as csv_records returns them)."""
        if records:
            self.spool.write(("\n".join(records) + "\n").encode("utf-8"))
            self.count += len(records)

    def send(self):
        run, name, mode = self.run, self.name, self.mode
        base, domain = self.settings.rest_url, self.settings.value("devo_domain")
        log.info("Devo transport: Lookups REST API at %s, domain %s; lookup %s (%s), mode %s.",
                 base, domain, name, query_name(name), mode)
        log.info("Spooled %d rows for lookup %s (%d bytes).", self.count, name, self.spool.tell())
        if self.nothing_to_send():
            return 0
        client, path, context = self._client()
        exists = client.get(path, expect=(200, 404), context=context).status_code == 200
        if not exists and self.must_exist:
            raise LookupMissing(f"Lookup '{name}' is not in Devo domain {domain}.")
        if not exists and mode == "delete":
            log.warning("Lookup %s does not exist in domain %s; no rows to delete.", name, domain)
            return 0
        body = _Multipart(json.dumps(deploy_config(self.spec, mode)), self.spool, name, self.left_out)
        started = time.monotonic()
        job = _upload(client, path, exists, body, context)
        log.info("Sent %d rows (%d bytes) to lookup %s in %.1f s; waiting for Devo to load them.",
                 self.count, len(body), name, time.monotonic() - started)
        _wait(client, path, name, job, int(run.config.get(JOB_TIMEOUT.key) or JOB_TIMEOUT.default))
        return self.count


    def exists(self):
        """Return True when Devo holds the lookup."""
        client, path, context = self._client()
        return client.get(path, expect=(200, 404), context=context).status_code == 200

    def _client(self):
        """Return the HTTP client of the Lookups API, the lookup's path and the context of its messages."""
        run, domain = self.run, self.settings.value("devo_domain")
        client = run.http(LOOKUPS_API, self.settings.rest_url, timeout=(15, 600),
                          verify=checks.verify(run.config, "devo"),
                          headers={"Authorization": f"Bearer {self.settings.value('devo_token')}",
                                   "Accept": "application/json"})
        path = f"lookup/{quote(domain, safe='')}/{quote(self.name, safe='')}"
        return client, path, {"name": self.name, "action": "check"}


def _jobs(client, path, context):
    """Return the ids of the lookup's last jobs, oldest first ([] when it has none)."""
    response = client.get(f"{path}/job", expect=(200, 404), headers=_stamp(), context={**context, "action": "check"})
    answer = _json(response) if response.status_code == 200 else None
    jobs = answer.get("jobs") if isinstance(answer, dict) else None
    return [str(j.get("id") if isinstance(j, dict) else j) for j in jobs or ()]


def _upload(client, path, exists, body, context):
    """POST (a new lookup) or PUT the upload; return the id of the job Devo started for it. An upload that got no
    answer is not simply sent again (Devo may have taken it): a job started since then is the one to wait for."""
    before = set(_jobs(client, path, context)) if exists else set()
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            response = client.request("PUT" if exists else "POST", f"{path}/deploy-csv", data=body, retry=False,
                                      headers={"Content-Type": body.content_type, **_stamp()},
                                      context={**context, "action": "upload"})
        except DeliveryError as exc:
            if not exc.retryable or attempt == UPLOAD_ATTEMPTS:
                raise
            started = [j for j in _jobs(client, path, context) if j not in before]
            if started:
                log.warning("The upload of lookup %s got no answer (%s), but Devo started job %s since; waiting "
                            "for it instead of uploading again.", context["name"], exc.message, started[-1])
                return started[-1]
            log.warning("The upload of lookup %s failed (%s) and Devo started no job for it; uploading again (%d of "
                        "%d).", context["name"], exc.message, attempt, UPLOAD_ATTEMPTS - 1)
            exists = exists or client.get(path, expect=(200, 404), context=context).status_code == 200
            time.sleep(attempt)
            continue
        answer = _json(response)
        job = answer.get("id") if isinstance(answer, dict) else None
        if job:
            return str(job)
        started = [j for j in _jobs(client, path, context) if j not in before]
        if started:
            return started[-1]
        raise DeliveryError(f"Devo answered the upload of lookup '{context['name']}' without a job to follow, and "
                            "lists none: the load cannot be confirmed.", "check the lookup in Devo and run again; "
                            "the state was left as it was.", retryable=True)


def _stamp():
    return {"x-logtrust-timestamp": str(int(time.time() * 1000))}


def _json(response):
    try:
        return response.json() if response.content else None
    except ValueError:
        log.debug("Non-JSON answer to %s %s: %r", response.request.method, response.url, response.content[:300])
        return None


_CODE = re.compile(r"^[a-z_]+\.[a-z_]+$", re.I)   # create.start, create.ok, push.err, ...


def _status(entry):
    """Return the status code of one job status entry (create.ok, push.err, ...) under whatever key Devo puts it,
    else "done.ok" when its msg says the lookup was loaded ("Lookup successfully created"), else ""."""
    if isinstance(entry, str):
        return entry if _CODE.match(entry) else ""
    if not isinstance(entry, dict):
        return ""
    for value in entry.values():
        if isinstance(value, str) and _CODE.match(value):
            return value
    message = entry.get("msg")
    return "done.ok" if isinstance(message, str) and DONE in message.lower() else ""


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


__all__ = ["RestUpload", "LOOKUPS_API", "LookupMissing", "deploy_config", "csv_field", "csv_line", "csv_lines",
           "csv_records", "REST_TYPES"]
