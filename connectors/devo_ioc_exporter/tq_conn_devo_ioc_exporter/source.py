"""The IOCs of a ThreatQ data collection: the collection's indicators, each mapped to one lookup row."""

import json
import reprlib

from tq_conn_common import BadRecord, Changes, threatq

# Seed 003 (v1.1.0 change log): the Adversary column reflects these attributes and the related adversaries.
ADVERSARY_ATTRIBUTES = ("Actor", "Related Adversary", "Related Actor")
SEPARATOR = ", "
_ATTRIBUTES = ("Attack Phase", "Threat Type", *ADVERSARY_ATTRIBUTES)
_ACTOR, _ADVERSARY, _RELATED = ADVERSARY_ATTRIBUTES
_SHORT = reprlib.Repr()    # what a skipped record shows of itself: bounded, however large the record
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 3, 3, 40, 40


def fetch(ctx):
    """Yield the indicators of the configured collection, newest first, so the first row of a value is the newest.

    ThreatQ keys indicators by value and type, the lookup by value alone: the stream keeps the first row of a value.
    """
    config = ctx.config
    tq = threatq.client(ctx.run)
    collection = tq.collection(config.collection_name)
    return tq.indicators(collection, config.batch_size, config.threatq_paging, sort="-updated_at")


def changes(ctx):
    """Return how the collection says what changed since a run (see Changes), or None: with offset paging only (a
    touched_at window narrows a query, not a saved search's hash) and unless threatq_read_changes is off."""
    config = ctx.config
    if config.threatq_paging != "offset" or config.get("threatq_read_changes") is False:
        return None
    tq = threatq.client(ctx.run)
    collection = tq.collection(config.collection_name)
    size = config.batch_size
    return Changes(tag=json.dumps(tq.query(collection), sort_keys=True), mark=mark,
                   listing=lambda: ((item.get("id"), item.get("touched_at")) for item in tq.listing(collection, size)
                                    if type(item) is dict),
                   since=lambda stamp: tq.indicators(collection, size, "offset", sort="id", since=stamp),
                   one=tq.indicator)


def mark(indicator):
    """Return (id, touched_at, updated_at) of an indicator as texts: what says it changed, and how new it is."""
    if type(indicator) is dict:
        indicator = threatq.as_indicator(indicator)
    if type(indicator) is not threatq.Indicator:
        return "", "", ""
    touched, updated = indicator.touched_at, indicator.updated_at
    return str(indicator.id), touched if type(touched) is str else "", updated if type(updated) is str else ""


def shared_pages(ctx):
    """Return the page size when the collection's pages can be shared out among worker processes (offset paging)."""
    return ctx.config.batch_size if ctx.config.threatq_paging == "offset" else None


def record_run(ctx):
    """Write the run into the connector record in ThreatQ, once Devo holds the lookup (a dry run changes nothing)."""
    if not ctx.dry_run:
        threatq.record_run(ctx.run, sum(ctx.counts.values()))


def to_row(indicator, links):
    """Return the lookup row of one ThreatQ indicator (an Indicator, or a dict as decoded whole); raise BadRecord if
    it is not an object or has no value."""
    if type(indicator) is dict:
        indicator = threatq.as_indicator(indicator)
    if type(indicator) is not threatq.Indicator:
        raise BadRecord(f"not an indicator object but {type(indicator).__name__} {_SHORT.repr(indicator)}")
    sent = indicator.value
    value = threatq.text_of(sent)
    if value is None and sent is not None:
        raise BadRecord(f"indicator whose value is a {type(sent).__name__}, not text", id=indicator.id)
    if not value:
        raise BadRecord("indicator with an empty value", id=indicator.id)
    found = threatq.attributes_by_name(indicator, _ATTRIBUTES)
    adversaries = found[_ACTOR] + found[_ADVERSARY] + found[_RELATED] + threatq.adversaries(indicator)
    return {
        "value": value,
        "type": threatq.name_of(indicator.type),
        "status": threatq.name_of(indicator.status),
        "score": threatq.score(indicator),
        "link": threatq.indicator_link(links, indicator.id),
        "attack_phase": _joined(found["Attack Phase"]),
        "threat_type": _joined(found["Threat Type"]),
        "adversary": _joined(adversaries),
        "has_adversary": threatq.adversary_count(indicator),
        "created_at": _stamp(indicator.created_at),
        "updated_at": _stamp(indicator.updated_at),
    }


def _stamp(value):
    """Return a ThreatQ timestamp as sent (text), or None when it is missing or not text."""
    return value if type(value) is str else None


def _joined(values):
    """Return the values joined with SEPARATOR, each once, in their first order."""
    if len(values) < 2:
        return values[0] if values else ""
    return SEPARATOR.join(threatq.unique(values))
