"""The ThreatQ connection settings: the parameters of the login, and the API and UI addresses they give."""

import ipaddress
import re
from urllib.parse import urlsplit

from tq_conn_common import checks
from tq_conn_common.config import Param

TOKEN_KEY = "threatq_token"
TOKEN_STYLES = ("query", "json", "form")
PAGING = ("offset", "cursor")


def check_host(value):
    """Param check of a ThreatQ host value: return it, or raise ValueError with the fix (see base_url)."""
    base_url(value)
    return value


HOST = Param("threatq_host", "ThreatQ Host", required=True, prompt=True, check=check_host,
             help="Host name or IP address of the ThreatQ API, as reachable from this host; a full URL such as "
                  "https://tq.example.com:8443 is accepted (https is used unless http:// is given).")
CLIENT_ID = Param("threatq_client_id", "ThreatQ Client ID", required=True, prompt=True,
                  help="The user's API password, shown as Client ID in the ThreatQ user's profile (My Account / user "
                       "details); it is not an OAuth client id, and config.js no longer holds it.")
USERNAME = Param("threatq_username", "ThreatQ Username", required=True, prompt=True,
                 help="The email address of the ThreatQ user this integration logs in as.")
PASSWORD = Param("threatq_password", "ThreatQ Password", required=True, prompt=True, secret=True,
                 help="The password of that ThreatQ user.")
STATUS = Param("status", "Status", default="Review", prompt=True,
               help="Default status for objects created by this integration; a ThreatQ indicator status name.")
CLIENT_SECRET = Param("threatq_client_secret", "ThreatQ Client Secret", secret=True,
                      help="Secret of a private OAuth client (created with threatq:oauth2-client on the appliance); "
                           "when set, the connector logs in with client credentials instead of the user's password.")
LOGIN_ENCODING = Param("threatq_login_encoding", "ThreatQ Login Encoding", default="query", choices=TOKEN_STYLES,
                       help="How the password login is sent to /api/token: query = grant type and client id in the "
                            "URL, email and password as JSON (the vendor SDK's way); json = all four as JSON; form = "
                            "all four form-encoded. Change it only if your ThreatQ refuses the default.")
VERIFY_TLS, CA_BUNDLE = checks.tls_params("threatq", "ThreatQ")
PAGING_PARAM = Param("threatq_paging", "ThreatQ Paging", default="offset", choices=PAGING,
                     help="offset: POST /api/indicators/query with limit and offset (every ThreatQ); cursor: the "
                          "collection's cursor endpoint /api/indicators/query/hash/<id> (newer ThreatQ, faster on "
                          "very large collections).")
USE_UI = Param("threatq_ui", "Use ThreatQ UI", type=bool, default=True,
               help="true: register the connector in ThreatQ and read its settings from the UI on every run; "
                    "false: take every setting from this config file and leave ThreatQ's integrations page alone.")
TOKEN_CACHE = Param(TOKEN_KEY, "ThreatQ Token Cache", type=dict, secret=True,
                    messages={"type": f"ThreatQ Token Cache ({TOKEN_KEY}): is not a mapping; delete the {TOKEN_KEY} "
                                      "entry from the config file (the next run logs in again)."},
                    help="Written by the connector: the OAuth access token, refresh token and expiry of the last "
                         "login. Delete it to force a new login.")


def params():
    """Return the Params of a ThreatQ connection: the five first-run prompts, then optional settings."""
    return (HOST, CLIENT_ID, USERNAME, PASSWORD, STATUS, CLIENT_SECRET, LOGIN_ENCODING, VERIFY_TLS, CA_BUNDLE,
            PAGING_PARAM, USE_UI, TOKEN_CACHE)


def base_url(host):
    """Return the API base URL (scheme://host[:port]/api/) of a ThreatQ Host value; raise ValueError if unusable.

    Accepted: a bare host name or IP address with an optional port (tq.example.com, 10.0.0.5:8443, [::1]:443,
    optionally followed by /api), or an http:// or https:// URL. Anything else is refused with the fix.
    """
    text = str(host or "").strip()
    if not text:
        raise ValueError("is empty; set the ThreatQ host name or IP address.")
    example = "give a host name or IP address with an optional port (tq.example.com:8443), or an https:// URL"
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"{_short(host)} contains spaces or control characters; {example}.")
    bare = "://" not in text
    try:
        parts = urlsplit("https://" + text if bare else text)
    except ValueError:        # an unclosed or invalid [IPv6] address
        raise ValueError(f"{_short(host)} is not a host name or URL; {example}.") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme!r} is not supported; {example}.")
    path = parts.path.rstrip("/")
    if (not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc or "//" in parts.path
            or "\\" in text or (bare and path not in ("", "/api")) or not _valid_hostname(parts)):
        raise ValueError(f"{_short(host)} is not a host name or URL; {example}.")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"{_short(host)} has an invalid port; give e.g. tq.example.com:8443.") from None
    if path.endswith("/api"):
        path = path[:-4]
    return f"{parts.scheme}://{parts.netloc}{path}/api/"


_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")


def _valid_hostname(parts):
    """Return True if the URL's host is an IP address in brackets, or a DNS name / IPv4 address."""
    name = parts.hostname
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(name.split("%", 1)[0])
        except ValueError:
            return False
        return True
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return len(name) <= 254 and all(_LABEL.fullmatch(label) for label in labels)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def ui_base(hostname):
    """Return the ThreatQ UI base URL (https://host unless a scheme is given) for links back to ThreatQ."""
    text = str(hostname or "").strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[:-4]
    return f"{parts.scheme}://{parts.netloc}{path}"


def indicator_link(base, indicator_id):
    """Return the ThreatQ UI link of an indicator, given ui_base()."""
    return f"{base}/indicators/{indicator_id}/details"


__all__ = ["params", "check_host", "base_url", "ui_base", "indicator_link", "HOST", "CLIENT_ID", "USERNAME",
           "PASSWORD", "STATUS", "CLIENT_SECRET", "LOGIN_ENCODING", "VERIFY_TLS", "CA_BUNDLE", "PAGING_PARAM",
           "USE_UI", "TOKEN_CACHE", "TOKEN_KEY", "PAGING", "TOKEN_STYLES"]
