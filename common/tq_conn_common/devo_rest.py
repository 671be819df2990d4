"""Devo Lookups REST API transport: deploy-csv uploads streamed from a spooled temporary file, then job polling."""

import itertools
import json
import logging
import tempfile
import time
import uuid
from urllib.parse import quote

from tq_conn_common import devo
from tq_conn_common.errors import AuthError, DeliveryError
from tq_conn_common.http import HttpAuthError, HttpError

log = logging.getLogger(__name__)

# Table-path type names to the Lookups API names (STRING and INT8 are Devo's own examples; the rest inferred).
REST_TYPES = {"str": "STRING", "int": "INT8", "int8": "INT8", "int4": "INT4", "float": "FLOAT8", "bool": "BOOLEAN",
              "ip4": "IP4"}
SPOOL_MEMORY = 4 * 1024 * 1024   # rows stay in memory up to this size, then the spool moves to disk
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


def upload(run, spec, name, values, mode, allow_empty=False):
    """Upload the rows (tuples of texts in column order) to lookup name in this mode; return how many were sent."""
    config = run.config
    base = devo.rest_base_url(config)
    domain = devo._value(config, "devo_domain")
    log.info("Devo transport: Lookups REST API at %s, domain %s; lookup %s (%s), mode %s.",
             base, domain, name, devo.query_name(name), mode)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, mode="w+b", prefix="tq-conn-devo-") as spool:
        spool.write(csv_line([c.name for c in spec.columns]).encode("utf-8"))
        count = 0
        values = iter(values)
        while True:
            rows = list(itertools.islice(values, WRITE_ROWS))
            if not rows:
                break
            spool.write(csv_lines(rows).encode("utf-8"))
            count += len(rows)
        log.info("Spooled %d rows for lookup %s (%d bytes).", count, name, spool.tell())
        if count == 0 and (mode != "replace" or not allow_empty):
            log.warning("No rows to %s in lookup %s; it was left unchanged.", mode, name)
            return 0
        client = _client(run, base)
        path = f"lookup/{quote(domain, safe='')}/{quote(name, safe='')}"
        exists = _exists(client, path, name)
        if not exists and mode == "delete":
            log.warning("Lookup %s does not exist in domain %s; no rows to delete.", name, domain)
            return 0
        body = _Multipart(json.dumps(deploy_config(spec, mode)), spool, name)
        method = "PUT" if exists else "POST"
        started = time.monotonic()
        answer = _call(client, method, f"{path}/deploy-csv", name, "upload", data=body,
                       headers={"Content-Type": body.content_type, **_stamp()})
        log.info("Sent %d rows (%d bytes) to lookup %s in %.1f s; waiting for Devo to load them.",
                 count, len(body), name, time.monotonic() - started)
    job = (answer or {}).get("id") if isinstance(answer, dict) else None
    if job:
        _wait(client, path, name, str(job), int(config.get("devo_job_timeout") or 900))
    else:
        log.warning("Devo did not return a job id for lookup %s; not waiting for the load to finish.", name)
    return count


def _client(run, base):
    verify = run.config.get("devo_verify_ssl", True)
    bundle = devo._value(run.config, "devo_ca_bundle")
    token = devo._value(run.config, "devo_token")
    return run.http(base, service="the Devo Lookups API", credential=devo.TOKEN, verify=bundle or verify,
                    timeout=(15, 600), headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})


def _stamp():
    return {"x-logtrust-timestamp": str(int(time.time() * 1000))}


def _exists(client, path, name):
    """Return whether the lookup exists (GET its metadata: 404 means no)."""
    response = _call(client, "GET", path, name, "check", raw=True, expect=(200, 404))
    return response.status_code == 200


def _call(client, method, path, name, what, raw=False, expect=(200, 201, 202), **kwargs):
    """Return the decoded answer of one Lookups API call; translate failures into AuthError or DeliveryError."""
    try:
        response = client.request(method, path, expect=expect, **kwargs)
    except HttpAuthError as exc:
        if exc.status == 403:
            raise AuthError(f"Devo refused access to lookup '{name}' (HTTP 403{_said(exc)}).",
                            f"{devo.TOKEN} is valid but may not manage lookups in this domain; check "
                            f"{devo.DOMAIN} or give the token lookup permissions in Devo.") from None
        raise AuthError(f"Devo refused the API token for lookup '{name}' (HTTP {exc.status}{_said(exc)}).",
                        f"{devo.TOKEN} was rejected; create a new token in Devo and run with it again.") from None
    except HttpError as exc:
        if exc.status:
            raise DeliveryError(f"Devo refused the {what} of lookup '{name}' (HTTP {exc.status}{_said(exc)}).",
                                exc.fix, retryable=exc.retryable) from None
        raise DeliveryError(f"The {what} of lookup '{name}' failed: {exc.message}", exc.fix,
                            retryable=exc.retryable) from None
    if raw:
        return response
    try:
        return response.json() if response.content else None
    except ValueError:
        log.debug("Non-JSON answer to %s %s: %r", method, path, response.content[:300])
        return None


def _said(exc):
    """Return ': <Devo's message>' from an error body, if it has one."""
    try:
        body = json.loads(exc.excerpt) if exc.excerpt else None
    except ValueError:
        return ""
    message = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error or body.get("msg") or body.get("message")
    return f": {str(message)[:200]}" if message else ""


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
        answer = _call(client, "GET", f"{path}/job/{quote(job, safe='')}", name, "job status check",
                       headers=_stamp())
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
                                "check the lookup in Devo; raise 'Devo Job Timeout' (devo_job_timeout) if loads "
                                "there take longer.", retryable=True)
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 5.0)


__all__ = ["upload", "deploy_config", "csv_field", "csv_line", "csv_lines", "REST_TYPES"]
