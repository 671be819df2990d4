"""IOCs of LogRhythm alarm events: which fields hold them, and the public IOCs they hold."""

from tq_conn_common import iocs as iocs_

# Seed 004 names the fields impactedHost, impactedIP, originHost, originIP, domain, url, cve. The Alarm
# API spells them impactedHostName/impactedName, impactedIP (+ impactedNATIP), originHostName/originName,
# originIP (+ originNATIP); the Search API spells impactedHost, impactedIp, originHost, originIp.
# Both spellings are read (reference logrhythm.md 5.1).
FIELDS = tuple((name, "address") for name in ("impactedIP", "impactedIp", "impactedNATIP", "originIP", "originIp",
                                              "originNATIP")) + tuple(
    (name, "host") for name in ("impactedHostName", "impactedName", "impactedHost", "originHostName", "originName",
                                "originHost", "domain")) + (("url", "url"), ("cve", "cve"))


def _ioc(kind, text):
    """Return (type, value) of a field's text read as kind (address, host or url); value None when no public IOC."""
    if kind == "url":
        return "url", iocs_.public_url(text)
    if iocs_.parse_address(text) is not None:
        return "ip", iocs_.public_ip(text)
    return "domain", iocs_.internet_domain(text) if kind == "host" else None


def iocs(event):
    """Yield (ioc type, value, field) for every public IOC in one alarm event, in field order."""
    for field, kind in FIELDS:
        raw = event.get(field)
        if not isinstance(raw, str) or not raw.strip():
            continue
        found = [("vulnerability", cve) for cve in iocs_.cves_in(raw)] if kind == "cve" else [_ioc(kind, raw)]
        yield from ((type_, value, field) for type_, value in found if value)


def alarm_iocs(events):
    """Return the IOCs of all events of one alarm, first occurrence of each (type, value) kept, and duplicates."""
    found = [ioc for event in events if isinstance(event, dict) for ioc in iocs(event)]
    first = {}
    for kind, value, field in found:
        first.setdefault((kind, value.lower() if kind != "url" else value), (kind, value, field))
    return list(first.values()), len(found) - len(first)
