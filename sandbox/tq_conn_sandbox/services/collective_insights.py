"""Recorded Future Collective Insights stand-in: validates detections, records them, answers with the summary."""

import re
import time
from datetime import datetime, timezone

from tq_conn_sandbox.server import Response, Service, error, route

# psengine only sends tokens of 32 lower-case letters and digits (recorded-future.md 2).
TOKEN = "sandboxrecordedfuturetoken000001"
NO_CI_TOKEN = "sandboxtokenwithoutcollective001"
IOC_TYPES = ("ip", "domain", "hash", "vulnerability", "url")
DETECTION_TYPES = ("correlation", "playbook", "detection_rule", "sandbox")
RULE_SUB_TYPES = ("sigma", "yara", "snort", "suricata", "nuclei")
DAILY_LIMIT = 15000
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def _strings(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def problems(body):
    """Return what is wrong with a submission body against the documented fields (recorded-future.md 6.1)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    found = []
    options = body.get("options", {})
    if not isinstance(options, dict):
        found.append("options is not an object")
    else:
        for key in ("debug", "summary"):
            if key in options and not isinstance(options[key], bool):
                found.append(f"options.{key} is not true or false")
    if "organization_ids" in body and not _strings(body["organization_ids"]):
        found.append("organization_ids is not a list of strings")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        return found + ["data is missing or empty"]
    for n, item in enumerate(data):
        where = f"data[{n}]"
        if not isinstance(item, dict):
            found.append(f"{where} is not an object")
            continue
        ioc = item.get("ioc")
        if not isinstance(ioc, dict):
            found.append(f"{where}.ioc is missing")
        else:
            if ioc.get("type") not in IOC_TYPES:
                found.append(f"{where}.ioc.type {ioc.get('type')!r} is not one of {', '.join(IOC_TYPES)}")
            if not isinstance(ioc.get("value"), str) or not ioc.get("value"):
                found.append(f"{where}.ioc.value is missing")
            for key in ("source_type", "field"):
                if key in ioc and not isinstance(ioc[key], str):
                    found.append(f"{where}.ioc.{key} is not a string")
        detection = item.get("detection")
        if not isinstance(detection, dict):
            found.append(f"{where}.detection is missing")
        else:
            kind = detection.get("type")
            if kind not in DETECTION_TYPES:
                found.append(f"{where}.detection.type {kind!r} is not one of {', '.join(DETECTION_TYPES)}")
            rule_ok = detection.get("id") and detection.get("sub_type") in RULE_SUB_TYPES
            if kind == "detection_rule" and not rule_ok:
                found.append(f"{where}.detection: detection_rule needs id and sub_type")
            for key in ("id", "name"):
                if key in detection and not isinstance(detection[key], str):
                    found.append(f"{where}.detection.{key} is not a string")
        incident = item.get("incident")
        if incident is not None:
            if not isinstance(incident, dict):
                found.append(f"{where}.incident is not an object")
            else:
                for key in ("id", "name", "type"):
                    if key in incident and not isinstance(incident[key], str):
                        found.append(f"{where}.incident.{key} is not a string")
        if "timestamp" in item and (not isinstance(item["timestamp"], str) or not _TIMESTAMP.match(item["timestamp"])):
            found.append(f"{where}.timestamp {item.get('timestamp')!r} is not ISO 8601")
        for key in ("mitre_codes", "malwares"):
            if key in item and not _strings(item[key]):
                found.append(f"{where}.{key} is not a list of strings")
    return found


class CollectiveInsights(Service):
    """POST /collective-insights/detections, as psengine and the CI article describe it."""

    name = "collective_insights"
    token = TOKEN
    no_ci_token = NO_CI_TOKEN

    def extra_urls(self):
        """What tq-conn-sandbox prints under the URL: the API keys it accepts."""
        return {"RF_API_KEY": self.token, "key without Collective Insights (403)": self.no_ci_token}

    def reset(self):
        self.submissions = []    # every accepted request: options, organization_ids, data
        self.detections = []     # detections stored (debug false)
        self.daily_limit = int(self.options.get("daily_limit", DAILY_LIMIT))
        self._day, self._today = None, 0

    @route("POST", r"^/collective-insights/detections/?$")
    def detections_post(self, request):
        token = request.headers.get("X-RFToken")
        if token == self.no_ci_token:
            return error(403, "Your API token does not have access to Collective Insights.")
        if token != self.token:
            return error(401, "Invalid or missing API token.")
        body = request.json()
        found = problems(body)
        if found:
            return error(400, "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else ""))
        options = body.get("options") or {}
        # The default of debug is documented both ways; the stand-in takes the article's (true): nothing is saved.
        debug = options.get("debug", True)
        data = body["data"]
        with self.lock:
            day = time.strftime("%Y-%m-%d", time.gmtime())
            if day != self._day:
                self._day, self._today = day, 0
            if not debug and self._today + len(data) > self.daily_limit:
                return error(429, f"Daily limit of {self.daily_limit} submissions reached.")
            self.submissions.append({"options": options, "organization_ids": body.get("organization_ids"),
                                     "debug": debug, "count": len(data), "data": data,
                                     "received": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
            if not debug:
                self._today += len(data)
                self.detections.extend(data)
        processed = {kind: len({d["ioc"]["value"] for d in data if d["ioc"]["type"] == kind}) for kind in IOC_TYPES}
        result = {"status": "ok", "debug": debug}
        if options.get("summary", True):
            result["summary"] = {"processed": processed}
        return Response({"result": result})

    # --- inspection, for tests, demos and people --------------------------------------------------
    @route("GET", r"^/_sandbox/collective_insights/detections$")
    def _detections(self, request):
        with self.lock:
            return Response({"detections": list(self.detections)})

    @route("GET", r"^/_sandbox/collective_insights/submissions$")
    def _submissions(self, request):
        with self.lock:
            return Response({"submissions": list(self.submissions)})


__all__ = ["CollectiveInsights", "problems", "TOKEN", "NO_CI_TOKEN"]
