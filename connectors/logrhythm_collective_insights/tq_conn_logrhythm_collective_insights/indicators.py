"""IOCs of LogRhythm alarm events: which fields hold them, what they are, and which are internal."""

import ipaddress
import re
from urllib.parse import urlsplit

# Seed 004 names the fields impactedHost, impactedIP, originHost, originIP, domain, url, cve. The Alarm
# API spells them impactedHostName/impactedName, impactedIP (+ impactedNATIP), originHostName/originName,
# originIP (+ originNATIP); the Search API spells impactedHost, impactedIp, originHost, originIp.
# Both spellings are read (reference logrhythm.md 5.1).
FIELDS = tuple((name, "address") for name in ("impactedIP", "impactedIp", "impactedNATIP", "originIP", "originIp",
                                              "originNATIP")) + tuple(
    (name, "host") for name in ("impactedHostName", "impactedName", "impactedHost", "originHostName", "originName",
                                "originHost", "domain")) + (("url", "url"), ("cve", "cve"))

# Addresses that say nothing outside the customer's network: RFC 1918, loopback, link-local and
# unspecified (seed 004 FAQ 8), plus fc00::/7, the IPv6 counterpart of RFC 1918.
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32",
    "::1/128", "fe80::/10", "::/128", "fc00::/7"))

# Host names under these suffixes are names inside a company network, not internet domains.
_INTERNAL_SUFFIXES = ("local", "localdomain", "localhost", "internal", "intranet", "lan", "corp", "home",
                      "private", "home.arpa", "in-addr.arpa", "ip6.arpa", "invalid", "test")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_URL_SCHEMES = ("http", "https", "ftp", "ftps")


def internal_address(address):
    """Return True if address (an ipaddress object) is RFC 1918, loopback, link-local, unspecified or ULA."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in _INTERNAL_NETS if net.version == address.version)


def parse_address(text):
    """Return the ipaddress object of text, or None if it is not an IP address."""
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def domain_name(text):
    """Return text as a lower-case internet domain name, or None if it is not one (or is internal)."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(map(_LABEL.match, labels)) or not _TLD.match(labels[-1]):
        return None
    return None if any(name == s or name.endswith("." + s) for s in _INTERNAL_SUFFIXES) else name


def _public(host):
    """Return True if a host (an address or a name) is neither an internal address nor an internal name."""
    address = parse_address(host)
    return not internal_address(address) if address is not None else domain_name(host) is not None


def _ioc(kind, text):
    """Return the (type, value) of a field's text read as kind (address, host or url), or None."""
    if kind == "url":
        try:
            parts = urlsplit(text.strip())
            good = parts.scheme.lower() in _URL_SCHEMES and parts.hostname and _public(parts.hostname)
        except ValueError:
            return None
        return ("url", text.strip()) if good else None
    address = parse_address(text)
    if address is not None:
        return None if internal_address(address) else ("ip", str(address))
    name = domain_name(text) if kind == "host" else None
    return ("domain", name) if name else None


def iocs(event):
    """Yield (ioc type, value, field) for every public IOC in one alarm event, in field order."""
    for field, kind in FIELDS:
        raw = event.get(field)
        if not isinstance(raw, str) or not raw.strip():
            continue
        found = [("vulnerability", m.upper()) for m in _CVE.findall(raw)] if kind == "cve" else [_ioc(kind, raw)]
        yield from ((ioc[0], ioc[1], field) for ioc in found if ioc)


def alarm_iocs(events):
    """Return the IOCs of all events of one alarm, first occurrence of each (type, value) kept, and duplicates."""
    seen, out = set(), []
    found = [ioc for event in events if isinstance(event, dict) for ioc in iocs(event)]
    for kind, value, field in found:
        key = (kind, value.lower() if kind != "url" else value)
        if key not in seen:
            seen.add(key)
            out.append((kind, value, field))
    return out, len(found) - len(out)

