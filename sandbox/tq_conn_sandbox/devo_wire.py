"""Devo wire formats as the stand-in reads them: collector framing and lines, deploy-csv requests, typed values."""

import contextlib
import csv
import gc
import io
import ipaddress
import json
import re
import zlib

# Lookups API type names (any case) and the table-path names, to one canonical name per type.
TYPES = {"string": "STRING", "str": "STRING", "int8": "INT8", "int": "INT8", "int4": "INT4", "float8": "FLOAT8",
         "float": "FLOAT8", "boolean": "BOOLEAN", "bool": "BOOLEAN", "ip4": "IP4"}
MAX_LINE = 16 * 1024 * 1024

_LINE = re.compile(r"^<(\d{1,3})>((?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)|\S+) (\S+) (\S+?): ?(.*)$", re.S)
_FIELD = re.compile(r'"((?:[^"]|"")*)"(?=,|$)|([^,]*)', re.S)
_IP4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")


class BadValue(ValueError):
    """A value that does not fit its column type."""


def convert(kind, value):
    """Return a text value converted to its column type (empty is None for every type but STRING)."""
    if kind == "STRING":
        return value
    if value == "":
        return None
    try:
        if kind in ("INT8", "INT4"):
            return int(value)
        if kind == "FLOAT8":
            return float(value)
    except ValueError:
        raise BadValue(f"{value!r} is not a valid {kind}") from None
    if kind == "BOOLEAN":
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise BadValue(f"{value!r} is not a valid BOOLEAN")
    if kind == "IP4":
        if not _IP4.match(value):
            raise BadValue(f"{value!r} is not a valid IP4")
        return str(ipaddress.IPv4Address(value))
    return value


def parse_line(text):
    """Return (priority, date, host, tag, body) of a syslog line as devo-sdk's Sender writes it, or None."""
    match = _LINE.match(text)
    return match.groups() if match else None


class Stream:
    """Splits a collector byte stream into messages: plain lines, octet-counted messages, or gzip members."""

    def __init__(self):
        self.buffer = bytearray()
        self.inflate = None
        self.plain = bytearray()

    def feed(self, data):
        """Yield the complete messages that data completes."""
        self.buffer += data
        yield from self._drain()

    def finish(self):
        """Yield what is left at end of stream (a last line without newline)."""
        yield from self._drain()
        if self.buffer.strip():
            yield bytes(self.buffer).rstrip(b"\r\n")
        self.buffer.clear()

    def _drain(self):
        buf = self.buffer
        pos, size = 0, len(buf)
        while pos < size:
            if self.inflate is not None or buf[pos:pos + 2] == b"\x1f\x8b":
                if self.inflate is None:
                    self.inflate = zlib.decompressobj(31)
                self.plain += self.inflate.decompress(bytes(buf[pos:]))
                if self.inflate.eof:
                    rest = self.inflate.unused_data
                    self.inflate = None
                    del buf[:]
                    buf += rest
                    pos, size = 0, len(buf)
                else:
                    pos = size
                lines = self.plain.split(b"\n")
                self.plain = bytearray(lines.pop())
                yield from (bytes(line) for line in lines if line)
                continue
            first = buf[pos]
            if 48 <= first <= 57:       # octet counting: "<length> <message>"
                space = buf.find(b" ", pos, pos + 12)
                if space < 0:
                    if size - pos >= 12:
                        raise ValueError("bad octet count")
                    break
                length = int(buf[pos:space])
                end = space + 1 + length
                if end > size:
                    break
                yield bytes(buf[space + 1:end]).rstrip(b"\n")
                pos = end
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if size - pos > MAX_LINE:
                    raise ValueError("line too long")
                break
            if newline > pos:
                yield bytes(buf[pos:newline])
            pos = newline + 1
        del buf[:pos]


_ESCAPE = re.compile(r"\\([\\n])")


def _unescape(text):
    """Return a quoted value with its escapes undone in one pass: \\n a newline, \\\\ one backslash."""
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else "\\", text) if "\\" in text else text


def parse_fields(line):
    """Return the values of a table-path data line: quoted ("" doubles a quote, \\n is a newline, \\\\ a backslash)
    or bare."""
    out, pos, size = [], 0, len(line)
    while True:
        match = _FIELD.match(line, pos)
        quoted, bare = match.groups()
        out.append(_unescape(quoted.replace('""', '"')) if quoted is not None else bare)
        pos = match.end()
        if pos >= size:
            return out
        pos += 1      # the comma
        if pos == size:
            out.append("")
            return out


def parse_headers(text):
    """Return ([(name, TYPE)], key) from a START/END headers JSON list."""
    items = json.loads(text)
    columns, key = [], None
    for item in items:
        (name, spec), = item.items()
        kind = TYPES.get(str(spec.get("type", "str")).lower())
        if kind is None:
            raise ValueError(f"unknown type {spec.get('type')!r} of column {name}")
        columns.append((name, kind))
        if spec.get("key"):
            key = name
    if key is None:
        raise ValueError("no key column")
    # The wire lists the key first; the lookup keeps that order for the rows it rebuilds.
    return columns, key


def parse_columns(config):
    """Return ([(name, TYPE)], key, problem, job problem) from a deploy-config (an unknown type fails the job)."""
    columns, unknown = [], None
    for item in config.get("columns") or []:
        if not isinstance(item, dict) or not item.get("name"):
            return None, None, "Each deploy-config column needs a name and a type", None
        kind = TYPES.get(str(item.get("type", "STRING")).lower())
        if kind is None and unknown is None:
            unknown = f"Unknown type {item.get('type')!r} of column {item['name']}"
        columns.append((item["name"], kind or "STRING"))
    if not columns:
        return None, None, "The deploy-config has no columns", None
    key_spec = config.get("key") or {}
    key = columns[0][0] if key_spec.get("type") == "first-column" else key_spec.get("column")
    if key not in [c for c, _ in columns]:
        return None, None, f"The key column {key!r} is not one of the columns", None
    return columns, key, None, unknown


def deploy_parts(request):
    """Return (deploy-config dict, csv bytes) from a multipart or JSON deploy-csv request, or (None, None)."""
    ctype = request.headers.get("Content-Type", "")
    if ctype.startswith("multipart/form-data"):
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not match:
            return None, None
        parts = parse_multipart(request.body, match.group(1).encode("latin-1"))
        config, data = parts.get("deploy-config"), parts.get("csv")
        if config is None or data is None:
            return None, None
        try:
            return json.loads(config), data
        except ValueError:
            return None, None
    body = request.json()
    if isinstance(body, dict):
        config = body.get("deploy-config") or body.get("deployConfig")
        data = body.get("csv")
        if isinstance(config, dict) and isinstance(data, str):
            return config, data.encode("utf-8")
    return None, None


def parse_multipart(body, boundary):
    """Return {part name: bytes} of a multipart body."""
    parts, marker = {}, b"--" + boundary
    pos = body.find(marker)
    while pos >= 0:
        start = pos + len(marker)
        if body[start:start + 2] == b"--":
            break
        head_end = body.find(b"\r\n\r\n", start)
        if head_end < 0:
            break
        head = body[start:head_end].decode("utf-8", "replace")
        nxt = body.find(b"\r\n" + marker, head_end + 4)
        if nxt < 0:
            break
        match = re.search(r'name="([^"]*)"', head)
        if match:
            parts[match.group(1)] = body[head_end + 4:nxt]
        pos = nxt + 2
    return parts


PAUSE_FROM = 4 * 1024 * 1024   # bytes of CSV from which parse_csv pauses the cyclic garbage collector


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector while a million rows are made: they are tuples of values, without
    cycles, and the collections their making sets off cost as much again as the making. What was made is then left
    out of later collections too (gc.freeze): the first one after the pause would otherwise scan all of it. Garbage
    with cycles in the young generations is collected first, so that the freeze keeps none of it for good; the old
    generation is not walked (that would take seconds in a stand-in holding millions of rows, on every upload)."""
    paused = gc.isenabled()
    if paused:
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if paused:
            gc.enable()


def parse_csv(data, columns, key, has_header, skip_empty, contribution):
    """Return ([(key, action, row)], problem) from CSV bytes; problem is Devo-like text or None."""
    if len(data) < PAUSE_FROM:
        return _parse_csv(data, columns, key, has_header, skip_empty, contribution)
    with collector_paused():
        return _parse_csv(data, columns, key, has_header, skip_empty, contribution)


def _parse_csv(data, columns, key, has_header, skip_empty, contribution):
    kind = (contribution or {}).get("type", "add")
    action_column = contribution.get("name") if kind == "col" else None
    names = [c for c, _ in columns]
    types = [t for _, t in columns]
    try:
        reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""), strict=True)
        header = next(reader, None) if has_header else None
        if header is not None and [h for h in header if h != action_column] != names:
            return [], f"The CSV header {header} does not match the deploy-config columns {names}"
        layout = header or names
        action_index = layout.index(action_column) if action_column in layout else None
        key_index = names.index(key)
        typed = [(i, t) for i, t in enumerate(types) if t != "STRING"]   # STRING values stay as they are
        rows = []
        for number, fields in enumerate(reader, start=2 if has_header else 1):
            if not fields and skip_empty:
                continue
            if len(fields) != len(layout):
                return [], f"Line {number} has {len(fields)} fields; the CSV has {len(layout)} columns"
            action = "del" if kind == "del" else "add"
            if action_index is not None:
                action = fields.pop(action_index).strip().lower()
            key_text = fields[key_index]
            try:
                for i, t in typed:
                    fields[i] = convert(t, fields[i])
                row = tuple(fields)
            except BadValue as exc:
                return [], f"Line {number}: {exc}"
            rows.append((key_text, action, row))
        return rows, None
    except (UnicodeDecodeError, csv.Error) as exc:
        return [], f"The CSV cannot be read: {exc}"


__all__ = ["TYPES", "MAX_LINE", "BadValue", "convert", "parse_line", "Stream", "parse_fields", "parse_headers",
           "parse_columns", "deploy_parts", "parse_multipart", "parse_csv", "collector_paused"]
