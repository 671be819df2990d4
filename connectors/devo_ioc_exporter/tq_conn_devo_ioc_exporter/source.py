"""One run: page the ThreatQ data collection, map each indicator to a lookup row, replace the Devo lookup."""

import logging
import time
from functools import partial

from tq_conn_common import BadRecord, devo, threatq

log = logging.getLogger(__name__)

# Seed 003 (v1.1.0 change log): the Adversary column reflects these attributes and the related adversaries.
ADVERSARY_ATTRIBUTES = ("Actor", "Related Adversary", "Related Actor")
SEPARATOR = ", "


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
    """Return the lookup row of one ThreatQ indicator; raise BadRecord if it has no value."""
    value = str(indicator.get("value") or "").strip()
    if not value:
        raise BadRecord("indicator with an empty value", id=indicator.get("id"))
    adversaries = threatq.attribute_values(indicator, *ADVERSARY_ATTRIBUTES) + threatq.adversaries(indicator)
    return {
        "value": value,
        "type": threatq.name_of(indicator.get("type")),
        "status": threatq.name_of(indicator.get("status")),
        "score": threatq.score(indicator),
        "link": threatq.indicator_link(links, indicator.get("id")),
        "attack_phase": SEPARATOR.join(threatq.unique(threatq.attribute_values(indicator, "Attack Phase"))),
        "threat_type": SEPARATOR.join(threatq.unique(threatq.attribute_values(indicator, "Threat Type"))),
        "adversary": SEPARATOR.join(threatq.unique(adversaries)),
        "has_adversary": len(indicator.get("adversaries") or ()),
        "created_at": indicator.get("created_at"),
        "updated_at": indicator.get("updated_at"),
    }


def newest_first(run, rows):
    """Yield the first row of each value and count the later ones as duplicates.

    ThreatQ keys indicators by value and type, the lookup by value alone; the collection is asked for newest first
    (sort=-updated_at), so the first row of a value is the most recently updated. Only a 64-bit hash of each value
    is kept (about 70 bytes a value, a million values in ~70 MB).
    """
    seen, previous, warned = set(), None, False
    for row in rows:
        updated = row["updated_at"] or ""
        if previous is not None and updated > previous and not warned:
            warned = True
            log.warning("ThreatQ did not send the collection newest first (%s after %s); for a value held by "
                        "several indicators the first one received is kept.", updated, previous)
        previous = updated
        key = hash(row["value"])
        if key in seen:
            run.stats.duplicates += 1
            log.debug("Duplicate value %r dropped (a more recently updated indicator has it).", row["value"])
            continue
        seen.add(key)
        yield row
