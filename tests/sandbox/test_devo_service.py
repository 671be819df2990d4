"""The Devo stand-in: Lookups REST API contract, TLS collector framing and lookup rebuild, inspection, devo-certs."""

import gc
import gzip
import json
import os
import socket
import ssl
import stat
import time
import weakref

import pytest
import requests
from devo.sender import Lookup, Sender

from tq_conn_sandbox import cli as sandbox_cli
from tq_conn_sandbox import pki
from tq_conn_sandbox.devo_wire import PAUSE_FROM, Stream, parse_csv, parse_fields
from tq_conn_sandbox.services.devo import DEFAULT_TOKEN

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
CONFIG = {"columns": [{"name": "KEY", "type": "INT8"}, {"name": "COLOR", "type": "STRING"},
                      {"name": "HEX", "type": "STRING"}], "hasHeader": True, "key": {"type": "column", "column": "KEY"}}
CSV = "KEY,COLOR,HEX\n1,Red,d62d20\n2,Green,008744\n3,Blue,0057e7\n4,Yellow,ffa700\n5,White,ffffff"


def api(sandbox, path=""):
    return sandbox.url("devo") + "/lookup-api/lookup/sandbox" + path


def upload(sandbox, name, config, csv_text, method="POST", token=DEFAULT_TOKEN):
    files = {"deploy-config": (None, json.dumps(config), "application/json"),
             "csv": ("example.csv", csv_text.encode("utf-8"), "text/csv")}
    return requests.request(method, api(sandbox, f"/{name}/deploy-csv"), files=files,
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)


def job_statuses(sandbox, name, job):
    answer = requests.get(api(sandbox, f"/{name}/job/{job}"), headers=AUTH, timeout=10)
    assert answer.status_code == 200
    return [entry["status"] for entry in answer.json()["jobs"]]


def rows(sandbox, name):
    return sandbox["devo"].lookup(name)["rows"]


# ---- Lookups REST API -----------------------------------------------------------------------------------------

def test_token_is_checked(sandbox):
    assert requests.get(api(sandbox), timeout=10).status_code == 401
    answer = requests.get(api(sandbox), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["message"] == "Invalid token"
    assert upload(sandbox, "Colors", CONFIG, CSV, token="nope").status_code == 401
    assert sandbox["devo"].lookups == {}


def test_create_from_csv_like_devos_guide(sandbox):
    answer = upload(sandbox, "Colors", CONFIG, CSV)
    assert answer.status_code == 201
    body = answer.json()
    assert body["type"] == "LookupCreationResponse" and body["code"] == 201 and len(body["id"]) == 36
    assert "/lookup/{domain}/{name}/job/{id}" in body["msg"] and body["lookupDeployConfig"] == CONFIG
    assert job_statuses(sandbox, "Colors", body["id"]) == ["create.start", "create.ok"]
    assert rows(sandbox, "Colors")[0] == {"KEY": 1, "COLOR": "Red", "HEX": "d62d20"}
    meta = requests.get(api(sandbox, "/Colors"), headers=AUTH, timeout=10).json()
    assert meta["name"] == "Colors" and meta["status"] == "Available" and meta["size"] == 5
    jobs = requests.get(api(sandbox, "/Colors/job"), headers=AUTH, timeout=10).json()
    assert jobs == {"jobs": [body["id"]]}


def test_post_on_existing_and_put_on_missing_are_refused(sandbox):
    assert upload(sandbox, "Colors", CONFIG, CSV, method="PUT").status_code == 404
    assert upload(sandbox, "Colors", CONFIG, CSV).status_code == 201
    assert upload(sandbox, "Colors", CONFIG, CSV).status_code == 409


def test_replace_append_and_delete_rows(sandbox):
    upload(sandbox, "Colors", CONFIG, CSV)
    updated = dict(CONFIG, columns=CONFIG["columns"] + [{"name": "NEW_INFO", "type": "STRING"}])
    answer = upload(sandbox, "Colors", updated, "KEY,COLOR,HEX,NEW_INFO\n1,Dark Red,aa0000,UpdatedRow1\n"
                    "6,Orange,ffa500,NewRow6\n", method="PUT")
    assert answer.status_code == 200 and job_statuses(sandbox, "Colors", answer.json()["id"])[-1] == "update.ok"
    assert [r["KEY"] for r in rows(sandbox, "Colors")] == [1, 6]
    append = dict(updated, append=True)
    upload(sandbox, "Colors", append, "KEY,COLOR,HEX,NEW_INFO\n2,Green,008744,\n6,Amber,ffbf00,x\n", method="PUT")
    assert {r["KEY"]: r["COLOR"] for r in rows(sandbox, "Colors")} == {1: "Dark Red", 6: "Amber", 2: "Green"}
    delete = dict(updated, append=True, contribution={"type": "del"})
    upload(sandbox, "Colors", delete, "KEY,COLOR,HEX,NEW_INFO\n2,Green,008744,\n4,Yellow,ffa700,\n", method="PUT")
    assert [r["KEY"] for r in rows(sandbox, "Colors")] == [1, 6]


def test_json_body_upload(sandbox):
    answer = requests.post(api(sandbox, "/Colors/deploy-csv"), headers=AUTH, timeout=10,
                           json={"deploy-config": CONFIG, "csv": CSV})
    assert answer.status_code == 201 and len(rows(sandbox, "Colors")) == 5


def test_bad_uploads_end_their_job_in_err(sandbox):
    bad_type = dict(CONFIG, columns=[{"name": "KEY", "type": "INT8"}, {"name": "COLOR", "type": "COLOUR"},
                                     {"name": "HEX", "type": "STRING"}])
    answer = upload(sandbox, "Colors", bad_type, CSV)
    job = requests.get(api(sandbox, f"/Colors/job/{answer.json()['id']}"), headers=AUTH, timeout=10).json()["jobs"]
    assert job[-1]["status"] == "create.err" and "Unknown type 'COLOUR'" in job[-1]["msg"]
    assert sandbox["devo"].lookup("Colors") is None
    answer = upload(sandbox, "Colors", CONFIG, "KEY,COLOR,HEX\n1,Red\n")
    assert job_statuses(sandbox, "Colors", answer.json()["id"])[-1] == "create.err"
    answer = upload(sandbox, "Colors", CONFIG, "KEY,COLOR,HEX\nx,Red,1\n")
    assert job_statuses(sandbox, "Colors", answer.json()["id"])[-1] == "create.err"
    assert upload(sandbox, "Bad-Name", CONFIG, CSV).status_code == 400
    assert requests.post(api(sandbox, "/Colors/deploy-csv"), headers=AUTH, data=b"x", timeout=10).status_code == 400


def test_slow_jobs_move_from_start_to_ok(sandbox):
    sandbox["devo"].settings["job_delay"] = 0.3
    job = upload(sandbox, "Colors", CONFIG, CSV).json()["id"]
    assert job_statuses(sandbox, "Colors", job) == ["create.start"]
    assert sandbox["devo"].lookup("Colors")["rows"] == []
    time.sleep(0.35)
    assert job_statuses(sandbox, "Colors", job) == ["create.start", "create.ok"]


def test_list_pages_and_delete(sandbox):
    for i in range(3):
        upload(sandbox, f"L{i}", CONFIG, CSV)
    first = requests.get(api(sandbox), params={"max_length": 2}, headers=AUTH, timeout=10).json()
    assert [x["name"] for x in first["lookups"]] == ["L0", "L1"] and first["nextPageToken"] == 2
    second = requests.get(api(sandbox), params={"max_length": 2, "pageToken": 2}, headers=AUTH, timeout=10).json()
    assert [x["name"] for x in second["lookups"]] == ["L2"] and "nextPageToken" not in second
    assert requests.get(api(sandbox), params={"max_length": 1001}, headers=AUTH, timeout=10).status_code == 400
    gone = requests.delete(api(sandbox, "/L1"), headers=AUTH, timeout=10)
    assert gone.status_code == 200 and gone.json()["type"] == "LookupDeletionResponse"
    assert job_statuses(sandbox, "L1", gone.json()["id"]) == ["delete.start", "delete.ok"]
    assert requests.get(api(sandbox, "/L1"), headers=AUTH, timeout=10).status_code == 404
    assert requests.post(api(sandbox, "/L0/deploy-config"), headers=AUTH, json={}, timeout=10).status_code == 501


# ---- TLS collector ----------------------------------------------------------------------------------------------

def sdk_sender(sandbox, tmp_path, issued=None):
    service = sandbox["devo"]
    issued = issued or service.client_certificate()
    for name, text in (("c.crt", issued.cert_pem), ("c.key", issued.key_pem),
                       ("chain.crt", service.authority.cert_pem)):
        (tmp_path / name).write_text(text)
    host, port = service.collector_address
    return Sender(config={"address": host, "port": port, "cert": str(tmp_path / "c.crt"),
                          "key": str(tmp_path / "c.key"), "chain": str(tmp_path / "chain.crt")})


def wait_for(check, seconds=5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_real_sdk_lookup_upload_full_inc_and_delete(sandbox, tmp_path):
    con = sdk_sender(sandbox, tmp_path)
    lookup = Lookup(name="Colors", con=con, delay=0, escape_quotes=True, escape_newline=True)
    headers = Lookup.list_to_headers(headers=["KEY", "COLOR", "HEX"], key_index=0, types=["int", "str", "str"])
    lookup.send_control("START", headers, "FULL")
    for fields in (["1", "Red", "d62d20"], ["2", 'Monitor 24" \nand 19', "008744"], ["3", "Blue", "0057e7"]):
        lookup.send_data_line(fields=fields, key_index=0)
    lookup.send_control("END", headers, "FULL")
    inc = Lookup(name="Colors", con=con, delay=0, escape_quotes=True, escape_newline=True)
    inc.send_control("START", headers, "INC")
    inc.send_data_line(fields=["4", "Yellow", "ffa700"], key_index=0)
    inc.send_data_line(fields=["3", "Blue", "0057e7"], key_index=0, delete=True)
    inc.send_control("END", headers, "INC")
    con.close()
    assert wait_for(lambda: sandbox["devo"].lookup("Colors") and len(rows(sandbox, "Colors")) == 3)
    assert rows(sandbox, "Colors") == [{"KEY": 1, "COLOR": "Red", "HEX": "d62d20"},
                                       {"KEY": 2, "COLOR": 'Monitor 24" \nand 19', "HEX": "008744"},
                                       {"KEY": 4, "COLOR": "Yellow", "HEX": "ffa700"}]
    assert sandbox["devo"].collector_log == []


def test_real_sdk_csv_upload_with_delete_column(sandbox, tmp_path):
    (tmp_path / "in.csv").write_text("KEY,COLOR\nk1,Red\nk2,Green\nk3,Blue\n")
    con = sdk_sender(sandbox, tmp_path)
    Lookup(name="FromCsv", con=con, delay=0).send_csv(str(tmp_path / "in.csv"), key="KEY")
    (tmp_path / "del.csv").write_text("KEY,COLOR,ACTION\nk2,Green,DELETE\nk4,Pink,add\n")
    Lookup(name="FromCsv", con=con, delay=0).send_csv(str(tmp_path / "del.csv"), key="KEY", action="INC",
                                                      delete_field="ACTION")
    con.close()
    assert wait_for(lambda: sandbox["devo"].lookup("FromCsv") and len(rows(sandbox, "FromCsv")) == 3
                    and "k4" in {r["KEY"] for r in rows(sandbox, "FromCsv")})
    assert {r["KEY"]: r["COLOR"] for r in rows(sandbox, "FromCsv")} == {"k1": "Red", "k3": "Blue", "k4": "Pink"}


def test_start_without_end_changes_nothing(sandbox, tmp_path):
    con = sdk_sender(sandbox, tmp_path)
    lookup = Lookup(name="Half", con=con, delay=0)
    headers = Lookup.list_to_headers(headers=["KEY", "V"], key_index=0)
    lookup.send_control("START", headers, "FULL")
    lookup.send_data_line(fields=["a", "b"], key_index=0)
    con.close()
    assert wait_for(lambda: sandbox["devo"].staging)
    assert sandbox["devo"].lookup("Half") is None


def test_events_plain_octet_counted_and_gzip(sandbox, tmp_path):
    con = sdk_sender(sandbox, tmp_path)
    con.send("my.app.test.plain", "one plain event")
    con.send("my.app.test.multi", "first line\nsecond line", multiline=True)
    for i in range(300):
        con.send(b"my.app.test.zipped", b"zipped event %d" % i, zip=True)
    con.flush_buffer()
    con.close()
    service = sandbox["devo"]
    assert wait_for(lambda: len(service.table("my.app.test.zipped")) == 300)
    assert [e["message"] for e in service.table("my.app.test.plain")] == ["one plain event"]
    assert [e["message"] for e in service.table("my.app.test.multi")] == ["first line\nsecond line"]
    event = service.table("my.app.test.zipped")[7]
    assert event["message"] == "zipped event 7" and event["pri"] == 14 and event["date"] == "Jan  1 00:00:00"
    assert event["domain"] == "sandbox"


def test_client_without_a_certificate_of_the_ca_is_refused(sandbox, tmp_path):
    service = sandbox["devo"]
    context = ssl.create_default_context(cadata=service.authority.cert_pem)
    with socket.create_connection(service.collector_address, timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.sendall(b"<14>Jan  1 00:00:00 h my.app.test.x: hello\n")
                conn.recv(10)
    # devo-sdk itself does not notice (TLS 1.3 refuses after the handshake): what it "sends" is lost.
    stranger = pki.Authority("Stranger")
    try:
        con = sdk_sender(sandbox, tmp_path, stranger.issue("sandbox"))
        con.send("my.app.test.x", "hello")
        con.close()
    except Exception:  # noqa: B902 - either way nothing may arrive
        pass
    time.sleep(0.1)
    assert service.table("my.app.test.x") == []
    assert any("refused" in p or "certificate" in p for p in service.collector_log)


def test_collector_refusal_switch(sandbox, tmp_path):
    sandbox["devo"].settings["collector_refuse"] = True
    with pytest.raises(Exception):
        sdk_sender(sandbox, tmp_path)


def test_stream_splits_every_framing():
    stream = Stream()
    plain = b"<14>Jan  1 00:00:00 h my.a.b: one\n<14>Jan  1 00:00:00 h my.a.b: two\n"
    counted = b"<14>Jan  1 00:00:00 h my.a.b: three\nlines\n"
    zipped = gzip.compress(b"<14>Jan  1 00:00:00 h my.a.b: four\n<14>Jan  1 00:00:00 h my.a.b: five\n")
    data = plain + b"%d %s" % (len(counted), counted) + zipped + b"<14>Jan  1 00:00:00 h my.a.b: six"
    got = []
    for i in range(0, len(data), 7):
        got.extend(stream.feed(data[i:i + 7]))
    got.extend(stream.finish())
    assert [m.split(b": ", 1)[1] for m in got] == [b"one", b"two", b"three\nlines", b"four", b"five", b"six"]


def test_parse_fields():
    assert parse_fields('"a","b ""q""",5,,"x\\ny"') == ["a", 'b "q"', "5", "", "x\ny"]
    assert parse_fields('"k",') == ["k", ""]
    assert parse_fields('"24" screen"') == ['"24" screen"']


# ---- inspection, settings and devo-certs --------------------------------------------------------------------------

def test_inspection_endpoints(sandbox):
    upload(sandbox, "Colors", CONFIG, CSV)
    base = sandbox.url("devo") + "/_sandbox/devo"
    listing = requests.get(base + "/lookups", timeout=10).json()["lookups"]
    assert listing == [{"domain": "sandbox", "name": "Colors", "key": "KEY", "status": "Available", "rows": 5,
                        "columns": [{"name": "KEY", "type": "INT8"}, {"name": "COLOR", "type": "STRING"},
                                    {"name": "HEX", "type": "STRING"}]}]
    view = requests.get(base + "/lookups/Colors", params={"offset": 1, "limit": 2}, timeout=10).json()
    assert view["total"] == 5 and [r["KEY"] for r in view["rows"]] == [2, 3]
    assert view["query_name"] == "my.lookuplist.Colors"
    assert requests.get(base + "/lookups/Nope", timeout=10).status_code == 404
    assert requests.get(base + "/tables", timeout=10).json() == {"tables": {}}
    answer = requests.post(base + "/settings", json={"job_delay": 1}, timeout=10)
    assert answer.status_code == 200 and sandbox["devo"].settings["job_delay"] == 1
    assert requests.post(base + "/settings", json={"nope": 1}, timeout=10).status_code == 400
    info = requests.get(base + "/collector", timeout=10).json()
    assert info["port"] == sandbox["devo"].collector_address[1] and "BEGIN CERTIFICATE" in info["chain"]


def test_devo_certs_command_writes_a_ready_client_bundle(sandbox, tmp_path, capsys):
    target = tmp_path / "certs"
    assert sandbox_cli.main(["devo-certs", str(target), "--url", sandbox.url("devo")]) == 0
    names = sorted(os.listdir(target))
    assert names == ["chain.crt", "devo.yaml", "sandbox.crt", "sandbox.key"]
    assert stat.S_IMODE(os.stat(target / "sandbox.key").st_mode) == 0o600
    import yaml
    settings = yaml.safe_load((target / "devo.yaml").read_text())
    assert settings["devo_port"] == sandbox["devo"].collector_address[1] and settings["devo_transport"] == "tls"
    from tq_conn_common.devo import certs as devo_certs
    assert devo_certs.check({k: settings[k] for k in ("devo_cert", "devo_key", "devo_chain")}) == []
    assert "sandbox.key" in capsys.readouterr().out
    assert sandbox_cli.main(["devo-certs", str(tmp_path / "x"), "--url", "http://127.0.0.1:9"]) == 2
    assert "no Devo stand-in answers" in capsys.readouterr().err


def test_a_big_csv_parse_leaves_no_earlier_garbage_uncollectable():
    """The collector is paused while a big upload is parsed and what was made is frozen out of later collections;
    garbage with cycles made just before (in the young generations) is collected first, not frozen with it."""
    class Node:
        pass
    node = Node()
    node.itself = node
    gone = weakref.ref(node)
    del node
    count = PAUSE_FROM // 2 + 1
    try:
        rows, problem = parse_csv(b"value\n" + b"x\n" * count, [("value", "STRING")], "value", True, False, None)
        assert problem is None and len(rows) == count
        gc.collect()   # the frozen are not collected: the cycle is gone only if it was not frozen
        assert gone() is None
        assert gc.isenabled()
    finally:
        gc.unfreeze()
