"""Recorded Future stand-in: risk lists in the csv/splunk dialect, HEAD and etag, gzip, Fusion v2 and v3 files."""

import hashlib
import json
import operator
import re
import time
import zlib
from email.utils import formatdate
from urllib.parse import unquote

from tq_conn_sandbox import fake
from tq_conn_sandbox.server import Response, Service, route

# Test token: psengine accepts only 32 lowercase letters or digits (reference section 2).
TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TYPES = ("ip", "domain", "hash", "url", "vulnerability")
UKRAINE_RUSSIA = "/public/ukraine/ukraine_russia_{}.csv"
OTHER_FUSION = "/public/c2/known_c2_servers_ip.csv"
# Rules available per type: the denominator of RiskString ("1/77", "3/52", "2/17", "4/24" in the samples).
RULES_AVAILABLE = {"ip": 77, "domain": 52, "hash": 17, "url": 24, "vulnerability": 22}

# (Name, Rule, CriticalityLabel, Criticality, EvidenceString); {name} is the indicator.
_RULES = {
    "ip": (
        ("recentReportedCnc", "Recently Reported C&C Server", "Malicious", 3,
         "3 sightings on 1 source: Recorded Future Sandbox - Malware C2 Extractions. Malware sandbox analysis "
         "identified {name}:443 as possible TA0011 (Command and Control) for REMCOS RAT using configuration "
         "extraction on sample 943cad679c2926774b704874515ea1972a67b90bc719f27618256a68ac4cf6e8."),
        ("recentDdos", "Recent DDoS", "Malicious", 3,
         "1 sighting on 1 source: Proofpoint Reputation Feed. {name} was identified as a DDoS Source on 2024-05-08."),
        ("linkedIntrusion", "Historically Linked to Intrusion Method", "Unusual", 1,
         "7 sightings on 1 source: PasteBin. 3 related intrusion methods: Trojan, Banking Trojan, QakBot. "
         "Most recent link (Nov 8, 2021): https://pastebin.com/G1Jvm5T0"),
        ("recentSpam", "Recent Spam Source", "Suspicious", 2,
         "1 sighting on 1 source: AbuseIPDB Spam. {name} was identified as Web Spam by multiple unique community "
         "member submissions."),
        ("cncServer", "Current C&C Server", "Very Malicious", 4,
         "164 sightings on 4 sources: Recorded Future Command & Control List, Abuse.ch: Feodo IP Blocklist. "
         "Command & Control host identified on Recorded Future Command & Control List \u2013 {name}."),
        ("recentSshDictAttacker", "Recent SSH/Dictionary Attacker", "Suspicious", 2,
         "1 sighting on 1 source: DataPlane SSH Client Connection List."),
    ),
    "domain": (
        ("recentPhishingLureMalicious", "Recent Phishing Lure: Malicious", "Malicious", 3,
         "1 sighting on 1 source: Recorded Future Domain Phishing Lure Detection. 2 lure terms: info, portal. "
         "Last observed on Mar 23, 2024."),
        ("phishingSiteSuspected", "Historically Suspected Phishing Techniques", "Unusual", 1,
         "3 sightings on 1 source: Recorded Future Phishing Detection. https://{name}/ was reported as high "
         "confidence phishing impersonating usps on March 26, 2024."),
        ("frequentlyAbusedDnsProvider", "Frequently Abused Free DNS Provider", "Suspicious", 2,
         "1 sighting on 1 source: Frequently Abused Free DNS. {name} is from an apex domain that utilizes the free "
         "DNS provider No-IP, which frequently hosts malicious domains."),
        ("cncSite", "Current C&C Server", "Very Malicious", 4,
         "2 sightings on 1 source: Recorded Future Command & Control Validation. {name} resolves to a validated "
         "C&C server."),
        ("malwareSiteSuspected", "Historically Suspected Malware Operation", "Unusual", 1,
         "1 sighting on 1 source: Bitdefender. Detected malicious behavior from an endpoint agent via global "
         "telemetry. Last observed on Nov 20, 2021."),
    ),
    "hash": (
        ("positiveMalwareVerdict", "Positive Malware Verdict", "Malicious", 3,
         "3 sightings on 3 sources: Polyswarm Sandbox Analysis, Recorded Future Triage Malware Analysis, PolySwarm. "
         "Most recent link (Mar 23, 2024): https://polyswarm.network/scan/results/file/{name}"),
        ("linkedToMalware", "Linked to Malware", "Suspicious", 2,
         "2 sightings on 1 source: PolySwarm. Most recent link (Mar 23, 2024): "
         "https://polyswarm.network/scan/results/file/{name}"),
        ("observedMalwareTesting", "Observed in Underground Virus Testing Sites", "Unusual", 1,
         "1 sighting on 1 source: Recorded Future Malware Detonation."),
        ("recentActiveMalware", "Recently Active Targeting Vulnerabilities in the Wild", "Very Malicious", 4,
         "4 sightings on 2 sources: Insikt Group, ReversingLabs. Sample linked to exploitation in the wild."),
    ),
    "url": (
        ("defangedURL", "Historically Reported as a Defanged URL", "Unusual", 1,
         "66 sightings on 22 sources including: Ars Technica, fook.news, HackDig Posts. Most recent link "
         "(Jul 20, 2021): https://techsecuritenews.com/solarwinds-pirates-utilisent-nouvelle-faille-zero-day-"
         "attaques/"),
        ("recentAnalystNote", "Recently Reported by Insikt Group", "Malicious", 3,
         "1 sighting on 1 source: Insikt Group. 1 report: SolarWinds Fixes Critical Vulnerability in Serv-U. "
         "Most recent link (Jul 10, 2021): https://app.recordedfuture.com/live/sc/1GnDrn8zigTd"),
        ("phishingSiteDetected", "Historically Detected Phishing Techniques", "Unusual", 1,
         "1 sighting on 1 source: Bitdefender. Detected malicious behavior from an endpoint agent via global "
         "telemetry. Last observed on Nov 14, 2021."),
        ("recentMalwareDistribution", "Recently Detected Malware Distribution", "Very Malicious", 4,
         "1 sighting on 1 source: URLhaus. {name} was detected distributing malware."),
    ),
    "vulnerability": (
        ("cyberExploitSignal", "Cyber Exploit Signal: Important", "Suspicious", 2,
         "25 sightings on 5 sources including: GitHub, Exploit-DB. {name} exploit code published."),
        ("recentMalwareActivity", "Recently Linked to Malware", "Malicious", 3,
         "1 sighting on 1 source: Insikt Group. {name} linked to ransomware operations."),
        ("nistCritical", "NIST Severity: Critical", "Unusual", 1,
         "CVSS v3 base score 9.8 reported by NIST for {name}."),
        ("exploitedInTheWild", "Exploited in the Wild by Recently Active Malware", "Very Malicious", 4,
         "3 sightings on 2 sources: CISA KEV, Insikt Group. {name} exploited in the wild."),
    ),
}
_TIMESTAMPS = ("2024-05-09T09:05:27.621Z", "2024-05-08T00:00:00.000Z", "2024-04-25T16:47:59.000Z",
               "2024-03-23T17:10:20.642Z", "2021-11-16T00:00:00.000Z", "2024-03-26T13:03:57.410Z")
_SOURCES = ("source:uR8gML", "source:tI3ayU", "source:oWAG20", "report:POW5Yc", "source:d3Awkm")
_PUBLIC_OCTETS = (5, 23, 31, 37, 45, 46, 62, 77, 78, 80, 82, 85, 89, 91, 93, 94, 103, 104, 109, 141, 146, 154, 162,
                  176, 178, 185, 188, 193, 194, 195, 198, 200, 212, 213, 217)
_WORDS = ("secure", "login", "update", "account", "verify", "portal", "webmail", "payment", "cloud", "service",
          "support", "office", "docs", "wallet", "bank", "auth", "cdn", "sync", "mail", "track")
_TLDS = ("com", "net", "org", "info", "xyz", "top", "ru", "biz", "online", "site")
_BAD_NAMES = {"ip": "999.12.0.{i}", "domain": "bad domain {i}!", "hash": "zz{i}-not-hex", "url": "not a url {i}",
              "vulnerability": "VULN-{i}"}
_NAME_MARK, _TIME_MARK = "\x00N\x00", "\x00T\x00"
_CHUNK_ROWS = 500
_KEEP_COMPRESSED = 128 << 20   # bytes of gzip bodies kept for the next request of the same list

# Defaults of a list; override per list with configure() or POST /_sandbox/recorded_future/lists.
DEFAULTS = {
    "rows": 50,              # data rows in the list
    "evidence": "2024",      # "2024" (10 keys), "2021" (no SourcesCount/SightingsCount), or "mixed"
    "ipv6_every": 0,         # every n-th row of an ip list is an IPv6 address
    "cidr_every": 0,         # every n-th row of an ip list is a CIDR range
    "bad_every": 0,          # every n-th row has a Name that is not valid for its type
    "all_bad": False,        # every row has an invalid Name
    "malformed_evidence_every": 0,  # every n-th row has EvidenceDetails that is not JSON
    "algorithm_column": "last",     # hash lists: "last" or "second" (both orders are seen)
    "content_encoding": False,      # answer Content-Encoding: gzip when the client accepts it
    "corrupt_gzip": False,          # gzip=true bodies are damaged in the middle
    "slow": 0.0,             # seconds to wait between body chunks
    "risk_floor": 65,        # the default list carries indicators scored 65 and up
    "header": "RiskString",  # the name of the RiskString column ("riskString" as in RF's Sentinel playbook)
    "v3_status": 0,          # Fusion files: the v3 endpoint answers this status (403, 404) instead of the file
}
_LIST_DEFAULTS = {"ip": {"rows": 60, "ipv6_every": 7, "cidr_every": 29}, "domain": {}, "hash": {"rows": 40},
                  "url": {"rows": 40}, "vulnerability": {"rows": 30},
                  UKRAINE_RUSSIA.format("ip"): {"rows": 40, "ipv6_every": 4, "evidence": "2021"},
                  UKRAINE_RUSSIA.format("domain"): {"rows": 20}, UKRAINE_RUSSIA.format("hash"): {"rows": 20},
                  UKRAINE_RUSSIA.format("url"): {"rows": 20},
                  # Another Fusion file of IPs, pulled by setting fusion_path; v3 does not serve it.
                  OTHER_FUSION: {"rows": 24, "ipv6_every": 6, "header": "riskString", "v3_status": 404}}


def _mix(i, seed):
    """Return a well-spread 32-bit number for row i (deterministic)."""
    x = fake.spread(i, seed, 0x9E3779B9)
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    return x ^ (x >> 13)


def _csv_escape(text):
    return text.replace('"', '""')


def _item_template(rule, generation, h):
    """Return one CSV-escaped EvidenceDetails item with placeholders for the indicator and the time."""
    name, label, crit_label, crit, text = rule
    evidence = text.replace("{name}", _NAME_MARK)
    source = _SOURCES[h % len(_SOURCES)]
    if generation == "2021":
        item = {"Rule": label, "CriticalityLabel": crit_label, "EvidenceString": evidence,
                "Sources": [source.split(":")[-1]], "Timestamp": _TIME_MARK, "Name": name, "MitigationString": "",
                "Criticality": float(crit)}
    else:
        item = {"Name": name, "EvidenceString": evidence, "CriticalityLabel": crit_label, "MitigationString": "",
                "Rule": label, "SourcesCount": 1.0, "Sources": [source], "Timestamp": _TIME_MARK,
                "SightingsCount": float(1 + h % 30), "Criticality": float(crit)}
    text = json.dumps(item)  # \u-escapes non-ASCII, as the real lists sometimes do
    return _csv_escape(text.replace("\\u0000N\\u0000", _NAME_MARK).replace("\\u0000T\\u0000", _TIME_MARK))


_PLACES = {"n": 0, "r": 1, "t": 2, "a": 3}   # the values of a row: name, risk, timestamp, algorithm
_PLACE = re.compile(r"%\((\w)\)[sd]|%%")


def _compiled(template):
    """Return a %-template of a line as (pieces, pick): its literal text with a slot between each two pieces, and a
    function picking the value of each slot from (name, risk, timestamp, algorithm); quicker than % for long lines."""
    pieces, order, at = [], [], 0
    text = []
    for match in _PLACE.finditer(template):
        text.append(template[at:match.start()])
        at = match.end()
        if match.group(1) is None:
            text.append("%")
            continue
        pieces.append("".join(text))
        text = []
        pieces.append(None)
        order.append(_PLACES[match.group(1)])
    text.append(template[at:])
    pieces.append("".join(text))
    pick = operator.itemgetter(*order) if len(order) > 1 else (lambda values: (values[order[0]],))
    return pieces, pick


class RiskList:
    """One deterministic list: the same options and version always give the same bytes."""

    def __init__(self, key, kind, version, options):
        self.key, self.kind, self.version = key, kind, version
        self.options = options
        self.seed = zlib.crc32(f"{key}|{version}".encode())
        self._set_rules(_RULES[kind])

    def _set_rules(self, rules):
        """Precompute every line this list can send, as %-templates: n name, t time, r risk, a algorithm."""
        self._lines = {}
        available = RULES_AVAILABLE[self.kind]
        for gen in ("2021", "2024"):
            for h in range(3):
                items = [_item_template(rule, gen, h).replace("%", "%%") for rule in rules]
                for first in range(len(items)):
                    for count in range(1, min(3, len(items)) + 1):
                        joined = ", ".join(items[(first + k) % len(items)] for k in range(count))
                        cell = ('{""EvidenceDetails"": [' + joined.replace(_NAME_MARK, "%(n)s")
                                .replace(_TIME_MARK, "%(t)s") + ']}')
                        self._lines[gen, h, first, count] = _compiled(
                            self._line(["%(n)s", "%(r)d", f"{count}/{available}", cell]))
        self._rule_count = len(rules)
        self._rules = tuple(rules)

    def _line(self, fields):
        """Return one CSV line of fields (already escaped), with the hash list's Algorithm column in its place."""
        if self.kind == "hash":
            fields = list(fields)
            fields.insert(1 if self.options["algorithm_column"] == "second" else 4, "%(a)s")
        return '"' + '","'.join(fields) + '"\n'

    def identity(self):
        """Return what decides the bytes of the list: its key, version, options and rules."""
        return self.key, self.kind, self.version, json.dumps(self.options, sort_keys=True), self._rules

    def etag(self, length=32, variant=""):
        """Return the list's etag; a variant (the gzip=true form) has its own, as another resource would."""
        digest = hashlib.sha256(json.dumps([self.key, self.version, self.options, variant], sort_keys=True).encode())
        return digest.hexdigest()[:length]

    def header(self):
        cols = ["Name", "Risk", self.options["header"], "EvidenceDetails"]
        if self.kind == "hash":
            cols.insert(1 if self.options["algorithm_column"] == "second" else 4, "Algorithm")
        return ",".join(f'"{c}"' for c in cols) + "\n"

    def name(self, i, h):
        o = self.options
        if o["all_bad"] or (o["bad_every"] and i % o["bad_every"] == o["bad_every"] - 1):
            return _BAD_NAMES[self.kind].format(i=i), None
        kind = self.kind
        if kind == "ip":
            if o["ipv6_every"] and i % o["ipv6_every"] == 1:
                groups = (0x2a02, 0xc000 + (h & 0xfff), (i >> 16) & 0xffff, i & 0xffff, self.seed & 0xffff)
                return fake.ipv6(groups, 1 + h % 250), None
            octet = _PUBLIC_OCTETS[i % len(_PUBLIC_OCTETS)]
            rest = fake.spread(i // len(_PUBLIC_OCTETS), offset=self.seed)
            if o["cidr_every"] and i % o["cidr_every"] == 2:
                return fake.cidr24(octet, rest), None
            return fake.ipv4(octet, rest), None
        if kind == "domain":
            return fake.domain(_WORDS[h % 20], _WORDS[(h >> 5) % 20], i, _TLDS[(h >> 10) % 10]), None
        if kind == "hash":
            algorithm = {8: "SHA-1", 9: "MD5"}.get(i % 10, "SHA-256")
            return fake.hash_hex(algorithm, b"%d-%d" % (self.seed, i)), algorithm
        if kind == "url":
            host = fake.domain(_WORDS[h % 20], _WORDS[(h >> 5) % 20], i // 3, _TLDS[(h >> 10) % 10])
            return fake.url(h & 1, host, _WORDS[(h >> 7) % 20], i, f"{_WORDS[(h >> 12) % 20]}.php"), None
        return fake.cve(i, 2014, 11, 1000), None

    def row(self, i):
        """Return data row i as one CSV line."""
        o = self.options
        h = _mix(i, self.seed)
        name, algorithm = self.name(i, h)
        generation = o["evidence"] if o["evidence"] != "mixed" else ("2021" if h & 2 else "2024")
        count = 1 + (h >> 3) % min(3, self._rule_count)
        first = (h >> 6) % self._rule_count
        floor = o["risk_floor"]
        values = (name, str(floor + (h >> 9) % (100 - floor)), _TIMESTAMPS[(h >> 4) % len(_TIMESTAMPS)],
                  algorithm or "SHA-256")
        if o["malformed_evidence_every"] and i % o["malformed_evidence_every"] == 0:
            # single quotes: not JSON (XSOAR's test body)
            pieces, pick = _compiled(self._line(["%(n)s", "%(r)d", f"{count}/{RULES_AVAILABLE[self.kind]}",
                                                 "{'EvidenceDetails': []}"]))
        else:
            pieces, pick = self._lines[generation, h % 3, first, count]
        pieces = pieces.copy()
        pieces[1::2] = pick(values)
        return "".join(pieces)

    def chunks(self):
        """Yield the CSV body in byte chunks of a few hundred rows."""
        yield self.header().encode("utf-8")
        rows = self.options["rows"]
        slow = float(self.options["slow"] or 0)
        row = self.row
        for start in range(0, rows, _CHUNK_ROWS):
            if slow:
                time.sleep(slow)
            yield "".join([row(i) for i in range(start, min(rows, start + _CHUNK_ROWS))]).encode("utf-8")


def _gzip_stream(chunks):
    """Yield chunks compressed as one gzip file (streamed, constant memory)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    for chunk in chunks:
        data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


def _corrupted(stream):
    """Yield a gzip body whose middle bytes are damaged (a fault; the list is built whole first)."""
    data = bytearray(b"".join(stream))
    middle = len(data) // 2
    for k in range(middle, min(len(data) - 8, middle + 64)):
        data[k] ^= 0x5A
    yield bytes(data)


def _rf_error(status, message):
    """Return the v2 API error envelope (reference section 5)."""
    trace = hashlib.md5(f"{status}{message}{time.time()}".encode()).hexdigest()[:16]
    return Response({"error": {"status": status, "message": message}, "traceId": trace}, status=status)


class RecordedFuture(Service):
    """Risk lists per type, Fusion files (v2 and v3) and risk rules, behind an X-RFToken check."""

    name = "recorded_future"
    TOKEN = TOKEN

    def reset(self):
        self._compressed = {}   # identity of a list -> its gzip body in pieces, oldest first
        self.tokens = {TOKEN}
        self.lists = {}
        self.versions = {}
        for key in _LIST_DEFAULTS:
            self.configure(key)

    # ---- control (tests, demo) ----
    def configure(self, key, **options):
        """Set a list's options (rows, evidence, ipv6_every, bad_every, ...); unknown options raise."""
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown list options: {', '.join(sorted(unknown))}")
        if key not in _LIST_DEFAULTS:
            raise ValueError(f"unknown list {key!r}; one of {', '.join(_LIST_DEFAULTS)}")
        with self.lock:
            self.lists[key] = {**DEFAULTS, **_LIST_DEFAULTS[key], **options}
            self.versions[key] = self.versions.get(key, 0) + 1

    def touch(self, key):
        """Publish a new version of a list: new content, new etag."""
        with self.lock:
            self.versions[key] = self.versions.get(key, 0) + 1

    def risk_list(self, key):
        with self.lock:
            kind = key if key in TYPES else key.rsplit("_", 1)[-1].split(".")[0]
            return RiskList(key, kind, self.versions[key], dict(self.lists[key]))

    @route("POST", r"^/_sandbox/recorded_future/lists$")
    def _configure_list(self, request):
        spec = request.json() or {}
        key = spec.pop("list", None) if isinstance(spec, dict) else None
        try:
            self.configure(key, **spec)
        except (TypeError, ValueError) as exc:
            return _rf_error(400, str(exc))
        return Response({"ok": True, "etag": self.risk_list(key).etag()}, status=201)

    @route("POST", r"^/_sandbox/recorded_future/touch$")
    def _touch_list(self, request):
        key = (request.json() or {}).get("list")
        if key not in self.lists:
            return _rf_error(404, f"unknown list {key!r}")
        self.touch(key)
        return Response({"ok": True, "etag": self.risk_list(key).etag()})

    @route("GET", r"^/_sandbox/recorded_future/lists$")
    def _show_lists(self, request):
        with self.lock:
            return Response({key: {**opts, "version": self.versions[key]} for key, opts in self.lists.items()})

    # ---- the API ----
    def _refused(self, request):
        token = request.headers.get("X-RFToken")
        if not token:
            return _rf_error(401, "Missing X-RFToken header")
        if token not in self.tokens:
            return _rf_error(401, "Invalid authentication token")
        return None

    def _body(self, request, rlist, content_type, extra_headers, allow_gzip_param):
        headers = dict(extra_headers)
        if request.method == "HEAD":
            return Response(b"", headers=headers, content_type=content_type)
        body = rlist.chunks()
        if allow_gzip_param and request.query.get("gzip", "").lower() == "true":
            stream = _gzip_stream(body)
            if rlist.options["corrupt_gzip"]:
                stream = _corrupted(stream)
            elif not rlist.options["slow"]:
                stream = self._kept(rlist, stream)
            return Response(stream, headers=headers, content_type="application/gzip")
        if rlist.options["content_encoding"] and "gzip" in (request.headers.get("Accept-Encoding") or ""):
            headers["Content-Encoding"] = "gzip"
            body = _gzip_stream(body)
        return Response(body, headers=headers, content_type=content_type)

    def _kept(self, rlist, stream):
        """Yield a compressed body: the one kept from an earlier request for the same list, else stream, kept at its
        end (a list is the same bytes for the same options and version; a million rows take 5 s to compress and
        44 MB kept)."""
        identity = rlist.identity()
        with self.lock:
            kept = self._compressed.get(identity)
        if kept is not None:
            yield from kept
            return
        pieces = []
        for piece in stream:
            pieces.append(piece)
            yield piece
        with self.lock:
            self._compressed[identity] = pieces
            while sum(len(p) for body in self._compressed.values() for p in body) > _KEEP_COMPRESSED:
                self._compressed.pop(next(iter(self._compressed)))

    @route("GET", r"^/v2/(?P<kind>ip|domain|hash|url|vulnerability)/risklist/?$")
    def risklist(self, request, kind):
        refused = self._refused(request)
        if refused:
            return refused
        fmt = request.query.get("format", "csv/splunk")
        if fmt != "csv/splunk":
            return _rf_error(400, f"format {fmt!r} is not served by this stand-in; use csv/splunk")
        rlist = self.risk_list(kind)
        name = request.query.get("list", "default") or "default"
        rule = next((r for r in _RULES[kind] if r[0] == name), None)
        if name == "large":
            rlist.options.update(rows=rlist.options["rows"] * 2, risk_floor=25)
        elif rule is not None:
            # A rule-named list: a quarter of the rows, all carrying that rule first.
            rlist.options["rows"] = max(1, rlist.options["rows"] // 4)
            rlist.key = f"{kind}:{name}"
            rlist._set_rules((rule,))
        # Any other name gives the default list (reference 3.1).
        # The compressed form is another body: it has its own etag (so a HEAD must ask for the same URL as the GET).
        gzipped = request.query.get("gzip", "").lower() == "true"
        return self._body(request, rlist, "text/plain;charset=utf-8", {"etag": rlist.etag(variant="gzip" * gzipped)},
                          True)

    @route("GET", r"^/v2/(?P<kind>ip|domain|hash|url|vulnerability)/riskrules/?$")
    def riskrules(self, request, kind):
        refused = self._refused(request)
        if refused:
            return refused
        results = [{"name": r[0], "description": r[1], "criticalityLabel": r[2], "criticality": r[3],
                    "relatedEntities": []} for r in _RULES[kind]]
        return Response({"data": {"results": results}, "counts": {"returned": len(results), "total": len(results)}})

    def _fusion(self, request, path, v3=False):
        refused = self._refused(request)
        if refused:
            return refused
        if not path:
            return _rf_error(400, "Missing required parameter: path")
        if not path.startswith("/"):
            path = "/" + path
        if path not in self.lists:
            return _rf_error(404, f"File not found: {path}")
        rlist = self.risk_list(path)
        if v3 and rlist.options["v3_status"]:
            return _rf_error(int(rlist.options["v3_status"]), f"Not available in Fusion v3: {path}")
        filename = path.rsplit("/", 1)[-1]
        headers = {"etag": rlist.etag(64), "last-modified": formatdate(1715245527 + 3600 * rlist.version, usegmt=True),
                   "content-disposition": f'attachment; filename="{filename}"'}
        return self._body(request, rlist, "text/csv;charset=utf-8", headers, False)

    @route("GET", r"^(?:/v2)?/fusion/files/?$")
    def fusion_v2(self, request):
        return self._fusion(request, request.query.get("path", ""))

    @route("GET", r"^/fusion/v3/files/(?P<encoded>[^/]+)$")
    def fusion_v3(self, request, encoded):
        return self._fusion(request, unquote(encoded), v3=True)


__all__ = ["RecordedFuture", "RiskList", "TOKEN", "TYPES", "UKRAINE_RUSSIA", "OTHER_FUSION", "DEFAULTS"]
