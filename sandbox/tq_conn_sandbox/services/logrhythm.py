"""LogRhythm Alarm API stand-in: alarms over time with details, events and summaries, behind a bearer token."""

import itertools
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

from tq_conn_sandbox.server import Response, Service, route

TOKEN = "lr-sandbox-api-key"
NO_RIGHTS_TOKEN = "lr-sandbox-no-rights"
PREFIX = "/lr-alarm-api"
DRILLDOWN = "/lr-drilldown-cache-api/drilldown"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")

_STATUS_NAMES = ("New", "Opened", "Working", "Escalated", "Closed", "Closed: False Alarm", "Closed: Resolved",
                 "Closed: Unresolved", "Closed: Reported", "Closed: Monitor")
_ORDER_KEYS = {"dateinserted": "dateInserted", "alarmrulename": "alarmRuleName", "alarmstatus": "alarmStatus",
               "entityname": "entityName"}
DEFAULT_SETTINGS = {
    "max_count": 100,                      # server-side cap on count (seed 004 FAQ 8)
    "ignore_offset": False,                # seed 004's world: every page starts at the first alarm
    "events_key": "alarmEventsDetails",    # or "alarmsEventDetails", the spec's spelling
    "first_event_only": True,              # /events returns one event, whatever the alarm has (XSOAR's note);
                                           # False: every event, as the spec describes it
    "drilldown_logs": "string",            # DrillDownLogs as JSON text (string) or as a list (list), by version
    "default_count": 100,
}


def _ok(**body):
    return Response({**body, "statusCode": 200, "statusMessage": "OK", "responseMessage": "Success"})


def _fail(status, text, message):
    return Response({"statusCode": status, "statusMessage": text, "responseMessage": message}, status=status)


def lr_date(value):
    """Return a UTC datetime as LogRhythm writes it: no zone, fractional seconds trimmed (.807, .78)."""
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    millis = f"{value.microsecond // 1000:03d}".rstrip("0")
    return text + (f".{millis}" if millis else "")


def parse_date(text):
    """Return a dateInserted query value (zone-less UTC, or with Z or an offset) as an aware UTC datetime."""
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(f"dateInserted {text!r} is not a date")
    day, hour, minute, second, frac, zone = match.groups()
    parsed = datetime.strptime(f"{day}T{hour}:{minute}:{second}", "%Y-%m-%dT%H:%M:%S")
    parsed = parsed.replace(microsecond=int(((frac or "") + "000000")[:6]), tzinfo=timezone.utc)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        parsed -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return parsed


_SEARCH_NAMES = {"impactedIP": "impactedIp", "originIP": "originIp", "impactedHostName": "impactedHost",
                 "originHostName": "originHost", "domain": "domainOrigin"}


def search_log(alarm_event):
    """Return an alarm event as a drill-down log: the Search API's field names (logrhythm.md 5.1, 2026 corrections)."""
    return {_SEARCH_NAMES.get(k, k): v for k, v in alarm_event.items() if k not in ("impactedName", "originName")}


def event(**fields):
    """Return an alarm event as the Alarm API sends it: "" and null for empty values (logrhythm.md 5.1)."""
    base = {
        "account": "", "action": "", "classificationId": 2600, "classificationName": "Compromise",
        "classificationTypeName": "Security", "commonEventId": 1031412, "commonEventName": "AIE event", "count": 1,
        "cve": "", "directionName": "Unknown", "domain": "", "entityName": "Primary Site",
        "impactedEntityName": "Global Entity", "impactedHostName": "", "impactedIP": None, "impactedName": "",
        "impactedNATIP": "", "impactedZone": "Unknown", "logDate": None, "logMessage": "",
        "logSourceName": "AI Engine", "logSourceTypeName": "LogRhythm AI Engine", "originEntityName": "Global Entity",
        "originHostName": "", "originIP": None, "originName": "", "originNATIP": "", "originZone": "Unknown",
        "priority": 91, "url": "",
        "impactedLocation": {"countryCode": "", "name": "", "locationId": 0, "dateUpdated": "0001-01-01T00:00:00"},
        "originLocation": {"countryCode": "", "name": "", "locationId": 0, "dateUpdated": "0001-01-01T00:00:00"},
    }
    base.update(fields)
    return base


class LogRhythm(Service):
    """The Alarm API of a LogRhythm Platform Manager's gateway (reference logrhythm.md 9)."""

    name = "logrhythm"
    token = TOKEN
    no_rights_token = NO_RIGHTS_TOKEN

    def extra_urls(self):
        """What tq-conn-sandbox prints under the URL: the API keys it accepts."""
        return {"LOGRHYTHM_API_KEY": self.token, "key without alarm rights (403)": self.no_rights_token}

    def reset(self):
        self.settings = {**DEFAULT_SETTINGS, **{k: v for k, v in self.options.items() if k in DEFAULT_SETTINGS}}
        self.alarms = {}
        self._ids = itertools.count(18750)
        if not self.options.get("empty"):
            self._seed()

    def configure(self, **settings):
        """Change switches: max_count, ignore_offset, events_key, first_event_only, drilldown_logs, default_count."""
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        with self.lock:
            self.settings.update(settings)

    def add_alarm(self, rule, inserted=None, events=(), rbp=50, status=0, entity="Primary Site", hours_ago=None,
                  aie=None, cached=True):
        """Add one alarm inserted at inserted (or hours_ago hours before now); return its id.

        aie: an AI Engine alarm, with a drill-down (default: its rule name starts with AIE); cached: its drill-down
        is filled (False: a fresh alarm whose drill-down the cache service has not filled yet; see fill()).
        """
        if inserted is None:
            inserted = datetime.now(timezone.utc) - timedelta(hours=hours_ago or 0)
        if inserted.tzinfo is None:
            inserted = inserted.replace(tzinfo=timezone.utc)
        inserted = inserted.replace(microsecond=inserted.microsecond // 1000 * 1000)  # LogRhythm keeps milliseconds
        with self.lock:
            alarm_id = next(self._ids)
            evs = [dict(e) for e in events] or [event()]
            for e in evs:
                e.setdefault("commonEventName", rule)
                if e.get("logDate") is None:
                    e["logDate"] = lr_date(inserted - timedelta(seconds=2))
            self.alarms[alarm_id] = {"alarmId": alarm_id, "alarmRuleName": rule, "alarmStatus": status,
                                     "entityName": entity, "inserted": inserted, "rbpMax": rbp,
                                     "rbpAvg": rbp, "events": evs, "cached": bool(cached),
                                     "aie": rule.startswith("AIE") if aie is None else bool(aie)}
        return alarm_id

    def fill(self, alarm_id):
        """Let the drill-down cache service fill an alarm's drill-down."""
        with self.lock:
            self.alarms[int(alarm_id)]["cached"] = True

    def add_burst(self, count, start=None, minutes=60, rule="AIE: Recorded Future - C2 IP Communication",
                  rbp=80):
        """Add count alarms spread over minutes from start (default: ending now), each with its own public IP."""
        end = datetime.now(timezone.utc) - timedelta(minutes=1)
        start = start or end - timedelta(minutes=minutes)
        step = timedelta(minutes=minutes) / max(count, 1)
        ids = []
        for n in range(count):
            ip = f"198.18.{n // 250}.{n % 250 + 1}"  # 198.18.0.0/15: benchmarking range, public by our rules
            ids.append(self.add_alarm(rule, inserted=start + step * n, rbp=rbp,
                                      events=[event(originIP=ip, impactedIP="10.1.2.3")]))
        return ids

    def _seed(self):
        """A realistic day of alarms, relative to now."""
        self.add_alarm("AIE: Recorded Future - C2 IP Communication", hours_ago=2, rbp=91, events=[
            event(impactedHostName="ws-0231.corp.local", impactedName="ws-0231.corp.local",
                  impactedIP="10.20.30.40", originIP="203.0.113.7", domain="bad.example.com",
                  url="http://bad.example.com/gate.php", cve="CVE-2021-44228",
                  impactedZone="Internal", originZone="External")])
        self.add_alarm("AIE: Recorded Future - Malicious Domain", hours_ago=5, rbp=67, events=[
            event(domain="evil-updates.example.net", originHostName="cdn.evil-updates.example.net",
                  impactedIP="192.168.10.12"),
            event(domain="evil-updates.example.net", originIP="198.51.100.23", impactedIP="172.16.4.2")])
        self.add_alarm("LogRhythm Agent Heartbeat Missed", hours_ago=8, rbp=24, events=[
            event(impactedHostName="logr-siem-01", impactedName="logr-siem-01")])
        self.add_alarm("AIE: Suspicious Outbound Connection", hours_ago=12, rbp=50, events=[
            event(originIP="192.168.1.15", impactedIP="127.0.0.1", impactedNATIP="169.254.10.1"),
            event(originIP="0.0.0.0", impactedIP="192.0.2.55", url="http://10.0.0.8/admin")])
        self.add_alarm("AIE: Recorded Future - Vulnerability Exploit", hours_ago=20, rbp=100, events=[
            event(cve="CVE-2023-4966", url="https://portal.example.org/oauth/idp/.well-known/openid-configuration",
                  impactedIP="2001:db8:85a3::8a2e:370:7334", originIP="fe80::1")])
        self.add_alarm("Noisy Test Rule", hours_ago=3, rbp=10, events=[event(originIP="192.0.2.44")])
        self.add_alarm("AIE: Recorded Future - C2 IP Communication", hours_ago=30, rbp=91, events=[
            event(originIP="203.0.113.99", impactedIP="10.9.9.9")])
        self.add_alarm("AIE: Recorded Future - Malicious Domain", hours_ago=240, rbp=67, events=[
            event(domain="old-campaign.example.com")])

    # --- authentication -------------------------------------------------------------------------
    def _refused(self, request):
        token = request.bearer()
        if token == self.no_rights_token:
            return _fail(403, "Forbidden", "The application is not permitted to read alarms.")
        if token != self.token:
            return _fail(401, "Unauthorized", "Authorization has been denied for this request.")
        return None

    # --- the Alarm API --------------------------------------------------------------------------
    def _search_item(self, alarm):
        return {"alarmId": alarm["alarmId"], "alarmRuleName": alarm["alarmRuleName"],
                "alarmStatus": alarm["alarmStatus"], "alarmDataCached": "Y" if alarm["aie"] and alarm["cached"] else "N",
                "associatedCases": [],
                "entityName": alarm["entityName"], "dateInserted": lr_date(alarm["inserted"])}

    @route("GET", rf"^{PREFIX}/alarms/?$")
    def search(self, request):
        refused = self._refused(request)
        if refused:
            return refused
        q = {k.lower(): v for k, v in request.query.items()}
        try:
            since = parse_date(q["dateinserted"]) if q.get("dateinserted") else None
            count = int(q.get("count") or self.settings["default_count"])
            offset = int(q.get("offset") or 0)
        except ValueError as exc:
            return _fail(400, "Bad Request", f"Invalid query parameter: {exc}")
        with self.lock:
            alarms = list(self.alarms.values())
            settings = dict(self.settings)
        if since is not None:
            alarms = [a for a in alarms if a["inserted"] >= since]
        if q.get("alarmstatus") not in (None, ""):
            alarms = [a for a in alarms if str(a["alarmStatus"]) == q["alarmstatus"]]
        if q.get("alarmrulename"):
            alarms = [a for a in alarms if a["alarmRuleName"] == q["alarmrulename"]]
        if q.get("entityname"):
            alarms = [a for a in alarms if a["entityName"] == q["entityname"]]
        key = _ORDER_KEYS.get((q.get("orderby") or "dateinserted").lower(), "dateInserted")
        field = "inserted" if key == "dateInserted" else key
        descending = (q.get("dir") or "descending").lower().startswith("desc")
        alarms.sort(key=lambda a: (a[field], a["alarmId"]), reverse=descending)
        if not settings["ignore_offset"]:
            alarms = alarms[max(offset, 0):]
        page = alarms[:max(0, min(count, settings["max_count"]))]
        items = [self._search_item(a) for a in page]
        return _ok(alarmsSearchDetails=items, alarmsCount=len(items))

    def _alarm(self, alarm_id):
        with self.lock:
            return self.alarms.get(int(alarm_id))

    @route("GET", rf"^{PREFIX}/alarms/(?P<alarm_id>\d+)/?$")
    def details(self, request, alarm_id):
        refused = self._refused(request)
        if refused:
            return refused
        alarm = self._alarm(alarm_id)
        if alarm is None:
            return _fail(404, "Not Found", f"Alarm {alarm_id} not found.")
        evs = alarm["events"]
        first, last = evs[0]["logDate"], evs[-1]["logDate"]
        inserted = lr_date(alarm["inserted"])
        return _ok(alarmDetails={
            "alarmId": alarm["alarmId"], "alarmRuleID": 1000 + len(alarm["alarmRuleName"]),
            "alarmRuleName": alarm["alarmRuleName"], "alarmStatus": alarm["alarmStatus"],
            "alarmStatusName": _STATUS_NAMES[alarm["alarmStatus"]], "alarmDate": inserted, "dateInserted": inserted,
            "dateUpdated": inserted, "entityId": 1, "entityName": alarm["entityName"], "personId": -100,
            "lastUpdatedID": -100, "lastUpdatedName": "LogRhythm Administrator", "lastPersonID": None,
            "eventCount": len(evs), "eventDateFirst": first, "eventDateLast": last, "rbpMax": alarm["rbpMax"],
            "rbpAvg": alarm["rbpAvg"], "associatedCases": [], "smartResponseActions": None, "alarmDataCached": "N"})

    @route("GET", rf"^{PREFIX}/alarms/(?P<alarm_id>\d+)/events/?$")
    def events(self, request, alarm_id):
        refused = self._refused(request)
        if refused:
            return refused
        alarm = self._alarm(alarm_id)
        if alarm is None:
            return _fail(404, "Not Found", f"Alarm {alarm_id} not found.")
        evs = alarm["events"][:1] if self.settings["first_event_only"] else alarm["events"]
        return _ok(**{self.settings["events_key"]: evs})

    # --- the AIE drill-down cache API (logrhythm.md, 2026 corrections) -----------------------------
    @route("GET", rf"^{DRILLDOWN}/(?P<alarm_id>\d+)/?$")
    def drilldown(self, request, alarm_id):
        refused = self._refused(request)
        if refused:
            return refused
        alarm = self._alarm(alarm_id)
        if alarm is None or not alarm["aie"]:
            # Not an AI Engine alarm (or none at all): 404 with an empty result, as LogRhythm.Tools reads it.
            return Response({"Data": {"DrillDownResults": None}, "statusCode": 404, "statusMessage": "Not Found",
                             "responseMessage": f"No drilldown found for alarm {alarm_id}."}, status=404)
        if not alarm["cached"]:
            return _ok(Data={"DrillDownResults": None})   # the cache service has not filled it yet
        logs = [search_log(e) for e in alarm["events"]]
        blocks = [logs[:1], logs[1:]] if len(logs) > 1 else [logs]
        as_text = self.settings["drilldown_logs"] == "string"
        inserted = lr_date(alarm["inserted"])
        return _ok(Data={"DrillDownResults": {
            "AlarmID": alarm["alarmId"], "AlarmGuid": str(uuid.uuid5(uuid.NAMESPACE_OID, str(alarm["alarmId"]))),
            "Priority": alarm["rbpMax"], "AIERuleName": alarm["alarmRuleName"].removeprefix("AIE: "),
            "AIERuleID": 1000 + len(alarm["alarmRuleName"]), "Status": 4, "RetryCount": 0, "NotificationSent": False,
            "EventID": alarm["alarmId"] * 7, "NormalMessageDate": inserted,
            "AIEMsgXml": f'<aie v="1"><_0 FactType="Observed" NormalMsgDate="{inserted}" /></aie>',
            "WebConsoleIds": [], "RuleBlocks": [
                {"RuleBlockID": n + 1, "RuleBlockType": 1, "DrillDownLogs": json.dumps(block) if as_text else block,
                 "DDSummaries": [{"PIFType": 17, "DrillDownSummaryLogs": json.dumps([
                     {"field": log["originIp"] or "", "value": 1} for log in block])}]}
                for n, block in enumerate(blocks)]}})

    @route("GET", rf"^{PREFIX}/alarms/(?P<alarm_id>\d+)/summary/?$")
    def summary(self, request, alarm_id):
        refused = self._refused(request)
        if refused:
            return refused
        alarm = self._alarm(alarm_id)
        if alarm is None:
            return _fail(404, "Not Found", f"Alarm {alarm_id} not found.")
        return _ok(alarmSummaryDetails={
            "dateInserted": lr_date(alarm["inserted"]), "rbpMax": alarm["rbpMax"], "rbpAvg": alarm["rbpAvg"],
            "alarmRuleId": 1000 + len(alarm["alarmRuleName"]), "alarmRuleGroup": "AIE",
            "briefDescription": alarm["alarmRuleName"], "additionalDetails": "",
            "alarmEventSummary": [{"msgClassId": e.get("classificationId"), "msgClassName": e.get("classificationName"),
                                   "commonEventId": e.get("commonEventId"), "commonEventName": e.get("commonEventName"),
                                   "originHostId": -1, "impactedHostId": -1, "originUser": "", "impactedUser": "",
                                   "originEntityName": e.get("originEntityName"),
                                   "impactedEntityName": e.get("impactedEntityName")} for e in alarm["events"]]})

    # --- control, for demos and people driving the stand-in over HTTP ---------------------------
    @route("GET", r"^/_sandbox/logrhythm/alarms$")
    def _list(self, request):
        with self.lock:
            return Response({"alarms": [{**self._search_item(a), "rbpMax": a["rbpMax"], "events": a["events"]}
                                        for a in self.alarms.values()], "settings": self.settings})

    @route("POST", r"^/_sandbox/logrhythm/alarms$")
    def _add(self, request):
        spec = request.json() or {}
        if "burst" in spec:
            ids = self.add_burst(int(spec["burst"]), minutes=int(spec.get("minutes", 60)))
        else:
            inserted = parse_date(spec["dateInserted"]) if spec.get("dateInserted") else None
            ids = [self.add_alarm(spec.get("alarmRuleName", "Sandbox Rule"), inserted=inserted,
                                  events=[event(**e) for e in spec.get("events", [])], rbp=int(spec.get("rbpMax", 50)),
                                  hours_ago=spec.get("hours_ago"), cached=spec.get("cached", True))]
        return Response({"ids": ids}, status=201)

    @route("POST", r"^/_sandbox/logrhythm/settings$")
    def _settings(self, request):
        try:
            self.configure(**(request.json() or {}))
        except (TypeError, ValueError) as exc:
            return Response({"error": str(exc)}, status=400)
        return Response({"settings": self.settings})


__all__ = ["LogRhythm", "event", "search_log", "lr_date", "TOKEN", "NO_RIGHTS_TOKEN", "DRILLDOWN"]
