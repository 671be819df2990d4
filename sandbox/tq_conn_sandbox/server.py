"""The frame every stand-in runs in: routing, streaming bodies, shared fault injection, threads on loopback."""

import gzip
import json
import logging
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


def route(method, pattern):
    """Mark a Service method as the handler of method + path regex (named groups become arguments)."""
    def mark(func):
        func._route = (method.upper(), re.compile(pattern))
        return func
    return mark


class Request:
    """One received request: method, path, query (first value per key), headers, body."""

    def __init__(self, handler, method):
        self.method = method
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.raw_query = parts.query
        self.query_lists = parse_qs(parts.query, keep_blank_values=True)
        self.query = {k: v[0] for k, v in self.query_lists.items()}
        self.headers = handler.headers
        self._handler = handler
        self._body = None

    @property
    def body(self):
        if self._body is None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():  # a streamed upload
                self._body = self._read_chunked()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                self._body = self._handler.rfile.read(length) if length else b""
            if self.headers.get("Content-Encoding") == "gzip" and self._body:
                self._body = gzip.decompress(self._body)
        return self._body

    def _read_chunked(self):
        rfile, parts = self._handler.rfile, []
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline()

    def json(self):
        """Return the JSON body, or None if empty or invalid."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def form(self):
        """Return a form-urlencoded body as a dict of first values."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def bearer(self):
        """Return the bearer token of the Authorization header, or None."""
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None


class Response:
    """An answer: status, body (bytes, str, JSON-able value, or an iterator of bytes streamed chunked)."""

    def __init__(self, body=b"", status=200, headers=None, content_type=None):
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        self.headers.setdefault("Content-Type", content_type or "application/json")


def error(status, message, **extra):
    """Return a JSON error response."""
    return Response({"error": {"status": status, "message": message, **extra}}, status=status)


class Faults:
    """Fault rules shared by every stand-in: match by path regex and method, applied to the next N requests."""

    def __init__(self):
        self._rules = []
        self._lock = threading.Lock()

    ACTIONS = ("status", "retry_after", "body", "delay", "cut", "malformed", "html", "hold", "after")

    def add(self, path=".*", method=None, count=1, **action):
        """Add a rule for the next count matching requests (0: until cleared); action keys: status, retry_after,
        body, delay, cut, malformed, html, hold (seconds between handling a request and answering it: a client can
        be killed in between), after (matching requests let through first). Raise ValueError for an unknown key or
        a bad value."""
        unknown = sorted(set(action) - set(self.ACTIONS))
        if unknown:
            raise ValueError(f"unknown fault key(s) {', '.join(unknown)}; known: path, method, count, "
                             + ", ".join(self.ACTIONS))
        try:
            count = int(count)
            pattern = re.compile(path)
            if action.get("status") is not None:
                action["status"] = int(action["status"])
            for key in ("delay", "hold"):
                if action.get(key) is not None:
                    action[key] = float(action[key])
            action["after"] = int(action.get("after") or 0)
        except (TypeError, ValueError, re.error) as exc:
            raise ValueError(f"bad fault rule: {exc}") from None
        if count < 0:
            raise ValueError("count must be 0 (until cleared) or more")
        rule = {"path": pattern, "method": (method or "").upper() or None,
                "left": None if count == 0 else count, **action}
        with self._lock:
            self._rules.append(rule)

    def clear(self):
        with self._lock:
            self._rules.clear()

    def take(self, method, path):
        """Return the first rule matching this request (counting it down), or None."""
        with self._lock:
            for rule in self._rules:
                if (rule["method"] and rule["method"] != method) or not rule["path"].search(path):
                    continue
                if rule["after"] > 0:
                    rule["after"] -= 1
                    return None
                if rule["left"] is not None:
                    rule["left"] -= 1
                    if rule["left"] <= 0:
                        self._rules.remove(rule)
                return rule
        return None


class Service:
    """Base of every stand-in: subclasses define routes with @route and may override reset()."""

    name = "service"

    def __init__(self, **options):
        self.options = options
        self.faults = Faults()
        self.requests = []
        self.lock = threading.RLock()
        self.url = None
        self._routes = []
        for attr in dir(type(self)):
            func = getattr(type(self), attr)
            spec = getattr(func, "_route", None)
            if spec:
                self._routes.append((spec[0], spec[1], getattr(self, attr)))
        self.reset()

    def reset(self):
        """Forget everything received; subclasses rebuild their data here."""

    def dispatch(self, request):
        """Return the Response of the route matching request (404/405 otherwise)."""
        allowed = False
        for method, pattern, func in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method and not (method == "GET" and request.method == "HEAD"):
                allowed = True
                continue
            return func(request, **match.groupdict())
        if allowed:
            return error(405, f"method {request.method} not allowed on {request.path}")
        return error(404, f"no such path: {request.path}")

    # The control endpoints every stand-in has.
    @route("POST", r"^/_sandbox/faults$")
    def _add_fault(self, request):
        spec = request.json() or {}
        if not isinstance(spec, dict):
            return error(400, "a fault is a JSON object")
        try:
            self.faults.add(**spec)
        except ValueError as exc:
            return error(400, str(exc))
        return Response({"ok": True}, status=201)

    @route("DELETE", r"^/_sandbox/faults$")
    def _clear_faults(self, request):
        self.faults.clear()
        return Response({"ok": True})

    @route("GET", r"^/_sandbox/requests$")
    def _list_requests(self, request):
        with self.lock:
            return Response({"requests": list(self.requests)})

    @route("POST", r"^/_sandbox/reset$")
    def _reset(self, request):
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.reset()
        return Response({"ok": True})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tq-conn-sandbox"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)

    def _handle(self):
        service = self.server.service
        request = Request(self, self.command)
        if not request.path.startswith("/_sandbox/"):
            with service.lock:
                service.requests.append({"method": request.method, "path": request.path, "query": request.raw_query,
                                         "time": time.time()})
                if len(service.requests) > 10000:
                    del service.requests[:5000]
        fault = None if request.path.startswith("/_sandbox/") else service.faults.take(request.method, request.path)
        if fault and fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault and fault.get("status") and not fault.get("html"):
            _ = request.body
            headers = {}
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(fault["retry_after"])
            body = fault.get("body", {"error": {"status": fault["status"], "message": "injected fault"}})
            return self._send(Response(body, status=int(fault["status"]), headers=headers))
        if fault and fault.get("html"):
            _ = request.body
            page = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
            return self._send(Response(page, status=int(fault.get("status") or 200), content_type="text/html"))
        if fault and fault.get("malformed"):
            _ = request.body
            return self._send(Response(b'{"data": [{"id": 1, "value": "trunc', status=200))
        try:
            response = service.dispatch(request)
        except Exception as exc:  # a stand-in bug answers 500 instead of killing the thread silently
            log.exception("stand-in %s failed on %s %s", service.name, request.method, request.path)
            response = error(500, f"stand-in failure: {type(exc).__name__}: {exc}")
        _ = request.body  # drain what the handler did not read, so keep-alive stays in step
        if fault and fault.get("hold"):
            time.sleep(fault["hold"])
        self._send(response, cut=bool(fault and fault.get("cut")))

    def _send(self, response, cut=False):
        body = response.body
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        streaming = not isinstance(body, (bytes, bytearray))
        if cut:
            data = body if not streaming else b"".join(_take(body, 65536))
            self.send_header("Content-Length", str(max(len(data) * 2, 100)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[: max(1, len(data) // 2)])
                self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if not streaming:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        buffer, size = [], 0
        for piece in body:
            if not piece:
                continue
            buffer.append(piece)
            size += len(piece)
            if size >= 65536:
                self._chunk(b"".join(buffer))
                buffer, size = [], 0
        if buffer:
            self._chunk(b"".join(buffer))
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


def _take(iterator, limit):
    size = 0
    for piece in iterator:
        yield piece
        size += len(piece)
        if size >= limit:
            return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        """A client that went away (reset, broken pipe) is what clients do; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            super().handle_error(request, client_address)


class Running:
    """Stand-ins serving in background threads; stop() ends them."""

    def __init__(self):
        self.services = {}
        self._servers = []

    def url(self, name):
        return self.services[name].url

    def __getitem__(self, name):
        return self.services[name]

    def add(self, service, host="127.0.0.1", port=0, ssl_context=None):
        server = _Server((host, port), _Handler)
        server.service = service
        scheme = "http"
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        service.url = f"{scheme}://{host}:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"sandbox-{service.name}", daemon=True)
        thread.start()
        self.services[service.name] = service
        self._servers.append((server, thread))
        extra = getattr(service, "start_extra", None)
        if extra:
            extra(host)
        return service

    def stop(self):
        for service in self.services.values():
            extra = getattr(service, "stop_extra", None)
            if extra:
                extra()
        stoppers = [threading.Thread(target=server.shutdown) for server, _ in self._servers]  # all at once
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=5)
        for server, thread in self._servers:
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()


def start_services(classes, host="127.0.0.1", ports=None, options=None):
    """Start one instance of each Service class on host; return a Running."""
    running = Running()
    ports, options = ports or {}, options or {}
    try:
        for cls in classes:
            service = cls(**options.get(cls.name, {}))
            running.add(service, host, ports.get(cls.name, 0))
    except BaseException:  # a port in use: stop the ones already serving, then report
        running.stop()
        raise
    return running


__all__ = ["Service", "Request", "Response", "route", "error", "Faults", "Running", "start_services"]
