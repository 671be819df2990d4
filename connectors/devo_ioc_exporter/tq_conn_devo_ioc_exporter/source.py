"""One run: page the ThreatQ data collection, map each indicator to a lookup row, replace the Devo lookup."""

import logging
import reprlib
import time
from functools import partial

from tq_conn_common import BadRecord, devo, threatq

log = logging.getLogger(__name__)

# Seed 003 (v1.1.0 change log): the Adversary column reflects these attributes and the related adversaries.
ADVERSARY_ATTRIBUTES = ("Actor", "Related Adversary", "Related Actor")
SEPARATOR = ", "
_ATTRIBUTES = ("Attack Phase", "Threat Type", *ADVERSARY_ATTRIBUTES)
_ACTOR, _ADVERSARY, _RELATED = ADVERSARY_ATTRIBUTES
_SHORT = reprlib.Repr()    # what a skipped record shows of itself: bounded, however large the record
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 3, 3, 40, 40


def run(run):
    """Deliver the collection to the lookup as a full replacement; record the run after Devo accepted it."""
    config = run.config
    tq = threatq.client(run)
    collection = tq.collection(config.collection_name)
    links = threatq.ui_base(config.get("threatq_hostname") or config.threatq_host)
    # Newest first, so that the first row of a value is the most recently updated one (see newest_first).
    indicators = tq.indicators(collection, config.batch_size, config.threatq_paging, sort="-updated_at")
    rows = newest_first(run, run.records(indicators, partial(to_row, links=links), "indicator"))
    count = devo.deliver(run, run.connector.lookup, rows, mode="replace", dedupe=False)
    run.state["last_run"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run.state["last_count"] = count
    run.state.commit()
    threatq.record_run(run, count)


def to_row(indicator, links):
    """Return the lookup row of one ThreatQ indicator; raise BadRecord if it is not an object or has no value."""
    if type(indicator) is not dict:
        raise BadRecord(f"not an indicator object but {type(indicator).__name__} {_SHORT.repr(indicator)}")
    value = indicator.get("value")
    if type(value) is str:
        value = value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    elif value is not None:
        raise BadRecord(f"indicator whose value is a {type(value).__name__}, not text", id=indicator.get("id"))
    if not value:
        raise BadRecord("indicator with an empty value", id=indicator.get("id"))
    found = threatq.attributes_by_name(indicator, _ATTRIBUTES)
    adversaries = found[_ACTOR] + found[_ADVERSARY] + found[_RELATED] + threatq.adversaries(indicator)
    return {
        "value": value,
        "type": threatq.name_of(indicator.get("type")),
        "status": threatq.name_of(indicator.get("status")),
        "score": threatq.score(indicator),
        "link": threatq.indicator_link(links, indicator.get("id")),
        "attack_phase": _joined(found["Attack Phase"]),
        "threat_type": _joined(found["Threat Type"]),
        "adversary": _joined(adversaries),
        "has_adversary": threatq.adversary_count(indicator),
        "created_at": _stamp(indicator.get("created_at")),
        "updated_at": _stamp(indicator.get("updated_at")),
    }


def _stamp(value):
    """Return a ThreatQ timestamp as sent (text), or None when it is missing or not text."""
    return value if type(value) is str else None


def _joined(values):
    """Return the values joined with SEPARATOR, each once, in their first order."""
    if len(values) < 2:
        return values[0] if values else ""
    return SEPARATOR.join(threatq.unique(values))


def newest_first(run, rows):
    """Yield the first row of each value and count the later ones as duplicates.

    ThreatQ keys indicators by value and type, the lookup by value alone; the collection is asked for newest first
    (sort=-updated_at), so the first row of a value is the most recently updated.
    """
    seen, previous, warned = Seen(), None, False
    for row in rows:
        updated = row["updated_at"] or ""
        if previous is not None and updated > previous and not warned:
            warned = True
            log.warning("ThreatQ did not send the collection newest first (%s after %s); for a value held by "
                        "several indicators the first one received is kept.", updated, previous)
        previous = updated
        if not seen.add(row["value"]):
            run.stats.duplicates += 1
            log.debug("Duplicate value %r dropped (a more recently updated indicator has it).", row["value"])
            continue
        yield row


class Seen:
    """The values seen so far, as their 64-bit hashes packed 8 bytes each into 4096 byte arrays.

    About 9 bytes a value: a million values take ~9 MB, where a set of the same hashes took ~70 MB. A lookup scans
    one array (2 KB at a million values) in C. Two values with one 64-bit hash would count as one: about one chance
    in 30 million for a million values.
    """

    _BUCKETS = 4096
    _MASK = (1 << 64) - 1

    def __init__(self):
        self._arrays = [bytearray() for _ in range(self._BUCKETS)]

    def add(self, value):
        """Remember value; return True if it is new, False if it was seen before."""
        code = hash(value) & self._MASK
        key = code.to_bytes(8, "little")
        array = self._arrays[code % self._BUCKETS]
        at = array.find(key)
        while at > 0 and at % 8:      # a match must start on an 8-byte boundary
            at = array.find(key, at + 1)
        if at >= 0:
            return False
        array += key
        return True
