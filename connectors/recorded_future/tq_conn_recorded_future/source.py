"""Recorded Future risk lists: their URLs, the streamed csv/splunk body, and one checked lookup row per indicator."""

import csv
import gzip
import io
import ipaddress
import json
import logging
import re
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
    """A streamed GET of one list: its etag and an iterator of raw lines (gzip bodies decompressed on the fly)."""

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
        self.response.close()

    def lines(self):
        """Yield the body's lines, as bytes (read errors surface while iterating, where rows() reports them)."""
        raw = self.response.raw
        raw.decode_content = True  # a Content-Encoding: gzip transfer is undone by urllib3
        raw.auto_close = False  # else urllib3 reports closed at the end of the body, before the buffer is read
        body = io.BufferedReader(raw, 1 << 16)
        if body.peek(2)[:2] == b"\x1f\x8b":  # gzip=true: the body is a gzip file (reference 3.1)
            body = gzip.GzipFile(fileobj=body, mode="rb")
        yield from body


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


def _records(lines, fast, slow, skip=None):
    """Yield the fields of each CSV record (bytes; see _splitter); a quoted field may span lines.

    skip(line) may drop a line that is a whole record early (the second pass over an IP list).
    """
    pending = None
    for line in lines:
        if pending is None:
            if skip is not None and skip(line):
                continue
            fields = fast(line.rstrip(b"\r\n"))
            if fields is not None:
                yield fields
                continue
            pending = line
        else:
            pending += line
        if pending.count(b'"') % 2 == 0:  # the record is complete: the csv module takes the unusual ones
            yield slow(pending.rstrip(b"\r\n"))
            pending = None
    if pending is not None and pending.strip():
        yield slow(pending.rstrip(b"\r\n"))


def _splitter(width, evidence):
    """Return (fast, slow): functions splitting one record into its fields, as bytes.

    Every field comes unquoted except EvidenceDetails, which keeps its inner quotes doubled as in the CSV (the
    evidence reader works on that form, skipping a costly unquoting of the longest field). fast(line) returns
    None when the line needs the csv module, slow(record) None when it is not CSV.
    """
    after = width - 1 - evidence if evidence is not None else 0

    def fast(record):
        # Recorded Future quotes every field and doubles inner quotes (reference 3.2); only EvidenceDetails
        # holds quotes, so the others split on '","'. A line that passes these checks is a whole record.
        if record[:1] != b'"' or record[-1:] != b'"':
            return None if record.strip() else []
        inner = record[1:-1]
        if evidence is None:
            fields = inner.split(_SEP)
            return fields if len(fields) == width and b'"' not in inner.replace(_SEP, b"") else None
        head = inner.split(_SEP, evidence)
        if len(head) != evidence + 1:
            return None
        rest = head.pop()
        # The fields before and after the evidence hold no quote but those of their separators.
        if evidence and inner.count(b'"', 0, len(inner) - len(rest) - 3) != 2 * (evidence - 1):
            return None
        if after:
            tail = rest.rsplit(_SEP, after)
            if len(tail) != after + 1 or rest.count(b'"', len(tail[0])) != 2 * after:
                return None
            cell = tail[0]
        else:
            tail, cell = (), rest
        if cell.count(b'"') != 2 * cell.count(b'""'):  # a lone quote: not one whole field
            return None
        head.append(cell)
        head.extend(tail[1:])
        return head

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


# Rule, criticality and label of each evidence item, read from the CSV form of the cell ("" for each quote).
# Items are flat objects one after the other, so the n-th match of each key belongs to the n-th item; a value
# with an escape, or an item without one of the keys, makes the counts differ and the cell is read as JSON.
_RULE = re.compile(rb'""Rule"": ""([^"\\]*)""')
_CRITICALITY = re.compile(rb'""Criticality"": (\d+(?:\.\d+)?)[,}]')
_LABEL = re.compile(rb'""CriticalityLabel"": ""([^"\\]*)""')
_TIMESTAMP = re.compile(rb'""Timestamp"": ""([^"\\]*)""')


def evidence_summary(cell):
    """Return (rule names joined by '; ', the most critical rule, its criticality label), or None if not JSON.

    cell is the EvidenceDetails field with its inner quotes doubled, as the CSV carries it. The most critical
    rule has the highest Criticality; among equals, the most recent Timestamp; among those, the first.
    """
    if not cell:
        return "", "", ""
    rules = _RULE.findall(cell)
    if rules:
        levels = _CRITICALITY.findall(cell)
        labels = _LABEL.findall(cell)
        if len(levels) == len(labels) == len(rules):
            levels = [float(level) for level in levels]
            top = max(levels)
            best = [i for i, level in enumerate(levels) if level == top]
            times = _TIMESTAMP.findall(cell) if len(best) > 1 else ()
            if len(best) == 1 or len(times) == len(rules):
                pick = best[0] if len(best) == 1 else max(best, key=times.__getitem__)
                return (b"; ".join(rules).decode("utf-8", "replace"), rules[pick].decode("utf-8", "replace"),
                        labels[pick].decode("utf-8", "replace"))
    return _summary_of_json(cell.replace(b'""', b'"'))


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
    try:
        version = (ipaddress.ip_network(name, strict=False) if "/" in name else ipaddress.ip_address(name)).version
    except ValueError:
        raise BadRecord("not an IP address or CIDR range", name=name[:80]) from None
    return name, {"version": version}


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


def rows(run, lines, kind, tally, min_risk=0, version=None, count=True):
    """Yield the lookup rows of one list (of one IP version when version is set); bad rows are counted and skipped.

    count=False is a second pass over the same list: nothing is counted in the run statistics again.
    """
    check = CHECKS[kind]
    done = 0
    try:
        columns = _header(next(lines, b""), kind)
        fast, slow = _splitter(len(columns), columns.get("EvidenceDetails"))
        i_name, i_risk = columns["Name"], columns["Risk"]
        i_string, i_evidence = columns.get("RiskString"), columns.get("EvidenceDetails")
        width = max(columns.values()) + 1
        skip = _ipv4_line if version == 6 and i_name == 0 else None
        for fields in _records(lines, fast, slow, skip):
            if fields == []:
                continue
            done += 1
            tally.rows += 1
            if count:
                run.stats.received += 1
            try:
                if fields is None:
                    raise BadRecord("row is not CSV")
                if len(fields) < width:
                    raise BadRecord(f"row has {len(fields)} fields, the header {width}",
                                    row=b",".join(fields)[:60].decode("utf-8", "replace"))
                name, extra = check(fields[i_name].decode("utf-8", "replace").strip(), fields, columns)
                risk = _risk(fields[i_risk])
            except BadRecord as bad:
                tally.rejected += 1
                tally.first_problem = tally.first_problem or str(bad)
                if count:
                    run.skip(bad, f"{kind} row")
                continue
            tally.valid += 1
            ip_version = extra.pop("version", None)
            if ip_version == 6:
                tally.ipv6 += 1
            if version is not None and ip_version != version:
                continue
            if risk < min_risk:
                tally.below += 1
                continue
            summary = evidence_summary(fields[i_evidence]) if i_evidence is not None else ("", "", "")
            if summary is None:
                tally.malformed += 1
                summary = ("", "", "")
            row = {"Name": name, "Risk": risk,
                   "RiskString": fields[i_string].decode("utf-8", "replace") if i_string is not None else "",
                   "Rules": summary[0], "CriticalRule": summary[1], "CriticalityLabel": summary[2]}
            row.update(extra)
            yield row
    except (urllib3.exceptions.HTTPError, OSError, EOFError, zlib.error) as exc:  # a broken or corrupt body
        raise ListFailed(f"The download of the {describe(kind)} broke off after {done} rows ({_reason(exc)}).",
                         "run again; the lookups were left as they were and the next run pulls the list again.",
                         retryable=True) from None


def _ipv4_line(line):
    """Return True for a whole record whose first field holds no ':' (not IPv6): the IPv6 pass passes it by."""
    end = line.find(_SEP)
    return line[:1] == b'"' and end > 0 and b":" not in line[1:end] and line.count(b'"') % 2 == 0


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
    for marker in ("IncompleteRead", "Connection broken", "Read timed out", "Compressed file ended",
                   "CRC check failed", "Not a gzipped file", "invalid", "reset"):
        if marker.lower() in text.lower():
            return marker.lower() if marker != "IncompleteRead" else "the connection closed early"
    return type(exc).__name__


__all__ = ["FUSION", "FUSION_PATH", "API_ERROR", "REJECTED", "ListFailed", "ListAuthFailed", "Tally", "api_root",
           "describe", "list_urls", "head_etag", "Download", "rows", "evidence_summary", "CHECKS"]
