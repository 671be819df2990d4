"""A toy connector for the driver tests: reads numbers from the sandbox echo stand-in and posts them back."""

import logging
import signal
import time

from tq_conn_common import BadRecord, Connector, Param, Service, SourceError, Stream, offset_pages, stop

log = logging.getLogger(__name__)

PARAMS = (
    Param("url", "Echo URL", required=True, help="The base URL of the echo stand-in."),
    Param("token", "API Token", secret=True, required=True, help="The bearer token of the echo stand-in."),
    Param("batch_size", "Batch Size", type=int, default=10, range=(1, 1000), prompt=True,
          help="Numbers fetched per page."),
    Param("total", "Total", type=int, default=25, range=(0, 100_000), help="How many numbers the source holds."),
    Param("mode", "Mode", default="ok", choices=("ok", "sleep", "ignore_term", "fail", "crash", "stop"),
          help="What the run does: ok, sleep (hold the lock), ignore_term, fail, crash, stop."),
    Param("sleep_seconds", "Sleep Seconds", type=float, default=0.0, help="How long a sleep run holds the lock."),
    Param("api_key", "Extra API Key", secret=True, help="Sent as x-api-key, to test header redaction."),
    Param("requests_per_second", "Requests Per Second", type=float, default=0.0, help="0 means no limit."),
    Param("verbose_secrets", "Log Secrets", type=bool, default=False,
          help="Deliberately log the secrets and headers, to test that the log masks them."),
    Param("allow_multiple_runs", "Allow Multiple Runs", type=bool, default=False, help="Take no lock."),
    Param("kill_after_seconds", "Kill Previous Runs After X Seconds", type=int, default=0, range=(0, None),
          help="End a run that holds the lock longer than this; 0 never."),
)


class Echo:
    """The echo stand-in's /items as a destination: numbers posted in chunks, the checkpoint moved after each."""

    name = "echo items"

    def __init__(self, ctx):
        self.ctx, self.items = ctx, []

    @classmethod
    def open(cls, ctx):
        return cls(ctx)

    @property
    def count(self):
        return len(self.items)

    def add(self, rows):
        self.items.extend(rows)

    def send(self):
        sent, self.items = self.items, []
        if sent:
            self.ctx.client.post("/items", json=sent)
            self.ctx.checkpoint["next"] = sent[-1]["n"] + 1
        return len(sent)

    def close(self):
        pass


def fetch(ctx):
    """Fetch numbers page by page, from the one after the last delivered."""
    config = ctx.config
    headers = {"Authorization": f"Bearer {config.token.reveal()}"}
    if config.api_key:
        headers["x-api-key"] = config.api_key.reveal()
        headers["X-RFToken"] = config.api_key.reveal()
    client = ctx.client = ctx.http(ECHO, config.url, headers=headers,
                                   requests_per_second=config.requests_per_second or None)
    if config.verbose_secrets:
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
            log.log(level, "token %s key %s", config.token.reveal(), config.api_key.reveal() if config.api_key else "")
            log.log(level, "headers %s", dict(client.session.headers))
            log.log(level, "Authorization: Bearer %s", config.token.reveal())
    if config.mode in ("sleep", "ignore_term"):
        if config.mode == "ignore_term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log.warning("sleeping %.1f s", config.sleep_seconds)
        time.sleep(config.sleep_seconds)
    if config.mode == "fail":
        raise SourceError("Echo failed on purpose.", "set mode to ok.")
    if config.mode == "crash":
        raise RuntimeError(f"crashed with {config.token.reveal()}")
    if config.mode == "stop":
        stop("Disabled on purpose.")
    ctx.checkpoint["runs"] = ctx.saved.get("runs", 0) + 1

    def page(offset, limit):
        body = client.json("GET", "/secure/numbers", params={"offset": offset, "limit": limit, "total": config.total})
        return body["data"], body["total"]
    for numbers in offset_pages(page, config.batch_size, start=ctx.saved.get("next", 0), service="Echo",
                                what="numbers"):
        yield from numbers


def _to_row(number):
    if number % 7 == 6:
        raise BadRecord("a multiple of seven minus one", number=number)
    return {"n": number}


ECHO = Service("Echo", credential="'API Token' (token)")


def streams(run):
    return (Stream("numbers", fetch=fetch, to_row=_to_row, to=Echo, state=(), batch_size=run.config.batch_size),)


CONNECTOR = Connector(name="toy", title="Toy connector", params=PARAMS, streams=streams)
main = CONNECTOR.main
