"""Fake IOC values for the stand-ins: each made from an index (and a seed), the same value for the same arguments.

A stand-in chooses the pieces (its words, octets, years) so its values look like its vendor's; these functions put
the pieces together the same way for all of them.
"""

import hashlib

HASHES = {"MD5": hashlib.md5, "SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256}
_ODD = 2654435761   # Knuth's multiplier: odd, so index -> index * _ODD is one-to-one modulo every power of two


def spread(index, seed=0, offset=0):
    """Return a 32-bit number for (index, seed): one-to-one in index, so distinct indexes give distinct numbers."""
    return (index * _ODD + seed * 40503 + offset) & 0xFFFFFFFF


def ipv4(first_octet, n):
    """Return the IPv4 address first_octet.x.y.z with x, y, z the low 24 bits of n."""
    return f"{first_octet}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def cidr24(first_octet, n):
    """Return the /24 network of ipv4(first_octet, n)."""
    return f"{first_octet}.{(n >> 16) & 255}.{(n >> 8) & 255}.0/24"


def ipv6(groups, interface):
    """Return the IPv6 address of the leading 16-bit groups, then :: and the interface id."""
    return ":".join([f"{group:x}" for group in groups]) + f"::{interface:x}"


def domain(first_word, second_word, number, tld):
    """Return a domain like login-portal17.com: two words, a number (any text) and a top-level domain."""
    return f"{first_word}-{second_word}{number}.{tld}"


def url(secure, host, *path):
    """Return an http (or, if secure, https) URL of host and the path segments."""
    return f"{'https' if secure else 'http'}://{host}/" + "/".join([str(part) for part in path])


def email(user, host):
    """Return the e-mail address user@host."""
    return f"{user}@{host}"


def hash_hex(algorithm, data):
    """Return the hex digest of data (bytes) by algorithm, one of HASHES (MD5, SHA-1, SHA-256)."""
    return HASHES[algorithm](data).hexdigest()


def cve(index, first_year, years, first_number):
    """Return a CVE id: the year cycles through years from first_year, the number counts up from first_number."""
    return f"CVE-{first_year + index % years}-{first_number + index}"


__all__ = ["HASHES", "spread", "ipv4", "cidr24", "ipv6", "domain", "url", "email", "hash_hex", "cve"]
