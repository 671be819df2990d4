"""ThreatQ stand-in: OAuth tokens, data collections generated on the fly, indicator paging, connector records."""

import base64
import hashlib
import json
import bisect
import operator
import secrets
import time
from datetime import datetime, timedelta, timezone

from tq_conn_sandbox import fake
from tq_conn_sandbox.server import Response, Service, route

CLIENT_ID = "sandbox-client-id"
USERNAME = "analyst@example.com"
PASSWORD = "sandbox-password"
PRIVATE_CLIENT_ID = "sandbox-private-client"
PRIVATE_CLIENT_SECRET = "sandbox-private-secret"

# Ids differ per real instance (reference section 4); these follow the samples.
TYPES = (
    (15, "IP Address", "network"), (16, "IPv6 Address", "network"), (11, "FQDN", "network"), (30, "URL", "network"),
    (4, "Email Address", "network"), (18, "MD5", "host"), (19, "SHA-1", "host"), (20, "SHA-256", "host"),
    (8, "CVE", "host"), (26, "String", "host"),
)
TYPE_WEIGHTS = (30, 3, 22, 14, 6, 9, 3, 8, 5, 0)
STATUSES = (
    (1, "Active", "Poses a threat and is being exported to detection tools."),
    (2, "Expired", "No longer poses a serious threat."),
    (3, "Indirect", "Associated with an active threat, but is not directly malicious."),
    (4, "Review", "Requires further analysis."),
    (5, "Whitelisted", "Poses NO risk and should never be deployed."),
)
STATUS_WEIGHTS = (60, 12, 6, 17, 5)
_TYPE_TOTALS = [sum(TYPE_WEIGHTS[:i + 1]) for i in range(len(TYPE_WEIGHTS))]
_STATUS_TOTALS = [sum(STATUS_WEIGHTS[:i + 1]) for i in range(len(STATUS_WEIGHTS))]
ATTACK_PHASES = ("Reconnaissance", "Weaponization", "Delivery", "Exploitation", "Installation",
                 "Command and Control", "Actions on Objectives")
THREAT_TYPES = ("Malware", "Phishing", "Botnet", "Command and Control", "Ransomware", "Scanning", "Spam",
                "Credential Theft")
ADVERSARIES = ("APT28", "APT29", "Lazarus Group", "FIN7", "Sandworm Team", "Wizard Spider", "Kimsuky", "TA505",
               "Turla", "Scattered Spider", "Charming Kitten", "OceanLotus")
ADVERSARY_ATTRIBUTES = (("Actor", 23, 0.4), ("Related Adversary", 24, 0.3), ("Related Actor", 25, 0.2))
SOURCES = ("AlienVault OTX", "Emerging Threats", "abuse.ch URLhaus", "CISA AIS", "Analyst Submission")
PUBLIC_OCTETS = (23, 31, 37, 45, 62, 77, 85, 91, 103, 104, 141, 146, 176, 185, 193, 194, 203, 212)
WORDS = ("update", "secure", "login", "cdn", "mail", "portal", "sync", "cloud", "account", "verify", "static",
         "files", "docs", "support", "auth", "billing")
TLDS = ("com", "net", "org", "info", "xyz", "top", "ru", "io", "biz")
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)
SETTINGS = {
    "expires_in": 3600,          # lifetime of issued access tokens, seconds
    "refresh_tokens": True,      # issue refresh tokens and accept grant_type=refresh_token
    "token_uses": 0,             # an access token stops working after this many authenticated requests (0: never)
    "revoke_on_page": 0,         # every token is revoked when this indicator page is first asked for (a 401 mid-run)
    "fail_page": 0,              # this indicator page answers fail_status fail_count times, then serves
    "fail_status": 503,
    "fail_count": 1,
    "fail_retry_after": None,    # Retry-After seconds sent with the failures (e.g. with fail_status 429)
    "max_limit": 1000,           # page size cap, as ThreatQ's API has (reference 3.2)
    "score_shape": "auto",       # auto: object when with=score is asked, else number; number; object; mixed
    "type_shape": "object",      # object; string (type and status as names); id (only type_id and status_id)
    "empty_attributes": False,   # add attributes with an empty name and an empty value to every indicator
    "last_page": "object",       # the cursor endpoint's final page: data {} (object) or [] (list)
    "is_active_shape": "bool",   # bool, or string ("True" / "" as some releases send)
    "custom_fields_shape": "list",  # list, string (JSON text), or mapping ({name: field}, the form ThreatQ's has)
    "custom_fields_default": "list",  # what a new record's custom_fields start as: list, or mapping ({} as ThreatQ's)
    "lists_by": "fields",        # fields: query results carry attributes and sources only when fields asks for them
                                 # (ThreatQ since 2026); with: an older release, where with= brings them too
    "refuse_registration": 0,    # POST and PUT /api/connectors answer this status (e.g. 403) instead of writing
    "create_timeout": 0,         # POST /api/connectors creates the record, then answers this late (seconds)
}
CATEGORY = {"id": 3, "name": "Labs"}
SORTS = ("id", "-id", "updated_at", "-updated_at")
ADVERSARY_CREATED = "2022-11-27 00:00:00"
ADVERSARY_UPDATED = "2023-06-15 00:00:00"


def _stamp(when):
    return when.strftime("%Y-%m-%d %H:%M:%S")


_DAYS = {}
_CLOCK = [f" {minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440)]
_SECONDS = [f"{second:02d}" for second in range(60)]


def _stamp_at(offset):
    """Return the timestamp offset seconds after BASE_TIME, quickly (dates are cached per day)."""
    day, second = divmod(offset, 86400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = (BASE_TIME + timedelta(days=day)).strftime("%Y-%m-%d")
    return date + _CLOCK[second // 60] + _SECONDS[second % 60]


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _revised(index, every, revision):
    """Return how far a revision moves the generated score of the indicator at index (0: not at all)."""
    return (1 + revision) % 1001 if revision and every and index % every == 0 else 0


def _errors(status, *messages):
    return Response({"errors": list(messages)}, status=status)


def _field_errors(status, field, message):
    return Response({"data": {"errors": {field: [message]}}}, status=status)


# An indicator is rendered straight to JSON text from fragments made once here: generating and serialising a
# million of them must cost the stand-in less than a connector spends reading them.
_J = json.dumps
_TYPE_JSON = {t[0]: _J({"id": t[0], "name": t[1], "class": t[2]}) for t in TYPES}
_STATUS_JSON = [_J({"id": s[0], "name": s[1], "description": s[2]}) for s in STATUSES]
_SCORE_HASH = "7f8b888a2d2b462310d5227aa75e8c4a78973a96"
_ATTRIBUTE_IDS = {"Attack Phase": 21, "Threat Type": 22, **{n: i for n, i, _ in ADVERSARY_ATTRIBUTES},
                  "Confidence": 5, "Country": 6}
_CONFIDENCES = ("30", "50", "70", "90")
_COUNTRIES = ("RU", "CN", "US", "NL", "DE", "KP", "IR", "BR")


def _attribute_texts(name, values):
    """Return per value the text of an attribute between its id and the indicator id, and the text after it."""
    return [(f', "attribute_id": {_ATTRIBUTE_IDS[name]}, "indicator_id": ', f', "name": {_J(name)}, "value": {_J(v)}')
            for v in values]


_PHASE_TEXTS = _attribute_texts("Attack Phase", ATTACK_PHASES)
_THREAT_TEXTS = _attribute_texts("Threat Type", THREAT_TYPES)
_CONFIDENCE_TEXTS = _attribute_texts("Confidence", _CONFIDENCES)
_COUNTRY_TEXTS = _attribute_texts("Country", _COUNTRIES)
_ADVERSARY = [(f'{{"id": {1000 + n}, "name": {_J(name)}, "created_at": "{ADVERSARY_CREATED}", '
               f'"updated_at": "{ADVERSARY_UPDATED}", "pivot": {{"id": ',
               f', "src_object_id": {1000 + n}, "src_type": "adversary", "dest_object_id": ')
              for n, name in enumerate(ADVERSARIES)]
_ADVERSARY_END = ', "dest_type": "indicator"}}'
_URL_FILES = ("index.php", "login.html", "payload.bin", "gate.php", "update.exe")
_ADVERSARY_ODDS = tuple((_attribute_texts(name, ADVERSARIES), round(odds * 10))   # odds in tenths
                        for name, _, odds in ADVERSARY_ATTRIBUTES)
_COUNTRY_TYPES = {t[0] for t in TYPES if t[1] in ("IP Address", "FQDN", "URL")}
_CLASS_OF = {t[0]: _J(t[2]) for t in TYPES}
_MONTH = 30 * 86400
_EVERY_LIST = ("attributes", "adversaries", "score", "status", "type", "sources")
# Fields an indicator has without any related list, and their JSON text in terms of the draws: asked for alone
# (fields without "*"), they are rendered straight from the draws, without making the rest of the indicator.
_PLAIN_FIELDS = {"id": "{id}", "value": '"{value}"', "class": "{class}", "type_id": "{type_id}",
                 "status_id": "{status_id}", "hash": '"{hash}"', "description": "null", "created_at": '"{created}"',
                 "updated_at": '"{updated}"', "touched_at": '"{touched}"', "published_at": '"{created}"',
                 "expires_at": "null", "expired_at": "null", "expires_calculated_at": '"{generated_touch}"'}
_DATE_FIELDS = ("created_at", "updated_at", "touched_at")
_COMPARE = {"+gt": operator.gt, "+gte": operator.ge, "+lt": operator.lt, "+lte": operator.le}
_LATEST_TOUCH = 59 + 3599    # a generated touched_at is at most this many seconds after its index's minute


class Collection:
    """A data collection whose indicators are generated from (seed, index): any size, nothing stored per indicator.

    Every draw of an indicator comes from one 64-byte BLAKE2b digest of (seed, index), taken apart as mixed-radix
    digits, so an indicator is the same in every response and costs a few microseconds to make.
    """

    def __init__(self, ident, name, size, seed, *, duplicate_every=0, empty_value_every=0, json_as_string=False,
                 sparse=False, untidy=False, changed_every=0, revision=0):
        self.id, self.name, self.size, self.seed = ident, name, int(size), int(seed)
        # revision > 0 changes the generated score of every changed_every-th indicator (a collection edited since)
        self.changed_every, self.revision = int(changed_every or 0), int(revision or 0)
        self.duplicate_every, self.empty_value_every = int(duplicate_every or 0), int(empty_value_every or 0)
        self.json_as_string, self.sparse, self.untidy = bool(json_as_string), bool(sparse), bool(untidy)
        self.hash = hashlib.md5(f"collection:{ident}:{name}".encode()).hexdigest()
        self.api_query = {"criteria": {"+or": [{"type_name": t[1]} for t in TYPES[:9]]},
                          "filters": {"+and": [{"tags": {"+or": [name]}}, {"status_name": {"+nin": ["Whitelisted"]}}]}}
        self.created_at = _stamp(BASE_TIME - timedelta(days=30))
        self._key = f"{self.seed}:".encode()
        # The changes made to the collection since it was generated, oldest first: (second, stamp, indexes added,
        # (changed_every, revision) before, the same after); see follow().
        self.mutations = ()
        self._within = None   # (what within() was asked, what it found): the pages of a window ask it again

    def follow(self, old, now):
        """Take over old's changes and add the change from old to this one: stamped now, or a second after the last.

        An indicator is touched when it was added or its generated content differs; if the options that shape every
        indicator differ, all of them are.
        """
        same = (old.duplicate_every, old.empty_value_every, old.sparse) == (
            self.duplicate_every, self.empty_value_every, self.sparse)
        added = range(old.size if same else 0, self.size)
        before = (old.changed_every, old.revision) if same else (0, 0)
        after = (self.changed_every, self.revision) if same else (0, 0)
        self.mutations = old.mutations
        if added or before != after:
            second = max(int(now), old.mutations[-1][0] + 1) if old.mutations else int(now)
            stamp = _stamp(datetime.fromtimestamp(second, timezone.utc))
            self.mutations += ((second, stamp, added, before, after),)

    def touched(self, index):
        """Return the stamp of the last change that touched the indicator at index, or None if none did."""
        for _, stamp, added, before, after in reversed(self.mutations):
            if index in added or _revised(index, *before) != _revised(index, *after):
                return stamp
        return None

    def now(self):
        """Return the stand-in's time for this collection: now, or its last change if that was stamped ahead."""
        return max(_now(), self.mutations[-1][1]) if self.mutations else _now()

    def listing(self):
        """Return the collection as GET /api/search/query lists it."""
        api_query = self.api_query
        if self.untidy:
            # What ThreatQ's SDK cleans before sending (sanitize_payload): a type that no longer exists and empty
            # clauses; sent as they are, the query is refused.
            api_query = json.loads(json.dumps(api_query))
            api_query["criteria"]["+or"] += [{"type_name": "Retired Type"}, {}, {"+and": []}]
            api_query["filters"]["+and"] += [{"tags": {}}, {"status_name": {"+in": ["Gone"]}}]
        query = {"ui_query": {"criteria": api_query["criteria"], "filters": api_query["filters"]},
                 "api_query": api_query}
        return {"id": self.id, "name": self.name, "hash": self.hash, "user_id": 1,
                "json": json.dumps(query) if self.json_as_string else query,
                "created_at": self.created_at, "updated_at": self.created_at}

    def indicator_id(self, index):
        return self.seed * 10_000_000 + index + 1

    def index_of(self, ident):
        """Return the index of the indicator with this id in the collection, or None."""
        seed, index = divmod(int(ident) - 1, 10_000_000)
        return index if seed == self.seed and 0 <= index < self.size else None

    def _digest(self, index):
        return hashlib.blake2b(self._key + b"%d" % index, digest_size=64).digest()

    def value(self, index, digest=None):
        """Return (value, type row) of the indicator at index (duplicates and empties as configured)."""
        empty, every = self.empty_value_every, self.duplicate_every
        is_empty = empty and index % empty == empty - 1
        if not is_empty and every > 1 and index >= every and index % every == every - 1:
            # The same value again under another type: ThreatQ keys indicators by (value, type).
            return self.value(index - every // 2)[0], TYPES[-1]
        draws = int.from_bytes((digest or self._digest(index))[16:32], "little")
        draws, pick = divmod(draws, _TYPE_TOTALS[-1])
        kind = TYPES[bisect.bisect_right(_TYPE_TOTALS, pick)]
        if is_empty:
            return "", kind
        return _make_value(kind[1], self.seed, index, draws), kind

    def indicator(self, index, with_=_EVERY_LIST):
        """Return the full indicator at index (id order = updated_at order), as the query endpoints send it."""
        return json.loads(self.render(index, with_))

    def render(self, index, with_=_EVERY_LIST):
        """Return the JSON text of the indicator at index with the related lists with_ asks for."""
        return next(self.texts((index,), with_))

    def texts(self, indexes, with_):
        """Yield the JSON text of each indicator at indexes, with the related lists with_ asks for.

        Every field is there and the score is an object; with_ may add attributes, adversaries, sources and tags.
        """
        seed, sparse, digest_of, value_of = self.seed, self.sparse, self._digest, self.value
        attributes_wanted, adversaries_wanted = "attributes" in with_, "adversaries" in with_
        sources_wanted = "sources" in with_
        tags = f', "tags": [{_J({"id": self.id, "name": self.name})}]' if "tags" in with_ else ""
        stamp_at, mark, touched = _stamp_at, seed * 10_000_000 + 1, self.touched
        for index in indexes:
            digest = digest_of(index)
            value, kind = value_of(index, digest)
            ident = mark + index
            n = int.from_bytes(digest[32:], "little")
            # Every draw happens whatever with= asks for, so an indicator is the same in every response.
            n, late = divmod(n, 60)
            n, age = divmod(n, _MONTH)
            n, touch = divmod(n, 3600)
            n, pick = divmod(n, _STATUS_TOTALS[-1])
            status = bisect.bisect_right(_STATUS_TOTALS, pick)
            status_id = STATUSES[status][0]
            n, generated = divmod(n, 1001)
            generated = (generated + _revised(index, self.changed_every, self.revision)) % 1001
            n, manual = divmod(n, 55)          # one in five indicators has a manual score of 0 to 10
            n, phase = divmod(n, 14)           # one of 7 phases, and a coin: kept by half of a sparse collection
            n, threat = divmod(n, 224)         # one or two threat types: 8 x 7 pairs x (1, 1, 1, 2)
            n, keep_threats = divmod(n, 20)
            n, actors = divmod(n, 240 ** 3)    # per adversary attribute: one of 12 names, odds in tenths, a coin
            n, confidence = divmod(n, 4)
            n, country = divmod(n, 8)
            n, count = divmod(n, 5)
            source = n % 5
            updated = index * 60 + late
            c_s, u_s = stamp_at(updated - age), stamp_at(updated)
            t_s = stamp_at(updated + touch)
            ident_s = str(ident)
            parts = [f'{{"id": {ident_s}, "value": "{value}", "class": {_CLASS_OF[kind[0]]}, "type_id": {kind[0]}, '
                     f'"status_id": {status_id}, "hash": "{digest[:16].hex()}", "description": null, '
                     f'"created_at": "{c_s}", "updated_at": "{u_s}", "touched_at": "{touched(index) or t_s}", '
                     f'"published_at": "{c_s}", "expires_at": null, "expired_at": null, '
                     f'"expires_calculated_at": "{t_s}", '
                     f'"score": {{"indicator_id": {ident_s}, "generated_score": "{generated // 100}.'
                     f'{generated % 100:02d}", "manual_score": {manual // 5 if manual % 5 == 0 else "null"}, '
                     f'"score_config_hash": "{_SCORE_HASH}", "created_at": "{c_s}", "updated_at": "{u_s}"}}, '
                     f'"type": {_TYPE_JSON[kind[0]]}, "status": {_STATUS_JSON[status]}']
            # A sparse collection leaves attributes out now and then; a complete one always has an Attack Phase, a
            # Threat Type and an adversary of some kind (an attribute or a related adversary).
            chosen = []
            if not sparse or phase % 2:
                chosen.append(_PHASE_TEXTS[phase // 2])
            if not sparse or keep_threats < 9:
                first, second, many = threat % 8, threat // 8 % 7, threat // 56 == 3
                chosen.append(_THREAT_TEXTS[first])
                if many:
                    chosen.append(_THREAT_TEXTS[(first + 1 + second) % 8])
            named = False
            for per_name, tenths in _ADVERSARY_ODDS:
                actors, draw = divmod(actors, 240)
                if draw // 12 % 10 < tenths and (not sparse or draw >= 120):
                    chosen.append(per_name[draw % 12])
                    named = True
            chosen.append(_CONFIDENCE_TEXTS[confidence])
            if kind[0] in _COUNTRY_TYPES:
                chosen.append(_COUNTRY_TEXTS[country])
            count = (0, 0, 1, 1, 2)[count]
            if count == 0 and not sparse and not named:
                count = 1   # a complete collection gives every indicator some adversary
            if attributes_wanted:
                stamps = f', "created_at": "{c_s}", "updated_at": "{u_s}", "touched_at": "{u_s}"}}'
                base = ident * 16
                parts.append(', "attributes": [' + ", ".join([
                    f'{{"id": {base + k}{before}{ident_s}{after}{stamps}'
                    for k, (before, after) in enumerate(chosen)]) + "]")
            if adversaries_wanted:
                pivot = ident * 4
                parts.append(', "adversaries": [' + ", ".join([
                    f'{_ADVERSARY[(index + k * 5) % 12][0]}{pivot + k}{_ADVERSARY[(index + k * 5) % 12][1]}'
                    f'{ident_s}{_ADVERSARY_END}' for k in range(count)]) + "]")
            if sources_wanted:
                parts.append(', "sources": ' + _J([{
                    "id": ident * 2, "indicator_id": ident, "source_id": 10 + source, "name": SOURCES[source],
                    "source_type": "connectors" if source < 4 else "users", "indicator_status_id": status_id,
                    "indicator_type_id": kind[0], "created_at": c_s, "updated_at": u_s, "published_at": c_s}]))
            parts.append(tags)
            parts.append("}")
            yield "".join(parts)

    def narrow(self, indexes, fields):
        """Yield the JSON text of each indicator at indexes holding only the plain fields asked for, in their order.

        The draws are those of texts(), so the values are the same; the rest of the indicator is not made.
        """
        template = "{{" + ", ".join(f'"{name}": {_PLAIN_FIELDS[name]}' for name in dict.fromkeys(fields)) + "}}"
        mark, touched_of = self.seed * 10_000_000 + 1, self.touched
        for index in indexes:
            digest = self._digest(index)
            value, kind = self.value(index, digest)
            (created, updated, touched), status = self._stamps(index, digest)
            yield template.format_map({
                "id": mark + index, "value": value, "class": _CLASS_OF[kind[0]], "type_id": kind[0],
                "status_id": STATUSES[status][0], "hash": digest[:16].hex(), "created": created, "updated": updated,
                "touched": touched_of(index) or touched, "generated_touch": touched})

    def _stamps(self, index, digest):
        """Return the generated (created_at, updated_at, touched_at) and the status row of the indicator at index."""
        n = int.from_bytes(digest[32:], "little")
        n, late = divmod(n, 60)
        n, age = divmod(n, _MONTH)
        n, touch = divmod(n, 3600)
        updated = index * 60 + late
        status = bisect.bisect_right(_STATUS_TOTALS, n % _STATUS_TOTALS[-1])
        return (_stamp_at(updated - age), _stamp_at(updated), _stamp_at(updated + touch)), status

    def stamps(self, index):
        """Return {created_at, updated_at, touched_at} of the indicator at index, as it is sent."""
        (created, updated, touched), _ = self._stamps(index, self._digest(index))
        return {"created_at": created, "updated_at": updated, "touched_at": self.touched(index) or touched}

    def within(self, clauses):
        """Return the indexes, ascending, of the indicators whose stamps pass every (field, [(test, stamp)]) clause.

        When a touched_at clause starts after every generated stamp only the changed indicators can pass, and only
        they are looked at; any other window looks at every indicator.
        """
        key = (repr(clauses), self.size, self.mutations, self.changed_every, self.revision)
        last = self._within
        if last is not None and last[0] == key:   # the next page of the same window: found already
            return last[1]
        newest = _stamp_at((self.size - 1) * 60 + _LATEST_TOUCH) if self.size else ""
        if any(field == "touched_at" and any(test in (operator.gt, operator.ge) and stamp > newest
                                             for test, stamp in tests) for field, tests in clauses):
            candidates = sorted(set(self._changed()))
        else:
            candidates = range(self.size)
        found = []
        for index in candidates:
            stamps = self.stamps(index)
            if all(test(stamps[field], stamp) for field, tests in clauses for test, stamp in tests):
                found.append(index)
        self._within = (key, found)
        return found

    def _changed(self):
        """Yield every index of the collection some change may have touched (some more than once)."""
        for _, _, added, before, after in self.mutations:
            yield from range(added.start, min(added.stop, self.size))
            for every, revision in (before, after):
                if every and revision:
                    yield from range(0, self.size, every)

    def position_index(self, position, sort):
        """Return the index at position in the given sort order (updated_at grows with id here)."""
        return self.size - 1 - position if sort.startswith("-") else position


def _make_value(type_name, seed, index, draws):
    """Return a realistic, unique value of a type for (seed, index), drawing from the integer draws.

    Values are made of letters, digits and . : / @ - only, so they go into JSON text without escaping.
    """
    if type_name == "IP Address":
        # spread() is one-to-one on the low 24 bits: unique for the first 16.7M indexes.
        n = fake.spread(index, seed)
        return fake.ipv4(PUBLIC_OCTETS[(n >> 24) % len(PUBLIC_OCTETS)], n)
    if type_name == "IPv6 Address":
        return fake.ipv6((0x2001, 0xdb8, seed & 0xffff, (index >> 16) & 0xffff, index & 0xffff), 1 + draws % 0xfffe)
    if type_name in fake.HASHES:
        return fake.hash_hex(type_name, f"{seed}:{index}".encode())
    if type_name == "CVE":
        return fake.cve(index, 2015, 10, 10000)
    draws, first = divmod(draws, len(WORDS))
    draws, second = divmod(draws, len(WORDS))
    draws, tld = divmod(draws, len(TLDS))
    host = fake.domain(WORDS[first], WORDS[second], f"{index:x}", TLDS[tld])
    if type_name == "FQDN":
        return host
    if type_name == "URL":
        draws, secure = divmod(draws, 5)
        draws, path = divmod(draws, len(WORDS))
        return fake.url(secure < 3, host, WORDS[path], _URL_FILES[draws % 5])
    if type_name == "Email Address":
        return fake.email(f"{WORDS[first]}.{index:x}", f"{WORDS[second]}-{seed}.{TLDS[tld]}")
    return fake.hash_hex("MD5", f"{seed}:{index}".encode())   # String, and any other type: a token


def _cursor(position, sort):
    return base64.b64encode(f"AoJ:{sort}:{position}".encode()).decode()


def _uncursor(mark):
    if mark in (None, "", "*"):
        return 0, None
    try:
        _, sort, position = base64.b64decode(mark.encode(), validate=True).decode().split(":")
        return int(position), sort
    except (ValueError, UnicodeDecodeError):
        return None, None


def _canonical(query):
    return json.dumps({k: (query or {}).get(k) or {} for k in ("criteria", "filters")}, sort_keys=True)


def _window(body):
    """Return (the query without its date clauses, the clauses as (field, [(test, stamp or "NOW")])).

    ThreatQ's SDK narrows a saved search to a time window by appending {"touched_at": {"+gt": start, "+lt": "NOW"}}
    (or created_at, updated_at) to the +and list of filters, or of criteria when there are no filters (reference 3.2).
    """
    query, clauses = dict(body), []
    for root in ("filters", "criteria"):
        part = query.get(root)
        if not isinstance(part, dict) or not isinstance(part.get("+and"), list):
            continue
        kept = []
        for clause in part["+and"]:
            tests = _date_tests(clause)
            if tests:
                clauses.append(tests)
            else:
                kept.append(clause)
        query[root] = {**part, "+and": kept}
    return query, clauses


def _date_tests(clause):
    """Return (field, [(test, stamp)]) if clause is a date window on one field, else None."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return None
    (field, bounds), = clause.items()
    if field not in _DATE_FIELDS or not isinstance(bounds, dict) or not bounds or not set(bounds) <= set(_COMPARE) \
            or not all(isinstance(v, str) for v in bounds.values()):
        return None
    return field, [(_COMPARE[op], stamp) for op, stamp in bounds.items()]


class ThreatQ(Service):
    """The ThreatQ REST API as a connector sees it (reference: threatq-api.md, section 10 checklist)."""

    name = "threatq"

    def reset(self):
        self.settings = dict(SETTINGS)
        self.settings.update(self.options.get("settings", {}))
        self.users = {USERNAME: PASSWORD, **self.options.get("users", {})}
        self.client_ids = {CLIENT_ID, *self.options.get("client_ids", ())}
        self.private_clients = {PRIVATE_CLIENT_ID: PRIVATE_CLIENT_SECRET}
        self.tokens = {}
        self.refresh_tokens = {}
        self.logins = []             # one entry per token issued: grant and request variant
        self.connectors = {}         # id -> record
        self.collections = {}
        self.pages_served = 0
        self._fail_left = None
        self._revoked_on_page = False
        self.add_collection("Devo Export", 500, seed=1, duplicate_every=50)
        self.add_collection("High Confidence C2", 120, seed=2, json_as_string=True)
        self.add_collection("Empty Collection", 0, seed=3)
        self.add_collection("All Indicators 1M", 1_000_000, seed=4, duplicate_every=1000)

    # Python API for tests and demos (each has an HTTP twin under /_sandbox/threatq/).

    def add_collection(self, name, size, seed=None, **options):
        """Create (or replace) a generated data collection; return it.

        Replacing one of the same seed changes it: the indicators that differ get a touched_at of now (see follow).
        """
        with self.lock:
            old = self.collections.get(name)
            ident = old.id if old else max((c.id for c in self.collections.values()), default=0) + 1
            collection = Collection(ident, name, size, seed if seed is not None else ident, **options)
            if old and old.seed == collection.seed:
                collection.follow(old, time.time())
            self.collections[name] = collection
            return collection

    def collection(self, name):
        return self.collections[name]

    def configure(self, **settings):
        """Change misbehaviour switches (see SETTINGS); unknown names raise KeyError."""
        with self.lock:
            for key, value in settings.items():
                if key not in SETTINGS:
                    raise KeyError(key)
                self.settings[key] = value
            self.pages_served = 0
            self._fail_left = None
            self._revoked_on_page = False

    def expire_tokens(self):
        """Make every issued access token invalid now (refresh tokens stay valid)."""
        with self.lock:
            for token in self.tokens.values():
                token["expires"] = 0

    def connector(self, name):
        """Return the connector record with this name, or None."""
        for record in self.connectors.values():
            if record["name"] == name:
                return record
        return None

    def set_connector(self, name, values=None, is_active=None):
        """Play the user on the integration page: set Configuration values by key, flip the enable toggle."""
        with self.lock:
            record = self.connector(name)
            if record is None:
                raise KeyError(f"no connector named {name!r}; run the connector once to register it")
            fields = {f["name"]: f for f in record["custom_fields"]}
            for key, value in (values or {}).items():
                if key not in fields:
                    raise KeyError(f"connector {name!r} has no field {key!r}; its fields are {', '.join(fields)}")
                fields[key]["value"] = value
            if is_active is not None:
                record["is_active"] = bool(is_active)
            record["updated_at"] = _now()
            return record

    # OAuth (reference section 2).

    @route("POST", r"^/api/token$")
    def token(self, request):
        query = request.query
        ctype = (request.headers.get("Content-Type") or "").lower()
        body = (request.form() if "form" in ctype else request.json()) or {}
        if not isinstance(body, dict):
            body = {}
        grant = query.get("grant_type") or body.get("grant_type")
        if grant == "password":
            client_id = query.get("client_id") or body.get("client_id")
            variant = "A" if "client_id" in query else ("C" if "form" in ctype else "B")
            email, password = body.get("email"), body.get("password")
            if client_id not in self.client_ids or self.users.get(email) != password or not password:
                return _errors(400, "The user credentials were incorrect.")
            return self._issue("password", variant, email)
        if grant == "client_credentials":
            client_id, secret = _basic(request.headers.get("Authorization"))
            if self.private_clients.get(client_id) != secret or not secret:
                return _errors(401, "Client authentication failed")
            return self._issue("client_credentials", "basic", client_id)
        if grant == "refresh_token":
            refresh = query.get("refresh_token") or body.get("refresh_token")
            with self.lock:
                who = self.refresh_tokens.pop(refresh, None) if self.settings["refresh_tokens"] else None
            if who is None:
                return _errors(400, "The refresh token is invalid.")
            return self._issue("refresh_token", "query", who)
        return _errors(400, f"The authorization grant type {grant!r} is not supported.")

    def _issue(self, grant, variant, who):
        access = secrets.token_hex(20)
        lifetime = self.settings["expires_in"]
        body = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime}
        with self.lock:
            self.tokens[access] = {"expires": time.time() + float(lifetime), "uses": 0, "who": who}
            if self.settings["refresh_tokens"]:
                refresh = secrets.token_hex(24)
                self.refresh_tokens[refresh] = who
                body["refresh_token"] = refresh
            self.logins.append({"grant": grant, "variant": variant, "who": who, "time": time.time()})
        return Response(body)

    def _unauthorized(self, request):
        """Return a 401 Response unless the request carries a live bearer token."""
        token = request.bearer()
        with self.lock:
            record = self.tokens.get(token)
            if record is None or time.time() >= record["expires"]:
                return _errors(401, "Unauthenticated.")
            record["uses"] += 1
            limit = self.settings["token_uses"]
            if limit and record["uses"] > limit:
                return _errors(401, "Unauthenticated.")
        return None

    # Data collections and indicators (reference section 3).

    @route("GET", r"^/api/search/query$")
    def list_collections(self, request):
        denied = self._unauthorized(request)
        if denied:
            return denied
        items = [c.listing() for c in sorted(self.collections.values(), key=lambda c: c.id)]
        return Response({"data": items, "total": len(items)})

    @route("POST", r"^/api/indicators/query$")
    def query(self, request):
        denied = self._unauthorized(request)
        if denied:
            return denied
        body = request.json()
        if not isinstance(body, dict):
            return _field_errors(400, "criteria", "The request body must be a JSON object.")
        try:
            limit = int(request.query.get("limit", 1000))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            return _field_errors(400, "limit", "The limit and offset must be integers.")
        sort = request.query.get("sort", "id")
        if sort not in SORTS:
            return _field_errors(400, "sort", f"The stand-in sorts by {', '.join(SORTS)} only.")
        unknown = _unknown_names(body)
        if unknown:
            return _field_errors(400, unknown[0], f"The selected {unknown[0].replace('_', ' ')} {unknown[1]!r} is "
                                                  "invalid.")
        query, clauses = _window(body)
        wanted = _canonical(query)
        collection = next((c for c in self.collections.values() if _canonical(c.api_query) == wanted), None)
        limit = max(0, min(limit, int(self.settings["max_limit"])))
        misbehaving = self._page_misbehaviour()
        if misbehaving:
            return misbehaving
        if collection is None:
            size, indexes = 0, []
        elif clauses:
            now = collection.now()
            found = collection.within([(f, [(t, now if s == "NOW" else s) for t, s in tests]) for f, tests in clauses])
            size = len(found)
            indexes = (found[::-1] if sort.startswith("-") else found)[offset:offset + limit]
        else:
            size = collection.size
            indexes = [collection.position_index(p, sort) for p in range(min(offset, size), min(offset + limit, size))]
        fields = body.get("fields") if "fields" in body else _url_fields(request)
        return Response(self._page({"total": size, "limit": limit, "offset": offset}, collection, indexes, request,
                                   fields))

    @route("GET", r"^/api/indicators/query/hash/(?P<ident>[^/]+)$")
    def query_hash(self, request, ident):
        denied = self._unauthorized(request)
        if denied:
            return denied
        collection = next((c for c in self.collections.values() if ident in (c.hash, str(c.id))), None)
        if collection is None:
            return _errors(404, "Data collection not found.")
        mark = request.query.get("cursorMark", "*")
        position, _ = _uncursor(mark)
        if position is None:
            return _field_errors(400, "cursorMark", "Unable to parse the cursor mark.")
        sort = request.query.get("sort", "id")
        if sort not in SORTS:
            return _field_errors(400, "sort", f"The stand-in sorts by {', '.join(SORTS)} only.")
        try:
            limit = max(0, min(int(request.query.get("limit", 100)), int(self.settings["max_limit"])))
        except ValueError:
            return _field_errors(400, "limit", "The limit must be an integer.")
        head = {"total": collection.size, "limit": limit}
        if position >= collection.size:
            # Past the end: empty data (an object, as the real API sends it) and the same cursor again.
            last = {} if self.settings["last_page"] == "object" else []
            return Response({**head, "data": last, "nextCursorMark": mark if mark != "*" else _cursor(0, sort)})
        misbehaving = self._page_misbehaviour()
        if misbehaving:
            return misbehaving
        positions = range(position, min(position + limit, collection.size))
        return Response(self._page({**head, "nextCursorMark": _cursor(positions.stop, sort)}, collection,
                                   [collection.position_index(p, sort) for p in positions], request,
                                   _url_fields(request)))

    @route("GET", r"^/api/indicators/(?P<ident>\d+)$")
    def indicator(self, request, ident):
        denied = self._unauthorized(request)
        if denied:
            return denied
        held = ((c, c.index_of(ident)) for c in sorted(self.collections.values(), key=lambda c: c.id))
        collection, index = next(((c, i) for c, i in held if i is not None), (None, None))
        if collection is None:
            return _errors(404, "Indicator not found.")
        # On an object endpoint with= brings every related list it names (reference 3.4), whatever lists_by says.
        text = next(self._texts(collection, [index], request, None, lists_by_with=True))
        return Response(('{"data": ' + text + "}").encode())

    def _page_misbehaviour(self):
        """Return the error a misbehaviour switch gives this page request, or None (counts pages served)."""
        with self.lock:
            page = self.pages_served + 1
            if self.settings["revoke_on_page"] == page and not self._revoked_on_page:
                self._revoked_on_page = True
                for token in self.tokens.values():
                    token["expires"] = 0
                return _errors(401, "Unauthenticated.")
            if self.settings["fail_page"] == page:
                if self._fail_left is None:
                    self._fail_left = int(self.settings["fail_count"])
                if self._fail_left > 0:
                    self._fail_left -= 1
                    failure = _errors(int(self.settings["fail_status"]), "Server Error")
                    if self.settings["fail_retry_after"] is not None:
                        failure.headers["Retry-After"] = str(self.settings["fail_retry_after"])
                    return failure
            self.pages_served += 1
        return None

    def _page(self, head, collection, indexes, request, fields):
        """Return the body of a page: the head's keys, then the indicators at indexes (see _texts)."""
        texts = self._texts(collection, indexes, request, fields) if collection else ()
        return (json.dumps(head)[:-1] + ', "data": [' + ", ".join(texts) + "]}").encode()

    def _texts(self, collection, indexes, request, fields, lists_by_with=False):
        """Return the JSON texts of the indicators at indexes (an iterator), shaped by with=, fields and the switches.

        In the default shapes the generated text is sent as it is, else it is decoded, reshaped and encoded again.
        fields with * keeps the default fields and adds the related lists it names; fields without * narrows the
        payload to what it names (plain fields alone are rendered without making the rest).
        """
        asked = tuple(w.strip() for w in request.query.get("with", "").split(",") if w.strip())
        settings = dict(self.settings)
        fields = [f for f in fields or () if isinstance(f, str)]
        if fields and set(fields) <= _PLAIN_FIELDS.keys():
            return collection.narrow(indexes, fields)
        by_with = lists_by_with or settings["lists_by"] == "with"
        with_ = tuple(w for w in asked if by_with or w not in ("attributes", "sources"))
        with_ += tuple(f for f in fields if f in _EVERY_LIST + ("tags",) and f not in with_)
        if "*" in fields:
            fields = None
        texts = collection.texts(indexes, with_)
        shape = settings["score_shape"]
        if fields or settings["type_shape"] != "object" or settings["empty_attributes"] or not (
                shape == "object" or (shape == "auto" and "score" in with_)):
            texts = (json.dumps(_shape(json.loads(text), with_, fields, settings, index))
                     for text, index in zip(texts, indexes))
        return texts

    # Lookups (reference section 4).

    @route("GET", r"^/api/indicator/types$")
    def types(self, request):
        denied = self._unauthorized(request)
        if denied:
            return denied
        items = [_type(t) for t in TYPES if request.query.get("name") in (None, t[1])]
        return Response({"data": items, "total": len(items)})

    @route("GET", r"^/api/indicator/types/(?P<ident>\d+)$")
    def type_by_id(self, request, ident):
        denied = self._unauthorized(request)
        if denied:
            return denied
        for t in TYPES:
            if t[0] == int(ident):
                return Response({"data": _type(t)})
        return _errors(404, "Indicator type not found.")

    @route("GET", r"^/api/indicator/statuses$")
    def statuses(self, request):
        denied = self._unauthorized(request)
        if denied:
            return denied
        items = [_status(s) for s in STATUSES if request.query.get("name") in (None, s[1])]
        return Response({"data": items, "total": len(items)})

    @route("GET", r"^/api/indicator/statuses/(?P<ident>\d+)$")
    def status_by_id(self, request, ident):
        denied = self._unauthorized(request)
        if denied:
            return denied
        for s in STATUSES:
            if s[0] == int(ident):
                return Response({"data": _status(s)})
        return _errors(404, "Indicator status not found.")

    # Connector records (reference section 9).

    @route("GET", r"^/api/connectors$")
    def list_connectors(self, request):
        denied = self._unauthorized(request)
        if denied:
            return denied
        name = request.query.get("name")
        with self.lock:
            items = [self._record_out(r) for r in self.connectors.values() if name in (None, r["name"])]
        return Response({"data": items, "total": len(items)})

    @route("GET", r"^/api/connectors/(?P<ident>\d+)$")
    def get_connector(self, request, ident):
        denied = self._unauthorized(request)
        if denied:
            return denied
        record = self.connectors.get(int(ident))
        if record is None:
            return _errors(404, "Connector not found.")
        return Response({"data": self._record_out(record)})

    @route("POST", r"^/api/connectors$")
    def create_connector(self, request):
        denied = self._unauthorized(request) or self._refused()
        if denied:
            return denied
        body = request.json()
        if not isinstance(body, dict) or not body.get("name"):
            return _field_errors(400, "name", "The name field is required.")
        with self.lock:
            if self.connector(body["name"]):
                return _field_errors(400, "name", "The name has already been taken.")
            ident = max(self.connectors, default=0) + 1
            now = _now()
            record = {"id": ident, "name": body["name"], "display_name": body["name"], "namespace": None,
                      "description": "", "custom_fields": {} if self.settings["custom_fields_default"] == "mapping"
                      else [], "frequency": None, "category_id": None,
                      "category": None, "indicator_status_id": None, "tlp_id": None,
                      "gate_oauth2_client_id": None, "last_import_at": None, "last_import_count": None,
                      "is_active": False, "created_at": now, "updated_at": now}
            problem = _apply(record, body)
            if problem:
                return problem
            self.connectors[ident] = record
            out = self._record_out(record)
        if self.settings["create_timeout"]:
            time.sleep(float(self.settings["create_timeout"]))   # created, but the answer comes too late
        return Response({"data": out}, status=201)

    @route("PUT", r"^/api/connectors/(?P<ident>\d+)$")
    def update_connector(self, request, ident):
        denied = self._unauthorized(request) or self._refused(request.json())
        if denied:
            return denied
        body = request.json()
        if not isinstance(body, dict):
            return _field_errors(400, "data", "The request body must be a JSON object.")
        with self.lock:
            record = self.connectors.get(int(ident))
            if record is None:
                return _errors(404, "Connector not found.")
            problem = _apply(record, body)
            if problem:
                return problem
            record["updated_at"] = _now()
            return Response({"data": self._record_out(record)})

    def _refused(self, body=None):
        """Return the refusal of a connector write when refuse_registration is set (a run's bookkeeping passes)."""
        status = int(self.settings["refuse_registration"] or 0)
        if not status or (isinstance(body, dict) and set(body) <= {"last_import_at", "last_import_count"}):
            return None
        return _errors(status, "This action is unauthorized.")

    def _record_out(self, record):
        out = json.loads(json.dumps(record))
        if self.settings["is_active_shape"] == "string":
            out["is_active"] = "True" if record["is_active"] else ""
        if self.settings["custom_fields_shape"] == "string":
            out["custom_fields"] = json.dumps(record["custom_fields"])
        elif self.settings["custom_fields_shape"] == "mapping" and isinstance(out["custom_fields"], list):
            out["custom_fields"] = {f["name"]: {k: v for k, v in f.items() if k != "name"}
                                    for f in out["custom_fields"]}
        return out

    # Sandbox control: play the user in the UI, change the data and the misbehaviour switches.

    @route("GET", r"^/_sandbox/threatq/connectors$")
    def _sandbox_connectors(self, request):
        with self.lock:
            return Response({"data": list(self.connectors.values())})

    @route("POST", r"^/_sandbox/threatq/connectors/(?P<name>[^/]+)$")
    def _sandbox_set_connector(self, request, name):
        body = request.json() or {}
        try:
            record = self.set_connector(name, body.get("values"), body.get("is_active"))
        except KeyError as exc:
            return _errors(404, str(exc.args[0]))
        return Response({"data": record})

    @route("GET", r"^/_sandbox/threatq/collections$")
    def _sandbox_collections(self, request):
        return Response({"data": [{"id": c.id, "name": c.name, "hash": c.hash, "size": c.size, "seed": c.seed,
                                   "duplicate_every": c.duplicate_every, "empty_value_every": c.empty_value_every,
                                   "json_as_string": c.json_as_string, "sparse": c.sparse, "untidy": c.untidy}
                                  for c in self.collections.values()]})

    @route("POST", r"^/_sandbox/threatq/collections$")
    def _sandbox_add_collection(self, request):
        body = request.json() or {}
        try:
            collection = self.add_collection(body.pop("name"), body.pop("size"), **body)
        except (KeyError, TypeError, ValueError) as exc:
            return _errors(400, f"give name, size and optionally seed, duplicate_every, empty_value_every, "
                                f"json_as_string, sparse, untidy, changed_every, revision ({exc})")
        return Response({"data": {"id": collection.id, "name": collection.name, "hash": collection.hash}}, status=201)

    @route("GET", r"^/_sandbox/threatq/collections/(?P<name>[^/]+)/indicators$")
    def _sandbox_indicators(self, request, name):
        from urllib.parse import unquote
        collection = self.collections.get(unquote(name))
        if collection is None:
            return _errors(404, "no such collection")
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 100))
        texts = collection.texts(range(offset, min(offset + limit, collection.size)), _EVERY_LIST)
        return Response(('{"total": %d, "data": [' % collection.size + ", ".join(texts) + "]}").encode())

    @route("POST", r"^/_sandbox/threatq/settings$")
    def _sandbox_settings(self, request):
        try:
            self.configure(**(request.json() or {}))
        except (KeyError, TypeError) as exc:
            return _errors(400, f"unknown setting {exc}; known: {', '.join(SETTINGS)}")
        return Response({"data": self.settings})

    @route("POST", r"^/_sandbox/threatq/tokens/expire$")
    def _sandbox_expire(self, request):
        self.expire_tokens()
        return Response({"ok": True})

    @route("GET", r"^/_sandbox/threatq/logins$")
    def _sandbox_logins(self, request):
        with self.lock:
            return Response({"data": list(self.logins)})


def _shape(item, with_, fields, settings, index):
    """Return an indicator in the shape the switches and the request ask for."""
    shape = settings["score_shape"]
    as_object = (shape == "object" or (shape == "auto" and "score" in with_) or (shape == "mixed" and index % 2))
    if not as_object:
        s = item["score"]
        item["score"] = float(s["manual_score"] if s["manual_score"] is not None else s["generated_score"])
        if item["score"].is_integer():
            item["score"] = int(item["score"])
    if fields:
        # fields= narrows the payload; type and status come back as plain names (reference 3.2).
        item["type"], item["status"] = item["type"]["name"], item["status"]["name"]
        if isinstance(item["score"], dict):
            s = item["score"]
            item["score"] = float(s["manual_score"] if s["manual_score"] is not None else s["generated_score"])
        return {k: item[k] for k in fields if k in item}
    if settings["type_shape"] == "string":
        item["type"], item["status"] = item["type"]["name"], item["status"]["name"]
    elif settings["type_shape"] == "id":
        del item["type"], item["status"]
    if settings["empty_attributes"] and "attributes" in item:
        item["attributes"].append({"id": item["id"] * 16 + 15, "attribute_id": 99, "indicator_id": item["id"],
                                   "name": "", "value": "", "created_at": item["created_at"],
                                   "updated_at": item["updated_at"]})
        item["attributes"].append({"id": item["id"] * 16 + 14, "attribute_id": 21, "indicator_id": item["id"],
                                   "name": "Attack Phase", "value": "", "created_at": item["created_at"],
                                   "updated_at": item["updated_at"]})
    return item


def _apply(record, body):
    """Copy the writable fields of a connector body into record; return an error Response or None."""
    writable = ("display_name", "namespace", "description", "custom_fields", "frequency", "indicator_status_id",
                "tlp_id", "is_active", "last_import_at", "last_import_count")
    for key in writable:
        if key in body:
            record[key] = body[key]
    if "custom_fields" in body:
        fields = body["custom_fields"]
        if fields == {}:
            fields = []
        if isinstance(fields, str):
            try:
                fields = json.loads(fields)
            except ValueError:
                return _field_errors(400, "custom_fields", "The custom fields must be valid JSON.")
        if not isinstance(fields, list) or not all(isinstance(f, dict) and f.get("name") for f in fields):
            return _field_errors(400, "custom_fields", "Each custom field needs a name.")
        record["custom_fields"] = fields
    if "category" in body:
        if body["category"] not in (CATEGORY["name"], CATEGORY["id"], CATEGORY):
            return _field_errors(400, "category", "The selected category is invalid.")
        record["category"], record["category_id"] = dict(CATEGORY), CATEGORY["id"]
    if "is_active" in body:
        value = body["is_active"]
        record["is_active"] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    return None


def _url_fields(request):
    """Return the fields URL parameter as a list (comma-separated), or None."""
    text = request.query.get("fields")
    return [f.strip() for f in text.split(",") if f.strip()] if text else None


_NAMES = {"type_name": {t[1] for t in TYPES}, "status_name": {s[1] for s in STATUSES}}


def _unknown_names(value, key=None):
    """Return (field, name) of the first type or status name in a query that does not exist, or None [I]."""
    if isinstance(value, dict):
        for k, v in value.items():
            found = _unknown_names(v, k if k in _NAMES else key)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _unknown_names(v, key)
            if found:
                return found
    elif key in _NAMES and isinstance(value, str) and value not in _NAMES[key]:
        return key, value
    return None


def _type(t):
    return {"id": t[0], "name": t[1], "class": t[2], "score": None, "wildcard_matching": "Y",
            "created_at": "2017-04-17 04:34:56", "updated_at": "2017-04-17 04:34:56"}


def _status(s):
    return {"id": s[0], "name": s[1], "description": s[2], "user_editable": "N", "visible": "Y",
            "include_in_export": "Y", "protected": "Y", "created_at": "2017-04-17 04:35:21",
            "updated_at": "2017-04-17 04:35:21"}


def _basic(header):
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return client_id, secret


__all__ = ["ThreatQ", "Collection", "TYPES", "STATUSES", "CLIENT_ID", "USERNAME", "PASSWORD", "PRIVATE_CLIENT_ID",
           "PRIVATE_CLIENT_SECRET", "SETTINGS"]
