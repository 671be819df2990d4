"""Parameter checks more than one connector needs: Param(check=...) functions returning the value or raising
ValueError with what is wrong and the fix."""

import difflib
import re
from urllib.parse import urlsplit

from tq_conn_common import clock
from tq_conn_common.config import Param

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def http_url(example, *, path=True, placeholder=None, message=None):
    """Return a check of an http(s) URL: a scheme, a host name or IPv4 address and an optional port; with
    path=False nothing after the port; with placeholder, that text must be in it and no other braces. The trailing
    '/' is dropped.

    message: the problem text (with {value!r} and {example}) when a vendor document prescribes it.
    """
    def check(value):
        text = str(value).strip()
        try:
            parts = urlsplit(text)
            port_ok = parts.port is None or 0 < parts.port
        except ValueError:
            parts, port_ok = None, False
        host = parts.hostname if parts else None
        octets = host.split(".") if host else []
        is_ip = len(octets) == 4 and all(o.isdigit() for o in octets)
        good = (parts is not None and parts.scheme in ("http", "https") and host and port_ok and not parts.username
                and (_HOST.match(host) or host.startswith("[")) and not (is_ip and any(int(o) > 255 for o in octets))
                and (path or (parts.path in ("", "/") and not parts.query and not parts.fragment))
                and (placeholder is None or placeholder in text)
                and (placeholder is None or not set("{}") & set(text.replace(placeholder, ""))))
        if not good:
            if message:
                raise ValueError(message.format(value=text, example=example))
            raise ValueError(f"{text!r} is not an http(s) URL" + ("" if path else " without a path")
                             + (f" with the {placeholder} placeholder" if placeholder else "") + f"; set e.g. {example}.")
        return text.rstrip("/") if placeholder is None else text
    return check


def past_time(example="2023-02-07T00:00:00Z"):
    """Return a check of a UTC time in the past (ISO 8601, epoch seconds or a YAML datetime), returned as
    YYYY-MM-DDTHH:MM:SSZ."""
    def check(value):
        text = str(value).strip()
        when = clock.parse(value if hasattr(value, "tzinfo") else text.replace(" ", "T", 1))
        if when is None:
            raise ValueError(f"{text!r} is not a UTC time like {example}; write it in that form.")
        if when > clock.now():
            raise ValueError(f"{text} is in the future; set a time in the past.")
        return clock.iso(when)
    return check


def did_you_mean(word, known):
    """Return ' (did you mean X?)' for the known word closest to word (case aside), or ''."""
    close = [k for k in known if str(k).lower() == str(word).lower()] or difflib.get_close_matches(
        str(word), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def url_path(example):
    """Return a check of a URL path: starting with '/', without spaces."""
    def check(value):
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not a URL path; set a path starting with '/', e.g. {example}.")
        return value
    return check


def tls_params(prefix, service, *, renamed_from=()):
    """Return the two parameters of a service's TLS verification, spelt alike for every service: <prefix>_verify_tls
    and <prefix>_ca_bundle (read them with verify())."""
    return (Param(f"{prefix}_verify_tls", f"{service} Verify TLS", type=bool, default=True, renamed_from=renamed_from,
                  help=f"Verify the {service} TLS certificate. Prefer {prefix}_ca_bundle to turning this off."),
            Param(f"{prefix}_ca_bundle", f"{service} CA Bundle",
                  help=f"Path of a PEM file with the CA that signed the {service} certificate (self-signed, or a "
                       "TLS-inspecting proxy); default: the system CAs."))


def verify(config, prefix):
    """Return the TLS verification of a service declared by tls_params, as requests takes it: the CA bundle's
    path, else True or False."""
    return config.get(f"{prefix}_ca_bundle") or bool(config.get(f"{prefix}_verify_tls", True))


REQUESTS_PER_SECOND = Param("requests_per_second", "Requests per Second", type=int, range=(1, 100_000),
                            help="Most API requests per second to the vendor; unset means no limit. Lower it if the "
                                 "vendor answers 429 (rate limited).")

__all__ = ["http_url", "url_path", "past_time", "did_you_mean", "tls_params", "verify", "REQUESTS_PER_SECOND"]
