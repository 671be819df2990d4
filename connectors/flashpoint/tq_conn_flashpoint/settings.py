"""The Flashpoint settings that need more than a type: the APIs, the base64 token, the lookups and their names."""

import base64
import re
from collections import namedtuple

from tq_conn_common import ConfigError, Param, checks
from tq_conn_common.devo import NAME_RULE

STATUSES = ("New", "Created")
DEFAULT_LOOKUP_NAME = "Threatintel_Flashpoint_Intelligence_{Type}"
EXAMPLE = "domain:value.domain:New, sha1:fpid:Created"

# MISP attribute types seen in Flashpoint data (reference 3.8); others are allowed with a warning.
KNOWN_TYPES = tuple("""AS attachment authentihash btc campaign-name comment cookie domain email-dst email-src
    email-src-display-name email-subject filename first-name float github-username hostname imphash ip-dst ip-dst|port
    ip-src link malware-sample md5 mutex other pattern-in-file pattern-in-memory pdb port regkey regkey|value sha1
    sha256 sha512 size-in-bytes snort ssdeep target-external target-machine target-org text threat-actor twitter-id uri
    url user-agent whois-creation-date whois-registrant-email whois-registrant-name whois-registrant-phone
    whois-registrar x509-fingerprint-md5 x509-fingerprint-sha1 x509-fingerprint-sha256 yara""".split())
# IOC v2 types (Splunk SOAR app, OpenCTI connector; README "Flashpoint's APIs").
V2_TYPES = ("domain", "email", "extracted_config", "file", "ipv4", "ipv6", "url")

V4, ALERTING, IGNITE = "https://fp.tools/api/v4", "https://fp.tools/api/alerting/v1", "https://api.flashpoint.io"
NOTIFICATIONS = "alert-management/v1/notifications"
# The API choice -> indicators URL and path, alerts URL and path, alert id and time fields, default lookup_key
# (reference sections 1 and 4, "2026 corrections").
APIS = {"v4": (V4, "indicators", ALERTING, "alerts", "alert_id", "ts", "value.{type}"),
        "ignite": (IGNITE, "technical-intelligence/v1", IGNITE, NOTIFICATIONS, "id", "created_at", "value.{type}"),
        "ioc-v2": (IGNITE, "technical-intelligence/v2/indicators", IGNITE, NOTIFICATIONS, "id", "created_at", "value")}


def decode_token(text):
    """Return the API token carried base64-encoded in bearer_token_base64; raise ValueError if it is not usable."""
    compact = "".join(str(text).split())
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except ValueError:   # binascii.Error among them
        raw = b""
    token = raw.decode("ascii", "replace").strip()
    if len(token) < 8 or not token.isprintable() or " " in token or "\ufffd" in token:
        raise ValueError("not the base64 text of an API token")
    return token


TOKEN_MISSING = "SetupError 1: Please provide the bearer_token_base64 in the inputs."
TOKEN_UNUSABLE = ("SetupError 2: Please ensure the bearer token is prepared: bearer_token_base64 must be the "
                  "Flashpoint API token encoded in base64 (printf %s TOKEN | base64 -w0).")
TOKEN = Param("bearer_token_base64", "Bearer Token (base64)", secret=True, required=True,
              check=lambda text: decode_token(text) and text,
              messages={"missing": TOKEN_MISSING, "format": TOKEN_UNUSABLE, "type": TOKEN_UNUSABLE},
              help="The Flashpoint API token (fp.tools: profile icon > Manage API Tokens > Generate Token), "
                   "encoded in base64.")


# One configured indicator type: its Flashpoint type name, lookup key column (None: the API's default), status, name.
TypeLookup = namedtuple("TypeLookup", "type key status name", defaults=("New", None))


def check_lookups(items):
    """Param check of lookups: return them in the collector's form, [{type: {lookup_key, lookup_status, ...}}]."""
    return [{entry.type: {**({"lookup_key": entry.key} if entry.key else {}), "lookup_status": entry.status,
                          **({"lookup_name": entry.name} if entry.name else {})}} for entry in parse_lookups(items)]


def parse_lookups(items):
    """Return the lookups parameter as a tuple of TypeLookup; raise ValueError naming the entry and the fix."""
    found = []
    for item in items:
        if isinstance(item, str):   # the prompt's form: <type>:<lookup_key>[:New|Created[:<lookup_name>]]
            parts = [part.strip() for part in item.split(":")]
            if len(parts) > 4 or not parts[0]:
                raise ValueError(f"'{item}' has {'too many parts' if parts[0] else 'no type'}; write "
                                 f"<type>[:<lookup_key>[:New|Created[:<lookup_name>]]], e.g. {EXAMPLE}.")
            values = (parts[1:] or [""])[:1] + (parts[2:] or ["New"])
            item = {parts[0]: dict(zip(("lookup_key", "lookup_status", "lookup_name"), values))}
        if not isinstance(item, dict) or not item:
            raise ValueError(f"the entry {item!r} is neither '<type>: {{lookup_key: ..., lookup_status: New}}' "
                             f"nor '<type>:<lookup_key>[:New|Created]'; e.g. {EXAMPLE}.")
        found.extend(_entry(str(type_).strip(), spec) for type_, spec in item.items())
    if not found:
        raise ValueError(f"give at least one indicator type, e.g. {EXAMPLE}.")
    repeated = [entry.type for i, entry in enumerate(found) if entry.type in (e.type for e in found[:i])]
    if repeated:
        raise ValueError(f"the type '{repeated[0]}' is listed twice; keep one entry per type.")
    return tuple(found)


def _entry(type_, spec):
    if not isinstance(spec, dict):
        raise ValueError(f"the type '{type_}' needs a mapping {{lookup_key: ..., lookup_status: New|Created}}.")
    unknown = set(spec) - {"lookup_key", "lookup_status", "lookup_name"}
    if unknown:
        raise ValueError(f"the type '{type_}' has unknown settings {', '.join(sorted(map(str, unknown)))}; "
                         "use lookup_key, lookup_status and lookup_name.")
    if not type_:
        raise ValueError("an entry has an empty indicator type; use the type as Flashpoint spells it, e.g. domain.")
    status, name = str(spec.get("lookup_status") or ""), spec.get("lookup_name")
    name = str(name).strip() if name is not None else None
    matched = [s for s in STATUSES if s.lower() == status.strip().lower()]
    if not matched:
        raise ValueError(f"the lookup_status {status!r} of '{type_}' is not allowed; set New or Created." if status
                         else f"the type '{type_}' has no lookup_status; set New (create or overwrite) or Created.")
    if name is not None and not NAME_RULE.match(name):
        raise ValueError(f"the lookup_name {name!r} of '{type_}' is not valid for Devo; "
                         "use only letters, digits and underscore.")
    return TypeLookup(type_, str(spec.get("lookup_key") or "").strip() or None, matched[0], name)


def type_label(type_):
    """Return the type as a Devo lookup name can carry it: '|', '-' and other signs become '_', first letter upper.

    ip-dst|port -> Ip_dst_port, x509-fingerprint-sha1 -> X509_fingerprint_sha1, AS -> AS.
    """
    label = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", type_)).strip("_")
    return label[:1].upper() + label[1:]


def lookup_names(lookups, global_name):
    """Return {type: Devo lookup name}: per-type name, else the global name ({Type} filled in); ConfigError if
    a name is not valid for Devo or two types would share one lookup."""
    owners = {}
    template = global_name or DEFAULT_LOOKUP_NAME
    for entry in lookups:
        name = entry.name or template.replace("{Type}", type_label(entry.type))
        if not NAME_RULE.match(name):
            raise ConfigError(f"Lookup name (lookup_name) {template!r} gives {name!r} for the type '{entry.type}', "
                              "which Devo cannot carry.",
                              "use only letters, digits, underscore and the placeholder {Type}.")
        if name in owners:
            raise ConfigError(f"The types '{owners[name]}' and '{entry.type}' would both be delivered to the lookup "
                              f"{name}.", "put {Type} in lookup_name, or give each type its own "
                              "lookups.<type>.lookup_name.")
        owners[name] = entry.type
    return {type_: name for name, type_ in owners.items()}


def unknown_type_hint(type_, api="v4"):
    """Return a warning for a type name Flashpoint is not known to use with the API, or None."""
    known, spelt = (V2_TYPES, "IOC v2 types: " + ", ".join(V2_TYPES)) if api == "ioc-v2" else (
        KNOWN_TYPES, "MISP attribute types, e.g. ip-dst|port")
    return None if type_ in known else (
        f"The indicator type '{type_}' is not one Flashpoint is known to use{checks.did_you_mean(type_, known)}; "
        f"types are spelt as in Flashpoint ({spelt}).")


__all__ = ["TypeLookup", "check_lookups", "parse_lookups", "lookup_names", "type_label", "decode_token",
           "unknown_type_hint", "STATUSES", "DEFAULT_LOOKUP_NAME", "KNOWN_TYPES", "V2_TYPES", "APIS"]
