"""Indicators of compromise as vendors send them: an IP address or range, a domain name, a URL, a file hash, a CVE
id; each check returns the value as it is stored, or raises BadRecord saying why it is not one."""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from tq_conn_common.errors import BadRecord

_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.I)
# A hostname: letter/digit/underscore labels, an alphabetic or punycode TLD; a leading "*." is kept, as lists may
# carry wildcard names.
_DOMAIN = re.compile(r"^(?:\*\.)?(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+"
                     r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})\.?$")


def ip(name):
    """Return an IP address or CIDR range as it is."""
    try:
        socket.inet_pton(socket.AF_INET, name)  # the common case, several times quicker than the others
        return name
    except (OSError, ValueError):
        pass
    if _IPV4.match(name):
        return name
    try:
        socket.inet_pton(socket.AF_INET6, name)
        return name
    except (OSError, ValueError):  # ValueError: an embedded NUL
        pass
    try:
        ipaddress.ip_network(name, strict=False) if "/" in name else ipaddress.ip_address(name)
    except ValueError:
        raise BadRecord("not an IP address or CIDR range", name=name) from None
    return name


def domain(name):
    """Return a hostname as it is."""
    if len(name) > 253 or not _DOMAIN.match(name):
        raise BadRecord("not a domain name", name=name)
    return name


def file_hash(name):
    """Return a hex hash of a known length in lower case."""
    if HASH_LENGTHS.get(len(name)) is None or not _HEX.match(name):
        raise BadRecord("not a hex MD5, SHA-1, SHA-256 or SHA-512 hash", name=name)
    return name.lower()


def url(name):
    """Return a URL with a scheme and a host as it is."""
    try:
        parts = urlsplit(name)
        valid = parts.scheme.isalpha() and bool(parts.netloc) and not any(c.isspace() for c in name)
    except ValueError:
        valid = False
    if not valid:
        raise BadRecord("not a URL with a scheme and a host", name=name)
    return name


def cve(name):
    """Return a CVE id in upper case."""
    if not _CVE.match(name):
        raise BadRecord("not a CVE id", name=name)
    return name.upper()


# What says nothing outside the customer's network: RFC 1918, loopback, link-local and unspecified addresses, and
# fc00::/7, the IPv6 counterpart of RFC 1918; host names under suffixes used inside company networks.
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32",
    "::1/128", "fe80::/10", "::/128", "fc00::/7"))
_INTERNAL_SUFFIXES = ("local", "localdomain", "localhost", "internal", "intranet", "lan", "corp", "home",
                      "private", "home.arpa", "in-addr.arpa", "ip6.arpa", "invalid", "test")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_CVES = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_URL_SCHEMES = ("http", "https", "ftp", "ftps")


def internal_address(address):
    """Return True if address (an ipaddress object) is RFC 1918, loopback, link-local, unspecified or ULA."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in _INTERNAL_NETS if net.version == address.version)


def parse_address(text):
    """Return the ipaddress object of text (brackets allowed), or None if it is not an IP address."""
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def internet_domain(text):
    """Return text as a lower-case internet domain name, or None if it is not one (or a name inside a network)."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(map(_LABEL.match, labels)) or not _TLD.match(labels[-1]):
        return None
    return None if any(name == s or name.endswith("." + s) for s in _INTERNAL_SUFFIXES) else name


def public_ip(text):
    """Return the IP address of text as ipaddress writes it, or None if it is none or an internal one."""
    address = parse_address(text)
    return str(address) if address is not None and not internal_address(address) else None


def public_url(text):
    """Return a URL (http, https, ftp, ftps) whose host is public, or None."""
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        return None
    public = public_ip(host) if parse_address(host) is not None else internet_domain(host)
    return text.strip() if public else None


def cves_in(text):
    """Return the CVE ids written anywhere in text, in upper case."""
    return [match.upper() for match in _CVES.findall(text)]


def _public(kind, text):
    """Return (type, value) of a field's text read as kind (address, host or url); value None when no public IOC."""
    if kind == "url":
        return "url", public_url(text)
    if parse_address(text) is not None:
        return "ip", public_ip(text)
    return "domain", internet_domain(text) if kind == "host" else None


def in_fields(record, fields):
    """Yield (IOC type, value, field) for every public IOC in a record's fields, in the order of fields.

    fields is a sequence of (field name, kind): kind address (an IP), host (an IP or a domain name), url, or cve
    (every CVE id written in the text); internal addresses and names are left out.
    """
    for field, kind in fields:
        raw = record.get(field)
        if not isinstance(raw, str) or not raw.strip():
            continue
        found = [("vulnerability", cve) for cve in cves_in(raw)] if kind == "cve" else [_public(kind, raw)]
        yield from ((type_, value, field) for type_, value in found if value)


def first_of_each(found):
    """Return the (type, value, field) IOCs with the first of each (type, value) kept (case aside but for URLs),
    and how many repeats were dropped."""
    first = {}
    for kind, value, field in found:
        first.setdefault((kind, value.lower() if kind != "url" else value), (kind, value, field))
    return list(first.values()), len(found) - len(first)


__all__ = ["ip", "domain", "file_hash", "url", "cve", "internal_address", "parse_address", "internet_domain",
           "public_ip", "public_url", "cves_in", "in_fields", "first_of_each", "HASH_LENGTHS"]
