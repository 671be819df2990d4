"""Devo declarations, settings checks, credential checks and value encodings (no network)."""

import datetime
import logging
import os
import stat

import pytest

from tq_conn_common import config as cfg
from tq_conn_common import devo
from tq_conn_common.devo import certs as devo_certs, rest as devo_rest, tls as devo_tls
from tq_conn_common.errors import ConfigError
from tq_conn_sandbox import pki
from tq_conn_sandbox.services.devo import parse_fields

AWKWARD = ['say "hi"', "a,b", "line1\nline2", " padded ", "naïve ☃ 日本", "1.2.3.4", "5", "-3.50", "007", "",
           "tab\there", "back\\slash", "semi;colon", "=cmd()", "'quoted'", "crlf\r\nend"]


@pytest.fixture(scope="module")
def ca():
    return pki.Authority("Test CA")


def settings(**raw):
    return cfg.validate(devo.output_params(), raw)


def pem_settings(issued, chain, **extra):
    """The X.509 credentials, the X.509 transport chosen on purpose unless a token is given."""
    extra.setdefault("devo_transport", "auto" if "devo_token" in extra else "tls")
    return settings(devo_cert=issued.cert_pem, devo_key=issued.key_pem, devo_chain=chain, **extra)


# ---- declarations ---------------------------------------------------------------------------------------------

def test_check_name_accepts_devo_names_and_refuses_others():
    assert devo.check_name("Recorded_Future_IPv4_1") == "Recorded_Future_IPv4_1"
    for bad in ("my lookup", "a-b", "x.y", "", None, "ünï"):
        with pytest.raises(ValueError, match="letters, digits and underscore"):
            devo.check_name(bad)
    assert devo.check_name("my.lookuplist.ThreatQ_IOCs") == "ThreatQ_IOCs"   # copied from a query


def test_query_name():
    assert devo.query_name("ThreatQ_IOCs") == "my.lookuplist.ThreatQ_IOCs"


def test_column_types_accept_python_types_and_refuse_unknown():
    assert Column_types(("value", str), ("score", float), ("n", int), ("ok", bool), ("seen", "timestamp")) == \
        ["str", "float", "int", "bool", "str"]
    with pytest.raises(ValueError, match="not one of"):
        devo.Column("x", "datetime")


def Column_types(*pairs):
    return [devo.Column(name, kind).type for name, kind in pairs]


def test_lookup_spec_needs_its_key_among_the_columns():
    with pytest.raises(ValueError, match="key"):
        devo.LookupSpec(key="cve", columns=(devo.Column("id"),))
    spec = devo.LookupSpec(key="b", columns=("a", "b"), name="X")
    assert spec.key_index == 1 and spec.resolve_name() == "X"


def test_output_params_keys_labels_and_ui_flag():
    params = {p.key: p for p in devo.output_params()}
    assert set(params) >= {"devo_transport", "devo_region", "devo_lookups_url", "devo_token", "devo_domain",
                           "devo_cert", "devo_key", "devo_chain", "devo_host", "devo_port", "devo_tls_delay",
                           "devo_verify_tls", "devo_ca_bundle", "devo_job_timeout"}
    assert params["devo_verify_tls"].renamed_from == ("devo_verify_ssl",)   # the key before 1.1 keeps working
    assert params["devo_region"].label == "Devo API Region" and params["devo_region"].default == "us"
    assert params["devo_cert"].label == "Devo X.509 Certificate"
    assert params["devo_key"].label == "Devo X.509 Private Key" and params["devo_key"].secret
    assert params["devo_chain"].label == "Devo X.509 Chain CA"
    assert params["devo_token"].secret and params["devo_transport"].default == "auto"
    assert params["devo_tls_delay"].default == 5
    assert not any(p.required for p in params.values())
    assert all(p.ui for p in devo.output_params(ui=True))


def test_region_presets_and_overrides():
    assert devo.Settings("rest", settings(devo_region="eu")).rest_url == "https://api-eu.devo.com/lookup-api"
    assert devo.Settings("rest", settings(devo_lookups_url="http://h:1/lookup-api/")).rest_url == "http://h:1/lookup-api"
    assert devo.Settings("tls", settings(devo_region="ca")).collector == ("collector-ca.devo.io", 443)
    assert devo.Settings("tls", settings(devo_host="relay", devo_port=1514)).collector == ("relay", 1514)


# ---- transport choice -----------------------------------------------------------------------------------------

def test_auto_prefers_rest_when_a_token_is_set(ca):
    issued = ca.issue("sandbox")
    assert devo.check_settings(settings(devo_token="t", devo_domain="d")).transport == "rest"
    assert devo.check_settings(pem_settings(issued, ca.cert_pem, devo_token="t", devo_domain="d")).transport == "rest"
    assert devo.check_settings(pem_settings(issued, ca.cert_pem, devo_transport="tls")).transport == "tls"


def test_auto_with_only_x509_credentials_is_refused_naming_the_token_the_domain_and_tls(ca):
    # Devo announced the end of the X.509 lookup upload for 2026-01-01: it is taken only when chosen on purpose.
    with pytest.raises(ConfigError) as caught:
        devo.check_settings(pem_settings(ca.issue("sandbox"), ca.cert_pem, devo_transport="auto"))
    error = caught.value
    assert error.exit_code == 2 and "2026-01-01" in error.message
    assert "(devo_token)" in error.fix and "(devo_domain)" in error.fix and "Authentication tokens" in error.fix
    assert "(devo_transport) to tls" in error.fix


def test_no_credentials_names_both_ways():
    with pytest.raises(ConfigError) as caught:
        devo.check_settings(settings())
    assert "devo_token" in caught.value.fix and "devo_cert" in caught.value.fix and "devo_domain" in caught.value.fix


def test_rest_needs_token_and_domain():
    with pytest.raises(ConfigError) as caught:
        devo.check_settings(settings(devo_transport="rest"))
    assert len(caught.value.problems) == 2
    assert "(devo_token) is not set" in str(caught.value) and "(devo_domain) is not set" in str(caught.value)


def test_tls_names_each_missing_credential(ca):
    with pytest.raises(ConfigError) as caught:
        devo.check_settings(settings(devo_cert=ca.issue("x").cert_pem, devo_transport="tls"))
    text = str(caught.value)
    assert "devo_key" in text and "devo_chain" in text and "(devo_cert)" not in text.split(" not set")[0]
    assert "Lookups API" in text


def test_events_need_the_http_endpoint_token_or_the_x509_credentials():
    with pytest.raises(ConfigError, match="events are sent") as caught:
        devo.check_settings(settings(devo_token="t", devo_domain="d"), events=True)
    assert "(devo_http_token)" in str(caught.value)


def test_events_go_through_the_http_endpoint_when_its_token_is_set(ca):
    assert devo.check_settings(settings(devo_http_token="h", devo_domain="d"), events=True).transport == "http"
    chosen = pem_settings(ca.issue("sandbox"), ca.cert_pem, devo_http_token="h", devo_domain="d", devo_transport="tls")
    assert devo.check_settings(chosen, events=True).transport == "tls"
    with pytest.raises(ConfigError, match=r"\(devo_domain\) is not set"):
        devo.check_settings(settings(devo_http_token="h"), events=True)
    assert devo.Settings("http", settings(devo_region="eu")).http_url == "https://http-eu.devo.io"


# ---- credential checks ----------------------------------------------------------------------------------------

def test_good_credentials_pass_as_text_and_as_files(ca, tmp_path):
    paths = ca.write_client(str(tmp_path), "sandbox")
    assert devo_certs.check({"devo_cert": paths["cert"], "devo_key": paths["key"], "devo_chain": paths["chain"]}) == []
    issued = ca.issue("sandbox")
    assert devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": issued.key_pem, "devo_chain": ca.cert_pem}) == []


def test_wrong_key_for_the_certificate(ca):
    issued, other = ca.issue("sandbox"), pki.new_key()
    problems = devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": pki.key_pem(other),
                                 "devo_chain": ca.cert_pem})
    assert problems == ["'Devo X.509 Private Key' (devo_key) does not belong to 'Devo X.509 Certificate' (devo_cert); "
                        "paste the private key downloaded with this certificate (both from the same X.509 credential "
                        "in Devo)."]


def test_expired_and_not_yet_valid_certificates(ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    old = ca.issue("sandbox", not_before=now - datetime.timedelta(days=40), not_after=now - datetime.timedelta(days=1))
    problems = devo_certs.check({"devo_cert": old.cert_pem, "devo_key": old.key_pem, "devo_chain": ca.cert_pem})
    assert len(problems) == 1 and "(devo_cert) expired on" in problems[0] and "create a new X.509" in problems[0]
    future = ca.issue("sandbox", not_before=now + datetime.timedelta(days=2))
    problems = devo_certs.check({"devo_cert": future.cert_pem, "devo_key": future.key_pem, "devo_chain": ca.cert_pem})
    assert "not valid before" in problems[0] and "clock" in problems[0]


def test_expiry_within_30_days_warns(ca, caplog):
    soon = ca.issue("sandbox", days=10)
    with caplog.at_level(logging.WARNING):
        assert devo_certs.check({"devo_cert": soon.cert_pem, "devo_key": soon.key_pem, "devo_chain": ca.cert_pem}) == []
    assert "expires on" in caplog.text and "(devo_cert)" in caplog.text


def test_chain_that_did_not_issue_the_certificate(ca):
    other_ca = pki.Authority("Other CA")
    issued = ca.issue("sandbox")
    problems = devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": issued.key_pem,
                                 "devo_chain": other_ca.cert_pem})
    assert len(problems) == 1 and "(devo_chain) did not issue" in problems[0] and "chain.crt" in problems[0]
    # Same subject name, other key: the signature decides.
    impostor = pki.Authority("Test CA")
    problems = devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": issued.key_pem,
                                 "devo_chain": impostor.cert_pem})
    assert "did not issue" in problems[0]


def test_chain_with_an_intermediate(ca):
    issued = ca.issue("sandbox")
    unrelated = pki.Authority("Root")
    chain = unrelated.cert_pem + ca.cert_pem
    assert devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": issued.key_pem, "devo_chain": chain}) == []


def test_unreadable_material_is_named(ca, tmp_path):
    issued = ca.issue("sandbox")
    problems = devo_certs.check({"devo_cert": issued.key_pem, "devo_key": "-----BEGIN PRIVATE KEY-----\nxx\n"
                                 "-----END PRIVATE KEY-----", "devo_chain": str(tmp_path / "missing.crt")})
    text = "\n".join(problems)
    assert "(devo_cert) holds a private key, not a certificate" in text
    assert "(devo_key) cannot be read as a private key" in text
    assert "(devo_chain) is neither PEM text nor an existing file" in text
    problems = devo_certs.check({"devo_cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
                                 "devo_key": "MIIEvQIBADANBg\nkqhkiG9w0BAQEFAASC",
                                 "devo_chain": issued.cert_pem.replace("MII", "XXX")})
    text = "\n".join(problems)
    assert "(devo_cert) is not a PEM certificate" in text and "(devo_key) holds text without a -----BEGIN line" in text
    assert "(devo_chain) is not a PEM certificate chain" in text
    problems = devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": issued.cert_pem, "devo_chain": ca.cert_pem})
    assert problems and "(devo_key) is not a PEM private key" in problems[0]


def test_encrypted_key_is_named(ca):
    from cryptography.hazmat.primitives import serialization
    issued = ca.issue("sandbox")
    locked = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"secret")).decode()
    problems = devo_certs.check({"devo_cert": issued.cert_pem, "devo_key": locked, "devo_chain": ca.cert_pem})
    assert problems and "passphrase" in problems[0]


def test_check_output_reports_credential_problems(ca):
    issued = ca.issue("sandbox")
    with pytest.raises(ConfigError) as caught:
        devo.check_settings(pem_settings(issued, pki.Authority("Else").cert_pem))
    assert "(devo_chain) did not issue" in str(caught.value)


# ---- PEM text to private temporary files --------------------------------------------------------------------------

def test_pasted_pem_is_never_written_to_disk(ca, tmp_path):
    issued = ca.issue("sandbox")
    config = settings(devo_cert=issued.cert_pem, devo_key=issued.key_pem, devo_chain=str(tmp_path / "chain.crt"))
    with devo_tls.credential_files(devo.Settings("tls", config)) as paths:
        assert paths["key"].startswith("/proc/self/fd/") and paths["cert"].startswith("/proc/self/fd/")
        assert open(paths["key"]).read().strip() == issued.key_pem.strip()   # as the TLS layer opens it, by path
        assert paths["chain"] == str(tmp_path / "chain.crt")
        key = paths["key"]
    assert not os.path.exists(key)
    with pytest.raises(RuntimeError):
        with devo_tls.credential_files(devo.Settings("tls", config)) as paths:
            key = paths["key"]
            raise RuntimeError("boom")
    assert not os.path.exists(key)


def test_without_in_memory_files_pem_goes_to_a_private_folder_swept_after_a_kill(ca, tmp_path, monkeypatch):
    from tq_conn_common.devo import certs
    monkeypatch.setattr(certs, "in_memory", lambda *args: None)
    monkeypatch.setattr(certs.tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "tq-conn-devo-999999999-left"     # left by a SIGKILLed run: no such process
    dead.mkdir()
    (dead / "key.pem").write_text("-----BEGIN PRIVATE KEY-----")
    issued = ca.issue("sandbox")
    config = settings(devo_cert=issued.cert_pem, devo_key=issued.key_pem, devo_chain=issued.cert_pem)
    with devo_tls.credential_files(devo.Settings("tls", config)) as paths:
        assert not dead.exists()
        folder = os.path.dirname(paths["key"])
        assert os.path.basename(folder).startswith(f"tq-conn-devo-{os.getpid()}-")
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert all(stat.S_IMODE(os.stat(paths[n]).st_mode) == 0o600 for n in ("cert", "key", "chain"))
        certs.sweep()          # a living run's folder stays
        assert os.path.exists(paths["key"])
    assert not os.path.exists(folder)


# ---- encodings ------------------------------------------------------------------------------------------------

def test_csv_fields_read_back_unchanged():
    import csv
    import io
    line = devo_rest.csv_line(AWKWARD)
    assert next(csv.reader(io.StringIO(line, newline=""), strict=True)) == AWKWARD
    assert devo_rest.csv_field(" x") == '" x"' and devo_rest.csv_field("é") == '"é"'
    assert devo_rest.csv_field("") == '""' and devo_rest.csv_field("plain") == "plain"


def test_rows_in_batches_are_the_texts_of_their_values_one_by_one():
    from tq_conn_common.devo.lookup import Column, LookupSpec, text, texts
    spec = LookupSpec(name="t", key="k", columns=(Column("k"), Column("n", "int"), Column("x", "float")))
    values = ["a", 5, -2.5, 1e300, float("inf"), 3.0, True, False, None, datetime.date(2024, 1, 2), 10 ** 30, ""]
    for v in values:
        rows = [{"k": "a", "n": 1, "x": 2.5}, {"k": "b", "n": v, "x": v}, ("c", 7, 0.1), {"k": "d", "x": v},
                {"k": "e", "n": 2, "x": 3, "other": 1}]
        want = [tuple(text(r.get(c) if isinstance(r, dict) else r[i]) for i, c in enumerate(spec.names))
                for r in rows]
        assert list(texts(spec, rows)) == want, v
        dicts = [r for r in rows if isinstance(r, dict) and "n" in r]
        assert list(texts(spec, dicts)) == [w for r, w in zip(rows, want) if isinstance(r, dict) and "n" in r]


def test_batches_of_csv_lines_are_what_csv_line_writes_row_by_row():
    plain = [("1.2.3.4", "85", "3/77", "Recent DDoS; Current C&C Server", "Current C&C Server", "Malicious")] * 3
    assert devo_rest.csv_lines(plain) == "".join(map(devo_rest.csv_line, plain))
    assert "".join(map(devo_rest.csv_line, plain)).count('"') == 0    # the usual batch needs no quotes
    for value in AWKWARD + ["x ", " x", "\x7f", "~"]:
        for rows in ([("a", value, "b")], [(value, "a", "b"), ("c", "d", value)], [("a", "b", "c"), (value, "", "x")]):
            assert devo_rest.csv_lines(rows) == "".join(map(devo_rest.csv_line, rows)), rows
    ascii_only = [v for v in AWKWARD + ["x ", " x", "a, b", ",", " "] if v.isascii() and v.isprintable()]
    mixed = [(value, "k%d" % i, "plain") for i, value in enumerate(ascii_only + ["plain", "x"] + ascii_only)]
    assert devo_rest.csv_lines(mixed) == "".join(map(devo_rest.csv_line, mixed))
    assert devo_rest.csv_lines([]) == "" and devo_rest.csv_lines([("",)]) == '""\n'


def test_wire_rows_put_the_key_first_and_read_back_unchanged():
    values = [v for v in AWKWARD if "\\n" not in v]
    kinds = ["str"] * len(values)
    fields = parse_fields(devo_tls.wire_row(values, kinds, 2))
    assert fields == [values[2]] + values[:2] + values[3:]
    assert devo_tls.wire_row(["k", "5", "", "true"], ["str", "int", "int", "bool"], 0) == '"k",5,,true'
    assert devo_tls.wire_field('24" screen', "str") == '"24"" screen"'
    assert devo_tls.wire_field("a\nb", "str") == '"a\\nb"'
    assert devo_tls.wire_field("5\n", "int") == '"5\\n"'   # a line end never goes bare


def test_wire_rows_of_a_batch_are_each_row_field_by_field():
    # A batch is made column by column, a column without anything to escape whole: the same text, row by row, as
    # each value through wire_field, whatever the values and the kinds.
    kinds = ["str", "int", "float", "str", "bool"]
    plain = [("evil.example", "5", "0.5", "FQDN", "true"), ("1.2.3.4", "", "", "", "false")]
    for value in AWKWARD + ["5\n", "\0", "x\0y"]:
        for rows in (plain, plain + [(value,) * 5], [(value, "1", value, "t", value)] + plain):
            for key in (0, 3):
                expected = [",".join([devo_tls.wire_field(row[key], kinds[key])]
                                     + [devo_tls.wire_field(v, k) for i, (v, k) in enumerate(zip(row, kinds))
                                        if i != key]) for row in rows]
                assert devo_tls.wire_rows(rows, kinds, key) == expected, rows
    assert devo_tls.wire_rows([], kinds, 0) == []


def test_deploy_config_per_mode():
    spec = devo.LookupSpec(key="KEY", columns=(devo.Column("KEY", "int"), devo.Column("COLOR")))
    assert devo_rest.deploy_config(spec, "replace") == {
        "columns": [{"name": "KEY", "type": "INT8"}, {"name": "COLOR", "type": "STRING"}], "hasHeader": True,
        "key": {"type": "column", "column": "KEY"}}
    assert devo_rest.deploy_config(spec, "upsert")["append"] is True
    assert devo_rest.deploy_config(spec, "delete")["contribution"] == {"type": "del"}


def test_an_upload_body_leaves_out_the_ranges_it_is_told_every_time_it_is_read(tmp_path):
    # A full replacement with repeats is the lines file without the repeated rows' lines: left out while read, the
    # length said up front matching what is sent, attempt after attempt.
    from tq_conn_common.devo.rest import _Multipart, READ_SIZE
    lines = [b"value,n\n"] + [b"v%d,%s\n" % (i, b"x" * (i * 7 % 5000)) for i in range(400)]
    path = tmp_path / "lines.csv"
    path.write_bytes(b"".join(lines))
    offsets = [sum(map(len, lines[:i])) for i in range(len(lines))]
    dropped = [3, 4, 200, 399]   # two together, one inside a read block, the last line
    left_out = [(offsets[i], len(lines[i])) for i in dropped]
    assert sum(map(len, lines)) > 2 * READ_SIZE
    with open(path, "rb") as spool:
        body = _Multipart("{}", spool, "L", left_out)
        for _ in range(2):
            sent = b"".join(body)
            assert len(sent) == len(body)
            csv = sent[len(body.head):len(sent) - len(body.tail)]
            assert csv == b"".join(line for i, line in enumerate(lines) if i not in dropped)
