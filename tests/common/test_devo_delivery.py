"""devo.deliver and devo.send_events through both transports against the Devo stand-in, over real sockets."""

import argparse
import datetime
import itertools
import logging
import os
import time
import warnings

import pytest
import yaml

from tq_conn_common import Connector, Param, Stream, devo
from tq_conn_common import config as cfg
from tq_conn_common.session import Run
from tq_conn_common.errors import AuthError, ConfigError, DeliveryError, SourceError
from tq_conn_common.state import State
from tq_conn_sandbox import pki
from tq_conn_sandbox.services.devo import DEFAULT_TOKEN

_sleep = time.sleep
SPEC = devo.LookupSpec(name_from="lookup_name", key="value",
                       columns=(devo.Column("value"), devo.Column("type"), devo.Column("score", "int"),
                                devo.Column("ratio", float), devo.Column("active", bool)))
ROWS = [{"value": "evil.example", "type": "FQDN", "score": 9, "ratio": 0.5, "active": True},
        {"value": "1.2.3.4", "type": "IP Address", "score": 0, "ratio": None, "active": False},
        {"value": "d41d8cd98f00b204e9800998ecf8427e", "type": "MD5", "score": None, "ratio": 1.25, "active": None}]
AWKWARD = ['say "hi"', "a,b", "line1\nline2", " padded ", "naïve ☃ 日本", "1.2.3.4", "5", "-3.50", "007", "",
           "tab\there", "=cmd()", "'single'", "trailing\\", "10.0.0.1,10.0.0.2", '"', ",", "  "]
PARAMS = devo.output_params() + (Param("lookup_name", "Devo Lookup Name", default="TQ_Test"),)


def make_run(tmp_path, **raw):
    config = cfg.validate(PARAMS, raw)
    connector = Connector(name="devo_test", title="Devo test", params=PARAMS)
    return Run(connector, argparse.Namespace(name=None), config, State(str(tmp_path / "state.json")), {})


def rest(sandbox, **extra):
    return {"devo_token": DEFAULT_TOKEN, "devo_domain": "sandbox",
            "devo_lookups_url": sandbox.url("devo") + "/lookup-api", **extra}


def tls(sandbox, issued=None, chain=None, **extra):
    service = sandbox["devo"]
    issued = issued or service.client_certificate()
    host, port = service.collector_address
    return {"devo_cert": issued.cert_pem, "devo_key": issued.key_pem, "devo_chain": chain or service.authority.cert_pem,
            "devo_host": host, "devo_port": port, "devo_tls_delay": 0, "devo_transport": "tls", **extra}


TRANSPORTS = {"rest": rest, "tls": tls}


def rows_of(sandbox, name="TQ_Test"):
    """The lookup's rows, each value in its text form: the Lookups API types only whole numbers (INT8), the X.509
    path every column, and both must carry the same values."""
    view = sandbox["devo"].lookup(name)
    return None if view is None else sorted(({k: devo.text(v) for k, v in row.items()} for row in view["rows"]),
                                            key=lambda r: r["value"])


def expected(rows):
    return sorted(({"value": r["value"], "type": r.get("type") or "", "score": devo.text(r.get("score")),
                    "ratio": devo.text(r.get("ratio")), "active": devo.text(r.get("active"))} for r in rows),
                  key=lambda r: r["value"])


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request):
    return request.param


def test_replace_upsert_delete_row_by_row(sandbox, tmp_path, transport, caplog):
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    with caplog.at_level(logging.INFO):
        assert devo.deliver(run, SPEC, iter(ROWS)) == 3
    assert rows_of(sandbox) == expected(ROWS)
    assert "my.lookuplist.TQ_Test" in caplog.text
    assert ("Lookups REST API" if transport == "rest" else "X.509 collector") in caplog.text

    changed = [{"value": "1.2.3.4", "type": "IPv4", "score": 3, "ratio": 2.0, "active": True},
               {"value": "new.example", "type": "FQDN", "score": 1, "ratio": 0.0, "active": False}]
    assert devo.deliver(run, SPEC, iter(changed), mode="upsert") == 2
    assert rows_of(sandbox) == expected([ROWS[0], ROWS[2]] + changed)

    assert devo.deliver(run, SPEC, iter([{"value": "evil.example"}, {"value": "not-there"}]), mode="delete") == 2
    assert rows_of(sandbox) == expected([ROWS[2]] + changed)

    assert devo.deliver(run, SPEC, iter([ROWS[0]])) == 1
    assert rows_of(sandbox) == expected([ROWS[0]])
    assert run.stats.delivered == 8


def test_both_transports_land_identical_tables(sandbox, tmp_path):
    rows = ROWS + [{"value": f"{i}:{v}", "type": v, "score": i, "ratio": i / 4, "active": i % 2 == 0}
                   for i, v in enumerate(AWKWARD)]
    devo.deliver(make_run(tmp_path, **rest(sandbox)), SPEC, iter(rows), name="Via_REST")
    devo.deliver(make_run(tmp_path, **tls(sandbox)), SPEC, iter(rows), name="Via_TLS")
    via_rest, via_tls = sandbox["devo"].lookup("Via_REST"), sandbox["devo"].lookup("Via_TLS")
    assert [c["name"] for c in via_rest["columns"]] == [c["name"] for c in via_tls["columns"]]
    assert via_rest["key"] == via_tls["key"] == "value"
    # The Lookups API gets only the types Devo documents (STRING, INT8); the values are the same.
    assert {c["type"] for c in via_rest["columns"]} == {"STRING", "INT8"}
    assert rows_of(sandbox, "Via_REST") == rows_of(sandbox, "Via_TLS") and len(via_rest["rows"]) == len(rows)


def test_awkward_values_arrive_unchanged(sandbox, tmp_path, transport):
    spec = devo.LookupSpec(name="Awkward", key="k", columns=(devo.Column("k"), devo.Column("v")))
    rows = [{"k": f"k{i}", "v": v} for i, v in enumerate(AWKWARD)] + [{"k": v, "v": "as key"} for v in AWKWARD if v]
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    assert devo.deliver(run, spec, iter(rows)) == len(rows)
    got = {r["k"]: r["v"] for r in sandbox["devo"].lookup("Awkward")["rows"]}
    assert got == {r["k"]: r["v"] for r in rows}
    assert sandbox["devo"].collector_log == []


def test_typed_values_are_typed_in_devo(sandbox, tmp_path, transport):
    spec = devo.LookupSpec(name="Typed", key="ip", columns=(devo.Column("ip", "ip4"), devo.Column("n", "int4"),
                                                           devo.Column("big", "int8"),
                                                           devo.Column("when", "timestamp")))
    when = datetime.datetime(2025, 1, 31, tzinfo=datetime.timezone.utc)
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    devo.deliver(run, spec, iter([{"ip": "10.0.0.1", "n": -5, "big": 2 ** 40, "when": when}]))
    view = sandbox["devo"].lookup("Typed")
    assert [c["type"] for c in view["columns"]] == (["IP4", "INT4", "INT8", "STRING"] if transport == "tls" else
                                                    ["STRING", "INT8", "INT8", "STRING"])   # documented types only
    assert view["rows"] == [{"ip": "10.0.0.1", "n": -5, "big": 2 ** 40, "when": "2025-01-31T00:00:00+00:00"}]


def test_rows_as_tuples_in_column_order_land_as_dicts_do(sandbox, tmp_path, transport):
    names = [c.name for c in SPEC.columns]
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    tuples = [tuple(row.get(n) for n in names) for row in ROWS]
    many = [(f"10.0.{i >> 8}.{i & 255}", "IP Address", str(i), "0.5", "true") for i in range(3000)]
    assert devo.deliver(run, SPEC, iter(tuples + many)) == 3 + 3000    # in batches
    landed = rows_of(sandbox)
    assert [r for r in landed if r["type"] != "IP Address" or r["value"] == "1.2.3.4"] == expected(ROWS)
    assert len(landed) == 3003
    with pytest.raises(ValueError, match="must have 5 values"):
        devo.deliver(run, SPEC, iter([("too", "short")]))


def test_empty_replace_leaves_the_lookup_unless_allowed(sandbox, tmp_path, transport, caplog):
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    devo.deliver(run, SPEC, iter(ROWS))
    with caplog.at_level(logging.WARNING):
        assert devo.deliver(run, SPEC, iter([])) == 0
    assert "left unchanged" in caplog.text and len(rows_of(sandbox)) == 3
    assert devo.deliver(run, SPEC, iter([]), allow_empty=True) == 0
    assert rows_of(sandbox) == []


def test_failure_while_reading_rows_delivers_nothing(sandbox, tmp_path, transport):
    run = make_run(tmp_path, **TRANSPORTS[transport](sandbox))
    devo.deliver(run, SPEC, iter(ROWS))

    def broken():
        yield {"value": "partial.example", "type": "FQDN"}
        raise SourceError("the vendor failed", "run again later")
    with pytest.raises(SourceError):
        devo.deliver(run, SPEC, broken())
    assert rows_of(sandbox) == expected(ROWS)
    assert run.stats.delivered == 3


def test_lookup_name_is_checked(sandbox, tmp_path, transport):
    run = make_run(tmp_path, lookup_name="bad name", **TRANSPORTS[transport](sandbox))
    with pytest.raises(ConfigError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert "(lookup_name): 'bad name' is not a valid Devo lookup name" in caught.value.message
    assert sandbox["devo"].lookups == {}


# ---- REST specifics ---------------------------------------------------------------------------------------------

def test_refused_token_names_the_token_and_delivers_nothing(sandbox, tmp_path):
    run = make_run(tmp_path, **rest(sandbox, devo_token="wrong-token"))
    with pytest.raises(AuthError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert caught.value.message == "Devo refused the API token for lookup 'TQ_Test' (HTTP 401: Invalid token)."
    assert "'Devo API Token' (devo_token) was rejected" in caught.value.fix
    assert sandbox["devo"].lookups == {} and run.stats.delivered == 0


def test_job_error_carries_devos_text_and_keeps_the_old_rows(sandbox, tmp_path):
    run = make_run(tmp_path, **rest(sandbox))
    devo.deliver(run, SPEC, iter(ROWS))
    sandbox["devo"].settings["job_error"] = "Column score: value out of range"
    with pytest.raises(DeliveryError) as caught:
        devo.deliver(run, SPEC, iter(ROWS[:1]))
    assert "Devo could not load lookup 'TQ_Test'" in caught.value.message
    assert "update.err): Column score: value out of range." in caught.value.message
    assert rows_of(sandbox) == expected(ROWS) and run.stats.delivered == 3


def test_slow_job_is_waited_for_and_a_stuck_one_times_out(sandbox, tmp_path):
    run = make_run(tmp_path, **rest(sandbox, devo_job_timeout=1))
    sandbox["devo"].settings["job_delay"] = 0.4
    assert devo.deliver(run, SPEC, iter(ROWS)) == 3
    assert rows_of(sandbox) == expected(ROWS)
    sandbox["devo"].settings["job_delay"] = 30
    with pytest.raises(DeliveryError) as caught:
        devo.deliver(run, SPEC, iter(ROWS[:1]))
    assert "did not finish loading lookup 'TQ_Test' within 1 s" in caught.value.message
    assert "update.start" in caught.value.message and "devo_job_timeout" in caught.value.fix


def test_upload_retried_after_503_and_429_sends_the_whole_body_again(sandbox, tmp_path):
    os.environ["TQ_CONN_HTTP_BACKOFF"] = "0.01"
    try:
        run = make_run(tmp_path, **rest(sandbox))
        sandbox.fault("devo", path="deploy-csv$", status=503, count=1)
        sandbox.fault("devo", path="deploy-csv$", status=429, retry_after=0, count=1)
        assert devo.deliver(run, SPEC, iter(ROWS)) == 3
    finally:
        del os.environ["TQ_CONN_HTTP_BACKOFF"]
    assert rows_of(sandbox) == expected(ROWS)
    uploads = [r for r in sandbox["devo"].requests if r["path"].endswith("/deploy-csv")]
    assert [r["method"] for r in uploads] == ["POST"] * 3


def test_create_then_update_and_delete_of_a_missing_lookup(sandbox, tmp_path, caplog):
    run = make_run(tmp_path, **rest(sandbox))
    with caplog.at_level(logging.WARNING):
        assert devo.deliver(run, SPEC, iter(ROWS), mode="delete") == 0
    assert "does not exist" in caplog.text
    assert devo.deliver(run, SPEC, iter(ROWS[:1]), mode="upsert") == 1
    devo.deliver(run, SPEC, iter(ROWS))
    methods = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in sandbox["devo"].requests
               if r["path"].endswith("deploy-csv")]
    assert methods == [("POST", "deploy-csv"), ("PUT", "deploy-csv")]


# ---- TLS specifics ----------------------------------------------------------------------------------------------

def test_wrong_key_for_the_certificate_delivers_nothing(sandbox, tmp_path):
    issued = sandbox["devo"].client_certificate()
    settings = tls(sandbox, issued)
    settings["devo_key"] = pki.key_pem(pki.new_key())
    run = make_run(tmp_path, **settings)
    with pytest.raises(ConfigError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert ("'Devo X.509 Private Key' (devo_key) does not belong to 'Devo X.509 Certificate' (devo_cert)"
            in str(caught.value))
    assert sandbox["devo"].lookups == {} and sandbox["devo"].staging == {}


def test_expired_certificate_delivers_nothing(sandbox, tmp_path):
    run = make_run(tmp_path, **tls(sandbox, sandbox["devo"].client_certificate(expired=True)))
    with pytest.raises(ConfigError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert "'Devo X.509 Certificate' (devo_cert) expired on" in str(caught.value)
    assert sandbox["devo"].lookups == {}


def test_collector_refusing_the_certificate_is_an_auth_error(sandbox, tmp_path):
    stranger = pki.Authority("Some other CA")
    chain = stranger.cert_pem + sandbox["devo"].authority.cert_pem
    run = make_run(tmp_path, **tls(sandbox, stranger.issue("sandbox"), chain=chain))
    with pytest.raises(AuthError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert "refused the X.509 certificate" in caught.value.message and "devo_cert" in caught.value.fix
    assert sandbox["devo"].lookups == {}


def test_collector_unreachable_is_a_retryable_delivery_error(sandbox, tmp_path):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = make_run(tmp_path, **tls(sandbox, devo_port=port))
    with pytest.raises(DeliveryError) as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert f"Cannot connect to the Devo collector at 127.0.0.1:{port}" in caught.value.message
    assert caught.value.retryable and "devo_host" in caught.value.fix


def test_x509_lookups_are_told_unconfirmed_in_the_summary_line(sandbox, tmp_path):
    run = make_run(tmp_path, **tls(sandbox))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        devo.deliver(run, SPEC, iter(ROWS))
        devo.deliver(run, SPEC, iter(ROWS), name="Another_Lookup")
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
    # The run's summary line says, once, which lookups went out unconfirmed and why.
    line = run.stats.line()
    assert line.count("sent unconfirmed") == 1 and "2026-01-01" in line and "devo_transport: tls" in line
    assert f"lookups {run.config.lookup_name}, Another_Lookup went through the X.509 collector" in line


def test_collector_closing_idle_sockets_mid_upload_fails_the_lookup_whole(sandbox, tmp_path, monkeypatch):
    # The collector closes the connection during the pause after START; devo-sdk reconnects without a word, so
    # the rows would go into a connection that never saw the START. The lookup is sent whole again, then fails.
    monkeypatch.setattr("time.sleep", lambda seconds: None if seconds >= 1 else _sleep(seconds))
    sandbox["devo"].settings["collector_idle_close"] = 0.3
    run = make_run(tmp_path, **tls(sandbox, devo_tls_delay=0.8))
    with pytest.raises(DeliveryError, match="the connection broke 3 times") as caught:
        devo.deliver(run, SPEC, iter(ROWS))
    assert caught.value.exit_code == 1 and "next run sends it again" in caught.value.fix
    assert rows_of(sandbox) is None and run.stats.delivered == 0


def test_events_to_a_table(sandbox, tmp_path):
    run = make_run(tmp_path, **tls(sandbox))
    events = [{"id": "a1", "title": 'Alert "x"', "text": "two\nlines", "n": 1},
              {"id": "a2", "when": datetime.date(2025, 1, 2)}, "plain text event"]
    assert devo.send_events(run, "threatintel.flashpoint.intelligence.alerts", iter(events)) == 3
    got = sandbox["devo"].table("threatintel.flashpoint.intelligence.alerts")
    assert [e["message"] for e in got] == ['{"id":"a1","title":"Alert \\"x\\"","text":"two\\nlines","n":1}',
                                           '{"id":"a2","when":"2025-01-02"}', "plain text event"]
    assert {e["domain"] for e in got} == {"sandbox"} and run.stats.delivered == 3
    assert devo.send_events(run, "threatintel.flashpoint.intelligence.alerts", []) == 0
    with pytest.raises(ConfigError, match="tag"):
        devo.send_events(run, "no tag here", events)


# ---- through a connector command ----------------------------------------------------------------------------------

def _connector(records=ROWS, dedupe=None):
    def fetch(ctx):
        yield from ({"ioc": r.get("value"), "kind": r.get("type"), "score": r.get("score")} for r in records)

    def to_row(record):
        return {"value": record["ioc"], "type": record["kind"], "score": record["score"]}
    spec = devo.LookupSpec(name_from="lookup_name", key="value",
                           columns=(devo.Column("value"), devo.Column("type"), devo.Column("score", "int")))
    return Connector(name="devo_check", title="Devo check", params=PARAMS,
                     streams=(Stream("check", fetch=fetch, to_row=to_row, to=spec, dedupe=dedupe),))


def test_duplicates_first_wins_and_rows_without_key_are_skipped(sandbox, tmp_path, transport, capsys):
    rows = [ROWS[0], {**ROWS[0], "type": "second"}, {"value": "", "type": "no key"}, {"type": "none"}, ROWS[1]]
    (tmp_path / "tq-conn-devo-check.yaml").write_text(yaml.safe_dump(TRANSPORTS[transport](sandbox)))
    assert _connector(rows, dedupe="first").execute(["-c", str(tmp_path)]) == 0
    assert [(r["value"], r["type"]) for r in rows_of(sandbox)] == [("1.2.3.4", "IP Address"), ("evil.example", "FQDN")]
    assert "skipped as invalid 2, duplicates dropped 1, items delivered 2" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_a_connector_delivers_by_configuration(sandbox, tmp_path, kind, capsys):
    settings = TRANSPORTS[kind](sandbox)
    (tmp_path / "tq-conn-devo-check.yaml").write_text(yaml.safe_dump(settings))
    assert _connector().execute(["-c", str(tmp_path), "-v", "2"]) == 0
    assert len(sandbox["devo"].lookup("TQ_Test")["rows"]) == 3
    assert "items delivered 3" in capsys.readouterr().out


def test_a_connector_with_a_refused_token_exits_2(sandbox, tmp_path, capsys):
    (tmp_path / "tq-conn-devo-check.yaml").write_text(yaml.safe_dump(rest(sandbox, devo_token="nope")))
    assert _connector().execute(["-c", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Error: Devo refused the API token for lookup 'TQ_Test' (HTTP 401: Invalid token)." in err
    assert "Fix: 'Devo API Token' (devo_token) was rejected" in err and "nope" not in err


def test_a_connector_without_devo_settings_exits_2(sandbox, tmp_path, capsys):
    (tmp_path / "tq-conn-devo-check.yaml").write_text(yaml.safe_dump({"lookup_name": "TQ_Test"}))
    assert _connector().execute(["-c", str(tmp_path)]) == 2
    assert "No Devo credentials are set" in capsys.readouterr().err


# ---- the Lookups API: an upload counts when Devo says it loaded ------------------------------------------------

def uploads(sandbox):
    return [r for r in sandbox["devo"].requests if r["path"].endswith("/deploy-csv")]


def test_an_upload_without_an_answer_waits_for_the_job_devo_started_instead_of_sending_again(sandbox, tmp_path,
                                                                                           monkeypatch):
    run = make_run(tmp_path, **rest(sandbox))
    devo.deliver(run, SPEC, iter(ROWS[:1]))                       # the lookup exists: the next upload is a PUT
    monkeypatch.setenv("TQ_CONN_HTTP_TIMEOUT", "0.5")
    sandbox["devo"].faults.add(path=r"/deploy-csv$", method="PUT", count=1, hold=2)   # taken, then no answer
    before = len(uploads(sandbox))
    assert devo.deliver(make_run(tmp_path, **rest(sandbox)), SPEC, iter(ROWS)) == 3
    assert len(uploads(sandbox)) - before == 1                    # not sent twice
    assert rows_of(sandbox) == expected(ROWS)


def test_an_upload_refused_before_devo_took_it_is_sent_again(sandbox, tmp_path):
    run = make_run(tmp_path, **rest(sandbox))
    sandbox["devo"].faults.add(path=r"/deploy-csv$", method="POST", count=1, status=503)
    assert devo.deliver(run, SPEC, iter(ROWS)) == 3
    assert len(uploads(sandbox)) == 2 and rows_of(sandbox) == expected(ROWS)


@pytest.mark.parametrize("entry,final", [
    ({"status": "create.ok", "msg": "Lookup successfully created"}, "create.ok"),
    ({"code": "push.err", "msg": "bad column"}, "push.err"),        # the code under another key
    ({"state": "create.start"}, "create.start"),
    ({"msg": "Lookup successfully created"}, "done.ok"),           # Devo's own client checks only this
    ({"msg": "Lookup creation started"}, ""),
    ("update.ok", "update.ok"),
])
def test_job_statuses_are_read_under_whatever_key_devo_uses(entry, final):
    from tq_conn_common.devo.rest import _status
    assert _status(entry) == final


@pytest.mark.parametrize("json_functions", [True, False])
@pytest.mark.parametrize("keep", ["first", "last"])
def test_a_full_replacement_keeps_one_row_of_each_key_whatever_the_keys_bits_share(sandbox, tmp_path, monkeypatch,
                                                                                     keep, json_functions):
    # The delta upload notes the keys it has seen as bits of a bitmap; keys that share a bit are only maybe repeats.
    # With 8 bits every key shares one: the rows kept are still the first (or last) of each key, the others all sent.
    # Rows without marks are kept a page at a time (taken apart by SQLite's JSON functions), rows with marks one by
    # one, and all rows one by one where SQLite lacks those functions; repeats across the two are found alike.
    monkeypatch.setattr(devo.delta._Seen, "_BITS", 8)
    if not json_functions:
        monkeypatch.setattr(devo.delta, "_has_json", lambda db: False)
    run = Run(make_run(tmp_path).connector, argparse.Namespace(name=None), cfg.validate(PARAMS, rest(sandbox)),
              State(str(tmp_path / "state.json")), {"state": str(tmp_path / "state.json")})
    spec = devo.LookupSpec(name="Repeats", key="value", columns=(devo.Column("value"), devo.Column("n")))
    rows = [(f"v{i % 40}", str(i)) for i in range(100)]   # each of 40 keys two or three times
    with devo.delta.upload(run, spec, "Repeats", keep=keep) as up:
        up.add(rows[:30])
        up.add_lines(devo.delta.Lines(rows[30:70], 0, [(str(i), "t", "u") for i in range(30, 70)]))
        up.add(rows[70:])
        assert up.send() == 40 and up.repeats == 60 and up.outcome[0] == "full"
    kept = {f"v{k}": str(k if keep == "first" else k + 80 if k < 20 else k + 40) for k in range(40)}
    held = {r["value"]: r["n"] for r in sandbox["devo"].lookup("Repeats")["rows"]}
    assert held == kept
    # The index made from both kinds of rows says what Devo holds: the next run sends only the row that changed.
    changed = [(value, "changed" if value == "v7" else n) for value, n in sorted(kept.items())]
    with devo.delta.upload(run, spec, "Repeats", keep=keep) as up:
        up.add(changed)
        assert up.send() == 1 and up.outcome == ("delta", 1, 0)
    held = {r["value"]: r["n"] for r in sandbox["devo"].lookup("Repeats")["rows"]}
    assert held == {**kept, "v7": "changed"}


@pytest.mark.parametrize("marks", [
    [("12", "2024-01-01 00:00:01", "2023-12-01 10:00:00"), ("7", "2024-01-01 00:00:02", "2023-12-01 10:00:01")],
    [("123456789012345678", "t1", "u1"), ("1", "t2", "u2")],   # the longest id that is a number
])
def test_marks_of_a_usual_page_travel_packed_and_read_back_as_they_were(marks):
    from tq_conn_common.devo import delta
    packed = delta._pack(marks)
    assert type(packed) is delta._Packed
    assert delta._unpack(packed) == list(map(delta._mark, marks)) == [(int(i), t, u) for i, t, u in marks]


@pytest.mark.parametrize("marks", [
    [("12", "t1", "u1"), ("x7", "t2", "u2")],          # an id that is not a number
    [("12", "t1", "u1"), ("", "t2", "u2")],            # no id
    [("12", "t1", "u1"), ("\u0661\u0662", "t2", "u2")],  # digits, not ASCII ones
    [("1234567890123456789", "t1", "u1")],             # an id too long for SQLite's integers to be sure
    [("12", "t1", "u1"), ("13", "t22", "u2")],         # change stamps of two lengths
    [("12", "t1", "u1"), ("13", "t2", "")],            # no order stamp
    [("12", "t\u00e91", "u1")],                       # a stamp that is not ASCII
    [("12", None, "u1")],                              # not a text
    [],
])
def test_marks_that_cannot_be_packed_travel_as_they_are_read(marks):
    from tq_conn_common.devo import delta
    assert delta._pack(marks) == list(map(delta._mark, marks))


@pytest.mark.parametrize("json_functions", [True, False])
def test_the_index_keeps_the_same_records_whether_their_marks_came_packed_or_not(sandbox, tmp_path, monkeypatch,
                                                                                 json_functions):
    import sqlite3
    if not json_functions:
        monkeypatch.setattr(devo.delta, "_has_json", lambda db: False)
    run = Run(make_run(tmp_path).connector, argparse.Namespace(name=None), cfg.validate(PARAMS, rest(sandbox)),
              State(str(tmp_path / "state.json")), {"state": str(tmp_path / "state.json")})
    spec = devo.LookupSpec(name="Marked", key="value", columns=(devo.Column("value"), devo.Column("n")))
    pages = [[(str(100 + i), f"2024-01-0{i % 9 + 1}", "2023") for i in range(10)],          # packed
             [(str(110 + i), "2024-01-01" if i % 2 else "2024-1-1", "2023") for i in range(10)],   # two lengths
             [("x" if i == 3 else str(120 + i), "2024-01-01", "") for i in range(10)]]     # not packed
    with devo.delta.upload(run, spec, "Marked", keep="first") as up:
        for p, marks in enumerate(pages):
            up.add_lines(devo.delta.Lines([(f"v{p * 10 + i}", str(i)) for i in range(10)], 0, marks))
        assert up.send() == 30
    db = sqlite3.connect(os.path.join(devo.delta.index_dir(str(tmp_path / "state.json")), "Marked.sqlite"))
    held = db.execute("SELECT src, t, u, typeof(src), typeof(t) FROM srcs ORDER BY src").fetchall()
    marks = sorted(m for m in map(devo.delta._mark, itertools.chain.from_iterable(pages)) if m[0] is not None)
    assert len(marks) == 29 and held == [(*m, "integer", "text") for m in marks]


@pytest.mark.parametrize("seed", range(6))
def test_the_listing_walked_in_blocks_finds_the_records_new_changed_and_gone(monkeypatch, seed):
    import random
    import sqlite3
    import types

    from tq_conn_common.devo import delta
    monkeypatch.setattr(delta, "_READ", 7)   # blocks of 7: most of them hold a record that came or went
    rnd = random.Random(seed)
    index = {i: rnd.choice("ab") for i in range(0, 400, 2) if rnd.random() < 0.8}
    listing = {i: index[i] if i in index and rnd.random() < 0.9 else rnd.choice("abc")
               for i in range(1, 420) if rnd.random() < (0.9 if i in index else 0.3)}
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("ATTACH ':memory:' AS idx")
    db.execute("CREATE TABLE idx.srcs (src INTEGER PRIMARY KEY, k BLOB, d BLOB, off INTEGER, t TEXT, u TEXT)")
    db.executemany("INSERT INTO idx.srcs VALUES (?, x'00', x'00', 0, ?, NULL)", sorted(index.items()))
    ids = [str(i) if i % 3 == 0 else i for i in sorted(listing)]   # ids come as numbers or as texts
    assert delta.DeltaUpload._compare(types.SimpleNamespace(_db=db), zip(ids, map(listing.get, sorted(listing)))) \
        is None
    assert db.execute("SELECT src, t FROM need ORDER BY src").fetchall() == \
        [(i, s) for i, s in sorted(listing.items()) if index.get(i) != s]
    assert db.execute("SELECT src FROM dropped ORDER BY src").fetchall() == \
        [(i,) for i in sorted(index) if i not in listing]
    for wrong in ([(5, "a"), (5, "a")], [(9, "a"), (3, "a")], [("x", "a")], [(1, "a")] * 7 + [(0, "a")]):
        db.execute("DROP TABLE need")
        db.execute("DROP TABLE dropped")
        assert "increasing id" in delta.DeltaUpload._compare(types.SimpleNamespace(_db=db), wrong)
