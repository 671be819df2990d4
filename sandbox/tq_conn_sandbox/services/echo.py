"""A trivial stand-in that proves the frame: echoes requests, pages numbers, streams lines."""

from tq_conn_sandbox.server import Response, Service, error, route


class Echo(Service):
    """Answers with what it received; pages through a range of numbers; streams N lines."""

    name = "echo"

    @route("GET", r"^/echo$")
    def echo(self, request):
        return Response({"method": request.method, "path": request.path, "query": request.query,
                         "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"}})

    @route("POST", r"^/echo$")
    def echo_post(self, request):
        return Response({"method": request.method, "body": request.body.decode("utf-8", "replace")})

    @route("GET", r"^/numbers$")
    def numbers(self, request):
        try:
            total = int(request.query.get("total", 100))
            offset = int(request.query.get("offset", 0))
            limit = int(request.query.get("limit", 10))
        except ValueError:
            return error(400, "total, offset and limit must be integers")
        items = list(range(offset, min(offset + limit, total)))
        return Response({"data": items, "total": total, "offset": offset, "limit": limit})

    @route("GET", r"^/lines$")
    def lines(self, request):
        count = int(request.query.get("count", 10))
        return Response((b"line %d\n" % i for i in range(count)), content_type="text/plain")
