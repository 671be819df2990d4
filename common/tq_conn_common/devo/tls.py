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
SEND_ATTEMPTS = 3
_BARE = re.compile(r'^[^",\s\\]+$')


def wire_field(value, kind):
    """Return one value as a table-path data field.

    Text columns are always quoted, inner quotes doubled and newlines written as \\n (devo-sdk's escape_quotes and
    escape_newline); a backslash is doubled first, so that a value holding a backslash and an n arrives as those two
    characters, not as a newline. Unlike devo-sdk's clean_field nothing is stripped and number-looking text (1.2.3.4,
    5) stays text. Typed columns (int, float, bool, ip4) go bare, empty when unset.
    """
    if kind != "str" and (value == "" or _BARE.match(value)):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '""').replace("\n", "\\n") + '"'


def wire_row(values, kinds, key_index):
    """Return the data part of one row: the key first, then the other columns in declared order."""
    fields = [wire_field(v, k) for v, k in zip(values, kinds)]
    return ",".join([fields[key_index]] + fields[:key_index] + fields[key_index + 1:])


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
def sender(settings):
    """Yield a connected devo-sdk Sender for the collector of the Devo settings; close it afterwards."""
    host, port = settings.collector
    where = f"{host}:{port}"
    with credential_files(settings) as files:
        try:
            con = Sender(config={"address": host, "port": port, "key": files["key"], "cert": files["cert"],
                                 "chain": files["chain"], "check_hostname": True},
                         timeout=SOCKET_TIMEOUT, logger=sdk_log)
        except DevoSenderException as exc:
            raise _connect_error(where, exc) from None
        try:
            _verdict(con, where)
            yield con
        finally:
            con.close()


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


def _send(send, where, done, total):
    """Call send() for one message; devo-sdk reconnects on the next try, up to SEND_ATTEMPTS; then DeliveryError."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            send()
            return
        except DevoSenderException as exc:
            if attempt == SEND_ATTEMPTS:
                raise DeliveryError(f"Sending to the Devo collector at {where} failed after {done} of {total} "
                                    f"messages ({exc}).", "run again later; nothing was committed as delivered.",
                                    retryable=True) from None
            log.warning("Send to the Devo collector at %s failed (%s); reconnecting (%d of %d).", where, exc,
                        attempt, SEND_ATTEMPTS - 1)
            time.sleep(0.2 * attempt)


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
        self.spool.write("".join(wire_row(v, kinds, key_index) + "\n" for v in rows).encode("utf-8"))
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
        key_index = self.spec.key_index
        headers = Lookup.list_to_headers(headers=self.spec.names, key_index=key_index, types=self.kinds)
        started = time.monotonic()
        with sender(self.settings) as con:
            lookup = Lookup(name=name, con=con, delay=float(run.config.get(TLS_DELAY.key, TLS_DELAY.default)),
                            escape_quotes=True, escape_newline=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DeprecationWarning)
                _control(lookup, Lookup.EVENT_START, headers, action, where)
            if any(issubclass(w.category, DeprecationWarning) for w in caught) \
                    and not getattr(run, "devo_tls_warned", False):
                run.devo_tls_warned = True  # one line per run, however many lookups go out
                log.warning("Devo ends the table-based lookup upload used by the X.509 transport on 2026-01-01; "
                            "set 'Devo API Token' (devo_token) and 'Devo Domain' (devo_domain) to use the Lookups "
                            "REST API instead (devo_transport: rest).")
            delete = mode == "delete"
            sent = 0
            for line in _lines(self.spool):
                _send(lambda: lookup.send_data(row=line, delete=delete), where, sent, count)
                sent += 1
                if sent % 100_000 == 0:
                    log.info("Sent %d of %d rows of lookup %s.", sent, count, name)
            _control(lookup, Lookup.EVENT_END, headers, action, where)
        log.info("Sent %d rows to lookup %s in %.1f s; Devo loads them in the background (minutes).",
                 sent, name, time.monotonic() - started)
        return count


def _control(lookup, event, headers, action, where):
    try:
        lookup.send_control(event=event, headers=headers, action=action)
    except DevoSenderException as exc:
        raise DeliveryError(f"Sending the {event} of lookup '{lookup.name}' to the Devo collector at {where} "
                            f"failed ({exc}).", "run again later; nothing was committed as delivered.",
                            retryable=True) from None


def send_events(run, tag, events):
    """Send events (dicts as JSON, or text) to the Devo table tag; return how many were sent."""
    settings = settings_of(run)
    host, port = settings.collector
    where = f"{host}:{port}"
    log.info("Devo transport: X.509 collector %s (devo-sdk Sender); events to table %s.", where, tag)
    lines = [json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
             if isinstance(event, (dict, list)) else str(event).replace("\n", "\\n") for event in events]
    if not lines:
        log.info("No events for table %s.", tag)
        return 0
    with sender(settings) as con:
        for sent, line in enumerate(lines):
            _send(lambda: con.send(tag, line), where, sent, len(lines))
    log.info("Sent %d events to table %s.", len(lines), tag)
    return len(lines)


__all__ = ["TlsUpload", "send_events", "sender", "credential_files", "wire_field", "wire_row"]
