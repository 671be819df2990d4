"""IOCs of LogRhythm alarm events: which fields hold them, and the public IOCs they hold."""

from tq_conn_common import iocs as iocs_

# Seed 004 names the fields impactedHost, impactedIP, originHost, originIP, domain, url, cve. The Alarm
# API spells them impactedHostName/impactedName, impactedIP (+ impactedNATIP), originHostName/originName,
# originIP (+ originNATIP); the Search API, and so the AIE drill-down logs, spell impactedHost, impactedIp,
# originHost, originIp, domainOrigin/domainImpacted. Both spellings are read (logrhythm.md 5.1, 2026 corrections).
FIELDS = tuple((name, "address") for name in ("impactedIP", "impactedIp", "impactedNATIP", "originIP", "originIp",
                                              "originNATIP")) + tuple(
    (name, "host") for name in ("impactedHostName", "impactedName", "impactedHost", "originHostName", "originName",
                                "originHost", "domain", "domainOrigin", "domainImpacted")) + (
    ("url", "url"), ("cve", "cve"))


def iocs(event):
    """Yield (ioc type, value, field) for every public IOC in one alarm event, in field order."""
    return iocs_.in_fields(event, FIELDS)


def alarm_iocs(events):
    """Return the IOCs of all events of one alarm, first occurrence of each (type, value) kept, and duplicates."""
    return iocs_.first_of_each([ioc for event in events if isinstance(event, dict) for ioc in iocs(event)])
