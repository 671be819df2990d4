"""Stand-in for the CTCI CEWL API: GET /api/v1/cewl with x-api-key, the inferred contract of reference ctci.md 7."""

import datetime
import email.utils
import json

from tq_conn_sandbox import fake
from tq_conn_sandbox.server import Response, Service, error, route

# Tokens the stand-in knows: subscribed (the whole CEWL), unsubscribed (the restricted list), disabled (403).
TOKEN = "ctci-sandbox-token"
UNSUBSCRIBED_TOKEN = "ctci-sandbox-unsubscribed"
DISABLED_TOKEN = "ctci-sandbox-disabled"

# The restricted list: CVEs of the October 2020 NSA advisory on Chinese state-sponsored actors (reference 1).
NSA_2020 = {"CVE-2019-11510", "CVE-2020-5902", "CVE-2019-19781", "CVE-2019-0708", "CVE-2020-1472", "CVE-2020-0688",
            "CVE-2020-1350", "CVE-2020-15505", "CVE-2019-3396", "CVE-2020-10189"}

# (cve, base_score, base_severity, cwe, vendor, product, vulnerability_type, published, added, description)
_CURATED = (
    ("CVE-2014-6271", 9.8, "Critical", "CWE-78", "gnu", "bash", "remote code execution", "2014-09-24", "2020-03-02",
     "GNU Bash processes trailing strings after function definitions in environment variables (Shellshock)"),
    ("CVE-2017-0144", 8.8, "High", "CWE-20", "microsoft", "windows smbv1", "remote code execution", "2017-03-17",
     "2020-03-02", "the SMBv1 server lets remote attackers execute code via crafted packets (EternalBlue)"),
    ("CVE-2017-11882", 7.8, "High", "CWE-119", "microsoft", "office", "memory corruption", "2017-11-15", "2020-03-09",
     "Microsoft Office Equation Editor memory corruption allows code execution via a crafted document"),
    ("CVE-2018-13379", 9.8, "Critical", "CWE-22", "fortinet", "fortios", "path traversal", "2019-06-04", "2020-04-14",
     "path traversal in the FortiOS SSL VPN web portal lets an unauthenticated attacker download system files"),
    ("CVE-2019-0708", 9.8, "Critical", "CWE-416", "microsoft", "remote desktop services", "remote code execution",
     "2019-05-16", "2020-04-20", "remote code execution in Remote Desktop Services before authentication (BlueKeep)"),
    ("CVE-2019-3396", 9.8, "Critical", "CWE-22", "atlassian", "confluence server", "remote code execution",
     "2019-03-25", "2020-05-04", "server-side template injection in the Widget Connector macro of Confluence Server"),
    ("CVE-2019-11510", 10.0, "Critical", "CWE-22", "pulse secure", "pulse connect secure", "arbitrary file read",
     "2019-05-08", "2020-05-18", "an unauthenticated remote attacker can send a crafted URI to read arbitrary files"),
    ("CVE-2019-19781", 9.8, "Critical", "CWE-22", "citrix", "application delivery controller", "directory traversal",
     "2019-12-27", "2020-06-01", "directory traversal in Citrix ADC and Gateway leads to remote code execution"),
    ("CVE-2020-0688", 8.8, "High", "CWE-287", "microsoft", "exchange server", "remote code execution", "2020-02-11",
     "2020-06-08", "Exchange Server does not create unique cryptographic keys at install, allowing code execution"),
    ("CVE-2020-10189", 9.8, "Critical", "CWE-502", "zohocorp", "manageengine desktop central", "deserialization",
     "2020-03-06", "2020-06-15", "deserialization of untrusted data in getChartImage allows remote code execution"),
    ("CVE-2020-5902", 9.8, "Critical", "CWE-22", "f5", "big-ip", "remote code execution", "2020-07-01", "2020-07-06",
     "the traffic management user interface (tmui), also referred to as the configuration utility, has a remote "
     "code execution (rce) vulnerability"),
    ("CVE-2020-1350", 10.0, "Critical", "CWE-119", "microsoft", "windows dns server", "remote code execution",
     "2020-07-14", "2020-07-20", "Windows DNS Server mishandles requests, allowing remote code execution (SIGRed)"),
    ("CVE-2020-15505", 9.8, "Critical", "CWE-94", "mobileiron", "core", "remote code execution", "2020-07-07",
     "2020-08-03", "remote code execution in MobileIron Core and Connector allows remote attackers to run code"),
    ("CVE-2020-1472", 10.0, "Critical", "CWE-330", "microsoft", "netlogon", "elevation of privilege", "2020-08-17",
     "2020-09-14", "an elevation of privilege in the Netlogon Remote Protocol (Zerologon)"),
    ("CVE-2020-14882", 9.8, "Critical", "CWE-94", "oracle", "weblogic server", "remote code execution", "2020-10-21",
     "2020-10-29", "an easily exploitable flaw in the WebLogic Server console allows takeover over HTTP"),
    ("CVE-2021-26855", 9.8, "Critical", "CWE-918", "microsoft", "exchange server", "server-side request forgery",
     "2021-03-03", "2021-03-03", "Exchange Server SSRF used in the ProxyLogon chain"),
    ("CVE-2021-22986", 9.8, "Critical", "CWE-918", "f5", "big-ip", "remote code execution", "2021-03-31", "2021-04-01",
     "unauthenticated remote command execution through the iControl REST interface"),
    ("CVE-2021-34473", 9.8, "Critical", "CWE-918", "microsoft", "exchange server", "remote code execution",
     "2021-07-14", "2021-08-09", "Exchange Server remote code execution used in the ProxyShell chain"),
    ("CVE-2021-40444", 8.8, "High", "CWE-22", "microsoft", "mshtml", "remote code execution", "2021-09-15",
     "2021-09-08", "MSHTML remote code execution through crafted Office documents"),
    ("CVE-2021-44228", 10.0, "Critical", "CWE-502", "apache", "log4j", "remote code execution", "2021-12-10",
     "2021-12-10", "JNDI features of Log4j2 do not protect against attacker-controlled LDAP endpoints (Log4Shell)"),
    ("CVE-2022-1388", 9.8, "Critical", "CWE-306", "f5", "big-ip", "authentication bypass", "2022-05-05", "2022-05-09",
     "undisclosed requests may bypass iControl REST authentication"),
    ("CVE-2022-22965", 9.8, "Critical", "CWE-94", "vmware", "spring framework", "remote code execution", "2022-04-01",
     "2022-04-01", "a Spring MVC or WebFlux application on JDK 9+ is open to remote code execution via data binding"),
    ("CVE-2022-30190", 7.8, "High", "CWE-610", "microsoft", "windows msdt", "remote code execution", "2022-06-01",
     "2022-05-31", "remote code execution when MSDT is called using the URL protocol from a calling application"),
    ("CVE-2023-34362", 9.8, "Critical", "CWE-89", "progress", "moveit transfer", "sql injection", "2023-06-02",
     "2023-06-01", "SQL injection in the MOVEit Transfer web application lets an unauthenticated attacker in"),
    ("CVE-2023-22515", 9.8, "Critical", "CWE-20", "atlassian", "confluence data center", "broken access control",
     "2023-10-04", "2023-10-05", "external attackers may create unauthorized administrator accounts"),
    ("CVE-2023-4966", 7.5, "High", "CWE-119", "citrix", "netscaler adc", "information disclosure", "2023-10-10",
     "2023-10-18", "sensitive information disclosure when configured as a gateway (Citrix Bleed)"),
    ("CVE-2023-20198", 10.0, "Critical", "CWE-420", "cisco", "ios xe", "privilege escalation", "2023-10-16",
     "2023-10-17", "the web UI of IOS XE lets a remote, unauthenticated attacker create a privilege 15 account"),
    ("CVE-2024-21887", 9.1, "Critical", "CWE-77", "ivanti", "connect secure", "command injection", "2024-01-12",
     "2024-01-11", "command injection in web components lets an authenticated administrator run commands"),
    ("CVE-2024-3400", 10.0, "Critical", "CWE-77", "palo alto networks", "pan-os", "command injection", "2024-04-12",
     "2024-04-12", "command injection in the GlobalProtect feature of PAN-OS lets an unauthenticated attacker in"),
    ("pCVE-2024-0007", None, "", "", "acme", "edge gateway", "remote code execution", None, "2024-05-02",
     "exploitation seen on CTCI honeypots before a CVE was assigned (provisional id)"),
)
_SYNTHETIC_VENDORS = (("contoso", "web portal"), ("fabrikam", "vpn appliance"), ("initech", "file transfer"),
                      ("globex", "mail gateway"), ("umbrella", "remote access"))
_BAD_ROWS = ({"cve": "CVE-20-1", "id_ref": 9001}, {"cve": "not a cve", "id_ref": 9002}, {"cve": None, "id_ref": 9003},
             {"vendor": "no id at all", "id_ref": 9004})
DEFAULT_SWITCHES = {
    "key_case": "lower",       # "upper": rows carry "CVE" as the spec writes it
    "envelope": "data",        # "bare": a JSON array of rows, as the spec's /cve/cewl_download declares
    "dates": "epoch_ms",       # "iso": ISO 8601 text; "http": RFC 1123 text (Flask's default)
    "bad_cve": False,          # add rows with invalid CVE ids and one repeated CVE
    "rows": 0,                 # serve this many rows (synthetic ones after the curated list); 0: the curated list
    "throttle": 0,             # answer the next N downloads 429 with Retry-After
    "retry_after": 1,
    "fail": 0,                 # answer the next N downloads 500
    "html": 0,                 # answer the next N downloads with an HTML error page ...
    "html_status": 502,        # ... with this status (200: a page where JSON was expected)
    "truncate": 0,             # answer the next N downloads with the JSON cut in half (a complete HTTP body)
}
_COUNTED = ("throttle", "fail", "html", "truncate")


def _ms(day):
    when = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp() * 1000)


def curated_rows():
    """Return the stand-in's CEWL rows in the reference's form (lower-case keys, epoch-ms dates), id_ref ascending."""
    rows = []
    for index, (cve, score, severity, cwe, vendor, product, kind, published, added, text) in enumerate(
            sorted(_CURATED, key=lambda r: r[8])):
        added_ms = _ms(added)
        rows.append({
            "cve": cve, "year": int(cve.split("-")[1]), "base_score": score, "base_severity": severity,
            "cve_date": _ms(published) if published else None, "vendor": vendor, "product": product,
            "vulnerability_type": kind, "description": text,
            "reference": f"https://nvd.nist.gov/vuln/detail/{cve}" if cve.startswith("CVE") else "",
            "date_added": added_ms, "date_discovered": None,
            "honeypot": added_ms if index % 3 == 0 else None, "intel": added_ms if index % 2 == 0 else None,
            "research": None, "base_metric_v2": published is not None and published < "2016",
            "base_metric_v3": published is not None, "id_ref": 100 + index * 7, "updated": added_ms, "cwe": cwe,
            "external_note": "", "enabled": True, "processed": False, "notified": True, "notified_date": added_ms,
        })
    return rows


def synthetic_row(n):
    """Return the n-th generated CEWL row beyond the curated list (cheap, deterministic)."""
    vendor, product = _SYNTHETIC_VENDORS[n % len(_SYNTHETIC_VENDORS)]
    cve = fake.cve(n, 2016, 9, 40000)
    year = int(cve.split("-")[1])
    added = _ms("2024-06-01") + n * 3_600_000
    score = round(5.0 + (n % 50) / 10, 1)
    return {"cve": cve, "year": year, "base_score": score,
            "base_severity": "Critical" if score >= 9 else "High" if score >= 7 else "Medium",
            "cve_date": added - 86_400_000 * 30, "vendor": vendor, "product": product,
            "vulnerability_type": "remote code execution" if n % 2 else "", "description": f"synthetic entry {n}",
            "reference": f"https://nvd.nist.gov/vuln/detail/{cve}", "date_added": added,
            "date_discovered": None, "honeypot": added if n % 4 == 0 else None, "intel": added, "research": None,
            "base_metric_v2": False, "base_metric_v3": True, "id_ref": 10_000 + n, "updated": added,
            "cwe": "CWE-20", "external_note": "", "enabled": True, "processed": False, "notified": False,
            "notified_date": None}


def _problem(status, title, detail, instance):
    return Response({"status": status, "title": title, "detail": detail, "instance": instance}, status=status,
                    content_type="application/problem+json")


class Ctci(Service):
    """CTCI's CEWL download: the whole list for a subscribed token, the restricted list otherwise; with switches."""

    name = "ctci"

    def reset(self):
        self.switches = dict(DEFAULT_SWITCHES)
        self.rows = curated_rows()
        self.tokens = {TOKEN: "subscribed", UNSUBSCRIBED_TOKEN: "unsubscribed", DISABLED_TOKEN: "disabled",
                       **self.options.get("tokens", {})}

    def configure(self, **switches):
        """Set switches (see DEFAULT_SWITCHES); unknown names raise ValueError."""
        unknown = set(switches) - set(DEFAULT_SWITCHES)
        if unknown:
            raise ValueError(f"unknown switch(es): {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_SWITCHES)}")
        with self.lock:
            self.switches.update(switches)

    def add_row(self, cve, **fields):
        """Add a CEWL entry with the next id_ref (what CTCI does when a CVE joins the list); return it."""
        with self.lock:
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
            row = {**synthetic_row(len(self.rows)), "cve": cve, "year": int(cve.split("-")[1]),
                   "reference": f"https://nvd.nist.gov/vuln/detail/{cve}", "date_added": now, "updated": now,
                   "id_ref": max(r["id_ref"] for r in self.rows) + 1, **fields}
            self.rows.append(row)
            return row

    # Control endpoints of this stand-in.
    @route("GET", r"^/_sandbox/ctci/switches$")
    def _get_switches(self, request):
        return Response(dict(self.switches))

    @route("POST", r"^/_sandbox/ctci/switches$")
    def _set_switches(self, request):
        body = request.json()
        if not isinstance(body, dict):
            return error(400, "switches are a JSON object, e.g. {\"key_case\": \"upper\"}")
        try:
            self.configure(**body)
        except ValueError as exc:
            return error(400, str(exc))
        return Response(dict(self.switches))

    @route("POST", r"^/_sandbox/ctci/rows$")
    def _add_rows(self, request):
        body = request.json()
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(i, dict) and isinstance(i.get("cve"), str) for i in items):
            return error(400, "give a row (or a list of rows) with at least a \"cve\" text")
        return Response([self.add_row(**item) for item in items], status=201)

    # The API.
    @route("GET", r"^/api/v1/cewl$")
    def cewl(self, request):
        return self._download(request, bare=self.switches["envelope"] == "bare")

    @route("GET", r"^/cve/cewl_download$")
    def cewl_download(self, request):
        return self._download(request, bare=True)  # the spec declares a bare array for this older path

    @route("GET", r"^/api/v1/(?P<entity>[a-z_]+)$")
    def other(self, request, entity):
        return _problem(404, "Not Found", f"the sandbox serves only the CEWL download, not {entity}", request.path)

    def _download(self, request, bare):
        token = (request.headers.get("x-api-key") or "").strip()
        kind = self.tokens.get(token)
        if kind is None:
            detail = "x-api-key header missing" if not token else "the API token is not valid"
            return _problem(401, "Unauthorized", detail, request.path)
        if kind == "disabled":
            return _problem(403, "Forbidden", "the API token is disabled", request.path)
        fault = self._take_fault()
        if fault == "throttle":
            response = _problem(429, "Too Many Requests", "slow down", request.path)
            response.headers["Retry-After"] = str(self.switches["retry_after"])
            return response
        if fault == "fail":
            return _problem(500, "Internal Server Error", "the CEWL could not be read", request.path)
        if fault == "html":
            page = ("<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>CEWL is under "
                    "maintenance</h1><p>Please try again later.</p></body></html>")
            return Response(page, status=int(self.switches["html_status"]), content_type="text/html")
        rows = self._rows(kind)
        if fault == "truncate":
            body = b"".join(self._body(rows, bare))
            return Response(body[: len(body) // 2])
        return Response(self._body(rows, bare))

    def _take_fault(self):
        with self.lock:
            for name in _COUNTED:
                if self.switches[name] > 0:
                    self.switches[name] -= 1
                    return name
        return None

    def _rows(self, kind):
        """Yield the rows this token may see, shaped by the switches."""
        switches = dict(self.switches)
        rows = list(self.rows)
        if kind == "unsubscribed":
            rows = [r for r in rows if r["cve"] in NSA_2020]
        else:
            extra = max(0, int(switches["rows"]) - len(rows))
            rows = rows if not extra else _chain(rows, (synthetic_row(n) for n in range(extra)))
            if switches["bad_cve"]:
                repeated = dict(self.rows[0], description="an older entry of the same CVE", id_ref=1)
                rows = _chain(rows, list(_BAD_ROWS) + [repeated])
        for row in rows:
            yield self._shape(row, switches)

    @staticmethod
    def _shape(row, switches):
        out = dict(row)
        if switches["dates"] != "epoch_ms":
            for key in ("cve_date", "date_added", "date_discovered", "honeypot", "intel", "research", "updated",
                        "notified_date"):
                if isinstance(out.get(key), int):
                    out[key] = _date_text(out[key], switches["dates"])
        if switches["key_case"] == "upper" and "cve" in out:
            out = {("CVE" if k == "cve" else k): v for k, v in out.items()}
        return out

    @staticmethod
    def _body(rows, bare):
        """Yield the JSON body in pieces, so that a list of any size streams."""
        yield b"[" if bare else b'{"status": 200, "title": "CEWL", "detail": "", "data": ['
        for index, row in enumerate(rows):
            yield (b"," if index else b"") + json.dumps(row).encode("utf-8")
        yield b"]" if bare else b"]}"


def _chain(first, second):
    yield from first
    yield from second


def _date_text(ms, style):
    when = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    if style == "http":
        return email.utils.format_datetime(when, usegmt=True)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["Ctci", "TOKEN", "UNSUBSCRIBED_TOKEN", "DISABLED_TOKEN", "NSA_2020", "DEFAULT_SWITCHES", "curated_rows",
           "synthetic_row"]
