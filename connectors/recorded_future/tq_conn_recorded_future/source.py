"""Recorded Future risk lists: their URLs, the streamed csv/splunk download, and one checked lookup row per entity."""

import json
import logging
import re
from collections import Counter
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tq_conn_common import BadRecord, Declared, Download, Param, Service, SourceError, etag, iocs

log = logging.getLogger(__name__)

FUSION = "PublicUkraineRussiaIps"
# The seed's Fusion file; served by Fusion v2 (GET, the seed's endpoint) and v3 (HEAD gives its etag).
FUSION_PATH = "/public/ukraine/ukraine_russia_ip.csv"
# The lookup columns of every list, in the order of the rows; hash lists add Algorithm.
COLUMNS = ("Name", "Risk", "RiskString", "Rules", "CriticalRule", "CriticalityLabel")
API_TOKEN = Param("api_token", "Recorded Future API Token", secret=True, required=True,
                  help="The API token from Recorded Future (User Settings > API Access > Generate New API Token, "
                       "integration Devo); sent as the X-RFToken header.")
API_ERROR = ("Error retrieving data from API with response code {status}. "
             "This pull iteration did not produce any results.")
# Seed 000's error table: its ConnectionError for every answer but 200, with the fix it gives per status.
RECORDED_FUTURE = Service(
    "Recorded Future", credential=API_TOKEN, url="base_url", messages={"auth": API_ERROR, "status": API_ERROR},
    fixes={"credential": "try valid credentials: Recorded Future rejected {credential}; generate a new token (User "
                         "Settings > API Access) and set it.",
           "permission": "try a token with privileges for this request: {credential} may not read the {list}; ask "
                         "your Recorded Future admin for the module, or remove '{kind}' from types.",
           "not_found": "try a valid endpoint: {path} was not found; check base_url (it keeps the {{0}} placeholder "
                        "for the type) and the risk_list names.",
           "rate_limited": "set requests_per_second in the config file to a lower value (Recorded Future's rate limit "
                           "was exceeded even after waiting as it asked); the next run pulls what this one missed."})
REJECTED = Declared(SourceError, "All lookups have been rejected. ETL aborted!",
                    "none of the {count} rows of the {title} passed validation (first: {first}); {targets} were left "
                    "as they were. Check base_url and risk_list.")
NOT_A_LIST = Declared(SourceError, "The {list} is not a csv/splunk risk list: Recorded Future sent {looks}.",
                      "check base_url: it must ask for format=csv/splunk (the default); the lookups were left as "
                      "they were.")



def describe(kind, path=FUSION_PATH):
    """Return how messages name a list: "ip risk list", "Ukraine/Russia IP Fusion file", "Fusion file /x.csv"."""
    return f"{kind} risk list" if kind != FUSION else (
        "Ukraine/Russia IP Fusion file" if path == FUSION_PATH else f"Fusion file {path}")


def list_urls(base_url, kind, risk_list=None, compressed=False, fusion_path=FUSION_PATH):
    """Return (GET url, HEAD url) of a risk list (one URL, gzip included) or of a Fusion file (v2 GET, v3 HEAD)."""
    # The etag is asked of what is downloaded: the same URL (reference, 2026 corrections).
    if kind == FUSION:
        parts = urlsplit(base_url)
        root = urlunsplit((parts.scheme, parts.netloc, parts.path.split("/v2/")[0] if "/v2/" in parts.path else "",
                           "", "")).rstrip("/")
        # The seed's v2 URL (with its trailing slash) for the file; v3 for the etag (reference section 4).
        return (f"{root}/v2/fusion/files/?path={quote(fusion_path, safe='/')}",
                f"{root}/fusion/v3/files/{quote(fusion_path, safe='')}")
    parts = urlsplit(base_url.replace("{0}", kind))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("list", "gzip")]
    query += [("list", risk_list)] * bool(risk_list) + [("gzip", "true")] * bool(compressed)
    return (urlunsplit(parts._replace(query=urlencode(query, safe="/"))),) * 2


class RiskList:
    """One list being pulled: where from, its columns once the header is read, and what its rows told."""

    def __init__(self, client, kind, url, head_url, min_risk, title=None):
        self.client, self.kind, self.url, self.head_url, self.min_risk = client, kind, url, head_url, min_risk
        self.context = {"kind": kind, "list": title or describe(kind)}
        self.check = {"hash": iocs.file_hash, "domain": iocs.domain, "url": iocs.url,
                      "vulnerability": iocs.cve}.get(kind, iocs.ip)
        self.tally = Counter()   # rows below min_risk, rows whose EvidenceDetails is not JSON
        self.name = self.risk = self.string = self.evidence = self.algorithm = None
        self.width = 0

    def version(self, ctx):
        """Return the etag a HEAD of the list announces, or None when the server gives none."""
        # A Fusion v3 HEAD may answer 403 or 404 for a path v2 serves: no etag (reference, 2026 corrections).
        quiet = ("failing", "refused") + (("permission", "not_found") if self.kind == FUSION else ())
        return etag(self.client, self.head_url, quiet=quiet, context=self.context)

    def fetch(self, ctx):
        """Download the list whole (to a private temporary file) and return its records (lists of texts; workers
        may share out its blocks), its header read first."""
        download = Download(self.client, self.url, self.context["list"], expect=(200,), context=self.context)
        ctx.version = download.etag or ctx.version
        body = download.spooled(raw="EvidenceDetails")   # it closes the download once read
        self._header(body.names())
        return body

    def _header(self, names):
        names = names if isinstance(names, list) else []
        columns = {str(n).strip().lower(): i for i, n in enumerate(names)}
        if "name" not in columns or "risk" not in columns:
            text = ",".join(names)
            looks = ("an HTML page" if text.lower().lstrip().startswith(("<!doctype", "<html")) else
                     f"a body starting {(text[:80] + ('...' if len(text) > 80 else ''))!r}")
            raise NOT_A_LIST(list=self.context["list"], looks=looks)
        self.name, self.risk = columns["name"], columns["risk"]
        self.string, self.evidence = columns.get("riskstring"), columns.get("evidencedetails")
        self.algorithm = columns.get("algorithm") if self.kind == "hash" else None   # only a hash has one
        self.width = max(columns.values()) + 1

    def to_row(self, record):
        """Return the lookup row of one record (a tuple in the order of COLUMNS, hash lists adding the Algorithm),
        None when it scores below min_risk; raise BadRecord when it is not a valid entity of the list."""
        if len(record) < self.width:
            raise BadRecord(f"row has {len(record)} fields, the header {self.width}", row=",".join(record)[:60])
        name = self.check(record[self.name].strip())
        given = record[self.algorithm].strip() if self.algorithm is not None else ""
        if given and given.upper().replace("-", "").replace("_", "") != iocs.HASH_LENGTHS[len(name)].replace("-", ""):
            raise BadRecord(f"Algorithm {given} does not fit a hash of {len(name)} hex digits", name=name)
        try:
            risk = int(record[self.risk])
        except ValueError:
            raise BadRecord("Risk is not an integer", risk=record[self.risk][:20]) from None
        if not 0 <= risk <= 100:
            raise BadRecord("Risk is not between 0 and 100", risk=risk)
        if risk < self.min_risk:
            self.tally["below"] += 1
            return None
        summary = evidence_summary(record[self.evidence]) if self.evidence is not None else _NO_RULES
        if summary is None:
            self.tally["malformed"] += 1
            summary = _NO_RULES
        row = (name, str(risk), record[self.string] if self.string is not None else "", *summary)
        return row + (iocs.HASH_LENGTHS[len(name)],) if self.kind == "hash" else row

    def report(self, ctx):
        """Log what the list's rows told beyond the rows delivered."""
        malformed, below = self.tally["malformed"], self.tally["below"]
        if malformed:
            log.warning("%s: %d rows had EvidenceDetails that is not JSON; kept without their rules.", self.kind,
                        malformed)
        if below:
            log.info("%s: %d rows scored below min_risk %d were left out.", self.kind, below, self.min_risk)


def ip_version(row):
    """Return the index of a row's lookup in an IP list's pair: 0 for IPv4, 1 for IPv6 (the name holds a ':')."""
    return 1 if ":" in row[0] else 0


# EvidenceDetails in its CSV form (quotes doubled): rule, criticality and label of each item in one pass; the n-th of
# each key belongs to the n-th item. A key whose value is not plain (an escape, other spacing) or an item lacking a
# key makes the cell be read as JSON. Lists repeat a few combinations of rules: a reading is kept by the keys found.
_KEYS = re.compile(r'""(?:Rule|CriticalityLabel|Criticality)"":(?: ""[^"\\]*""(?=[,}])| \d+(?:\.\d+)?(?=[,}]))?')
_TIMESTAMP = re.compile(r'""Timestamp"": ""([^"\\]*)""')
_NO_RULES = ("", "", "")
_readings = {}


def evidence_summary(cell):
    """Return (rule names joined by '; ', the most critical rule, its criticality label), or None if not JSON; cell
    as the CSV carries it. The most critical: the highest Criticality, then the latest Timestamp, then the first."""
    if not cell:
        return _NO_RULES
    found = _KEYS.findall(cell)
    joined = "".join(found)   # each key starts with its quotes and no value holds one: joined they stay apart
    reading = _readings.get(joined)
    if reading is None:
        if len(_readings) > 4096:
            _readings.clear()
        reading = _readings[joined] = _reading(found)
    if not reading:
        return _summary_of_json(cell)
    joined, names, labels, best = reading
    if len(best) > 1:
        times = _TIMESTAMP.findall(cell)
        if len(times) != len(names):
            return _summary_of_json(cell)
        best = [max(best, key=times.__getitem__)]
    return joined, names[best[0]], labels[best[0]]


def _reading(found):
    """Return (rules joined, rule names, labels, indexes of the most critical), or False if the keys do not pair."""
    values = {"Rule": [], "CriticalityLabel": [], "Criticality": []}
    for key in found:
        name, _, value = key[2:].partition('"":')
        if not value:
            return False
        values[name].append(value.strip(' "'))
    rules, labels, levels = values["Rule"], values["CriticalityLabel"], [float(v) for v in values["Criticality"]]
    if not rules or not len(levels) == len(labels) == len(rules):
        return False
    return "; ".join(rules), rules, labels, [i for i, level in enumerate(levels) if level == max(levels)]


def _summary_of_json(cell):
    try:
        details = json.loads(cell.replace('""', '"'), strict=False)  # control characters in strings are tolerated
        items = details["EvidenceDetails"] if isinstance(details, dict) else None
    except (ValueError, KeyError, RecursionError):
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


