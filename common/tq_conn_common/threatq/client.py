"""The ThreatQ API as connectors use it: calls with the bearer token, data collections, indicators page by page,
indicator statuses and the connector records behind the integrations page."""

import datetime
import gc
import json
import logging
import time

from tq_conn_common.errors import ConfigError, Declared, SourceError, TqConnError
from tq_conn_common.http import loads_as
from tq_conn_common.paging import cursor_pages, offset_pages
from tq_conn_common.rows import Paged, ahead
from tq_conn_common.service import Service, named, reason
from tq_conn_common.threatq.auth import Login
from tq_conn_common.threatq.indicator import Indicator, Named, Page, as_indicator
from tq_conn_common.threatq.settings import HOST, PAGING_PARAM, PASSWORD, USERNAME

log = logging.getLogger(__name__)

WITH = ("attributes", "adversaries", "score", "status", "type")
LISTED = ("id", "touched_at")   # what a listing of a collection asks for: enough to see what changed
# ThreatQ's default fields (*) plus the related lists a connector reads: since 2026 the Threat Library leaves
# attributes and sources out of query results unless fields asks for them (reference, 2026 corrections).
FIELDS = ("*", "attributes", "adversaries")
SERVICE = Service("ThreatQ", credential=f"the ThreatQ user ({named(USERNAME)} / {named(PASSWORD)})", url=HOST)
NO_COLLECTION = Declared(ConfigError, "{param}: ThreatQ has no data collection named {name!r}{hint}{listing}",
                         "set the exact name of a data collection (Threat Library > Data Collections) and run again.")
UNKNOWN_STATUS = Declared(ConfigError, "Status (status): {name!r} is not an indicator status in ThreatQ.",
                          "set one of {names} in the config file, then run again.")
_PAGE = loads_as(Page)   # a page of indicators: only the fields read are decoded
_REPEATED = f"set {PAGING_PARAM.label} ({PAGING_PARAM.key}) to the other paging, or report it to ThreatQ support."


class ThreatQ:
    """A logged-in ThreatQ API: renews its token before expiry and once after a 401, and reads what connectors need."""

    def __init__(self, http, client_id, username, password, *, client_secret=None, login_encoding="query",
                 cache=None, clock=time.time):
        self.http = http
        self.login = Login(http, client_id, username, password, client_secret=client_secret,
                           login_encoding=login_encoding, cache=cache, clock=clock)
        self._names = {}

    def access_token(self):
        """Return a valid access token, logging in or renewing it when it is missing or about to expire."""
        return self.login.access_token()

    def call(self, method, path, **kwargs):
        """Return the JSON body of an API call with the bearer token; on a 401 renew the token once and retry."""
        try:
            body = self._call(method, path, kwargs)
        except TqConnError as exc:
            if exc.kind != "credential":
                raise
            log.warning("ThreatQ refused the token on %s /api/%s (HTTP 401); renewing it and retrying.", method, path)
            self.login.expire()
            self.login.renew()
            body = self._call(method, path, kwargs)   # a second 401 is the user's credentials or permissions
        if isinstance(body, dict) and body.get("errors"):
            raise SourceError(f"ThreatQ reported an error for {method} /api/{path}: {reason(json.dumps(body))}.",
                              "check the ThreatQ settings named in the message; the full response is in the log.")
        return body

    def _call(self, method, path, kwargs):
        headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {self.access_token()}"}
        return self.http.json(method, path, **{**kwargs, "headers": headers})

    # Data collections (reference section 3).

    def collections(self):
        """Return the saved data collections: [{id, name, hash?, json: {api_query: ...}}]."""
        items = _data_list(self.call("GET", "search/query"))
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
        raise NO_COLLECTION(param=param, name=name,
                            hint=f" (names are case-sensitive; did you mean {close[0]!r}?)" if close else "",
                            listing=f". The data collections are: {shown}." if names else "; it has no data collections.")

    def query(self, collection):
        """Return the body of a collection's query (criteria and filters) as it is sent: cleaned (clean_query)."""
        query = collection.get("json", {}).get("api_query") or {}
        return self.clean_query({key: query[key] for key in ("criteria", "filters") if key in query},
                                collection.get("name"))

    def indicators(self, collection, batch_size=1000, paging="offset", sort="id", with_=WITH, fields=FIELDS,
                   since=None):
        """Return the collection's indicators page by page (batch_size per request), type and status names filled:
        a rows.Paged (iterated, the indicators; pages(), the pages), read on first use.

        fields goes in the body of the offset query and in the URL of the cursor form, as ThreatQ's SDK and its
        engineers send it; with= stays for older releases, which read the related lists from it.
        The next page is fetched while the caller works on this one: one page ahead, in a thread that is the only
        user of this client until the last page is in (so the caller must not call the client meanwhile).
        since (a ThreatQ stamp, offset paging only): only the indicators touched at since or later.
        """
        return Paged(lambda: self._indicator_pages(collection, batch_size, paging, sort, with_, fields, since))

    def _indicator_pages(self, collection, batch_size, paging, sort, with_, fields, since):
        """Yield the pages of indicators() (a generator: nothing is asked before the first page is wanted)."""
        body = self.query(collection)
        if since:
            body = touched_since(body, since)
        body["fields"] = list(fields)
        params = {"limit": batch_size, "sort": sort, "with": ",".join(with_)}
        if paging == "cursor":
            ident = collection.get("hash") or collection.get("id")
            params["fields"] = ",".join(fields)

            def page(cursor):
                found = self._page("GET", f"indicators/query/hash/{ident}", params={**params, "cursorMark": cursor},
                                   loads=_PAGE)
                # The last page has empty data, sometimes an object {} instead of a list (reference 3.3).
                return _indicators(found), found.get("nextCursorMark") if isinstance(found, dict) else None
            pages = cursor_pages(page, first="*", service="ThreatQ", what="indicators", fix=_REPEATED,
                                 end_on_same=True)
        else:
            def page(offset, limit):
                found = self._page("POST", "indicators/query", json=body,
                                   params={**params, "limit": limit, "offset": offset}, loads=_PAGE)
                return _indicators(found), _total(found)
            pages = offset_pages(page, batch_size, service="ThreatQ", what="indicators", fix=_REPEATED, shared=True,
                                 identity=lambda items: (items[0].id if type(items[0]) is Indicator else None,
                                                         len(items)))
        yield from ahead(self._named(pages))

    def listing(self, collection, batch_size=1000, sort="id", fields=LISTED):
        """Yield every indicator of the collection with only the fields named (offset paging, no related lists; by
        id, an order that changes to indicators do not move); in worker k of n, those of pages k, k + n, ..."""
        body = {**self.query(collection), "fields": list(fields)}

        def page(offset, limit):
            found = self._page("POST", "indicators/query", json=body,
                               params={"limit": limit, "offset": offset, "sort": sort})
            return _data_list(found), _total(found)
        for page in ahead(offset_pages(page, batch_size, service="ThreatQ", what="indicators", fix=_REPEATED,
                                       shared=True)):
            yield from page

    def indicator(self, ident, with_=WITH):
        """Return one indicator (an Indicator) by id with its related lists, type and status names filled (GET
        /api/indicators/id)."""
        found = self.call("GET", f"indicators/{ident}", params={"with": ",".join(with_)})
        item = found.get("data") if isinstance(found, dict) and isinstance(found.get("data"), dict) else found
        if not isinstance(item, dict):
            raise SourceError(f"ThreatQ sent no indicator object for indicator {ident}.",
                              "run again; if it persists, report it to ThreatQ support.", retryable=True)
        item = as_indicator(item)
        if item.type in (None, "") or item.status in (None, ""):
            self._fill_names(item)
        return item

    def clean_query(self, query, name=None):
        """Return a collection's query cleaned as ThreatQ's SDK cleans it before sending (sanitize_payload).

        Type and status names that this ThreatQ does not have are left out (each named in a warning), then empty
        clauses, repeatedly, keeping the criteria and filters roots.
        """
        valid = {"type_name": set(self._names_of("indicator/types").values()),
                 "status_name": set(self._names_of("indicator/statuses").values())}
        dropped = []
        cleaned = {key: _prune(_drop_names(value, valid, dropped)) for key, value in query.items()}
        for key, value in cleaned.items():
            if value is _EMPTY:
                cleaned[key] = {}
        for field, value in dict.fromkeys(dropped):
            log.warning("The data collection %r names %s %r, which this ThreatQ does not have; that clause is left "
                        "out of the query.", name, field.replace("_name", ""), value)
        return cleaned

    def _names_of(self, endpoint):
        """Return {id: name} of indicator types or statuses, asked for once per client."""
        names = self._names.get(endpoint)
        if names is None:
            names = self._names[endpoint] = {str(x.get("id")): x.get("name")
                                             for x in _data_list(self.call("GET", endpoint)) if isinstance(x, dict)}
        return names

    def _named(self, pages):
        """Yield each page with type and status names filled in its items."""
        fill = self._fill_names
        for page in pages:
            for item in page:
                if type(item) is Indicator and (item.type in (None, "") or item.status in (None, "")):
                    fill(item)
            yield page

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
        """Give an Indicator's type and status their names when ThreatQ sent only type_id / status_id."""
        for field, endpoint in (("type", "indicator/types"), ("status", "indicator/statuses")):
            ident = getattr(item, f"{field}_id")
            if getattr(item, field) in (None, "") and ident is not None:
                setattr(item, field, Named(self._names_of(endpoint).get(str(ident))))

    # Indicator statuses (reference section 4).

    def status_id(self, name):
        """Return the id of the indicator status with this name; raise ConfigError listing the statuses."""
        statuses = _data_list(self.call("GET", "indicator/statuses"))
        for item in statuses:
            if str(item.get("name", "")).lower() == str(name).strip().lower():
                return item.get("id")
        names = ", ".join(str(item.get("name")) for item in statuses)
        raise UNKNOWN_STATUS(name=name, names=names)


_EMPTY = object()


def touched_since(body, stamp):
    """Return a query body narrowed to what was touched at stamp or later, as ThreatQ's SDK narrows a saved search
    to a time window: a touched_at clause (open-ended, without the SDK's "+lt": "NOW") in the +and list of the
    filters (of the criteria when there are none).
    The collection's own clauses stay (its date clauses too: they select what the collection holds)."""
    try:
        start = (datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
                 - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        start = stamp
    clause = {"touched_at": {"+gt": start}}   # open-ended: a change in the current second is in it too
    body = dict(body)
    root = "filters" if body.get("filters") else "criteria"
    where = body.get(root) or {}
    if list(where) == ["+and"] and isinstance(where["+and"], list):
        body[root] = {"+and": [*where["+and"], clause]}
    else:
        body[root] = {"+and": ([where] if where else []) + [clause]}
    return body


def _drop_names(value, valid, dropped, key=None):
    """Return value without the type_name / status_name values that are not in valid (each appended to dropped)."""
    if isinstance(value, dict):
        return {k: _drop_names(v, valid, dropped, k if k in valid else key) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_names(v, valid, dropped, key) for v in value]
    if key in valid and isinstance(value, str) and value not in valid[key]:
        dropped.append((key, value))
        return _EMPTY
    return value


def _prune(value):
    """Return value with empty dicts and lists (and dropped values) removed, repeatedly; _EMPTY if nothing is left."""
    if isinstance(value, dict):
        value = {k: v for k, v in ((k, _prune(v)) for k, v in value.items()) if v is not _EMPTY}
    elif isinstance(value, list):
        value = [v for v in map(_prune, value) if v is not _EMPTY]
    return _EMPTY if value is _EMPTY or value in ({}, []) else value


def _decode_json_field(value):
    """Return a collection's json, decoding it when ThreatQ sends it as a JSON string (reference 3.1)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise SourceError("ThreatQ sent a data collection whose query is not valid JSON.",
                              "open the data collection in ThreatQ, save it again, and rerun.") from None
    return value if isinstance(value, dict) else {}


def data_list(body):
    """Return the list in a ThreatQ answer's data, or []."""
    data = body.get("data") if isinstance(body, dict) else body
    return data if isinstance(data, list) else []


_data_list = data_list


def _indicators(body):
    """Return the indicators of a page's body: Indicators as decoded, or made so from a body decoded whole (its
    objects plain dicts); anything else in the list as it came, for the reader to skip."""
    items = _data_list(body)
    return list(map(as_indicator, items)) if dict in set(map(type, items)) else items


def _total(body):
    try:
        return int(body.get("total")) if isinstance(body, dict) and body.get("total") is not None else None
    except (TypeError, ValueError):
        return None


__all__ = ["ThreatQ", "SERVICE", "WITH", "FIELDS", "LISTED", "data_list", "touched_since"]
