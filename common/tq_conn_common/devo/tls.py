"""devo-sdk transport: lookups (Lookup START/data/END) and events through the Sender over TLS with X.509 credentials."""

import contextlib
import json
import logging
import os
import re
import select
import shutil
import ssl
import time
import warnings

from devo.sender import DevoSenderException, Lookup, Sender

from tq_conn_common.devo import certs
from tq_conn_common.devo.lookup import query_name
from tq_conn_common.devo.settings import CERT, CHAIN, HOST, KEY, PORT, REGION, TLS_DELAY
from tq_conn_common.devo.transport import Upload, register, settings_of
from tq_conn_common.errors import AuthError, DeliveryError

log = logging.getLogger(__name__)
sdk_log = logging.getLogger("tq_conn_common.devo_tls.sdk")

SOCKET_TIMEOUT = 30            # devo-sdk's default; every write must progress within it
VERDICT_WAIT = 0.5             # at most this long after connecting, for a collector refusing the certificate (TLS 1.3)
ATTEMPTS = 3                   # connections tried for one lookup or batch of events
_NOT_BARE = re.compile(r'[",\s\\]')  # what keeps a typed value from going bare


def wire_field(value, kind):
    """Return one value as a table-path data field.

    Text columns are always quoted, inner quotes doubled and newlines written as \\n (devo-sdk's escape_quotes and
    escape_newline); a backslash is doubled first, so that a value holding a backslash and an n arrives as those two
    characters, not as a newline. Unlike devo-sdk's clean_field nothing is stripped and number-looking text (1.2.3.4,
    5) stays text. Typed columns (int, float, bool, ip4) go bare, empty when unset.
    """
    if kind != "str" and not _NOT_BARE.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '""').replace("\n", "\\n") + '"'


def wire_row(values, kinds, key_index):
    """Return the data part of one row: the key first, then the other columns in declared order."""
    return wire_rows([values], kinds, key_index)[0]


def wire_rows(rows, kinds, key_index):
    """Return the data part of each row (wire_row), column by column: a column none of whose values needs escaping
    (checked in one joined text) is quoted or left bare whole; only the others go value by value through wire_field."""
    if not rows:
        return []
    columns = list(zip(*rows))
    columns.insert(0, columns.pop(key_index))
    kinds = [kinds[key_index], *kinds[:key_index], *kinds[key_index + 1:]]
    fields = []
    for values, kind in zip(columns, kinds):
        text = "\0".join(values)
        if kind == "str" and "\\" not in text and '"' not in text and "\n" not in text:   # nothing to escape
            values = ['"' + value + '"' for value in values]
        elif kind == "str" or _NOT_BARE.search(text):
            values = [wire_field(value, kind) for value in values]
        fields.append(values)
    return list(map(",".join, zip(*fields)))


@contextlib.contextmanager
def credential_files(settings):
    """Yield {cert, key, chain} paths for devo-sdk, which reads them by path; pasted PEM text lives in anonymous
    in-memory files (Linux memfd, reached as /proc/self/fd/N): nothing is written to disk, and nothing is left when
    the process dies. Where the platform has none, it goes to 0600 files in a private folder removed afterwards, and
    swept by the next run when a killed run could not (certs.sweep)."""
    opened, folder, paths = [], None, {}
    try:
        for name in ("cert", "key", "chain"):
            value = str(settings.value(f"devo_{name}"))
            if not certs.is_pem_text(value):
                paths[name] = os.path.expanduser(value)
                continue
            data = (value.strip() + "\n").encode("utf-8")
            path = certs.in_memory(name, data, opened)
            if path is None:
                if folder is None:
                    folder = certs.private_folder()
                path = os.path.join(folder, f"{name}.pem")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            paths[name] = path
        yield paths
    finally:
        for fd in opened:
            os.close(fd)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def sender(settings, inactivity=3600):
    """Yield a connected devo-sdk Sender for the collector of the Devo settings. Leaving the block normally closes
    the connection so that the collector confirms it read everything (see confirm_close), else raises Broken."""
    host, port = settings.collector
    where = f"{host}:{port}"
    with credential_files(settings) as files:
        try:
            con = Sender(config={"address": host, "port": port, "key": files["key"], "cert": files["cert"],
                                 "chain": files["chain"], "check_hostname": True},
                         timeout=SOCKET_TIMEOUT, inactivity_timeout=inactivity, logger=sdk_log)
        except DevoSenderException as exc:
            raise _connect_error(where, exc) from None
        try:
            _verdict(con, where)
            yield con
            confirm_close(con)
        finally:
            con.close()


class Broken(Exception):
    """The connection to the collector broke: what went into it is not known to have arrived."""


def write(con, send):
    """Call send() (one message through con); raise Broken if it failed or devo-sdk had to reconnect (it does so
    silently when the collector closed or reset the connection: what was written before is lost)."""
    try:
        send()
    except DevoSenderException as exc:
        raise Broken(str(exc)) from None
    if con.reconnection != 1:
        raise Broken("the collector closed the connection and devo-sdk reconnected")


def confirm_close(con):
    """Close con's connection in a way that shows the collector took everything: our TLS close_notify, answered by
    the collector's (or its orderly close of the connection). A reset, a TLS error or no answer raises Broken."""
    sock, con.socket = con.socket, None
    if sock is None or con.reconnection != 1:
        raise Broken("the connection was lost before its end")
    try:
        sock.settimeout(SOCKET_TIMEOUT)
        try:
            sock.unwrap()            # sends close_notify; returns once the collector answered with its own
        except ssl.SSLEOFError:
            pass                     # the collector closed the connection in order (FIN) without a close_notify
    except (ssl.SSLError, OSError) as exc:   # a reset, a timeout
        raise Broken(f"the collector did not confirm the end of the connection ({exc})") from None
    finally:
        sock.close()


def attempts(what, where, deliver):
    """Return deliver(), called again on a new connection when the connection broke, up to ATTEMPTS times; then
    raise DeliveryError (nothing of what was sent counts as delivered)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return deliver()
        except Broken as exc:
            if attempt == ATTEMPTS:
                raise DeliveryError(f"Sending {what} to the Devo collector at {where} failed: the connection broke "
                                    f"{ATTEMPTS} times ({exc}).", "run again later; nothing was committed as "
                                    "delivered, so the next run sends it again.", retryable=True) from None
            log.warning("The connection to the Devo collector at %s broke while sending %s (%s); sending it again "
                        "on a new connection (%d of %d).", where, what, exc, attempt, ATTEMPTS - 1)
            time.sleep(attempt)


def _connect_error(where, exc):
    reason = str(exc).split("error:", 1)[-1].strip() or str(exc)
    low = reason.lower()
    if "certificate verify failed" in low or "hostname mismatch" in low:
        return DeliveryError(f"The Devo collector at {where} did not prove its identity ({reason}).",
                             f"check {CHAIN.named} (chain.crt of your Devo region) and {REGION.named} or "
                             f"{HOST.named}.")
    if "alert" in low or "certificate" in low:
        return AuthError(f"The Devo collector at {where} refused the X.509 certificate ({reason}).",
                         f"set {CERT.named}, {KEY.named} and {CHAIN.named} from the same credential of this Devo "
                         "domain and region.")
    return DeliveryError(f"Cannot connect to the Devo collector at {where} ({reason}).",
                         f"check {REGION.named} or {HOST.named} and {PORT.named} and that this host may connect "
                         "out to it; run again later.", retryable=True)


def _verdict(con, where):
    """Raise AuthError if the collector refuses the client certificate right after the handshake (TLS 1.3)."""
    sock = con.socket
    deadline = time.monotonic() + VERDICT_WAIT
    while sock is not None:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return
        try:
            data = sock.recv(1)
        except (ssl.SSLWantReadError, BlockingIOError):
            return            # a TLS 1.3 session ticket: the server accepted the certificate
        except (ssl.SSLError, OSError) as exc:
            raise _connect_error(where, DevoSenderException(f"error: alert {exc}")) from None
        if data == b"":
            raise DeliveryError(f"The Devo collector at {where} closed the connection right after connecting.",
                                f"check {CERT.named}, {KEY.named} and {CHAIN.named} and the collector address; "
                                "run again later.", retryable=True)


def _lines(spool):
    spool.seek(0)
    for raw in spool:
        yield raw[:-1].decode("utf-8")


@register("tls")
class TlsUpload(Upload):
    """The spooled rows sent through devo-sdk's Lookup: START, one data message per row, END."""

    def __init__(self, *args):
        super().__init__(*args)
        self.kinds = [c.type for c in self.spec.columns]

    def add(self, rows):
        kinds, key_index = self.kinds, self.spec.key_index
        if rows:
            self.spool.write(("\n".join(wire_rows(rows, kinds, key_index)) + "\n").encode("utf-8"))
        self.count += len(rows)

    def send(self):
        run, name, mode, count = self.run, self.name, self.mode, self.count
        host, port = self.settings.collector
        where = f"{host}:{port}"
        action = Lookup.ACTION_FULL if mode == "replace" else Lookup.ACTION_INC
        log.info("Devo transport: X.509 collector %s (devo-sdk Sender); lookup %s (%s), mode %s (%s).",
                 where, name, query_name(name), mode, action)
        log.info("Spooled %d rows for lookup %s.", count, name)
        if self.nothing_to_send():
            return 0
        headers = Lookup.list_to_headers(headers=self.spec.names, key_index=self.spec.key_index, types=self.kinds)
        delay = float(run.config.get(TLS_DELAY.key, TLS_DELAY.default))
        started = time.monotonic()

        def deliver():   # START, the rows, END on one connection; all again on a new one if it breaks
            with sender(self.settings) as con:
                lookup = Lookup(name=name, con=con, delay=delay, escape_quotes=True, escape_newline=True)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", DeprecationWarning)
                    write(con, lambda: lookup.send_control(event=Lookup.EVENT_START, headers=headers, action=action))
                if any(issubclass(w.category, DeprecationWarning) for w in caught):
                    sdk_log.debug("devo-sdk: %s", caught[0].message)
                delete, sent = mode == "delete", 0
                for line in _lines(self.spool):
                    write(con, lambda: lookup.send_data(row=line, delete=delete))
                    sent += 1
                    if sent % 100_000 == 0:
                        log.info("Sent %d of %d rows of lookup %s.", sent, count, name)
                write(con, lambda: lookup.send_control(event=Lookup.EVENT_END, headers=headers, action=action))

        attempts(f"lookup {name}", where, deliver)
        run.stats.unconfirmed.append(name)
        log.info("Sent %d rows to lookup %s in %.1f s; the collector confirmed the connection's end. Devo loads them "
                 "in the background (minutes) and confirms nothing more.", count, name, time.monotonic() - started)
        return count


def send_events(run, tag, events):
    """Send one batch of events (dicts as JSON, or text) to the Devo table tag on one connection, again on a new
    one if it breaks; return how many were sent once the collector confirmed the connection's end."""
    settings = settings_of(run)
    host, port = settings.collector
    where = f"{host}:{port}"
    lines = [event_line(event).replace("\n", "\\n") for event in events]
    if not lines:
        return 0

    def deliver():
        with sender(settings) as con:
            for line in lines:
                write(con, lambda: con.send(tag, line))

    attempts(f"{len(lines)} events to table {tag}", where, deliver)
    log.info("Sent %d events to table %s through the X.509 collector %s.", len(lines), tag, where)
    return len(lines)


def event_line(event):
    """Return the text of one event: a dict or list as compact JSON, anything else as text."""
    if isinstance(event, (dict, list)):
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(event)


__all__ = ["TlsUpload", "send_events", "sender", "credential_files", "wire_field", "wire_row", "wire_rows", "Broken",
           "write", "confirm_close", "attempts", "event_line"]
