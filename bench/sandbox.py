"""Run sandbox stand-ins in their own process for the benchmarks, with the big ThreatQ and risk list bodies cached.

The stand-ins generate their data on the fly, which costs more CPU than a connector spends reading it (a realistic
ThreatQ indicator takes ~0.1 ms to generate and serialise). A benchmark measures the connector, so this runner
renders the bodies the connectors will ask for once, before any timing (in parallel worker processes for ThreatQ),
and then serves them as bytes. What it costs to render them is reported as the stand-in's live serving cost.

    python bench/sandbox.py --only threatq recorded_future --collection "Bench 1000000=1000000" --batch 1000 \\
        --sort=-updated_at --with attributes,adversaries,score,status,type

Prints one JSON line (pid, urls, collector, warm-up figures) when it serves, then runs until stdin closes or SIGTERM.
Bodies not rendered beforehand are cached the first time they are asked for; hits and misses are counted and shown
at GET /_sandbox/bench/cache on the stand-in's port. Queries narrowed to a date window (a delta run's few changed
indicators) are served live, never cached nor counted.

POST /_sandbox/bench/threatq/change {"name", "size", "changed_every", "revision", "batch", "sort"} changes a
collection as a delta run finds it a while later, drops its cached pages and renders its narrow listing pages (the
fields of the exporter's listing, no with=), and answers with the figures once the second of the change is over.
"""

import argparse
import email.message
import io
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from urllib.parse import parse_qsl, urlencode

from tq_conn_sandbox.server import Request, Response, Running, route
from tq_conn_sandbox.services import available


def _key(path, query, body=b""):
    """Return the cache key of a request: its path, its query pairs in order of name (with= as a set), its JSON body
    canonical."""
    query = [(k, ",".join(sorted(v.split(","))) if k == "with" else v) for k, v in query]
    try:
        parsed = json.loads(body) if body else None
        canonical = json.dumps(parsed, sort_keys=True) if parsed is not None else ""
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return path, tuple(sorted(query)), canonical


class _Stub:
    """What server.Request reads from an HTTP handler: path, headers, a body stream."""

    def __init__(self, target, body=b"", headers=None):
        self.path = target
        self.rfile = io.BytesIO(body)
        self.headers = email.message.Message()
        for name, value in (headers or {}).items():
            self.headers[name] = value
        if body:
            self.headers["Content-Length"] = str(len(body))


def call(service, method, target, body=b"", headers=None, handler=None):
    """Return (status, body bytes, headers, content type) of one request to a stand-in in-process: dispatched to its
    routes, or given straight to handler."""
    request = Request(_Stub(target, body, headers), method)
    response = handler(request) if handler else service.dispatch(request)
    data = response.body if isinstance(response.body, (bytes, bytearray)) else b"".join(response.body)
    return response.status, bytes(data), dict(response.headers), response.headers.get("Content-Type")


class _Cache:
    """Rendered bodies by request key, with hit and miss counts."""

    def __init__(self):
        self.bodies = {}
        self.hits = self.misses = 0
        self.bytes = 0
        self.render_cpu_seconds = 0.0
        self.render_seconds = 0.0
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            found = self.bodies.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, key, value):
        with self.lock:
            old = self.bodies.get(key)
            self.bytes += len(value[1]) - (len(old[1]) if old else 0)
            self.bodies[key] = value

    def clear(self):
        with self.lock:
            self.bodies.clear()
            self.bytes = 0

    def drop(self, doomed):
        """Forget the bodies whose key doomed(key) is true; return how many."""
        with self.lock:
            keys = [key for key in self.bodies if doomed(key)]
            for key in keys:
                self.bytes -= len(self.bodies.pop(key)[1])
            return len(keys)

    def figures(self):
        with self.lock:
            return {"entries": len(self.bodies), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                    "render_cpu_seconds": round(self.render_cpu_seconds, 2),
                    "render_seconds": round(self.render_seconds, 2)}


def _cached(base_method, cacheable=lambda request: True):
    """Wrap a stand-in route: answer a 200 GET/POST from the cache, or render it through the route and keep it."""
    def handler(self, request, **groups):
        if request.method == "HEAD" or not cacheable(request):
            return base_method(self, request, **groups)
        key = self.cache_key(request)
        found = self.cache.get(key)
        if found is None or not self.authorized(request):
            response = base_method(self, request, **groups)
            if response.status != 200 or found is not None:
                return response
            started, cpu = time.monotonic(), time.process_time()
            data = response.body if isinstance(response.body, (bytes, bytearray)) else b"".join(response.body)
            self.cache.render_seconds += time.monotonic() - started
            self.cache.render_cpu_seconds += time.process_time() - cpu
            found = (200, bytes(data), dict(response.headers), response.headers.get("Content-Type"))
            self.cache.put(key, found)
        status, data, headers, ctype = found
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        return Response(data, status=status, headers=headers, content_type=ctype)
    handler.__name__ = base_method.__name__
    return handler


def _with_cache(cls):
    """Return a subclass of the stand-in cls whose big bodies are cached (ThreatQ pages, risk lists)."""
    members = {"name": cls.name}

    def reset(self):
        cls.reset(self)
        if not hasattr(self, "cache"):
            self.cache = _Cache()

    def cache_key(self, request):
        query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        if cls.name == "recorded_future":
            # What shapes a list's body: its type and name, gzip=, the list's version and Content-Encoding.
            with self.lock:
                versions = tuple(sorted(self.versions.items()))
            encoded = "gzip" in (request.headers.get("Accept-Encoding") or "")
            return (request.path.rstrip("/"), query.get("list") or "default", query.get("gzip", "").lower() == "true",
                    query.get("format", "csv/splunk"), versions, encoded)
        return _key(request.path, query.items(), request.body)

    def authorized(self, request):
        check = getattr(self, "_unauthorized", None) or getattr(self, "_refused", None)
        return check is None or check(request) is None

    def cache_figures(self, request):
        return Response(self.cache.figures())

    def cache_clear(self, request):
        self.cache.clear()
        return Response({"ok": True})

    def change(self, request):
        return Response(change_threatq(self, request.json() or {}))

    members.update(reset=reset, cache_key=cache_key, authorized=authorized,
                   cache_figures=route("GET", r"^/_sandbox/bench/cache$")(cache_figures),
                   cache_clear=route("DELETE", r"^/_sandbox/bench/cache$")(cache_clear))
    if cls.name == "threatq":
        members["query"] = route("POST", r"^/api/indicators/query$")(_cached(cls.query, _unwindowed))
        members["change"] = route("POST", r"^/_sandbox/bench/threatq/change$")(change)
    elif cls.name == "recorded_future":
        members["risklist"] = route("GET", r"^/v2/(?P<kind>ip|domain|hash|url|vulnerability)/risklist/?$")(
            _cached(cls.risklist))
    else:
        return cls
    return type(f"Cached{cls.__name__}", (cls,), members)


def _unwindowed(request):
    """Return whether a ThreatQ query has no date window (a windowed one depends on the time: never cached)."""
    body = request.json()
    parts = [body.get(root) for root in ("filters", "criteria")] if isinstance(body, dict) else []
    return not any(isinstance(clause, dict) and {"created_at", "updated_at", "touched_at"} & set(clause)
                   for part in parts if isinstance(part, dict) for clause in part.get("+and") or ())


# ---- ThreatQ pages rendered beforehand: in worker processes before serving, in-process after a change ------

_WORKER = {}


def _render_pages(offsets, handler=None):
    """Render the pages at offsets (in a worker forked with the stand-in, or through handler); return [(key, body)]
    and CPU seconds."""
    service, template = _WORKER["service"], _WORKER["template"]
    cpu = time.process_time()
    out = []
    for offset in offsets:
        query = [(k, str(offset) if k == "offset" else v) for k, v in template["query"]]
        target = template["path"] + "?" + urlencode(query)
        status, data, headers, ctype = call(service, "POST", target, template["body"], template["headers"], handler)
        if status != 200:
            raise RuntimeError(f"rendering {target} answered {status}: {data[:200]!r}")
        out.append((_key(template["path"], query, template["body"]), (status, data, headers, ctype)))
    return out, time.process_time() - cpu


def _pages_of(service, collection, batch, sort, fields, with_):
    """Set the request template of a collection's pages as the exporter asks for them; return their offsets."""
    from tq_conn_sandbox.services import threatq as tq
    status, data, _, _ = call(service, "POST", "/api/token?" + urlencode(
        {"grant_type": "password", "client_id": tq.CLIENT_ID}),
        json.dumps({"email": tq.USERNAME, "password": tq.PASSWORD}).encode(), {"Content-Type": "application/json"})
    token = json.loads(data)["access_token"]
    query = collection.listing()["json"]["api_query"]
    body = json.dumps({**{k: query[k] for k in ("criteria", "filters") if k in query}, "fields": list(fields)}).encode()
    _WORKER.update(service=service, template={
        "path": "/api/indicators/query", "body": body,
        "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        "query": [("limit", str(batch)), ("offset", "0"), ("sort", sort)] + ([("with", with_)] if with_ else [])})
    return list(range(0, collection.size, batch))


def change_threatq(service, change):
    """Change a collection as a delta run finds it a while later (same seed, another size and revision), drop its
    cached pages and render its listing pages in-process; return the figures."""
    old = service.collection(change["name"])
    collection = service.add_collection(old.name, int(change["size"]), seed=old.seed,
                                        duplicate_every=old.duplicate_every,
                                        changed_every=int(change["changed_every"]), revision=int(change["revision"]))
    query = {k: old.api_query.get(k) for k in ("criteria", "filters")}
    dropped = service.cache.drop(lambda key: key[0] == "/api/indicators/query" and key[2] and {
        k: json.loads(key[2]).get(k) for k in ("criteria", "filters")} == query)
    from tq_conn_common.threatq.client import LISTED   # the exporter's narrow listing (no with=, by id)
    offsets = _pages_of(service, collection, int(change["batch"]), change["sort"], LISTED, None)
    started = time.monotonic()
    pages, cpu = _render_pages(offsets, super(type(service), service).query)   # the route itself, past the cache
    for key, value in pages:
        service.cache.put(key, value)
    seconds = time.monotonic() - started
    service.cache.render_cpu_seconds += cpu
    service.cache.render_seconds += seconds
    # "A while later": the second of the change is over, so a window ending "+lt": "NOW" holds it.
    time.sleep(max(0.0, collection.mutations[-1][0] + 1 - time.time()))
    return {"collection": collection.name, "indicators": collection.size, "changed_at": collection.mutations[-1][1],
            "dropped_pages": dropped, "listing_pages": len(offsets), "render_cpu_seconds": round(cpu, 2),
            "render_seconds": round(seconds, 2)}


def warm_threatq(service, collection_name, batch, sort, with_, workers):
    """Render every page of a collection as the exporter asks for it (offset paging) into the service's cache."""
    from tq_conn_common.threatq.client import FIELDS   # the body the exporter sends: its query and the fields
    collection = service.collection(collection_name)
    offsets = _pages_of(service, collection, batch, sort, FIELDS, with_)
    groups = [offsets[i::max(1, workers * 8)] for i in range(max(1, workers * 8))]
    started = time.monotonic()
    cpu = 0.0
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        for pages, seconds in pool.imap_unordered(_render_pages, [g for g in groups if g]):
            cpu += seconds
            for key, value in pages:
                service.cache.put(key, value)
    service.cache.render_cpu_seconds += cpu
    service.cache.render_seconds += time.monotonic() - started
    return {"collection": collection_name, "indicators": collection.size, "pages": len(offsets),
            "render_cpu_seconds": round(cpu, 2), "render_seconds": round(time.monotonic() - started, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", required=True, help="the stand-ins to run")
    parser.add_argument("--collection", action="append", default=[], metavar="NAME=SIZE",
                        help="a ThreatQ data collection to create and render before serving (repeatable)")
    parser.add_argument("--duplicate-every", type=int, default=1000,
                        help="every n-th indicator repeats an earlier value under another type (default 1000)")
    parser.add_argument("--batch", type=int, default=1000, help="ThreatQ page size the exporter asks for")
    parser.add_argument("--sort", default="-updated_at", help="ThreatQ sort the exporter asks for")
    parser.add_argument("--with", dest="with_", default="attributes,adversaries,score,status,type",
                        help="ThreatQ with= the exporter asks for")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes rendering pages")
    args = parser.parse_args(argv)
    services = available()
    unknown = [n for n in args.only if n not in services]
    if unknown:
        parser.error(f"unknown stand-in(s) {', '.join(unknown)}; known: {', '.join(services)}")
    instances = {name: _with_cache(services[name])() for name in args.only}
    warmed = []
    for item in args.collection:
        name, _, size = item.rpartition("=")
        tq = instances["threatq"]
        tq.add_collection(name, int(size), seed=7 + int(size) % 1000, duplicate_every=args.duplicate_every)
        warmed.append(warm_threatq(tq, name, args.batch, args.sort, args.with_, args.workers))
    running = Running()  # serving threads start only now: the render workers were forked from a quiet process
    for service in instances.values():
        running.add(service, "127.0.0.1", 0)
    devo = instances.get("devo")
    print(json.dumps({"pid": os.getpid(), "urls": {n: s.url for n, s in instances.items()},
                      "collector": list(devo.collector_address) if devo else None, "warmed": warmed}), flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
    stopped.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
