"""The ThreatQ client: OAuth token, data collections, indicator paging, and the connector record behind the UI."""

import gc
import ipaddress
import json
import logging
import queue
import re
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import yaml

from tq_conn_common import logs
from tq_conn_common.cli import stop
from tq_conn_common.config import Param, read_file, reveal, ui_definition
from tq_conn_common.errors import AuthError, ConfigError, SourceError
from tq_conn_common.files import write_private
from tq_conn_common.http import HttpAuthError

log = logging.getLogger(__name__)

WITH = ("attributes", "adversaries", "score", "status", "type")
TOKEN_KEY = "threatq_token"
CATEGORY = "Labs"
TOKEN_STYLES = ("query", "json", "form")
PAGING = ("offset", "cursor")
_DEFAULT_LIFETIME = 1800      # the vendor SDK renews after 30 minutes when expires_in is absent (reference 2)
_TIME = "%Y-%m-%d %H:%M:%S"   # ThreatQ timestamps: no zone, UTC (reference 1)


def check_host(value):
    """Param check of a ThreatQ host value: return it, or raise ValueError with the fix (see base_url)."""
    base_url(value)
    return value


def params():
    """Return the Params of a ThreatQ connection: the five first-run prompts, then optional settings."""
    return (
        Param("threatq_host", "ThreatQ Host", required=True, prompt=True, check=check_host,
              help="Host name or IP address of the ThreatQ API, as reachable from this host; a full URL such as "
                   "https://tq.example.com:8443 is accepted (https is used unless http:// is given)."),
        Param("threatq_client_id", "ThreatQ Client ID", required=True, prompt=True,
              help="The OAuth client id shown in ThreatQ under Settings > User Management > API details of the user."),
        Param("threatq_username", "ThreatQ Username", required=True, prompt=True,
              help="The email address of the ThreatQ user this integration logs in as."),
        Param("threatq_password", "ThreatQ Password", required=True, prompt=True, secret=True,
              help="The password of that ThreatQ user."),
        Param("status", "Status", default="Review", prompt=True,
              help="Default status for objects created by this integration; a ThreatQ indicator status name."),
        Param("threatq_client_secret", "ThreatQ Client Secret", secret=True,
              help="Secret of a private OAuth client (created with threatq:oauth2-client on the appliance); "
                   "when set, the connector logs in with client credentials instead of the user's password."),
        Param("threatq_login_encoding", "ThreatQ Login Encoding", default="query", choices=TOKEN_STYLES,
              help="How the password login is sent to /api/token: query = grant type and client id in the URL, "
                   "email and password as JSON (the vendor SDK's way); json = all four as JSON; form = all four "
                   "form-encoded. Change it only if your ThreatQ refuses the default."),
        Param("threatq_verify_tls", "ThreatQ Verify TLS", type=bool, default=True,
              help="Verify the ThreatQ TLS certificate. Prefer a CA bundle to turning this off."),
        Param("threatq_ca_bundle", "ThreatQ CA Bundle",
              help="Path of a PEM file with the CA that signed a self-signed ThreatQ certificate."),
        Param("threatq_paging", "ThreatQ Paging", default="offset", choices=PAGING,
              help="offset: POST /api/indicators/query with limit and offset (every ThreatQ); cursor: the "
                   "collection's cursor endpoint /api/indicators/query/hash/<id> (newer ThreatQ, faster on "
                   "very large collections)."),
        Param("threatq_ui", "Use ThreatQ UI", type=bool, default=True,
              help="true: register the connector in ThreatQ and read its settings from the UI on every run; "
                   "false: take every setting from this config file and leave ThreatQ's integrations page alone."),
        Param(TOKEN_KEY, "ThreatQ Token Cache", type=dict, secret=True,
              messages={"type": f"ThreatQ Token Cache ({TOKEN_KEY}): is not a mapping; delete the {TOKEN_KEY} "
                                "entry from the config file (the next run logs in again)."},
              help="Written by the connector: the OAuth access token, refresh token and expiry of the last "
                   "login. Delete it to force a new login."),
    )


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


# Reading indicators: the shapes ThreatQ sends differ by endpoint and version (reference sections 3 and 5).

def name_of(value):
    """Return the name of a type or status, sent as an object or (with fields=) as a plain string; None if odd."""
    if type(value) is dict:
        value = value.get("name")
    if type(value) is str or value is None:
        return value
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def score(indicator):
    """Return the indicator's effective score as a number: manual if set, else generated; None if absent or odd."""
    value = indicator.get("score")
    if isinstance(value, dict):
        manual = value.get("manual_score")
        value = manual if manual not in (None, "") else value.get("generated_score")
    if value is None or value == "" or isinstance(value, (dict, list, bool)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if number.is_integer() else number


def attribute_values(indicator, *names):
    """Return the values of the attributes with these exact names, in the order of names, empty ones left out."""
    found = attributes_by_name(indicator, names)
    return [value for name in names for value in found[name]]


def attributes_by_name(indicator, names):
    """Return {name: [values]} of the attributes with these exact names, in one pass, empty values left out.

    Runs once per indicator on the export's hot path, so malformed shapes are caught by cheap type checks: attributes
    that are not a list read as none, and an entry that is not an object, or whose name is not text or whose value
    is not text or a number, is left out.
    """
    found = {name: [] for name in names}
    items = indicator.get("attributes")
    if type(items) is not list:
        return found
    for item in items:
        if type(item) is not dict:
            continue
        name = item.get("name") or name_of(item.get("attribute"))
        if type(name) is not str:
            continue
        values = found.get(name)
        if values is None:
            continue
        value = item.get("value")
        if type(value) is str:
            value = value.strip()
        elif isinstance(value, (int, float)):
            value = str(value)
        else:
            continue
        if value:
            values.append(value)
    return found


def adversaries(indicator):
    """Return the names of the indicator's related adversary objects (empty or malformed names left out)."""
    items = indicator.get("adversaries")
    if type(items) is not list:
        return []
    names = []
    for item in items:
        name = item.get("name") if type(item) is dict else item
        if type(name) is str:
            name = name.strip()
        elif isinstance(name, (int, float)) and not isinstance(name, bool):
            name = str(name)
        else:
            continue
        if name:
            names.append(name)
    return names


def adversary_count(indicator):
    """Return how many related adversary objects the indicator lists (0 if the list is absent or malformed)."""
    items = indicator.get("adversaries")
    return len(items) if type(items) is list else 0


def unique(values):
    """Return values without repeats, first occurrence kept."""
    return list(dict.fromkeys(values))


def _errors_text(body):
    """Return the error messages of a ThreatQ error body (both shapes of reference section 1), or ''."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if errors is None and isinstance(body.get("data"), dict):
        errors = body["data"].get("errors")
    parts = []

    def walk(item, prefix=""):
        if isinstance(item, dict):
            for key, value in item.items():
                walk(value, f"{key}: ")
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value, prefix)
        elif item not in (None, ""):
            parts.append(prefix + str(item))
    walk(errors)
    return "; ".join(parts)[:300]


def _decode_json_field(value):
    """Return a collection's json, decoding it when ThreatQ sends it as a JSON string (reference 3.1)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise SourceError("ThreatQ sent a data collection whose query is not valid JSON.",
                              "open the data collection in ThreatQ, save it again, and rerun.") from None
    return value if isinstance(value, dict) else {}


def _is_true(value):
    """Return ThreatQ's is_active as a bool; it may come back as '', 'False', 0 or 'true' (reference 9)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "on")
    return bool(value)


class TokenCache:
    """The token of the last login, kept in the instance's config file under threatq_token with its expiry."""

    def __init__(self, path, key=TOKEN_KEY):
        self.path = path
        self.key = key

    def load(self, identity):
        """Return the cached token for this identity (host, client id, user), or None."""
        try:
            cached = read_file(self.path).get(self.key)
        except ConfigError as exc:
            log.warning("Cannot read the cached ThreatQ token: %s", exc.message)
            return None
        if not isinstance(cached, dict) or cached.get("identity") != identity or not cached.get("access_token"):
            return None
        return cached

    def save(self, token):
        """Write the token into the config file (atomically, mode 0600); every other line stays as it is."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.read().splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            log.warning("Cannot read %s to cache the ThreatQ token (%s); the next run logs in again.",
                        self.path, exc.strerror)
            return
        block = yaml.safe_dump({self.key: token}, sort_keys=False, allow_unicode=True)
        out, at, skipping = [], None, False
        for line in lines:
            if line.startswith(f"{self.key}:"):
                at, skipping = len(out), True
                continue
            if skipping and line[:1] in (" ", "\t"):
                continue
            skipping = False
            out.append(line)
        if at is None:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            at = len(out)
        out.insert(at, block)
        try:
            write_private(self.path, "".join(out))
        except ConfigError as exc:
            log.warning("Cannot cache the ThreatQ token in %s (%s); the next run logs in again.", self.path,
                        exc.message)


class ThreatQ:
    """A logged-in ThreatQ API: renews its token before expiry and once after a 401, and reads what connectors need."""

    def __init__(self, http, client_id, username, password, *, client_secret=None, login_encoding="query",
                 cache=None, clock=time.time):
        self.http = http
        self.client_id = client_id
        self.username = username
        self.password = password
        self.client_secret = client_secret
        self.login_encoding = login_encoding
        self.cache = cache
        self.clock = clock
        self.identity = {"api": http.base_url, "client_id": client_id,
                         "user": username if not client_secret else None}
        self._token = cache.load(self.identity) if cache else None
        if self._token:
            logs.add_secrets([self._token.get("access_token"), self._token.get("refresh_token")])
            log.debug("Using the cached ThreatQ token (valid until %s).", self._token.get("expires_at"))
        self._names = {}

    # Authentication (reference section 2).

    def access_token(self):
        """Return a valid access token, logging in or renewing it when it is missing or about to expire."""
        token = self._token
        if token:
            lifetime = token.get("expires_in") or _DEFAULT_LIFETIME
            margin = min(60.0, lifetime * 0.1)
            if self.clock() < _epoch(token.get("expires_at")) - margin:
                return token["access_token"]
            log.info("The ThreatQ token expires at %s; renewing it.", token.get("expires_at"))
        return self.renew()

    def renew(self):
        """Get a new token: with the refresh token if there is one, else (or if refused) by logging in again."""
        token = None
        if self._token and self._token.get("refresh_token"):
            token = self._refresh(self._token)
        if token is None:
            token = self._login()
        self._token = token
        if self.cache:
            self.cache.save(token)
        return token["access_token"]

    def _login(self):
        if self.client_secret:
            auth = (self.client_id, reveal(self.client_secret))
            response = self.http.request("POST", "token", params={"grant_type": "client_credentials"},
                                         data={"grant_type": "client_credentials"}, auth=auth, expect=None)
            who = "ThreatQ Client ID (threatq_client_id) and ThreatQ Client Secret (threatq_client_secret)"
        else:
            fields = {"email": self.username, "password": reveal(self.password)}
            full = {**fields, "grant_type": "password", "client_id": self.client_id}
            if self.login_encoding == "json":
                kwargs = {"json": full}
            elif self.login_encoding == "form":
                kwargs = {"data": full}
            else:
                kwargs = {"params": {"grant_type": "password", "client_id": self.client_id}, "json": fields}
            response = self.http.request("POST", "token", expect=None, **kwargs)
            who = ("ThreatQ Client ID (threatq_client_id), ThreatQ Username (threatq_username) and "
                   "ThreatQ Password (threatq_password)")
        body = _json_or_none(response)
        if response.status_code in (400, 401, 403) or (response.status_code == 200 and not _has_token(body)):
            detail = _errors_text(body)
            raise AuthError(f"ThreatQ at {_host(self.http.base_url)} refused the login (HTTP {response.status_code}"
                            + (f": {detail}" if detail else "") + ").",
                            f"check {who} in the config file, then run again.")
        if response.status_code != 200 or body is None:
            raise self.http.error(response, f"ThreatQ at {_host(self.http.base_url)} could not issue a token "
                                            f"(HTTP {response.status_code}).")
        log.info("Logged in to ThreatQ at %s.", _host(self.http.base_url))
        return self._token_record(body)

    def _refresh(self, old):
        auth = (self.client_id, reveal(self.client_secret)) if self.client_secret else None
        headers = {"Authorization": f"Bearer {old['access_token']}"} if not auth else {}
        response = self.http.request("POST", "token", expect=None, auth=auth, headers=headers,
                                     params={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
        body = _json_or_none(response)
        if response.status_code != 200 or not _has_token(body):
            log.info("ThreatQ refused the refresh token (HTTP %s); logging in again.", response.status_code)
            return None
        log.info("Renewed the ThreatQ token with the refresh token.")
        return self._token_record(body, old.get("refresh_token"))

    def _token_record(self, body, old_refresh=None):
        try:
            lifetime = float(body.get("expires_in") or _DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = _DEFAULT_LIFETIME
        lifetime = int(lifetime) if float(lifetime).is_integer() else lifetime
        record = {"identity": self.identity, "access_token": str(body["access_token"]),
                  "refresh_token": body.get("refresh_token") or old_refresh,
                  "expires_in": lifetime, "expires_at": _iso(self.clock() + lifetime)}
        logs.add_secrets([record["access_token"], record["refresh_token"]])
        return record

    # Calls.

    def call(self, method, path, **kwargs):
        """Return the JSON body of an API call with the bearer token; on a 401 renew the token once and retry."""
        try:
            body = self._call(method, path, kwargs)
        except HttpAuthError as exc:
            if exc.status != 401:
                raise
            log.warning("ThreatQ refused the token on %s /api/%s (HTTP 401); renewing it and retrying.", method, path)
            if self._token:
                self._token = {**self._token, "expires_at": _iso(0)}
            self.renew()
            body = self._call(method, path, kwargs)   # a second 401 is the user's credentials or permissions
        if isinstance(body, dict) and body.get("errors"):
            raise SourceError(f"ThreatQ reported an error for {method} /api/{path}: {_errors_text(body)}.",
                              "check the ThreatQ settings named in the message; the full response is in the log.")
        return body

    def _call(self, method, path, kwargs):
        headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {self.access_token()}"}
        return self.http.json(method, path, **{**kwargs, "headers": headers})

    # Data collections (reference section 3).

    def collections(self):
        """Return the saved data collections: [{id, name, hash?, json: {api_query: ...}}]."""
        body = self.call("GET", "search/query")
        items = _data_list(body)
        for item in items:
            item["json"] = _decode_json_field(item.get("json"))
        return items

    def collection(self, name, param="ThreatQ Data Collection Name (collection_name)"):
        """Return the data collection with exactly this name; raise ConfigError listing the names that exist."""
        items = self.collections()
        for item in items:
            if item.get("name") == name:
                log.info("Data collection %r has id %s.", name, item.get("id"))
                return item
        names = sorted(str(item.get("name")) for item in items if item.get("name"))
        close = [n for n in names if n.lower() == str(name).lower()]
        shown = ", ".join(repr(n) for n in names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
        raise ConfigError(f"{param}: ThreatQ has no data collection named {name!r}"
                          + (f" (names are case-sensitive; did you mean {close[0]!r}?)" if close else "")
                          + (f". The data collections are: {shown}." if names else "; it has no data collections."),
                          "set the exact name of a data collection (Threat Library > Data Collections) and run again.")

    def indicators(self, collection, batch_size=1000, paging="offset", sort="id", with_=WITH):
        """Yield the collection's indicators page by page (batch_size per request), type and status names filled.

        The next page is fetched while the caller works on this one: one page ahead, in a thread that is the only
        user of this client until the last page is in (so the caller must not call the client meanwhile).
        """
        query = collection.get("json", {}).get("api_query") or {}
        body = {key: query[key] for key in ("criteria", "filters") if key in query}
        with_param = ",".join(with_)
        if paging == "cursor":
            pages = self._cursor_pages(collection, batch_size, sort, with_param)
        else:
            pages = self._offset_pages(body, batch_size, sort, with_param)
        for page in _one_ahead(self._named(pages)):
            yield from page

    def _named(self, pages):
        """Yield each page with type and status names filled in its items."""
        fill = self._fill_names
        for page in pages:
            for item in page:
                if isinstance(item, dict) and (item.get("type") in (None, "") or item.get("status") in (None, "")):
                    fill(item)
            yield page

    def _offset_pages(self, body, limit, sort, with_param):
        offset, first_ids = 0, None
        while True:
            page = self._page("POST", "indicators/query", json=body,
                              params={"limit": limit, "offset": offset, "sort": sort, "with": with_param})
            items, total = _data_list(page), _total(page)
            if not items:
                return
            ids = (items[0].get("id"), len(items)) if isinstance(items[0], dict) else None
            if offset and ids == first_ids:
                raise SourceError(f"ThreatQ sent the same page again at offset {offset}; stopped to avoid a loop.",
                                  "set ThreatQ Paging (threatq_paging) to cursor, or report it to ThreatQ support.")
            first_ids = ids
            offset += len(items)
            log.info("Fetched %d indicators%s.", offset, f" of {total}" if total is not None else "")
            yield items
            # A server may cap the page below the batch size asked for: trust total, not the page length.
            if (total is not None and offset >= total) or (total is None and len(items) < limit):
                return

    def _cursor_pages(self, collection, limit, sort, with_param):
        ident = collection.get("hash") or collection.get("id")
        cursor, seen, count = "*", set(), 0
        while True:
            page = self._page("GET", f"indicators/query/hash/{ident}",
                              params={"limit": limit, "cursorMark": cursor, "sort": sort, "with": with_param})
            # The last page has empty data, sometimes an object {} instead of a list (reference 3.3).
            items = _data_list(page)
            if not items:
                return
            count += len(items)
            total = _total(page)
            log.info("Fetched %d indicators%s.", count, f" of {total}" if total is not None else "")
            yield items
            cursor_next = page.get("nextCursorMark") if isinstance(page, dict) else None
            if not cursor_next or cursor_next == cursor:
                return
            if cursor_next in seen:
                raise SourceError("ThreatQ repeated a page cursor while listing the data collection; stopped to "
                                  "avoid a loop.", "run again later, or set ThreatQ Paging (threatq_paging) to offset.")
            seen.add(cursor_next)
            cursor = cursor_next

    def _page(self, method, path, **kwargs):
        """Return the body of one page of indicators, decoded with the cyclic garbage collector paused.

        A page is ~10,000 small dicts and lists without cycles, freed by reference counting once the caller is done
        with them. Collecting while they are made, then walking them again in the young generations, cost about a
        tenth of the client's CPU on a million indicators; so the collector is paused while a page is decoded and
        then what exists is moved to the oldest generation (freeze, unfreeze), which is collected rarely.
        """
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self.call(method, path, **kwargs)
        finally:
            if paused:
                gc.freeze()
                gc.unfreeze()
                gc.enable()

    def _fill_names(self, item):
        """Give type and status their names when ThreatQ sent only type_id / status_id."""
        for field, endpoint in (("type", "indicator/types"), ("status", "indicator/statuses")):
            if item.get(field) in (None, "") and item.get(f"{field}_id") is not None:
                names = self._names.get(endpoint)
                if names is None:
                    names = self._names[endpoint] = {str(x.get("id")): x.get("name")
                                                     for x in _data_list(self.call("GET", endpoint))
                                                     if isinstance(x, dict)}
                item[field] = {"id": item[f"{field}_id"], "name": names.get(str(item[f"{field}_id"]))}

    # Indicator statuses (reference section 4).

    def status_id(self, name):
        """Return the id of the indicator status with this name; raise ConfigError listing the statuses."""
        statuses = _data_list(self.call("GET", "indicator/statuses"))
        for item in statuses:
            if str(item.get("name", "")).lower() == str(name).strip().lower():
                return item.get("id")
        names = ", ".join(str(item.get("name")) for item in statuses)
        raise ConfigError(f"Status (status): {name!r} is not an indicator status in ThreatQ.",
                          f"set one of {names} in the config file, then run again.")

    # The connector record behind the integrations page (reference section 9).

    def connector_record(self, name):
        """Return the connector record with this name, or None."""
        for item in _data_list(self.call("GET", "connectors", params={"name": name})):
            if item.get("name") == name:
                return item
        return None

    def register(self, name, display_name, definition, *, status=None, description=""):
        """Create or update the connector record with this UI definition, keeping the values set in the UI."""
        status_id = self.status_id(status) if status else None
        existing = self.connector_record(name)
        fields = merge_definition(definition, (existing or {}).get("custom_fields"))
        body = {"display_name": display_name, "category": CATEGORY, "custom_fields": fields,
                "description": description, "namespace": name.replace("-", "_")}
        if status_id is not None:
            body["indicator_status_id"] = status_id
        if existing:
            data = self.call("PUT", f"connectors/{existing['id']}", json=body)
            log.info("Updated the ThreatQ connector record %r (id %s).", name, existing["id"])
        else:
            data = self.call("POST", "connectors", json={"name": name, "is_active": False, **body})
            log.info("Registered the ThreatQ connector record %r.", name)
        record = data.get("data") if isinstance(data, dict) else None
        if isinstance(record, list):
            record = record[0] if record else None
        return record or self.connector_record(name)

    def record_run(self, record_id, count, when=None):
        """Write the last import time and count of a finished run into the connector record."""
        stamp = time.strftime(_TIME, time.gmtime(when if when is not None else self.clock()))
        self.call("PUT", f"connectors/{record_id}", json={"last_import_at": stamp, "last_import_count": count})
        log.info("Recorded the run in ThreatQ: last import %s, %d items.", stamp, count)


def merge_definition(definition, existing):
    """Return the UI fields of definition carrying over the values already set in existing fields (by name)."""
    values = field_values(existing)
    merged = []
    for item in definition:
        item = dict(item)
        if item["name"] in values:
            item["value"] = values[item["name"]]
        merged.append(item)
    return merged


def field_values(custom_fields):
    """Return {key: value} of a connector record's custom_fields (a list of fields, a mapping, or JSON text)."""
    if isinstance(custom_fields, str):
        try:
            custom_fields = json.loads(custom_fields) if custom_fields.strip() else []
        except ValueError:
            return {}
    if isinstance(custom_fields, dict):
        return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in custom_fields.items()}
    values = {}
    for item in custom_fields or ():
        if isinstance(item, dict) and item.get("name") and "value" in item:
            values[item["name"]] = item["value"]
    return values


def definition_changed(fields, definition):
    """Return True if the record's UI fields differ from definition in any key the definition sets."""
    fields = [item for item in fields or () if isinstance(item, dict)]
    if len(fields) != len(definition):
        return True
    return any(any(field.get(key) != value for key, value in want.items()) for field, want in zip(fields, definition))


_END = object()


def _one_ahead(items):
    """Yield from the iterator items, taking the next one in a thread while the caller works on this one.

    An exception of the iterator is raised here, in its place in the sequence. When the caller stops early the
    thread stops after the item it is taking.
    """
    wanted, ready, closed = threading.Semaphore(0), queue.SimpleQueue(), threading.Event()

    def take():
        try:
            while True:
                wanted.acquire()
                if closed.is_set():
                    return
                item = next(items, _END)
                ready.put((item, None))
                if item is _END:
                    return
        except BaseException as exc:  # handed to the caller's thread, which raises it
            ready.put((_END, exc))

    wanted.release()
    threading.Thread(target=take, name="threatq-pages", daemon=True).start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            wanted.release()
            yield item
    finally:
        closed.set()
        wanted.release()


def _data_list(body):
    data = body.get("data") if isinstance(body, dict) else body
    if isinstance(data, list):
        return data
    return []


def _total(body):
    try:
        return int(body.get("total")) if isinstance(body, dict) and body.get("total") is not None else None
    except (TypeError, ValueError):
        return None


def _has_token(body):
    return isinstance(body, dict) and bool(body.get("access_token"))


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _host(url):
    return urlsplit(url).netloc or url


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text):
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


# The flow of a connector configured in the ThreatQ UI, as driver hooks (cli.Connector on_configured / remote_values).

def client(run):
    """Return the run's ThreatQ client (one per run), built from the threatq_* parameters."""
    tq = getattr(run, "threatq", None)
    if tq is None:
        config = run.config
        verify = config.get("threatq_ca_bundle") or bool(config.get("threatq_verify_tls", True))
        http = run.http(base_url(config.threatq_host), service="ThreatQ", verify=verify,
                        credential="the ThreatQ user (threatq_username / threatq_password)")
        tq = run.threatq = ThreatQ(http, config.threatq_client_id, config.threatq_username, config.threatq_password,
                                   client_secret=config.get("threatq_client_secret"),
                                   login_encoding=config.get("threatq_login_encoding", "query"),
                                   cache=TokenCache(run.paths["config"]))
    return tq


def record_name(run):
    """Return the connector record's name: the command, with the instance name of -n."""
    return run.connector.command + (f"-{run.name}" if run.name else "")


def _display_name(run):
    return run.connector.title + (f" ({run.name})" if run.name else "")


def _definition(run):
    return ui_definition(run.connector.params)


CONFIGURED = "Connector configured. Set information in UI"


def on_configured(run):
    """After the first-run answers: register the connector record in ThreatQ and stop with the vendor's message."""
    if not run.config.get("threatq_ui", True):
        stop(f"Configuration written to {run.paths['config']}. Set the remaining parameters there "
             "(see --print-config-template).")
    register(run)
    stop(CONFIGURED)


def register(run):
    """Create or update this instance's connector record; return it."""
    return client(run).register(record_name(run), _display_name(run), _definition(run),
                                status=run.config.get("status"), description=run.connector.description)


def remote_values(run):
    """Return the values set in the ThreatQ UI; register first if needed, and stop while the connector is disabled."""
    if not run.config.get("threatq_ui", True):
        return {}
    tq = client(run)
    name = record_name(run)
    record = tq.connector_record(name)
    if record is None:
        register(run)
        stop(CONFIGURED)
    if definition_changed(_as_fields(record.get("custom_fields")), _definition(run)):
        log.info("The UI definition of %r changed; updating the connector record.", name)
        record = tq.register(name, _display_name(run), _definition(run), description=run.connector.description) \
            or record
    run.threatq_record = record
    if not _is_true(record.get("is_active")):
        stop(f"Skipped: the connector {_display_name(run)!r} ({name}) is not enabled in ThreatQ. "
             "Enable it on its integration page (category Labs) with the toggle above Additional Information, "
             "then run again.")
    values = field_values(record.get("custom_fields"))
    log.info("Read %d settings of %r from ThreatQ.", sum(1 for v in values.values() if v not in (None, "")), name)
    return values


def _as_fields(custom_fields):
    if isinstance(custom_fields, str):
        try:
            return json.loads(custom_fields) if custom_fields.strip() else []
        except ValueError:
            return []
    return custom_fields if isinstance(custom_fields, list) else []


def record_run(run, count):
    """Write the last import time and count into this instance's connector record (after delivery).

    The data already reached its destination, so a failure here is a warning, not a failed run.
    """
    record = getattr(run, "threatq_record", None)
    if record is None or record.get("id") is None:
        return
    try:
        client(run).record_run(record["id"], count)
    except (SourceError, AuthError) as exc:
        log.warning("Delivered, but the run could not be recorded in ThreatQ: %s", exc.message)


__all__ = ["ThreatQ", "TokenCache", "params", "check_host", "base_url", "ui_base", "indicator_link", "name_of",
           "score", "attribute_values", "attributes_by_name", "adversaries", "adversary_count", "unique",
           "merge_definition", "field_values", "client", "register", "on_configured", "remote_values", "record_run",
           "record_name", "WITH", "CONFIGURED"]
