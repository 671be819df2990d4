"""Flashpoint stand-in: FP Tools REST v4 indicators (attribute documents, scroll, skip) and alerting v1 alerts, and the
same data through Ignite: technical-intelligence/v1 (attributes, scroll), alert-management/v1/notifications and the
IOC v2 API (technical-intelligence/v2/indicators)."""

import base64
import bisect
import calendar
import hashlib
import heapq
import itertools
import re
import threading
import time
import uuid
from urllib.parse import urlencode

from tq_conn_sandbox import fake
from tq_conn_sandbox.server import Response, Service, route

TOKEN = "fp-sandbox-token-6f1d2c"
TOKEN_BASE64 = base64.b64encode(TOKEN.encode()).decode()
INDICATORS = "/api/v4/indicators"
ALERTS = "/api/alerting/v1/alerts"
IGNITE_INDICATORS = "/technical-intelligence/v1"
NOTIFICATIONS = "/alert-management/v1/notifications"
IOC_V2 = "/technical-intelligence/v2/indicators"
MAX_NOTIFICATIONS = 5000   # the Splunk SOAR app's limit of size on notifications
RESULT_WINDOW = 10_000   # skip + limit past this is refused, like the Elasticsearch result window behind the API
MAX_LIMIT = 1000
MAX_SCROLLS = 1000

DEFAULT_TYPES = ("domain", "ip-dst", "ip-dst|port", "ip-src", "md5", "sha1", "sha256", "url", "email-src", "filename")
CATEGORY = {"domain": "Network activity", "ip-dst": "Network activity", "ip-dst|port": "Network activity",
            "ip-src": "Network activity", "url": "Network activity", "email-src": "Payload delivery",
            "filename": "Artifacts dropped"}
MALWARE = ("quasar", "emotet", "qakbot", "cobaltstrike", "redline", "agenttesla", "lokibot")
TAGS = ("event:analysis", "file_type:exe", "os:windows", "source:virustotal", "type:trojan", "type:loader",
        "source:honeypot", "actor:ta505")
ATTACK = (("T1116", "Code Signing"), ("T1106", "Execution through API"), ("T1057", "Process Discovery"),
          ("T1060", "Registry Run Keys / Start Folder"), ("T1055", "Process Injection"))
TACTICS = ("Defense Evasion", "Execution", "Discovery", "Persistence", "Privilege Escalation")
# The IOC v2 type of each MISP attribute type served (IOC v2 types: domain, extracted_config, file, ipv4, ipv6, url;
# email as OpenCTI reads it). An IOC v2 indicator holds the value alone: ip-dst|port gives its address.
V2_TYPE = {"domain": "domain", "hostname": "domain", "ip-dst": "ipv4", "ip-src": "ipv4", "ip-dst|port": "ipv4",
           "md5": "file", "sha1": "file", "sha256": "file", "filename": "file", "url": "url", "email-src": "email"}
SCORES = ("malicious", "suspicious", "informational")


def _fpid(seed):
    """Return a 22-character URL-safe id like Flashpoint's fpids."""
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()[:16]).decode().rstrip("=")


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _iso_micro(epoch, zone=""):
    """Return epoch seconds as IOC v2 and notifications write times: 2025-01-02T01:00:00.000001 (zone: "Z" or "")."""
    whole = int(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{min(999_999, round((epoch - whole) * 1e6)):06d}{zone}"


def _window(query, size, since_key, until_key):
    """Return (size, since, until) of an alerts query (epoch seconds: since 0 and until now when not given);
    raise ValueError for a size or time that does not read."""
    now = time.time()
    return (int(query.get("size", size)), _when(query[since_key], now) if query.get(since_key) else 0,
            _when(query[until_key], now) if query.get(until_key) else now)


def _when(text, now):
    """Return epoch seconds of an ISO time (…Z) or a relative form like 1h, 3d, 30m; raise ValueError."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        return now - int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return calendar.timegm(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ"))


def indicator_value(type_, i):
    """Return a realistic value of an indicator type, unique per i."""
    digest = hashlib.sha256(f"{type_}:{i}".encode()).digest()
    ip = fake.ipv4(100 + i % 100, i if i & 255 else i + 1)   # a last octet of 0 would be a network address
    malware = MALWARE[i % len(MALWARE)]
    return {
        "domain": f"{malware}-c2-{i}.example.net", "hostname": f"mail{i}.example.org",
        "ip-dst": ip, "ip-src": ip, "ip-dst|port": f"{ip}|{[80, 443, 8080, 4444][i % 4]}",
        "md5": fake.hash_hex("MD5", digest), "sha1": fake.hash_hex("SHA-1", digest), "sha256": digest.hex(),
        "url": fake.url(False, f"{malware}-{i}.example.com", f"gate.php?id={i}"),
        "email-src": fake.email(f"billing{i}", f"invoices-{i % 50}.example.com"), "filename": f"invoice_{i}.exe",
    }.get(type_, f"{type_}-value-{i}")


def attribute(i, type_, indexed_at, revision=0):
    """Return an attribute document shaped like GET /api/v4/indicators/attribute (reference 3.4, 3.5)."""
    fpid = _fpid(f"attribute:{i}")
    event = i // 4
    event_fpid = _fpid(f"event:{event}")
    created = indexed_at - 100 - (i % 50)
    malware = MALWARE[event % len(MALWARE)]
    tags = [{"is_custom_galaxy": False, "is_galaxy": False, "local": 0, "name": name, "numerical_value": None}
            for name in ("event:analysis", f"malware:{malware}") + TAGS[1 + event % 5: 3 + event % 4]]
    attack = ATTACK[event % len(ATTACK)]
    ev = {"Tag": tags, "attack_ids": [attack[0]], "attribute_count": "4",
          "date": time.strftime("%Y-%m-%d", time.gmtime(created)), "event_creator_email": "info@flashpoint-intel.com",
          "fpid": event_fpid, "href": f"https://fp.tools/api/v4/indicators/event/{event_fpid}",
          "info": f'Analysis: {malware} "{_fpid(str(event))[:15]}" [{_iso(created).replace("T", " ")[:19]}]',
          "publish_timestamp": str(created + 5), "timestamp": str(created),
          "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"event:{event}"))}
    if event % 3 == 0:
        tags.append({"is_custom_galaxy": False, "is_galaxy": True, "local": 0, "numerical_value": None,
                     "name": f'misp-galaxy:mitre-enterprise-attack-attack-pattern="{attack[1]} - {attack[0]}"'})
        ev["Galaxy"] = [{"GalaxyCluster": [{"authors": ["MITRE"], "galaxy_id": "22", "local": False,
                                            "meta": {"external_id": [attack[0]],
                                                     "refs": [f"https://attack.mitre.org/wiki/Technique/{attack[0]}"]},
                                            "type": "mitre-enterprise-attack-attack-pattern",
                                            "value": f"{attack[1]} - {attack[0]}"}],
                         "description": "ATT&CK Tactic", "name": "Enterprise Attack - Attack Pattern",
                         "type": "mitre-enterprise-attack-attack-pattern", "version": "5"}]
    if revision:
        ev["info"] += f" (revision {revision})"
        tags.append({"is_custom_galaxy": False, "is_galaxy": False, "local": 0, "name": "status:updated",
                     "numerical_value": None})
    doc = {
        "Event": ev,
        "_meta": {"enrichments": {"v1": {"urls": {"enriched_at": _iso(indexed_at), "found": i % 2, "version": 1}}},
                  "size": {"base_document": 5000 + i % 900, "enriched_document": 6000 + i % 900}},
        "basetypes": ["indicator", "indicator_attribute"],
        "category": CATEGORY.get(type_, "Payload delivery"),
        "enrichments": {"card-numbers": {"_enriched_at": _iso(indexed_at), "_version": 0}},
        "first_observed_at": {"date-time": _iso(created).replace("Z", "+00:00"), "raw": str(created),
                              "timestamp": created},
        "first_seen": None, "fpid": fpid,
        "header_": {"indexed_at": indexed_at, "ingested_at": indexed_at - 3, "is_visible": True,
                    "observed_at": indexed_at - 3, "pipeline_duration": 1 + i % 3,
                    "source": "urn:fp:resource:qualified:indicator"},
        "href": f"https://fp.tools/api/v4/indicators/attribute/{fpid}",
        "last_seen": None, "sort_date": _iso(indexed_at - 20), "timestamp": str(created - 20), "type": type_,
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"attribute:{i}")),
        "value": {"comment": "", type_: indicator_value(type_, i)},
    }
    if i % 2 == 0:
        doc["malware_description"] = f"<p>\"{malware}\" is a remote access trojan seen in the wild.</p>"
    if i % 5 == 0:
        doc["reports"] = [{"html": f"https://fp.tools/home/intelligence/reports/report/{_fpid(str(event))}"}]
    return doc


def alert(i, ts):
    """Return an alert like GET /api/alerting/v1/alerts: a chan comment (even i) or a data exposure (odd i)."""
    alert_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"alert:{i}"))
    keyword = ("user manager", "onelogin", "acme corp", "vpn.acme.example")[i % 4]
    kw = {"keyword_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyword:{keyword}")), "keyword_text": f'"{keyword}"'}
    created = int(ts) - 9000
    if i % 2 == 0:
        source = {"basetypes": ["conversation", "chan", "web", "comment", "message"],
                  "body": {"text/plain": f">>8209{i:04d} the {keyword} shows a path that is not actually there."},
                  "container": {"basetypes": ["conversation", "chan", "web", "container", "thread"],
                                "container": {"title": "/g/ - Technology"}, "fpid": _fpid(f"thread:{i // 3}")},
                  "created_at": {"date-time": _iso(created).replace("Z", "+00:00"),
                                 "raw": _iso(created).replace("T", " ").replace("Z", "+00:00"), "timestamp": created},
                  "first_observed_at": {"date-time": _iso(ts - 30).replace("Z", "+00:00"), "raw": f"{ts - 30:.6f}",
                                        "timestamp": int(ts - 30)},
                  "fpid": _fpid(f"post:{i}"), "native_id": str(82090000 + i),
                  "last_observed_at": {"date-time": _iso(ts + 3600).replace("Z", "+00:00"), "raw": f"{ts + 3600:.6f}",
                                       "timestamp": int(ts + 3600)},
                  "site": {"title": "4chan"}, "site_actor": {"names": {"aliases": ["Anonymous (None)"],
                                                                       "handle": "Anonymous (None)"}},
                  "sort_date": _iso(created)}
        if i % 4 == 0:
            source["parent_message"] = {"basetypes": ["conversation", "chan", "web", "comment", "message"],
                                        "fpid": _fpid(f"post:{i - 1}"), "native_id": str(82090000 + i - 1),
                                        "type": "parent_comment"}
        basetypes, tags = ["chan", "comment", "conversation", "message", "web"], {}
    else:
        repo = f"{keyword.split()[0].replace('.', '-')}-sdk-{i}"
        source = {"basetypes": ["code", "file", "github", "repository"],
                  "file": f"src/main/resources/{repo}.properties",
                  "fpid": _fpid(f"file:{i}"), "owner": "acme-dev", "repo": repo,
                  "snippet": f"Contribute to acme-dev/{repo} development by creating an account on GitHub.",
                  "source": "github", "url": f"https://github.com/acme-dev/{repo}/blob/master/src/{repo}.properties"}
        basetypes, tags = ["code", "file", "github", "repository"], {"flagged": None}
    return {"alert_id": alert_id, "fpid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"resource:{i}")), "keyword": kw,
            "highlights": [f"The <x-fp-highlight>{keyword}</x-fp-highlight> matched."], "basetypes": basetypes,
            "ts": ts, "tags": tags, "source": source}


def indicator_v2(doc):
    """Return the IOC v2 document of an attribute document, shaped like the Cortex XSOAR Ignite fixture
    (indicator_reputation.json) and the fields OpenCTI's connector reads (reference, 2026 corrections)."""
    misp, fpid = doc["type"], doc["fpid"]
    value = doc["value"][misp].split("|")[0]
    modified, created = _iso_micro(doc["header_"]["indexed_at"]), _iso_micro(doc["first_observed_at"]["timestamp"])
    tags = [t["name"] for t in doc["Event"]["Tag"] if not t["is_galaxy"]]
    attack = doc["Event"]["attack_ids"][0]
    i = int(hashlib.sha256(fpid.encode()).hexdigest()[:4], 16)
    found = {
        "id": fpid, "type": V2_TYPE.get(misp, misp), "value": value,
        "href": f"https://api.flashpoint.io/technical-intelligence/v2/indicators/{fpid}", "entity_type": "indicator",
        "score": {"value": SCORES[i % 3], "last_scored_at": modified},
        "modified_at": modified, "created_at": created, "last_seen_at": modified, "sort_date": modified,
        "platform_urls": {"ignite": f"https://app.flashpoint.io/cti/malware/iocs/{fpid}"},
        "apt_description": "N/A", "external_references": [],
        "malware_description": doc.get("malware_description", ""),
        "mitre_attack_ids": [{"id": attack, "name": dict(ATTACK)[attack],
                              "tactic": TACTICS[[a for a, _ in ATTACK].index(attack)]}],
        "sightings": [{"source": "flashpoint_detection", "sighted_at": created, "tags": tags, "related_iocs": []}],
        "historical_tags": tags,
        "reports": [{"html": r["html"], "json": "https://api.flashpoint.io/finished-intelligence/v1/reports/"
                                                + r["html"].rsplit("/", 1)[1]}
                    for r in doc.get("reports", ())],
    }
    if misp in ("md5", "sha1", "sha256"):
        found["hashes"] = {misp: value}
    return found


def notification(item):
    """Return an alert as Ignite's alert-management/v1/notifications hands it out: the Cortex XSOAR Ignite fixture
    alert_list_success.json (id, resource, reason, created_at, source, ...) built from the v4 alert."""
    resource = dict(item["source"])
    resource["id"] = resource.pop("fpid")
    github = resource.get("source") == "github"
    if not github:   # a post carries the title of its thread
        resource["title"] = resource["container"]["container"]["title"]
    keyword = item["keyword"]
    text = item["highlights"][0].replace("x-fp-highlight", "mark")
    return {
        "id": item["alert_id"], "resource": resource,
        "reason": {"id": keyword["keyword_id"], "name": f"{keyword['keyword_text'].strip(chr(34))} search",
                   "text": keyword["keyword_text"], "origin": "searches",
                   "details": {"sources": ["data_exposure__github"] if github else ["communities"], "params": {}},
                   "entity": {"id": "000000000000000001", "name": "ACME Corp", "type": "organization"}},
        "status": None, "generated_at": _iso_micro(item["ts"] - 2, "Z"), "created_at": _iso_micro(item["ts"], "Z"),
        "tags": item["tags"], "highlights": {"snippet" if github else "body.text/plain": [text]},
        "highlight_text": text, "data_type": "github" if github else "chan", "parent_data_type": None,
        "source": "data_exposure__github" if github else "communities", "is_read": False,
    }


def _error(status, detail):
    return Response({"detail": detail}, status=status)


class Flashpoint(Service):
    """FP Tools REST v4 indicators under /api/v4/indicators and alerting v1 under /api/alerting/v1; the same data
    through Ignite under technical-intelligence/v1, technical-intelligence/v2/indicators (IOC v2) and
    alert-management/v1/notifications, at the root of the same host.

    Indicators: `count` generated attributes spread over `days` before the reset (type i % len(types)), served
    from arithmetic, never held in memory; publish() and update() add documents indexed now. Alerts likewise.
    """

    name = "flashpoint"

    def reset(self):
        self.token = self.options.get("token", TOKEN)
        self.ignore_until = False    # True: answer like a server that ignores updated_until (reference 3.3)
        # Misbehaviour after the first page of alerts: repeat_next_link hands out the same next link again and
        # again; fail_later_pages (a status) answers every page after the first with that error.
        # repeat_scroll_page hands out the first page of a scroll session again instead of the next one.
        self.switches = {"repeat_next_link": False, "fail_later_pages": None, "repeat_scroll_page": False}
        self.started = int(time.time())
        self.scrolls = {}            # scroll_id -> {"items": iterator, "limit": n}
        self.alert_scrolls = {}      # scroll_id (v4) or cursor (notifications) -> offset into the alerts of the window
        self._serial = itertools.count(1)
        self.configure(count=int(self.options.get("count", 600)), alerts=int(self.options.get("alerts", 40)))

    # ---- control ---------------------------------------------------------------------------------------------

    def configure(self, count=600, types=DEFAULT_TYPES, days=10, alerts=40, end=None):
        """Replace the data: count attributes of types and `alerts` alerts, indexed evenly over days before end."""
        with self.lock:
            self.count, self.types = int(count), tuple(types)
            self.end = int(end if end is not None else self.started - 3600)
            self.span = int(days * 86400)
            self.alert_count = int(alerts)
            self.extra = []          # [(indexed_at, seq, doc)] published or updated documents, kept sorted
            self.replaced = set()    # generated indexes whose document was updated (now in extra)
            self.extra_alerts = []   # [(ts, alert)]
            self.revisions = {}

    def _indexed_at(self, i):
        return self.end - self.span + (i * self.span) // max(self.count, 1)

    def publish(self, type_, count=1, indexed_at=None):
        """Add count new attributes of type_ indexed now (or at indexed_at); return their documents."""
        with self.lock:
            at = int(time.time()) if indexed_at is None else int(indexed_at)
            docs = [attribute(10_000_000 + next(self._serial), type_, at) for _ in range(count)]
            self._add(at, *docs)
            return docs

    def update(self, type_, count=1, indexed_at=None):
        """Re-index the first count generated attributes of type_ now, with a changed Event; return them."""
        with self.lock:
            at = int(time.time()) if indexed_at is None else int(indexed_at)
            if type_ not in self.types:
                return []
            j = self.types.index(type_)
            docs = []
            for i in range(j, self.count, len(self.types)):
                if len(docs) == count:
                    break
                if i in self.replaced:
                    continue
                self.replaced.add(i)
                self.revisions[i] = self.revisions.get(i, 0) + 1
                docs.append(attribute(i, type_, at, revision=self.revisions[i]))
            self._add(at, *docs)
            return docs

    def _add(self, at, *docs):
        self.extra.extend((at, next(self._serial), doc) for doc in docs)
        self.extra.sort(key=lambda item: (item[0], item[1]))

    def raise_alerts(self, count=1, ts=None):
        """Add count new alerts created now (or at ts); return them."""
        with self.lock:
            out = []
            for _ in range(count):
                i = 1_000_000 + next(self._serial)
                item = alert(i, float(ts) if ts is not None else time.time())
                self.extra_alerts.append((item["ts"], item))
                out.append(item)
            self.extra_alerts.sort(key=lambda pair: pair[0])
            return out

    @property
    def bearer_token_base64(self):
        return base64.b64encode(self.token.encode()).decode()

    @route("POST", r"^/_sandbox/flashpoint/indicators$")
    def _configure(self, request):
        spec = request.json() or {}
        self.configure(count=spec.get("count", 600), types=spec.get("types", DEFAULT_TYPES),
                       days=spec.get("days", 10), alerts=spec.get("alerts", 40))
        return Response({"count": self.count, "types": list(self.types), "alerts": self.alert_count})

    @route("POST", r"^/_sandbox/flashpoint/publish$")
    def _publish(self, request):
        spec = request.json() or {}
        docs = self.publish(spec.get("type", "domain"), int(spec.get("count", 1)))
        return Response({"published": [d["fpid"] for d in docs]}, status=201)

    @route("POST", r"^/_sandbox/flashpoint/update$")
    def _update(self, request):
        spec = request.json() or {}
        docs = self.update(spec.get("type", "domain"), int(spec.get("count", 1)))
        return Response({"updated": [d["fpid"] for d in docs]})

    @route("POST", r"^/_sandbox/flashpoint/alerts$")
    def _alerts(self, request):
        spec = request.json() or {}
        return Response({"raised": [a["alert_id"] for a in self.raise_alerts(int(spec.get("count", 1)))]}, status=201)

    @route("POST", r"^/_sandbox/flashpoint/switches$")
    def _switches(self, request):
        spec = request.json() or {}
        with self.lock:
            self.ignore_until = bool(spec.pop("ignore_until", self.ignore_until))
            self.switches.update({k: v for k, v in spec.items() if k in self.switches})
            return Response({"ignore_until": self.ignore_until, **self.switches})

    @route("GET", r"^/_sandbox/flashpoint$")
    def _info(self, request):
        return Response({"token": self.token, "bearer_token_base64": self.bearer_token_base64, "count": self.count,
                         "types": list(self.types), "alerts": self.alert_count, "published": len(self.extra),
                         "indicators_url": f"{self.url}/api/v4", "alerts_url": f"{self.url}/api/alerting/v1",
                         "ignite_url": self.url})

    # ---- API ---------------------------------------------------------------------------------------------------

    def _refused(self, request):
        header = request.headers.get("Authorization") or ""
        if not header:
            return _error(401, "Authentication credentials were not provided.")
        if request.bearer() != self.token:
            return _error(401, "Invalid or expired API token.")
        return None

    def _matching(self, types, since, until, reverse=False):
        """Yield (indexed_at, index or None, doc or None) of the attributes of types indexed in [since, until)."""
        with self.lock:
            count, k, replaced = self.count, len(self.types), frozenset(self.replaced)
            extra = [item for item in self.extra if since <= item[0] < until and item[2]["type"] in types]
            lo = bisect.bisect_left(range(count), since, key=self._indexed_at)
            hi = bisect.bisect_left(range(count), until, key=self._indexed_at)
            ranges = [range(lo + (j - lo) % k, hi, k) for j, t in enumerate(self.types) if t in types]
        generated = heapq.merge(*(((self._indexed_at(i), i, None) for i in r if i not in replaced) for r in ranges),
                                key=lambda item: item[:2])
        published = ((at, -1, doc) for at, _, doc in extra)
        items = heapq.merge(generated, published, key=lambda item: item[0])
        if reverse:
            items = reversed(list(items))
        return items

    def _doc(self, item):
        at, i, doc = item
        return doc if doc is not None else attribute(i, self.types[i % len(self.types)], at)

    @route("GET", r"^(?:/api/v4/indicators|/technical-intelligence/v1)/attribute$")
    def attributes(self, request):
        refused = self._refused(request)
        if refused:
            return refused
        q = request.query
        now = int(time.time())
        try:
            limit = int(q.get("limit", 10))
            skip = int(q.get("skip", 0))
            since = _when(q["updated_since"], now) if q.get("updated_since") else 0
            until = _when(q["updated_until"], now) if q.get("updated_until") else now + 1
        except ValueError:
            return _error(400, "limit and skip must be integers; updated_since and updated_until YYYY-MM-DDTHH:MM:SSZ.")
        if self.ignore_until:
            until = now + 1
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}.")
        if skip < 0:
            return _error(400, "skip must not be negative.")
        types = set(t for t in q.get("types", "").split(",") if t) or set(self.types) | {
            d["type"] for _, _, d in self.extra}
        order = q.get("sort_timestamp", "asc").lower()
        if order not in ("asc", "desc"):
            return _error(400, "sort_timestamp must be asc or desc.")
        items = self._matching(types, since, until, reverse=order == "desc")
        if q.get("scroll", "").lower() in ("true", "1", "yes"):
            scroll_id = _fpid(f"scroll:{time.time()}:{next(self._serial)}")
            items = iter(items)
            page = [self._doc(item) for item in itertools.islice(items, limit)]
            with self.lock:
                self.scrolls[scroll_id] = {"items": items, "limit": limit, "lock": threading.Lock(), "first": page}
                while len(self.scrolls) > MAX_SCROLLS:
                    self.scrolls.pop(next(iter(self.scrolls)))
            return Response({"results": page, "scroll_id": scroll_id})
        if skip + limit > RESULT_WINDOW:
            return _error(400, f"Result window is too large, skip + limit must be less than or equal to: "
                               f"[{RESULT_WINDOW}] but was [{skip + limit}].")
        page = [self._doc(item) for item in itertools.islice(items, skip, skip + limit)]
        total = sum(1 for _ in self._matching(types, since, until))
        return Response(page, headers={"x-fp-total-hits": str(total)})

    @route("POST", r"^(?:/api/v4/indicators|/technical-intelligence/v1)/scroll$")
    def scroll(self, request):
        refused = self._refused(request)
        if refused:
            return refused
        scroll_id = (request.json() or {}).get("scroll_id")
        with self.lock:
            session = self.scrolls.get(scroll_id)
        if session is None:
            return _error(404, "No search context found for the scroll_id (expired or closed).")
        if self.switches["repeat_scroll_page"]:
            return Response({"results": session["first"], "scroll_id": scroll_id})
        with session["lock"]:
            page = [self._doc(item) for item in itertools.islice(session["items"], session["limit"])]
        return Response({"results": page, "scroll_id": scroll_id})

    @route("DELETE", r"^(?:/api/v4/indicators|/technical-intelligence/v1)/scroll$")
    def close_scroll(self, request):
        refused = self._refused(request)
        if refused:
            return refused
        scroll_id = (request.json() or {}).get("scroll_id")
        with self.lock:
            found = self.scrolls.pop(scroll_id, None)
        if found is None:
            return _error(404, "No search context found for the scroll_id.")
        return Response({"succeeded": True})

    def _alert_at(self, i):
        return float(self.end - self.span + (i * self.span) // max(self.alert_count, 1)) + (i % 997) / 1000.0

    def _alerts_in(self, since, until):
        """Return the alerts created in [since, until], oldest first (built on demand)."""
        with self.lock:
            count = self.alert_count
            lo = bisect.bisect_left(range(count), since, key=self._alert_at)
            hi = bisect.bisect_right(range(count), until, key=self._alert_at)
            extra = [a for ts, a in self.extra_alerts if since <= ts <= until]
        return heapq.merge(((self._alert_at(i), i) for i in range(lo, hi)), ((a["ts"], a) for a in extra),
                           key=lambda pair: pair[0])

    def _scrolled(self, token, what):
        """Return (offset, None) where a scroll id or cursor handed out before goes on (0 without one), or (None,
        the error answer) when fail_later_pages refuses later pages or the token is not known."""
        if not token:
            return 0, None
        if self.switches["fail_later_pages"]:
            status = int(self.switches["fail_later_pages"])
            return None, _error(status, f"Page refused by the sandbox switch fail_later_pages (HTTP {status}).")
        with self.lock:
            offset = self.alert_scrolls.get(token)
        return (offset, None) if offset is not None else (None, _error(400, f"Invalid or expired {what}."))

    def _remember(self, token, offset):
        """Hand out a scroll id or cursor going on at offset (the oldest forgotten past MAX_SCROLLS)."""
        with self.lock:
            self.alert_scrolls[token] = offset
            while len(self.alert_scrolls) > MAX_SCROLLS:
                self.alert_scrolls.pop(next(iter(self.alert_scrolls)))

    @route("GET", r"^/api/alerting/v1/alerts$")
    def alerts(self, request):
        refused = self._refused(request)
        if refused:
            return refused
        q = request.query
        try:
            size, since, until = _window(q, 50, "since", "until")
        except ValueError:
            return _error(400, "size must be an integer; since and until YYYY-MM-DDTHH:MM:SSZ.")
        if not 1 <= size <= 100:
            return _error(400, "size must be between 1 and 100.")
        offset, refused = self._scrolled(q.get("scroll_id"), "scroll_id")
        if refused:
            return refused
        page = []
        for ts, item in itertools.islice(self._alerts_in(since, until), offset, offset + size + 1):
            page.append(item if isinstance(item, dict) else alert(item, ts))
        window = {"since": q.get("since", _iso(since)), "size": size, "until": q.get("until", _iso(until))}
        body = {"data": page[:size], "count": len(page[:size]),
                "links": {"self": {"href": "/v1/alerts?" + urlencode(
                    {**({"scroll_id": q["scroll_id"]} if q.get("scroll_id") else {}), **window}, safe=":")}}}
        if len(page) > size:
            cursor = hashlib.md5(f"{time.time()}:{next(self._serial)}".encode()).hexdigest()
            scroll_id = f"{cursor}${page[size - 1]['ts']}"
            if self.switches["repeat_next_link"]:
                scroll_id = "0" * 32 + "$0"
            self._remember(scroll_id, offset + size)
            body["links"]["next"] = {"href": "/v1/alerts?" + urlencode({"scroll_id": scroll_id, **window})}
        return Response(body)

    @route("GET", r"^/alert-management/v1/notifications$")
    def notifications(self, request):
        """Ignite's alerts: created_after, created_before (ISO with Z: an offset such as +00:00 is refused, as OpenCTI
        warns), size, sort (created_at:desc by default, as the Splunk SOAR app notes) and cursor; the body is
        {items, pagination: {next: an absolute URL with the cursor, or null}}."""
        refused = self._refused(request)
        if refused:
            return refused
        q = request.query
        try:
            size, since, until = _window(q, 25, "created_after", "created_before")
        except ValueError:
            return _error(400, "size must be an integer; created_after and created_before YYYY-MM-DDTHH:MM:SSZ.")
        order = q.get("sort", "created_at:desc")
        if not 1 <= size <= MAX_NOTIFICATIONS or order not in ("created_at:asc", "created_at:desc"):
            return _error(422, f"size must be between 1 and {MAX_NOTIFICATIONS}; sort created_at:asc or :desc.")
        offset, refused = self._scrolled(q.get("cursor"), "cursor")
        if refused:
            return refused
        found = list(self._alerts_in(since, until))
        if order == "created_at:desc":
            found.reverse()
        page = [notification(item if isinstance(item, dict) else alert(item, ts))
                for ts, item in found[offset:offset + size]]
        body = {"items": page, "pagination": {"next": None}}
        if offset + size < len(found):
            cursor = f"{found[offset + size - 1][0]:.6f}-{next(self._serial)}"
            if self.switches["repeat_next_link"]:
                cursor = "0.0-0"
            self._remember(cursor, offset + size)
            echo = {k: v for k, v in q.items() if k != "cursor"}
            body["pagination"]["next"] = f"{self.url}{NOTIFICATIONS}?" + urlencode({**echo, "cursor": cursor})
        return Response(body)

    @route("GET", r"^/technical-intelligence/v2/indicators$")
    def indicators_v2(self, request):
        """IOC v2: ioc_types, modified_after (inclusive), modified_before, sort (modified_at:asc|desc), size (at
        most 1000), from; from + size past the 10,000 result window is refused; {items, pagination: {next}}."""
        refused = self._refused(request)
        if refused:
            return refused
        q = request.query
        now = int(time.time())
        try:
            size, start = int(q.get("size", 10)), int(q.get("from", 0))
            since = _when(q["modified_after"], now) if q.get("modified_after") else 0
            until = _when(q["modified_before"], now) if q.get("modified_before") else now + 1
        except ValueError:
            return _error(400, "size and from must be integers; modified_after and modified_before ISO times.")
        order = q.get("sort", "modified_at:desc")
        if not 1 <= size <= MAX_LIMIT or start < 0 or order not in ("modified_at:asc", "modified_at:desc"):
            return _error(422, f"size must be 1 to {MAX_LIMIT}, from not negative, sort modified_at:asc or :desc.")
        if start + size > RESULT_WINDOW:
            return _error(400, f"Result window is too large, from + size must be less than or equal to: "
                               f"[{RESULT_WINDOW}] but was [{start + size}].")
        wanted = set(t for t in q.get("ioc_types", "").split(",") if t)
        known = set(self.types) | {d["type"] for _, _, d in self.extra}
        types = {t for t in known if not wanted or V2_TYPE.get(t, t) in wanted}
        items = self._matching(types, since, until, reverse=order == "modified_at:desc")
        page = [indicator_v2(self._doc(item)) for item in itertools.islice(items, start, start + size)]
        following = None
        if len(page) == size:
            following = f"{self.url}{IOC_V2}?" + urlencode({**q, "from": start + size})
        return Response({"items": page, "pagination": {"next": following}})


__all__ = ["Flashpoint", "TOKEN", "TOKEN_BASE64", "attribute", "alert", "indicator_v2", "notification",
           "indicator_value", "DEFAULT_TYPES", "V2_TYPE"]
