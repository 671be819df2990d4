"""Recorded Future risk lists: their URLs, the streamed csv/splunk body, and one checked lookup row per indicator."""

import csv
import ipaddress
import itertools
import json
import logging
import pickle
import re
import socket
import tempfile
import zlib
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import urllib3

from tq_conn_common import AuthError, BadRecord, SourceError
from tq_conn_common.http import HttpError

log = logging.getLogger(__name__)

FUSION = "PublicUkraineRussiaIps"
# The seed's Fusion file; served by Fusion v2 (GET, the seed's endpoint) and v3 (HEAD gives its etag).
FUSION_PATH = "/public/ukraine/ukraine_russia_ip.csv"
TOKEN_LABEL = "'Recorded Future API Token' (api_token)"
API_ERROR = ("Error retrieving data from API with response code {status}. "
             "This pull iteration did not produce any results.")
REJECTED = "All lookups have been rejected. ETL aborted!"
# The lookup columns of every list, in the order of the rows; hash lists add Algorithm.
COLUMNS = ("Name", "Risk", "RiskString", "Rules", "CriticalRule", "CriticalityLabel")
READ_SIZE = 256 * 1024       # bytes read from the connection at a time
_INFLATE_LIMIT = 1 << 20     # most bytes one step of decompression gives
_SPOOL_BATCH = 1024          # rows set aside together

_SEP = b'","'
_decode = json.JSONDecoder(strict=False).decode  # control characters in strings are tolerated
_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.I)
# A hostname: letter/digit/underscore labels, an alphabetic or punycode TLD; a leading "*." is kept, as the lists
# may carry wildcard names (reference 3.3, XSOAR's glob handling).
_DOMAIN = re.compile(r"^(?:\*\.)?(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+"
                     r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})\.?$")


class ListFailed(SourceError):
    """One list could not be pulled; status is the HTTP status when Recorded Future answered with one."""

    def __init__(self, message, fix=None, *, status=None, retryable=False):
        super().__init__(message, fix, retryable=retryable)
        self.status = status


class ListAuthFailed(ListFailed, AuthError):
    """401 or 403 from Recorded Future."""

    exit_code = AuthError.exit_code


class Tally:
    """Counts of one pass over a list."""

    def __init__(self):
        self.rows = self.valid = self.rejected = self.below = self.malformed = 0
        self.ipv6 = 0
        self.first_problem = None


# ---- URLs ----

def api_root(base_url):
    """Return the API root of base_url: what comes before /v2/, else scheme and host."""
    parts = urlsplit(base_url)
    path = parts.path.split("/v2/")[0] if "/v2/" in parts.path else ""
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def list_urls(base_url, kind, risk_list=None, compressed=False):
    """Return (GET url, HEAD url) of a type's risk list, or of the Ukraine/Russia Fusion file."""
    if kind == FUSION:
        root = api_root(base_url)
        # The seed's v2 URL (with its trailing slash) for the file; v3 for the etag (reference section 4).
        return (f"{root}/v2/fusion/files/?path={FUSION_PATH}",
                f"{root}/fusion/v3/files/{quote(FUSION_PATH, safe='')}")
    parts = urlsplit(base_url.replace("{0}", kind))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("list", "gzip")]
    if risk_list:
        query.append(("list", risk_list))
    head = urlunsplit(parts._replace(query=urlencode(query, safe="/")))
    if compressed:
        query.append(("gzip", "true"))
    return urlunsplit(parts._replace(query=urlencode(query, safe="/"))), head


# ---- HTTP ----

def _failure(exc, kind, url):
    """Return the seed's ConnectionError for an HTTP error, with the fix its error table gives."""
    status = exc.status
    what = describe(kind)
    cause = _cause(exc.excerpt)
    log.warning("Recorded Future answered HTTP %s to %s %s%s", status, exc.method or "GET", urlsplit(url).path,
                f": {cause}" if cause else "")
    if status == 401:
        fix = (f"try valid credentials: Recorded Future rejected {TOKEN_LABEL}; generate a new token "
               "(User Settings > API Access) and set it.")
    elif status == 403:
        fix = (f"try a token with privileges for this request: {TOKEN_LABEL} may not read the {what}; ask your "
               f"Recorded Future admin for the module, or remove '{kind}' from types.")
    elif status == 404:
        fix = (f"try a valid endpoint: {urlsplit(url).path} was not found; check base_url (it keeps the {{0}} "
               "placeholder for the type) and the risk_list names.")
    elif status == 429:
        fix = ("set requests_per_second in the config file to a lower value (Recorded Future's rate limit was "
               "exceeded even after waiting as it asked); the next run pulls what this one missed.")
    elif status and status >= 500:
        fix = "Recorded Future is failing on its side; run again later (the lookups and state were kept)."
    else:
        fix = "check base_url and the network; the response is in the log at -v 3."
    cls = ListAuthFailed if status in (401, 403) else ListFailed
    return cls(API_ERROR.format(status=status), fix, status=status, retryable=exc.retryable)


def _cause(excerpt):
    """Return the message of Recorded Future's error envelope, if the body is one."""
    try:
        body = json.loads(excerpt or "")
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        return str(message or "")[:200]
    return ""


def head_etag(client, url, kind):
    """Return the etag a HEAD of the list announces, or None when the server does not give one."""
    try:
        response = client.request("HEAD", url, expect=(200,))
    except HttpError as exc:
        if exc.status in (401, 403, 404, 429):
            raise _failure(exc, kind, url) from None
        if exc.status is None:
            raise
        log.info("HEAD %s answered HTTP %s; downloading to compare instead.", urlsplit(url).path, exc.status)
        return None
    response.close()
    return response.headers.get("etag")


class Download:
    """A streamed GET of one list: its etag and its body in blocks (gzip bodies decompressed on the fly)."""

    def __init__(self, client, url, kind):
        self.kind = kind
        try:
            self.response = client.request("GET", url, stream=True, expect=(200,))
        except HttpError as exc:
            if exc.status is None:
                raise
            raise _failure(exc, kind, url) from None
        self.etag = self.response.headers.get("etag")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Let the connection go (the body is read)."""
        self.response.close()

    def chunks(self):
        """Yield the body in blocks of bytes (read errors surface while iterating, where rows() reports them)."""
        raw = self.response.raw
        raw.decode_content = True  # a Content-Encoding: gzip transfer is undone by urllib3
        block = raw.read(READ_SIZE)
        if block[:2] == b"\x1f\x8b":  # gzip=true: the body is a gzip file (reference 3.1)
            yield from _gunzip(block, raw.read)
            return
        while block:
            yield block
            block = raw.read(READ_SIZE)


def _gunzip(block, read):
    """Yield the decompressed blocks of a gzip file whose first block is given; read(size) returns the next ones.

    Like the gzip module, members may follow one another and zero bytes may pad the end; output comes in blocks of
    at most _INFLATE_LIMIT bytes however well the data compresses.
    """
    inflate = zlib.decompressobj(31)
    full = False  # the last call filled its output: zlib may hold more even without more input
    while block or full:
        if inflate.eof:
            block = block.lstrip(b"\x00")
            if not block:
                block = read(READ_SIZE)
                continue
            inflate = zlib.decompressobj(31)
        data = inflate.decompress(block, _INFLATE_LIMIT)
        full = len(data) == _INFLATE_LIMIT and not inflate.eof
        block = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
        if data:
            yield data
        if not block and not full:
            block = read(READ_SIZE)
    if not inflate.eof:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def describe(kind):
    """Return how messages name a list: "ip risk list", "Ukraine/Russia IP Fusion file"."""
    return "Ukraine/Russia IP Fusion file" if kind == FUSION else f"{kind} risk list"


# ---- CSV ----

def _header(line, kind):
    """Return {column name: index} of the header line; raise ListFailed if it is not a risk list."""
    text = line.decode("utf-8-sig", "replace").strip()
    names = [n.strip() for n in next(csv.reader([text], skipinitialspace=True), [])]
    columns = {name: i for i, name in enumerate(names)}
    if "Name" not in columns or "Risk" not in columns:
        shown = text[:80] + ("..." if len(text) > 80 else "")
        looks = "an HTML page" if text.lower().startswith(("<!doctype", "<html")) else f"a body starting {shown!r}"
        raise ListFailed(f"The {describe(kind)} is not a csv/splunk risk list: Recorded Future sent {looks}.",
                         "check base_url: it must ask for format=csv/splunk (the default); the lookups were "
                         "left as they were.")
    return columns


def _lines(chunks):
    """Yield (lines, cr) per block of the body: its whole lines without their newline, and whether one holds a '\r'."""
    tail = b""
    for chunk in chunks:
        lines = chunk.split(b"\n")
        cr = b"\r" in chunk
        if tail:
            lines[0] = tail + lines[0]
            cr = cr or b"\r" in tail
        tail = lines.pop()
        if lines:
            yield lines, cr
    if tail:
        yield [tail], b"\r" in tail


def _splitter(width, evidence):
    """Return (fast, slow): functions splitting one record into its fields, as bytes.

    Every field comes unquoted except EvidenceDetails, which keeps its inner quotes doubled as in the CSV (the
    evidence reader works on that form, skipping a costly unquoting of the longest field). fast(line) returns
    None when the line needs the csv module, [] for a blank line; slow(record) returns None when it is not CSV.
    """
    after = width - 1 - evidence if evidence is not None else 0

    def fast(record):
        # Recorded Future quotes every field and doubles inner quotes (reference 3.2); only EvidenceDetails
        # holds quotes, so the others split on '","'. A line that passes these checks is a whole record.
        if record[:1] != b'"' or record[-1:] != b'"':
            return None if record.strip() else []
        if evidence is None:
            fields = record[1:-1].split(_SEP)
            return fields if len(fields) == width and record.count(b'"') == 2 * width else None
        fields = record.split(_SEP, evidence)
        if len(fields) != evidence + 1:
            return None
        rest = fields.pop()
        if evidence:
            # The fields before the evidence hold no quote but the opening one and those of their separators.
            if record.count(b'"', 0, len(record) - len(rest)) != 2 * evidence + 1:
                return None
            fields[0] = fields[0][1:]
        else:
            rest = rest[1:]
        if after:
            tail = rest.rsplit(_SEP, after)
            if len(tail) != after + 1 or rest.count(b'"', len(tail[0])) != 2 * after + 1:
                return None
            cell = tail[0]
            tail[-1] = tail[-1][:-1]
        else:
            cell = rest[:-1]
        if cell.count(b'"') != 2 * cell.count(b'""'):  # a lone quote: not one whole field
            return None
        fields.append(cell)
        if after:
            fields.extend(tail[1:])
        return fields

    def slow(record):
        try:
            row = next(csv.reader([record.decode("utf-8", "replace")], skipinitialspace=True), [])
        except csv.Error:
            return None
        fields = [field.encode("utf-8") for field in row]
        if evidence is not None and evidence < len(fields):
            fields[evidence] = fields[evidence].replace(b'"', b'""')
        return fields

    return fast, slow


# Rule, criticality and label of each evidence item, read from the CSV form of the cell ("" for each quote), in one
# pass. Items are flat objects one after the other, so the n-th of each key belongs to the n-th item; a value with
# an escape or not followed by ',' or '}' (a key found alone, in _BROKEN), or an item without one of the keys, makes
# the cell be read as JSON.
_KEYS = re.compile(rb'""(?:Rule"": ""[^"\\]*""(?=[,}])|CriticalityLabel"": ""[^"\\]*""(?=[,}])'
                   rb'|Criticality"": \d+(?:\.\d+)?(?=[,}])|Rule""|CriticalityLabel""|Criticality"")')
_BROKEN = {b'""Rule""', b'""CriticalityLabel""', b'""Criticality""'}
_RULE_KEY, _LABEL_KEY, _LEVEL_KEY = b'""Rule"": ""', b'""CriticalityLabel"": ""', b'""Criticality"": '
# Written to begin with a letter rarer than the quote, which the search skips to (the look-behind keeps it exact).
_TIMESTAMP = re.compile(rb'Timestamp(?<=""Timestamp)"": ""([^"\\]*)""')
# What the keys of a cell say, by the keys found joined: lists repeat the same few combinations of rules.
_readings = {}
_READINGS_KEPT = 4096
_NO_RULES = ("", "", "")


def evidence_summary(cell):
    """Return (rule names joined by '; ', the most critical rule, its criticality label), or None if not JSON.

    cell is the EvidenceDetails field with its inner quotes doubled, as the CSV carries it. The most critical
    rule has the highest Criticality; among equals, the most recent Timestamp; among those, the first.
    """
    return _summary(cell, _KEYS.findall(cell)) if cell else _NO_RULES


def _summary(cell, found):
    """Return evidence_summary(cell), given the keys _KEYS finds in it."""
    reading = None
    if found:
        joined = b"".join(found)  # each key starts with '""' and its value holds no quote: joined they stay apart
        reading = _readings.get(joined)
        if reading is None:
            if len(_readings) >= _READINGS_KEPT:
                _readings.clear()
            reading = _readings[joined] = _reading(found)
    if reading:
        if len(reading) == 3:
            return reading
        rules, names, labels, tied = reading
        times = _TIMESTAMP.findall(cell)
        if len(times) == len(names):
            pick = max(tied, key=times.__getitem__)
            return rules, names[pick], labels[pick]
    return _summary_of_json(cell.replace(b'""', b'"'))


def _reading(found):
    """Return what the keys of one cell say: (rules, most critical, label), or (rules, names, labels, indexes of
    the most critical) when a tie is left to the timestamps, or False when the cell must be read as JSON."""
    rules, labels, levels = [], [], []
    for key in found:
        if key in _BROKEN:
            return False
        if key.startswith(_RULE_KEY):
            rules.append(key[len(_RULE_KEY):-2])
        elif key.startswith(_LABEL_KEY):
            labels.append(key[len(_LABEL_KEY):-2])
        else:
            levels.append(float(key[len(_LEVEL_KEY):]))
    if not rules or not len(levels) == len(labels) == len(rules):
        return False
    top = max(levels)
    best = [i for i, level in enumerate(levels) if level == top]
    joined = b"; ".join(rules).decode("utf-8", "replace")
    names = [rule.decode("utf-8", "replace") for rule in rules]
    labels = [label.decode("utf-8", "replace") for label in labels]
    if len(best) == 1:
        return joined, names[best[0]], labels[best[0]]
    return joined, names, labels, tuple(best)


def _summary_of_json(raw):
    try:
        details = _decode(raw.decode("utf-8"))
        items = details["EvidenceDetails"] if isinstance(details, dict) else None
    except (ValueError, KeyError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(items, list):
        return None
    rules, best, best_key = [], None, None
    for item in items:
        if not isinstance(item, dict):
            continue
        rules.append(str(item.get("Rule") or item.get("Name") or ""))
        criticality = item.get("Criticality")
        key = (criticality if isinstance(criticality, (int, float)) else 0, str(item.get("Timestamp") or ""))
        if best_key is None or key > best_key:
            best, best_key = item, key
    if best is None:
        return "; ".join(rules), "", ""
    return "; ".join(rules), str(best.get("Rule") or best.get("Name") or ""), str(best.get("CriticalityLabel") or "")


# ---- per type checks: return (Name as stored, extra columns) or raise BadRecord ----

def check_ip(name, fields=None, columns=None):
    """Return (name, {"version": 4 or 6}) for an IP address or CIDR range."""
    if _IPV4.match(name):  # the common case, several times quicker than ipaddress
        return name, {"version": 4}
    if _is_ipv6(name):
        return name, {"version": 6}
    try:
        version = (ipaddress.ip_network(name, strict=False) if "/" in name else ipaddress.ip_address(name)).version
    except ValueError:
        raise BadRecord("not an IP address or CIDR range", name=name[:80]) from None
    return name, {"version": version}


def _is_ipv6(name):
    """Return True for a plain IPv6 address in a form both the C library and ipaddress accept (the quick test)."""
    try:
        socket.inet_pton(socket.AF_INET6, name)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False
    return True


def check_domain(name, fields=None, columns=None):
    """Return (name, {}) for a hostname."""
    if len(name) > 253 or not _DOMAIN.match(name):
        raise BadRecord("not a domain name", name=name[:80])
    return name, {}


def check_hash(name, fields=None, columns=None):
    """Return (name in lower case, {"Algorithm": ...}) for a hex hash of a known length."""
    algorithm = _HASH_LENGTHS.get(len(name))
    if algorithm is None or not _HEX.match(name):
        raise BadRecord("not a hex MD5, SHA-1, SHA-256 or SHA-512 hash", name=name[:80])
    index = columns.get("Algorithm") if columns else None
    given = fields[index].decode("utf-8", "replace").strip() if index is not None and index < len(fields) else ""
    if given and given.upper().replace("-", "").replace("_", "") != algorithm.replace("-", ""):
        raise BadRecord(f"Algorithm {given} does not fit a hash of {len(name)} hex digits", name=name[:80])
    return name.lower(), {"Algorithm": algorithm}


def check_url(name, fields=None, columns=None):
    """Return (name, {}) for a URL with a scheme and a host."""
    try:
        parts = urlsplit(name)
        valid = parts.scheme.isalpha() and bool(parts.netloc) and not any(c.isspace() for c in name)
    except ValueError:
        valid = False
    if not valid:
        raise BadRecord("not a URL with a scheme and a host", name=name[:80])
    return name, {}


def check_cve(name, fields=None, columns=None):
    """Return (the CVE id in upper case, {})."""
    if not _CVE.match(name):
        raise BadRecord("not a CVE id", name=name[:80])
    return name.upper(), {}


CHECKS = {"ip": check_ip, FUSION: check_ip, "domain": check_domain, "hash": check_hash, "url": check_url,
          "vulnerability": check_cve}


def rows(run, chunks, kind, tally, min_risk=0, version=None, count=True, aside=None):
    """Yield the lookup rows of one list as tuples in the order of COLUMNS (hash lists add the Algorithm); bad rows
    are counted and skipped.

    chunks is the body in blocks of bytes, cut anywhere. With version (4 or 6) only the rows of that IP version are
    yielded, the others given to aside(row) if set. count=False counts nothing in the run statistics.
    """
    before = tally.rows
    try:
        blocks = _lines(chunks)
        lines, cr = next(blocks, ([b""], False))
        reader = _Reader(run, kind, tally, _header(lines[0], kind), min_risk, version, count, aside)
        yield from reader.rows(itertools.chain([(lines[1:], cr)], blocks))
    except (urllib3.exceptions.HTTPError, OSError, EOFError, zlib.error) as exc:  # a broken or corrupt body
        raise ListFailed(f"The download of the {describe(kind)} broke off after {tally.rows - before} rows "
                         f"({_reason(exc)}).",
                         "run again; the lookups were left as they were and the next run pulls the list again.",
                         retryable=True) from None


class _Reader:
    """The rows of one list, record by record (see rows()): the usual records on a quick path, the others read
    with the csv module."""

    def __init__(self, run, kind, tally, columns, min_risk, version, count, aside):
        self.run, self.kind, self.tally, self.columns = run, kind, tally, columns
        self.min_risk, self.version, self.count, self.aside = min_risk, version, count, aside
        self.check = CHECKS[kind]
        self.ip = self.check is check_ip
        evidence = columns.get("EvidenceDetails")
        self.fast, self.slow = _splitter(len(columns), evidence)
        self.i_name, self.i_risk = columns["Name"], columns["Risk"]
        self.i_string, self.i_evidence = columns.get("RiskString"), evidence
        self.width = max(columns.values()) + 1
        # The quick path takes lists whose header names each column once, EvidenceDetails after Name (as they come).
        self.quick = evidence is not None and 0 < evidence and len(columns) == self.width
        self.after = self.width - 1 - evidence if evidence is not None else 0  # fields after EvidenceDetails

    def rows(self, blocks):
        """Yield the rows of blocks of lines (see _lines)."""
        fast, slow, quick = self.fast, self.slow, self.quick
        pending = None
        for lines, cr in blocks:
            index, end = 0, len(lines)
            while index < end:
                if quick and pending is None and not cr:
                    index = yield from self._quick(lines, index)
                    if index == end:
                        break
                line = lines[index]
                index += 1
                if pending is None:
                    fields = fast(line.rstrip(b"\r") if cr else line)
                    if fields is None:
                        if line.count(b'"') % 2:  # the record goes on on the next line
                            pending = line
                            continue
                        fields = slow(line.rstrip(b"\r"))  # the csv module takes the unusual ones
                else:
                    pending += b"\n" + line
                    if pending.count(b'"') % 2:
                        continue
                    fields, pending = slow(pending.rstrip(b"\r\n")), None
                if fields != []:
                    yield from self._record(fields)
        if pending is not None and pending.strip():
            yield from self._record(slow(pending.rstrip(b"\r\n")))

    def _record(self, fields):
        """Yield the row of one record (fields as _splitter gives them, None if not CSV) if it is kept."""
        tally, run, check, columns = self.tally, self.run, self.check, self.columns
        tally.rows += 1
        if self.count:
            run.stats.received += 1
        try:
            if fields is None:
                raise BadRecord("row is not CSV")
            if len(fields) < self.width:
                raise BadRecord(f"row has {len(fields)} fields, the header {self.width}",
                                row=b",".join(fields)[:60].decode("utf-8", "replace"))
            name = fields[self.i_name].decode("utf-8", "replace").strip()
            if self.ip:
                six = check(name)[1]["version"] == 6
                extra = ()
            else:
                name, extra = check(name, fields, columns)
                extra = tuple(extra.values())
            risk = _risk(fields[self.i_risk])
        except BadRecord as bad:
            tally.rejected += 1
            tally.first_problem = tally.first_problem or str(bad)
            if self.count:
                run.skip(bad, f"{self.kind} row")
            return
        tally.valid += 1
        if self.ip and six:
            tally.ipv6 += 1
        if risk < self.min_risk:
            tally.below += 1
            return
        summary = evidence_summary(fields[self.i_evidence]) if self.i_evidence is not None else _NO_RULES
        if summary is None:
            tally.malformed += 1
            summary = _NO_RULES
        string = fields[self.i_string].decode("utf-8", "replace") if self.i_string is not None else ""
        row = (name, str(risk), string, *summary, *extra)
        if self.version is None or (6 if self.ip and six else 4) == self.version:
            yield row
        elif self.aside is not None:
            self.aside(row)

    def _quick(self, lines, index):
        """Yield the rows of lines from index on while each is a whole record of the usual form with a valid name
        and risk; return the index of the first line that is not (the end when all are), left to _record().

        What fast() and _record() do, unrolled: this is where a list's million rows go through.
        """
        start = index
        end = len(lines)
        evidence, after = self.i_evidence, self.after
        head_quotes, tail_quotes = 2 * evidence + 1, 2 * after + 1
        i_name, i_risk, i_string = self.i_name, self.i_risk, self.i_string
        check, columns, ip = self.check, self.columns, self.ip
        min_risk, version, aside = self.min_risk, self.version, self.aside
        pton, AF_INET, ipv4, ipv6 = socket.inet_pton, socket.AF_INET, _IPV4.match, _is_ipv6
        keys, readings, summarize = _KEYS.findall, _readings, _summary
        valid = sixes = below = malformed = 0
        six = False
        extra = ()
        try:
            while index < end:
                line = lines[index]
                fields = line.split(_SEP, evidence)
                if len(fields) != evidence + 1 or line[-1:] != b'"' or line[:1] != b'"':
                    break
                cell = fields[evidence]  # EvidenceDetails, then the fields after it, then the closing quote
                if line.count(b'"', 0, len(line) - len(cell)) != head_quotes:
                    break
                if after:
                    tail = cell.rsplit(_SEP, after)
                    if len(tail) != after + 1 or cell.count(b'"', len(tail[0])) != tail_quotes:
                        break
                    cell = fields[evidence] = tail[0]
                    tail[-1] = tail[-1][:-1]
                    fields.extend(tail[1:])
                    close = len(cell)
                else:
                    close = len(cell) - 1
                if cell.count(b'"', 0, close) != 2 * cell.count(b'""', 0, close):
                    break
                fields[0] = fields[0][1:]
                name = fields[i_name].decode("utf-8", "replace").strip()
                if ip:
                    try:
                        pton(AF_INET, name)  # the common case, several times quicker than the others
                        six = False
                    except (OSError, ValueError):
                        if ipv4(name):
                            six = False
                        elif ipv6(name):
                            six = True
                        else:
                            break
                else:
                    try:
                        name, extra = check(name, fields, columns)
                    except BadRecord:
                        break
                    extra = tuple(extra.values())
                try:
                    risk = int(fields[i_risk])
                except ValueError:
                    break
                if not 0 <= risk <= 100:
                    break
                index += 1
                valid += 1
                if six:
                    sixes += 1
                if risk < min_risk:
                    below += 1
                    continue
                if close:  # what evidence_summary() does, the usual case first
                    found = keys(cell, 0, close)
                    summary = readings.get(b"".join(found)) if found else None
                    if not summary or len(summary) != 3:
                        summary = summarize(cell[:close], found)
                        if summary is None:
                            malformed += 1
                            summary = _NO_RULES
                else:
                    summary = _NO_RULES
                row = (name, str(risk), fields[i_string].decode("utf-8", "replace") if i_string is not None else "",
                       *summary, *extra)
                if version is None or (6 if six else 4) == version:
                    yield row
                elif aside is not None:
                    aside(row)
        finally:
            tally = self.tally
            tally.rows += index - start
            tally.valid += valid
            tally.ipv6 += sixes
            tally.below += below
            tally.malformed += malformed
            if self.count:
                self.run.stats.received += index - start
        return index


class Spool:
    """Rows set aside in a private temporary file, deleted when closed, to be read back in order (the IPv6 rows of
    an IP list while its IPv4 rows stream to their lookup); memory holds one batch."""

    def __init__(self):
        self.count = 0
        self._batch = []
        self._file = None  # made when the first batch is full

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()

    def add(self, row):
        """Keep one row."""
        self._batch.append(row)
        self.count += 1
        if len(self._batch) >= _SPOOL_BATCH:
            self._flush()

    def _flush(self):
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="tq-conn-rf-")
        pickle.dump(self._batch, self._file, pickle.HIGHEST_PROTOCOL)
        self._batch = []

    def rows(self):
        """Yield the rows kept, in the order they came."""
        if self._file is None:
            yield from self._batch
            return
        if self._batch:
            self._flush()
        self._file.seek(0)
        while True:
            try:
                batch = pickle.load(self._file)
            except EOFError:
                return
            yield from batch


def _risk(value):
    try:
        risk = int(value)
    except ValueError:
        raise BadRecord("Risk is not an integer", risk=value[:20].decode("utf-8", "replace")) from None
    if not 0 <= risk <= 100:
        raise BadRecord("Risk is not between 0 and 100", risk=risk)
    return risk


def _reason(exc):
    text = str(exc)
    for marker, reason in (("IncompleteRead", "the connection closed early"), ("Connection broken", None),
                           ("Read timed out", None), ("Compressed file ended", None),
                           ("incorrect data check", "crc check failed"),
                           ("incorrect header check", "not a gzipped file"), ("invalid", None), ("reset", None)):
        if marker.lower() in text.lower():
            return reason or marker.lower()
    return type(exc).__name__


__all__ = ["FUSION", "FUSION_PATH", "API_ERROR", "REJECTED", "COLUMNS", "ListFailed", "ListAuthFailed", "Tally",
           "api_root", "describe", "list_urls", "head_etag", "Download", "Spool", "rows", "evidence_summary", "CHECKS"]
