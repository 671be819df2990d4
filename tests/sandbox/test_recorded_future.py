"""The Recorded Future stand-in: risk lists in the csv/splunk dialect, etag and HEAD, gzip, Fusion v2/v3, faults."""

import csv
import gzip
import io
import json
import re
import time
import zlib

import pytest
import requests

from tq_conn_sandbox.services.recorded_future import TOKEN, UKRAINE_RUSSIA

AUTH = {"X-RFToken": TOKEN}
FUSION_IP = UKRAINE_RUSSIA.format("ip")


@pytest.fixture
def rf(sandbox):
    return sandbox.url("recorded_future")


def get(url, **kwargs):
    kwargs.setdefault("headers", AUTH)
    return requests.get(url, timeout=30, **kwargs)


def table(body):
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_the_token_is_checked_and_errors_use_the_v2_envelope(rf):
    for headers, message in (({}, "Missing X-RFToken header"), ({"X-RFToken": "0" * 32}, "Invalid authentication")):
        response = get(rf + "/v2/ip/risklist", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == {"status": 401, "message": body["error"]["message"]} and "traceId" in body
        assert message in body["error"]["message"]
    assert re.fullmatch(r"[a-z0-9]{32}", TOKEN)   # the only form psengine accepts


@pytest.mark.parametrize("kind,extra", [("ip", []), ("domain", []), ("hash", ["Algorithm"]), ("url", []),
                                        ("vulnerability", [])])
def test_risk_lists_speak_the_csv_splunk_dialect(rf, kind, extra):
    response = get(rf + f"/v2/{kind}/risklist?format=csv%2Fsplunk")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain;charset=utf-8"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["etag"])
    lines = response.content.decode().splitlines()
    assert lines[0].startswith('"Name","Risk","RiskString","EvidenceDetails"')
    assert all(line.startswith('"') and line.endswith('"') for line in lines)   # every field quoted
    rows = table(response.content)
    assert list(rows[0]) == ["Name", "Risk", "RiskString", "EvidenceDetails"] + extra
    for row in rows:
        assert 65 <= int(row["Risk"]) <= 99
        rules, available = map(int, row["RiskString"].split("/"))
        details = json.loads(row["EvidenceDetails"])["EvidenceDetails"]
        assert len(details) == rules >= 1 and available > rules
        item = details[0]
        assert set(item) == {"Name", "EvidenceString", "CriticalityLabel", "MitigationString", "Rule",
                             "SourcesCount", "Sources", "Timestamp", "SightingsCount", "Criticality"}
        assert isinstance(item["Criticality"], float) and re.match(r"\d{4}-\d\d-\d\dT.*Z$", item["Timestamp"])


def test_the_ip_list_mixes_ipv4_ipv6_and_cidr(rf):
    names = [row["Name"] for row in table(get(rf + "/v2/ip/risklist").content)]
    assert any(":" in n for n in names) and any("/" in n for n in names) and any(n.count(".") == 3 for n in names)
    assert len(set(names)) == len(names)


def test_hash_rows_carry_their_algorithm_and_either_column_order(sandbox, rf):
    rows = table(get(rf + "/v2/hash/risklist").content)
    lengths = {"MD5": 32, "SHA-1": 40, "SHA-256": 64}
    assert {row["Algorithm"] for row in rows} == set(lengths)
    assert all(len(row["Name"]) == lengths[row["Algorithm"]] for row in rows)
    sandbox["recorded_future"].configure("hash", algorithm_column="second")
    assert get(rf + "/v2/hash/risklist").text.startswith('"Name","Algorithm","Risk"')


def test_head_gives_the_etag_without_a_body_and_a_new_version_changes_it(sandbox, rf):
    first = get(rf + "/v2/domain/risklist")
    head = requests.head(rf + "/v2/domain/risklist", headers=AUTH, timeout=10)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == first.headers["etag"]
    assert get(rf + "/v2/domain/risklist").content == first.content     # deterministic
    sandbox["recorded_future"].touch("domain")
    second = get(rf + "/v2/domain/risklist")
    assert second.headers["etag"] != first.headers["etag"] and second.content != first.content


def test_gzip_true_sends_a_gzip_file_of_the_same_list(rf):
    plain = get(rf + "/v2/url/risklist?format=csv/splunk").content
    packed = get(rf + "/v2/url/risklist?format=csv/splunk&gzip=true", stream=True)
    assert packed.headers["Content-Type"] == "application/gzip"
    assert gzip.decompress(packed.raw.read()) == plain


def test_content_encoding_gzip_when_asked_for(sandbox, rf):
    sandbox["recorded_future"].configure("url", content_encoding=True)
    response = get(rf + "/v2/url/risklist", stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(table(gzip.decompress(response.raw.read()))) == 40


def test_named_lists(rf):
    default = table(get(rf + "/v2/domain/risklist").content)
    cnc = table(get(rf + "/v2/domain/risklist?list=cncSite").content)
    assert 0 < len(cnc) < len(default)
    assert all(json.loads(r["EvidenceDetails"])["EvidenceDetails"][0]["Name"] == "cncSite" for r in cnc)
    assert table(get(rf + "/v2/domain/risklist?list=noSuchRule").content) == default   # reference 3.1
    large = table(get(rf + "/v2/domain/risklist?list=large").content)
    assert len(large) == 2 * len(default) and min(int(r["Risk"]) for r in large) < 65


def test_risk_rules(rf):
    results = get(rf + "/v2/ip/riskrules").json()["data"]["results"]
    assert "recentReportedCnc" in [r["name"] for r in results]


@pytest.mark.parametrize("path", ["/v2/fusion/files/", "/v2/fusion/files", "/fusion/files"])
def test_fusion_v2_at_the_three_paths(rf, path):
    response = get(rf + path, params={"path": FUSION_IP})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv;charset=utf-8"
    rows = table(response.content)
    assert len(rows) == 40 and any(":" in r["Name"] for r in rows)
    assert "SightingsCount" not in rows[0]["EvidenceDetails"]    # 2021-style evidence


def test_fusion_v3_encoded_path_with_head_and_404(rf):
    url = rf + "/fusion/v3/files/%2Fpublic%2Fukraine%2Fukraine_russia_ip.csv"
    head = requests.head(url, headers=AUTH, timeout=10)
    assert head.status_code == 200 and re.fullmatch(r"[0-9a-f]{64}", head.headers["etag"])
    assert head.headers["content-disposition"] == 'attachment; filename="ukraine_russia_ip.csv"'
    assert head.headers["last-modified"].endswith("GMT")
    assert get(url).content == get(rf + "/v2/fusion/files/", params={"path": FUSION_IP}).content
    missing = get(rf + "/fusion/v3/files/%2Fpublic%2Fprevent%2Fbad-list4040404.csv")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert get(rf + "/v2/fusion/files/").status_code == 400


def test_list_faults_bad_rows_malformed_evidence_and_2021_rows(sandbox, rf):
    sandbox["recorded_future"].configure("domain", rows=20, bad_every=5, malformed_evidence_every=7,
                                         evidence="2021")
    rows = table(get(rf + "/v2/domain/risklist").content)
    assert sum(" " in r["Name"] for r in rows) == 4
    assert sum(r["EvidenceDetails"] == "{'EvidenceDetails': []}" for r in rows) == 3
    good = next(r for r in rows if r["EvidenceDetails"].startswith("{\""))
    assert list(json.loads(good["EvidenceDetails"])["EvidenceDetails"][0])[0] == "Rule"
    sandbox["recorded_future"].configure("domain", all_bad=True)
    assert all(" " in r["Name"] for r in table(get(rf + "/v2/domain/risklist").content))


def test_corrupt_gzip_does_not_decompress(sandbox, rf):
    sandbox["recorded_future"].configure("ip", rows=3000, corrupt_gzip=True)
    body = get(rf + "/v2/ip/risklist?gzip=true").content
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(body)


def test_control_over_http(rf):
    answer = requests.post(rf + "/_sandbox/recorded_future/lists", json={"list": "vulnerability", "rows": 7},
                           timeout=5)
    assert answer.status_code == 201
    rows = table(get(rf + "/v2/vulnerability/risklist").content)
    assert len(rows) == 7 and all(re.fullmatch(r"CVE-\d{4}-\d{4,}", r["Name"]) for r in rows)
    assert requests.post(rf + "/_sandbox/recorded_future/touch", json={"list": "vulnerability"},
                         timeout=5).json()["etag"] == get(rf + "/v2/vulnerability/risklist").headers["etag"]
    bad = requests.post(rf + "/_sandbox/recorded_future/lists", json={"list": "ip", "colour": 1}, timeout=5)
    assert bad.status_code == 400 and "unknown list options: colour" in bad.json()["error"]["message"]
    assert requests.get(rf + "/_sandbox/recorded_future/lists", timeout=5).json()["vulnerability"]["rows"] == 7


def test_shared_faults_apply(sandbox, rf):
    sandbox.fault("recorded_future", path="^/v2/ip/risklist", status=429, retry_after=3)
    limited = get(rf + "/v2/ip/risklist")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert get(rf + "/v2/ip/risklist").status_code == 200


def test_a_large_list_is_streamed_cheaply(sandbox, rf):
    sandbox["recorded_future"].configure("vulnerability", rows=100_000)
    started = time.monotonic()
    response = get(rf + "/v2/vulnerability/risklist?gzip=true", stream=True)
    assert response.headers.get("Transfer-Encoding") == "chunked"
    lines = sum(1 for _ in gzip.GzipFile(fileobj=response.raw))
    assert lines == 100_001
    assert time.monotonic() - started < 30


def test_a_compressed_list_is_kept_for_the_next_request_until_it_changes(sandbox, rf):
    service = sandbox["recorded_future"]
    service.configure("ip", rows=2000, ipv6_every=5)
    first = get(rf + "/v2/ip/risklist?gzip=true").content
    assert len(service._compressed) == 1
    assert get(rf + "/v2/ip/risklist?gzip=true").content == first          # the kept bytes
    assert gzip.decompress(first) == get(rf + "/v2/ip/risklist").content   # the same list as the plain body
    service.touch("ip")
    second = get(rf + "/v2/ip/risklist?gzip=true").content
    assert second != first and len(service._compressed) == 2
    assert table(gzip.decompress(get(rf + "/v2/ip/risklist?gzip=true&list=cncServer").content)) != \
        table(gzip.decompress(second))   # a rule-named list is another body
