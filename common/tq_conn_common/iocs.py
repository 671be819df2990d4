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


__all__ = ["ip", "domain", "file_hash", "url", "cve", "HASH_LENGTHS"]
