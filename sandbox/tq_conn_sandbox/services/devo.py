"""Devo stand-in: the Lookups REST API, a TLS collector for devo-sdk's Sender (lookups and events), and inspection."""

import datetime
import logging
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from operator import itemgetter
from urllib.parse import unquote

from tq_conn_sandbox import pki
from tq_conn_sandbox.devo_wire import (BadValue, Stream, convert, deploy_parts, parse_columns, parse_csv, parse_fields,
                                       parse_headers, parse_line)
from tq_conn_sandbox.server import Response, Service, error, route

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "sandbox-devo-token"
DEFAULT_DOMAIN = "sandbox"
DEFAULT_HTTP_TOKEN = "sandboxHttpEndpointToken0123456789"[:32]   # the HTTP endpoint's tokens: 32 letters and digits
HTTP_LIMIT = 32 * 1024 * 1024   # bytes of one HTTP endpoint request
STAGING_TIMEOUT = 3600          # a START without END is dropped after this many seconds
MAX_EVENTS_PER_TABLE = 200_000


class Lookup:
    """One lookup: columns [(name, TYPE)], key column, rows by key (tuples of typed values in column order)."""

    def __init__(self, domain, name, columns, key):
        self.domain, self.name = domain, name
        self.columns, self.key = list(columns), key
        self.rows = {}
        self.status = "Creating"
        self.jobs = []
        self.created = time.time()
        self.updated = self.created

    @property
    def key_index(self):
        return [c for c, _ in self.columns].index(self.key)

    def meta(self):
        return {"name": self.name, "creator": self.domain, "status": self.status, "size": len(self.rows),
                "columns": [{"name": c, "type": t} for c, t in self.columns],
                "key": {"type": "column", "column": self.key}, "visibility": "creator-only",
                "createdAt": int(self.created * 1000), "updatedAt": int(self.updated * 1000)}

    def view(self, offset=0, limit=None):
        names = [c for c, _ in self.columns]
        items = list(self.rows.values())
        end = len(items) if limit is None else offset + limit
        return {"domain": self.domain, "name": self.name, "query_name": f"my.lookuplist.{self.name}",
                "key": self.key, "columns": [{"name": c, "type": t} for c, t in self.columns],
                "status": self.status, "total": len(items),
                "rows": [dict(zip(names, row)) for row in items[offset:end]]}


class Devo(Service):
    """The Lookups REST API under /lookup-api, a TLS collector (start_extra), inspection under /_sandbox/devo."""

    name = "devo"

    def __init__(self, **options):
        self.authority = pki.Authority("tq-conn sandbox Devo CA")
        self.server_cert = self.authority.issue("collector.sandbox.devo", server=True,
                                                hosts=("localhost", "127.0.0.1", "::1"))
        self._collector_socket = None
        self._collector_thread = None
        self._connections = set()
        self._running = threading.Event()
        self.collector_address = None
        super().__init__(**options)

    def reset(self):
        self.lookups = {}       # (domain, name) -> Lookup
        self.jobs = {}          # job id -> job dict, in creation order
        self.events = {}        # tag -> list of events
        self.staging = {}       # upload id -> staged table-path upload
        self.collector_log = []  # problems seen on the collector (bad lines, unknown uploads)
        self.settings = {"tokens": list(self.options.get("tokens", [DEFAULT_TOKEN])),
                         "http_tokens": list(self.options.get("http_tokens", [DEFAULT_HTTP_TOKEN])),
                         "job_delay": float(self.options.get("job_delay", 0.0)),
                         "job_error": None, "collector_refuse": False, "collector_idle_close": 0,
                         "collector_reset_after": 0, "collector_reset_times": 0}
        if self._connections:
            for conn in list(self._connections):
                _close(conn)

    # ---- Lookups REST API -------------------------------------------------------------------------------------

    def _auth(self, request):
        token = request.bearer()
        if not token:
            return error(401, "Authentication required: send Authorization: Bearer <token>")
        if token not in self.settings["tokens"]:
            return error(401, "Invalid token")
        return None

    @route("GET", r"^/lookup-api/lookup/(?P<domain>[^/]+)$")
    def list_lookups(self, request, domain):
        refused = self._auth(request)
        if refused:
            return refused
        domain = unquote(domain)
        try:
            size = int(request.query.get("max_length", 100))
            start = int(request.query.get("pageToken", 0))
        except ValueError:
            return error(400, "max_length and pageToken must be integers")
        if not 1 <= size <= 1000:
            return error(400, "max_length must be between 1 and 1000")
        with self.lock:
            self._settle()
            found = sorted((t for (d, _), t in self.lookups.items() if d == domain), key=lambda t: t.created)
            page = found[start:start + size]
            body = {"lookups": [t.meta() for t in page]}
            if start + size < len(found):
                body["nextPageToken"] = start + size
        return Response(body)

    @route("GET", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)$")
    def get_lookup(self, request, domain, name):
        refused = self._auth(request)
        if refused:
            return refused
        with self.lock:
            self._settle()
            table = self.lookups.get((unquote(domain), unquote(name)))
            if table is None:
                return error(404, f"Lookup {unquote(name)} not found in domain {unquote(domain)}")
            return Response(table.meta())

    @route("DELETE", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)$")
    def delete_lookup(self, request, domain, name):
        refused = self._auth(request)
        if refused:
            return refused
        domain, name = unquote(domain), unquote(name)
        with self.lock:
            self._settle()
            table = self.lookups.get((domain, name))
            if table is None:
                return error(404, f"Lookup {name} not found in domain {domain}")
            table.status = "Deleting"

            def apply():
                self.lookups.pop((domain, name), None)
            job = self._job("delete", domain, name, apply)
        return Response(self._envelope("LookupDeletionResponse", 200, job, "Lookup sent to deletion"), status=200)

    @route("GET", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)/job$")
    def list_jobs(self, request, domain, name):
        refused = self._auth(request)
        if refused:
            return refused
        with self.lock:
            self._settle()
            ids = [j["id"] for j in self.jobs.values() if (j["domain"], j["name"]) == (unquote(domain), unquote(name))]
        if not ids:
            return error(404, f"No jobs for lookup {unquote(name)}")
        return Response({"jobs": ids[-10:]})

    @route("GET", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)/job/(?P<job>[^/]+)$")
    def job_status(self, request, domain, name, job):
        refused = self._auth(request)
        if refused:
            return refused
        with self.lock:
            self._settle()
            found = self.jobs.get(unquote(job))
            if found is None or (found["domain"], found["name"]) != (unquote(domain), unquote(name)):
                return error(404, f"Job {unquote(job)} not found for lookup {unquote(name)}")
            return Response({"jobs": list(found["statuses"][-50:])})

    @route("POST", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)/deploy-csv$")
    def create_csv(self, request, domain, name):
        return self._deploy_csv(request, unquote(domain), unquote(name), create=True)

    @route("PUT", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)/deploy-csv$")
    def update_csv(self, request, domain, name):
        return self._deploy_csv(request, unquote(domain), unquote(name), create=False)

    @route("POST", r"^/lookup-api/lookup/(?P<domain>[^/]+)/(?P<name>[^/]+)/deploy-(?P<kind>config|static-query|"
                   r"periodic-query|sliding-window-query)$")
    def deploy_other(self, request, domain, name, kind):
        refused = self._auth(request)
        return refused or error(501, f"deploy-{kind} is not offered by the sandbox; use deploy-csv")

    def _deploy_csv(self, request, domain, name, create):
        refused = self._auth(request)
        if refused:
            return refused
        if not re.match(r"^[A-Za-z0-9_]+$", name):
            return error(400, f"Invalid lookup name {name!r}: use letters, digits and underscore")
        config, data = deploy_parts(request)
        if config is None:
            return error(400, "The request needs a 'deploy-config' JSON part and a 'csv' part "
                              "(multipart/form-data, or a JSON body with both)")
        columns, key, problem, unknown = parse_columns(config)
        if problem:
            return error(400, problem)
        append = bool(config.get("append", False))
        contribution = config.get("contribution") or {"type": "add"}
        with self.lock:
            self._settle()
            table = self.lookups.get((domain, name))
            if create and table is not None:
                return error(409, f"Lookup {name} already exists in domain {domain}; update it with PUT")
            if not create and table is None:
                return error(404, f"Lookup {name} not found in domain {domain}; create it with POST")
            if table is None:
                table = Lookup(domain, name, columns, key)
                self.lookups[(domain, name)] = table
            else:
                table.status = "Updating"
        # Parse outside the lock: a million rows take a few seconds.
        rows, problem = ([], unknown) if unknown else parse_csv(
            data, columns, key, bool(config.get("hasHeader", True)), bool(config.get("skipEmptyLines", False)),
            contribution)
        kind = "create" if create else "update"
        with self.lock:
            if problem is None and self.settings["job_error"]:
                problem, self.settings["job_error"] = self.settings["job_error"], None
            if problem is None and append and not create and [c for c, _ in columns] != [c for c, _ in table.columns]:
                problem = "The columns of an append upload must be the lookup's columns"

            def apply():
                current = self.lookups.get((domain, name))
                if current is None:
                    return
                if not append or create:
                    current.columns, current.key, current.rows = list(columns), key, {}
                if contribution.get("type", "add") == "add":   # every row an add: stored in one call
                    current.rows.update(zip(map(itemgetter(0), rows), map(itemgetter(2), rows)))
                else:
                    for k, action, row in rows:
                        if action == "del":
                            current.rows.pop(k, None)
                        else:
                            current.rows[k] = row
                current.updated = time.time()
            job = self._job(kind, domain, name, None if problem else apply, problem)
        kind_name = "LookupCreationResponse" if create else "LookupUpdateResponse"
        verb = "creation" if create else "update"
        body = self._envelope(kind_name, 201 if create else 200, job, f"Lookup sent to {verb}")
        body["lookupDeployConfig"] = config
        return Response(body, status=201 if create else 200)

    def _envelope(self, kind, code, job, text):
        return {"type": kind, "cid": uuid.uuid4().hex[:12], "code": code, "context": None, "id": job["id"],
                "msg": f"{text}. You can check the lookup status using the provided id: "
                       "/lookup/{domain}/{name}/job/{id}"}

    def _job(self, kind, domain, name, apply, problem=None):
        now = time.time()
        job = {"id": str(uuid.uuid1()), "kind": kind, "domain": domain, "name": name, "apply": apply,
               "problem": problem, "due": now + self.settings["job_delay"], "done": False,
               "statuses": [{"status": f"{kind}.start", "msg": f"Lookup {kind} started",
                             "timestamp": int(now * 1000)}]}
        self.jobs[job["id"]] = job
        table = self.lookups.get((domain, name))
        if table is not None:
            table.jobs = (table.jobs + [job["id"]])[-10:]
        self._settle()
        return job

    def _settle(self):
        """Finish, in order, every job whose time has come (call with the lock held)."""
        now = time.time()
        for job in self.jobs.values():
            if job["done"]:
                continue
            if job["due"] > now:
                break
            job["done"] = True
            table = self.lookups.get((job["domain"], job["name"]))
            if job["problem"]:
                job["statuses"].append({"status": f"{job['kind']}.err", "msg": job["problem"],
                                        "timestamp": int(now * 1000)})
                if table is not None and job["kind"] == "create" and not table.rows:
                    self.lookups.pop((job["domain"], job["name"]), None)
                elif table is not None:
                    table.status = "Available"
                continue
            job["apply"]()
            done = {"create": "Lookup successfully created", "update": "Lookup successfully updated",
                    "delete": "Lookup successfully deleted"}[job["kind"]]
            job["statuses"].append({"status": f"{job['kind']}.ok", "msg": done, "timestamp": int(now * 1000)})
            if table is not None and job["kind"] != "delete":
                table.status = "Available"
            job["apply"] = None
        if len(self.jobs) > 1000:
            for key in list(self.jobs)[:500]:
                if self.jobs[key]["done"]:
                    del self.jobs[key]

    # ---- inspection and control -------------------------------------------------------------------------------

    # ---- HTTP endpoint (events with a token): <endpoint>/<mode>/<domain>/token!<token>/<host>/<tag>[?message] ----

    @route("POST", r"^/(?P<mode>stream|event)/(?P<domain>[^/]+)/token!(?P<token>[^/]+)/(?P<host>[^/]+)/(?P<tag>[^/]+)$")
    def http_events(self, request, mode, domain, token, host, tag):
        return self._http_events(request, mode, unquote(domain), token, unquote(host), unquote(tag))

    @route("GET", r"^/(?P<mode>event)/(?P<domain>[^/]+)/token!(?P<token>[^/]+)/(?P<host>[^/]+)/(?P<tag>[^/]+)$")
    def http_event(self, request, mode, domain, token, host, tag):
        return self._http_events(request, mode, unquote(domain), token, unquote(host), unquote(tag))

    def _http_events(self, request, mode, domain, token, host, tag):
        if token not in self.settings["http_tokens"]:
            return error(401, "Invalid token")
        if int(request.headers.get("Content-Length") or 0) > HTTP_LIMIT:
            return error(413, "Request too large: the limit is 32 MB")
        body = request.body.decode("utf-8", "replace") if request.method == "POST" else unquote(request.raw_query)
        lines = [line for line in body.split("\n") if line] if mode == "stream" else [body.rstrip("\n")]
        now = time.time()
        with self.lock:
            events = self.events.setdefault(tag, [])
            events.extend({"domain": domain, "tag": tag, "pri": 14, "date": None, "host": host, "message": line,
                           "received": now, "via": "http"} for line in lines)
            del events[:max(0, len(events) - MAX_EVENTS_PER_TABLE)]
        return Response(b"", status=200 if mode == "stream" else 204)

    def lookup(self, name, domain=DEFAULT_DOMAIN, offset=0, limit=None):
        """Return a lookup's key, columns and current rows (dicts), or None if it does not exist."""
        with self.lock:
            self._settle()
            table = self.lookups.get((domain, name))
            return table.view(offset, limit) if table else None

    def table(self, tag):
        """Return the events received for a table tag."""
        with self.lock:
            return list(self.events.get(tag, ()))

    @route("GET", r"^/_sandbox/devo/lookups$")
    def _inspect_lookups(self, request):
        domain = request.query.get("domain")
        with self.lock:
            self._settle()
            items = [{"domain": d, "name": n, "key": t.key, "status": t.status, "rows": len(t.rows),
                      "columns": [{"name": c, "type": k} for c, k in t.columns]}
                     for (d, n), t in self.lookups.items() if domain in (None, d)]
        return Response({"lookups": items})

    @route("GET", r"^/_sandbox/devo/lookups/(?P<name>[^/]+)$")
    def _inspect_lookup(self, request, name):
        try:
            offset = int(request.query.get("offset", 0))
            limit = int(request.query["limit"]) if "limit" in request.query else None
        except ValueError:
            return error(400, "offset and limit must be integers")
        view = self.lookup(unquote(name), request.query.get("domain", DEFAULT_DOMAIN), offset, limit)
        return Response(view) if view else error(404, f"no lookup {unquote(name)}")

    @route("GET", r"^/_sandbox/devo/tables$")
    def _inspect_tables(self, request):
        with self.lock:
            return Response({"tables": {tag: len(events) for tag, events in self.events.items()}})

    @route("GET", r"^/_sandbox/devo/tables/(?P<tag>[^/]+)$")
    def _inspect_table(self, request, tag):
        return Response({"tag": unquote(tag), "events": self.table(unquote(tag))})

    @route("GET", r"^/_sandbox/devo/collector$")
    def _collector_info(self, request):
        host, port = self.collector_address or (None, None)
        return Response({"host": host, "port": port, "chain": self.authority.cert_pem,
                         "problems": list(self.collector_log[-100:])})

    @route("GET", r"^/_sandbox/devo/client-bundle$")
    def _client_bundle(self, request):
        issued = self.client_certificate(request.query.get("domain", DEFAULT_DOMAIN),
                                         expired=request.query.get("expired") in ("1", "true"))
        return Response({"cert": issued.cert_pem, "key": issued.key_pem, "chain": self.authority.cert_pem,
                         "host": (self.collector_address or (None, None))[0],
                         "port": (self.collector_address or (None, None))[1]})

    @route("POST", r"^/_sandbox/devo/settings$")
    def _settings(self, request):
        spec = request.json()
        if not isinstance(spec, dict) or set(spec) - set(self.settings):
            return error(400, "settings are a JSON object with keys " + ", ".join(sorted(self.settings)))
        with self.lock:
            self.settings.update(spec)
            return Response(dict(self.settings))

    def client_certificate(self, domain=DEFAULT_DOMAIN, expired=False):
        """Return an Issued client certificate for a domain (CN), signed by this stand-in's CA."""
        return self.authority.issue(domain, **_validity(expired))

    def write_client_bundle(self, directory, domain=DEFAULT_DOMAIN, expired=False):
        """Write <domain>.crt, <domain>.key and chain.crt for the collector into directory; return their paths."""
        return self.authority.write_client(directory, domain, **_validity(expired))

    def extra_urls(self):
        host, port = self.collector_address or ("-", "-")
        return {"Lookups API": f"{self.url}/lookup-api", "TLS collector": f"{host}:{port}"}

    # ---- TLS collector ------------------------------------------------------------------------------------------

    def start_extra(self, host):
        """Start the TLS collector on host (port option collector_port, default a free one)."""
        context = self.authority.server_context(self.server_cert, require_client_cert=True)
        listener = socket.create_server((host, int(self.options.get("collector_port", 0))), reuse_port=False)
        listener.settimeout(0.5)
        self._collector_socket = listener
        self.collector_address = (host, listener.getsockname()[1])
        self._running.set()
        self._collector_thread = threading.Thread(target=self._accept, args=(listener, context),
                                                  name="sandbox-devo-collector", daemon=True)
        self._collector_thread.start()

    def stop_extra(self):
        self._running.clear()
        if self._collector_thread:
            self._collector_thread.join(timeout=5)
        if self._collector_socket:
            self._collector_socket.close()
        for conn in list(self._connections):
            _close(conn)

    def _accept(self, listener, context):
        while self._running.is_set():
            try:
                raw, peer = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw, context), name="sandbox-devo-conn", daemon=True).start()

    def _serve(self, raw, context):
        if self.settings["collector_refuse"]:
            _close(raw)
            return
        raw.settimeout(30)
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self._problem(f"TLS handshake refused: {exc}")
            _close(raw)
            return
        self._connections.add(conn)
        try:
            subject = dict(item for rdn in conn.getpeercert().get("subject", ()) for item in rdn)
            domain = subject.get("commonName", DEFAULT_DOMAIN)
            idle = float(self.settings["collector_idle_close"] or 0)
            conn.settimeout(idle if idle > 0 else 120)
            stream = Stream()
            reset_after = int(self.settings["collector_reset_after"] or 0)
            seen = 0
            while True:
                ended = False   # the client's close_notify: answered with ours, as a TLS server does
                try:
                    data = conn.recv(256 * 1024)
                    ended = not data
                except socket.timeout:
                    break
                except (ssl.SSLError, OSError):
                    data = b""
                if not data:
                    for message in stream.finish():
                        self._message(domain, message)
                    if ended:
                        try:
                            conn.unwrap()
                        except (ssl.SSLError, OSError):
                            pass
                    break
                for message in stream.feed(data):
                    self._message(domain, message)
                    seen += 1
                    if reset_after and seen >= reset_after:
                        self._problem(f"connection reset after {seen} messages (fault)")
                        with self.lock:   # collector_reset_times: only so many connections (0: every one)
                            times = int(self.settings["collector_reset_times"] or 0)
                            if times:
                                self.settings["collector_reset_times"] = times - 1
                                if times == 1:
                                    self.settings["collector_reset_after"] = 0
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST
                        return
        finally:
            self._connections.discard(conn)
            _close(conn)

    def _problem(self, text):
        log.info("devo collector: %s", text)
        with self.lock:
            self.collector_log.append(text)
            del self.collector_log[:-1000]

    def _message(self, domain, message):
        """Handle one framed message: lookup control/data lines rebuild lookups, anything else is an event."""
        text = message.decode("utf-8", "replace").rstrip("\x00")
        parts = parse_line(text)
        if parts is None:
            self._problem(f"unparseable line: {text[:120]!r}")
            return
        pri, date, host, tag, body = parts
        if tag.startswith("my.lookup.control."):
            self._control(domain, tag, body)
        elif tag.startswith("my.lookup.data."):
            self._data(domain, tag, body)
        else:
            event = {"domain": domain, "tag": tag, "pri": int(pri), "date": date, "host": host, "message": body,
                     "received": time.time()}
            with self.lock:
                events = self.events.setdefault(tag, [])
                events.append(event)
                if len(events) > MAX_EVENTS_PER_TABLE:
                    del events[:len(events) - MAX_EVENTS_PER_TABLE]

    def _control(self, domain, tag, body):
        parts = tag.split(".")
        if len(parts) != 5 or parts[4] not in ("FULL", "INC"):
            self._problem(f"bad control tag {tag}")
            return
        name, action = parts[3], parts[4]
        upload, _, rest = body.partition("|")
        event, _, headers = rest.partition("|")
        if not upload.endswith("_" + name):
            self._problem(f"control line of {name} with upload id {upload!r}")
            return
        now = time.time()
        with self.lock:
            for uid in [u for u, s in self.staging.items() if now - s["started"] > STAGING_TIMEOUT]:
                self._problem(f"upload {uid} dropped: START without END")
                del self.staging[uid]
            if event == "START":
                try:
                    columns, key = parse_headers(headers)
                except ValueError as exc:
                    self._problem(f"upload {upload}: bad headers ({exc})")
                    return
                self.staging[upload] = {"domain": domain, "name": name, "action": action, "columns": columns,
                                        "key": key, "ops": {}, "started": now, "errors": 0}
            elif event == "END":
                staged = self.staging.pop(upload, None)
                if staged is None:
                    self._problem(f"END of unknown upload {upload}")
                    return
                table = self.lookups.get((domain, name))
                if table is None or action == "FULL":
                    fresh = Lookup(domain, name, staged["columns"], staged["key"])
                    if table is not None:
                        fresh.created, fresh.jobs = table.created, table.jobs
                    table = fresh
                    self.lookups[(domain, name)] = table
                elif [c for c, _ in staged["columns"]] != [c for c, _ in table.columns]:
                    self._problem(f"upload {upload}: INC with other columns than lookup {name}; ignored")
                    return
                for k, row in staged["ops"].items():
                    if row is None:
                        table.rows.pop(k, None)
                    else:
                        table.rows[k] = row
                table.status = "Available"
                table.updated = now
            else:
                self._problem(f"upload {upload}: unknown control event {event!r}")

    def _data(self, domain, tag, body):
        parts = tag.split(".")
        delete = parts[-1] == "DELETE"
        name = parts[3] if len(parts) >= 4 else ""
        upload, _, line = body.partition("|")
        with self.lock:
            staged = self.staging.get(upload)
        if staged is None:
            self._problem(f"data line of {name} outside an upload ({upload})")
            return
        fields = parse_fields(line)
        columns = staged["columns"]
        if len(fields) != len(columns):
            self._problem(f"upload {upload}: a row has {len(fields)} fields, the lookup {len(columns)} columns")
            staged["errors"] += 1
            return
        # The wire order is the key first, then the other columns: the order of the START headers.
        try:
            row = tuple(convert(kind, value) for (_, kind), value in zip(columns, fields))
        except BadValue as exc:
            self._problem(f"upload {upload}: {exc}")
            staged["errors"] += 1
            return
        key = fields[0]
        with self.lock:
            ops = staged["ops"]
            ops.pop(key, None)   # keep arrival order of the last operation per key
            ops[key] = None if delete else row


def _validity(expired):
    """Return issue() options: an expired certificate (valid 40 to 10 days ago), or the default validity."""
    if not expired:
        return {}
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    return {"not_before": start, "not_after": start + datetime.timedelta(days=30)}


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass


# Stream and parse_fields are also offered here, where they lived before devo_wire (tests of common import them).
__all__ = ["Devo", "Lookup", "DEFAULT_TOKEN", "DEFAULT_DOMAIN", "DEFAULT_HTTP_TOKEN", "Stream", "parse_fields"]
