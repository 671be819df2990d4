"""IOCs of LogRhythm alarm events: which fields hold them, what they are, and which are internal."""

import ipaddress
import re
from urllib.parse import urlsplit

# Seed 004 names the fields impactedHost, impactedIP, originHost, originIP, domain, url, cve. The Alarm
# API spells them impactedHostName/impactedName, impactedIP (+ impactedNATIP), originHostName/originName,
# originIP (+ originNATIP); the Search API spells impactedHost, impactedIp, originHost, originIp.
# Both spellings are read (reference logrhythm.md 5.1).
FIELDS = (
    ("impactedIP", "address"), ("impactedIp", "address"), ("impactedNATIP", "address"),
    ("originIP", "address"), ("originIp", "address"), ("originNATIP", "address"),
    ("impactedHostName", "host"), ("impactedName", "host"), ("impactedHost", "host"),
    ("originHostName", "host"), ("originName", "host"), ("originHost", "host"),
    ("domain", "host"),
    ("url", "url"),
    ("cve", "cve"),
)

# Addresses that say nothing outside the customer's network: RFC 1918, loopback, link-local and
# unspecified (seed 004 FAQ 8), plus fc00::/7, the IPv6 counterpart of RFC 1918.
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32",
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
    if not name or len(name) > 253 or "." not in name:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return None
    if any(name == suffix or name.endswith("." + suffix) for suffix in _INTERNAL_SUFFIXES):
        return None
    return name


def _address_ioc(text):
    address = parse_address(text)
    if address is None:
        return None, "not an IP address"
    if internal_address(address):
        return None, "internal address"
    return ("ip", str(address)), None


def _host_ioc(text):
    if parse_address(text) is not None:
        return _address_ioc(text)
    name = domain_name(text)
    if name is None:
        return None, "not an internet domain"
    return ("domain", name), None


def _url_ioc(text):
    value = text.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None, "not a URL"
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        return None, "not a URL"
    address = parse_address(host)
    if address is not None:
        if internal_address(address):
            return None, "URL of an internal address"
    elif domain_name(host) is None:
        return None, "URL of an internal host"
    return ("url", value), None


def iocs(event):
    """Yield (ioc type, value, field) for every public IOC in one alarm event, in field order."""
    for field, kind in FIELDS:
        raw = event.get(field)
        if not isinstance(raw, str) or not raw.strip():
            continue
        if kind == "cve":
            for match in _CVE.findall(raw):
                yield "vulnerability", match.upper(), field
            continue
        found, _ = {"address": _address_ioc, "host": _host_ioc, "url": _url_ioc}[kind](raw)
        if found:
            yield found[0], found[1], field


def alarm_iocs(events):
    """Return the IOCs of all events of one alarm, first occurrence of each (type, value) kept, and duplicates."""
    seen, out, duplicates = set(), [], 0
    for event in events:
        if not isinstance(event, dict):
            continue
        for kind, value, field in iocs(event):
            key = (kind, value.lower() if kind != "url" else value)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            out.append((kind, value, field))
    return out, duplicates


__all__ = ["FIELDS", "iocs", "alarm_iocs", "internal_address", "parse_address", "domain_name"]
