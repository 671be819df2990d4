"""Delta delivery, end to end: after every run of a sequence (add, change, delete, unchanged, columns changed, a
crash part way) the Devo lookup holds exactly what a full replacement (--force) then gives."""

import json
import os
import re
import stat
import time

import pytest

from reliability_kit import kill_group, requests_to, wait_for


def content(h):
    """Return {lookup: (columns, {key: row})} of every lookup the Devo stand-in holds."""
    devo, found = h.sandbox["devo"], {}
    with devo.lock:
        names = sorted({name for (_, name) in devo.lookups})
    for name in names:
        view = devo.lookup(name)
        if view is not None:
            found[name] = (json.dumps(view["columns"]), {str(r[view["key"]]): r for r in view["rows"]})
    return found


def days_on(days):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))


def summary(result):
    lines = [line for line in result.everything.splitlines() if "Run statistics:" in line]
    return lines[-1] if lines else ""


def same_as_full(h, result):
    """Assert the lookups now hold what a full replacement gives; leave them so (the index rebuilt)."""
    assert result.code == 0, result
    after = content(h)
    forced = h.run("--force")
    assert forced.code == 0, forced
    assert " full (" in summary(forced), forced
    assert content(h) == after, f"the lookups differ from a full replacement after: {summary(result)}"
    return after


# ---- the source changing between runs, per connector ----

def ctci_rows(h):
    return h.sandbox["ctci"].rows


def change_ctci(h, step):
    rows = ctci_rows(h)
    if step == "add":
        h.sandbox["ctci"].add_row("CVE-2025-0282", vendor="ivanti", product="connect secure")
    elif step == "change":
        rows[0]["product"] = "changed product"
        rows[3]["vendor"] = "changed vendor"
    elif step == "delete":
        del rows[5:7]


def change_exporter(h, step):
    tq = h.sandbox["threatq"]
    old = tq.collection("Devo Export")
    # switch: the newest indicators go, one of them a repeated value (every 50th repeats the one 25 before it
    # under another type): its key's row is now the older, untouched indicator's.
    size = {"add": old.size + 10, "delete": old.size - 7, "switch": (old.size - 50) // 50 * 50 + 49}.get(step, old.size)
    revision = old.revision + 1 if step == "change" else old.revision
    tq.add_collection("Devo Export", size, seed=1, duplicate_every=50, changed_every=37, revision=revision)


CHANGES = {"ctci": change_ctci, "devo_ioc_exporter": change_exporter}
STEPS = {"add": (True, False), "change": (True, False), "delete": (False, True), "switch": (True, True)}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_sequence_of_runs_leaves_each_lookup_as_a_full_replacement_would(harness_for, name):
    h = harness_for(name)
    first = h.run()
    assert first.code == 0, first
    assert " full (" in summary(first) and "delta" not in summary(first), first
    index = h.folder / (h.adapter.command + ".index")
    assert stat.S_IMODE(os.stat(index).st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in index.iterdir()} == {0o600}
    same_as_full(h, first)
    for step in ("add", "change", "delete") + (("switch",) if name == "devo_ioc_exporter" else ()):
        CHANGES[name](h, step)
        result = h.run()
        line = summary(result)
        found = re.search(r" delta \((\d+) upserted, (\d+) deleted\)", line)
        assert found, (step, result)
        upserted, deleted = map(int, found.groups())
        assert (upserted > 0, deleted > 0) == STEPS[step], (step, line)
        if name == "devo_ioc_exporter":   # only what changed was read in full (the rest listed: id, value, time)
            received = int(re.search(r"items received (\d+)", line).group(1))
            assert received <= upserted + 10, (step, line)
        same_as_full(h, result)
    unchanged = h.run()
    assert " delta (0 upserted, 0 deleted)" in summary(unchanged), unchanged
    assert "items delivered 0" in summary(unchanged)
    same_as_full(h, unchanged)
    shown = h.run("--show-state", verbosity=None, to_log=False)
    assert shown.code == 0 and "rows indexed, last full replacement 20" in shown.out, shown


def test_new_columns_send_the_lookup_whole(harness_for):
    h = harness_for("ctci")
    assert h.run().code == 0
    h.write_config(obfuscate_fields=["external_note", "year"])   # year, obfuscated, turns from INT8 to STRING
    result = h.run(verbosity=2, to_log=False)
    assert " full (" in summary(result), result
    assert "its columns, key, source or Devo destination changed" in result.everything, result.everything
    same_as_full(h, result)


def test_a_delta_larger_than_the_allowed_share_is_sent_whole(harness_for):
    h = harness_for("recorded_future")
    assert h.run().code == 0
    h.sandbox["recorded_future"].configure("ip", rows=60, ipv6_every=4)   # a new version: every row differs
    result = h.run(env={"TQ_CONN_NOW": days_on(2)}, verbosity=2, to_log=False)   # once the lists are due again
    assert " full (" in summary(result) and " delta (" not in summary(result), result
    assert "is more than 50% of its" in result.everything, result
    same_as_full(h, result)


def test_the_index_heals_drift_with_a_full_replacement_every_few_days(harness_for):
    h = harness_for("ctci")
    assert h.run().code == 0
    result = h.run(env={"TQ_CONN_NOW": days_on(8)})
    assert " full (" in summary(result), result
    assert "last full replacement is 7 days old or more (devo_full_replace_days)" in result.everything


def test_the_tls_transport_keeps_full_replacement_and_drops_the_index(harness_for, sandbox):
    h = harness_for("ctci")
    assert h.run().code == 0
    issued = h.client_certificate()
    host, port = sandbox["devo"].collector_address
    h.write_config(devo_transport="tls", devo_host=host, devo_port=port, devo_cert=issued.cert_pem,
                   devo_key=issued.key_pem, devo_chain=sandbox["devo"].authority.cert_pem, devo_tls_delay=0)
    result = h.run()
    assert result.code == 0 and "CTCI_CEWL full (" in summary(result), result
    h.write_config()
    again = h.run()
    assert "CTCI_CEWL full (" in summary(again), again   # the index was dropped: Devo changed without it
    same_as_full(h, again)


@pytest.mark.parametrize("how", ["refused", "killed"])
@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_run_that_ends_between_the_upsert_and_the_delete_is_made_good_by_the_next(harness_for, name, how):
    h = harness_for(name)
    assert h.run().code == 0
    CHANGES[name](h, "change")
    CHANGES[name](h, "delete")
    before = len(requests_to(h.sandbox, "devo", r"/deploy-csv$"))
    if how == "refused":
        h.fault("devo", path=r"/deploy-csv$", method="PUT", after=1, count=0, status=500,
                body={"error": {"message": "lookup service unavailable"}})
        failed = h.run(env={"TQ_CONN_HTTP_RETRIES": "0"})
        assert failed.code == 1, failed
    else:
        h.fault("devo", path=r"/deploy-csv$", method="PUT", after=1, count=1, hold=30)
        proc = h.spawn()
        assert wait_for(lambda: len(requests_to(h.sandbox, "devo", r"/deploy-csv$")) >= before + 2, timeout=60)
        kill_group(proc)
    h.clear_faults()
    shown = h.run("--show-state", verbosity=None, to_log=False)
    assert "keys in flight: the next run sends them again" in shown.out, shown
    CHANGES[name](h, "change")   # and the source moves on meanwhile
    result = h.run()
    assert " delta (" in summary(result), result
    same_as_full(h, result)
