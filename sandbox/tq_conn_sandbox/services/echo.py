"""A trivial stand-in that proves the frame: echoes requests, pages numbers, streams lines, keeps posted items."""

from tq_conn_sandbox.server import Response, Service, error, route

TOKEN = "sandbox-token"


class Echo(Service):
    """Answers with what it received; pages through numbers (also behind a bearer token); streams N lines;
    keeps the items posted to /items."""

    name = "echo"

    def reset(self):
        self.token = self.options.get("token", TOKEN)
        self.items = []

    @route("GET", r"^/echo$")
    def echo(self, request):
        return Response({"method": request.method, "path": request.path, "query": request.query,
                         "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"}})

    @route("POST", r"^/echo$")
    def echo_post(self, request):
        return Response({"method": request.method, "body": request.body.decode("utf-8", "replace")})

    @route("GET", r"^/numbers$")
    def numbers(self, request):
        return self._numbers(request)

    @route("GET", r"^/secure/numbers$")
    def secure_numbers(self, request):
        """The numbers, for a bearer token only: 401 without one or with a wrong one."""
        if request.bearer() != self.token:
            return error(401, "missing or wrong bearer token")
        return self._numbers(request)

    @route("GET", r"^/cursor$")
    def cursor(self, request):
        """Numbers paged by an opaque cursor: {"data": [...], "next": cursor or null}."""
        try:
            total = int(request.query.get("total", 25))
            start = int(request.query.get("cursor") or 0)
            limit = int(request.query.get("limit", 10))
        except ValueError:
            return error(400, "total, cursor and limit must be integers")
        end = min(start + limit, total)
        return Response({"data": list(range(start, end)), "next": str(end) if end < total else None})

    @route("POST", r"^/items$")
    def add_items(self, request):
        """Keep the posted JSON list of items; answer how many were accepted."""
        items = request.json()
        if not isinstance(items, list):
            return error(400, "the body must be a JSON list of items")
        with self.lock:
            self.items.extend(items)
        return Response({"accepted": len(items)}, status=201)

    @route("GET", r"^/items$")
    def list_items(self, request):
        with self.lock:
            return Response({"items": list(self.items)})

    @route("GET", r"^/lines$")
    def lines(self, request):
        count = int(request.query.get("count", 10))
        return Response((b"line %d\n" % i for i in range(count)), content_type="text/plain")

    def _numbers(self, request):
        try:
            total = int(request.query.get("total", 100))
            offset = int(request.query.get("offset", 0))
            limit = int(request.query.get("limit", 10))
        except ValueError:
            return error(400, "total, offset and limit must be integers")
        items = list(range(offset, min(offset + limit, total)))
        return Response({"data": items, "total": total, "offset": offset, "limit": limit})
