"""Parsing and checking of Recorded Future risk lists, on recorded vendor samples and their variants."""

import os
from types import SimpleNamespace

import pytest

from tq_conn_common import BadRecord, SourceError
from tq_conn_common.download import read_csv
from tq_conn_recorded_future import source
from tq_conn_recorded_future.source import FUSION

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def sample(name):
    with open(os.path.join(SAMPLES, name), "rb") as fh:
        return fh.read()


def parse(body, kind, version=None, min_risk=0):
    """Return (rows as dicts by column name, tally, skipped) of a body read as the connector reads a download."""
    rlist = source.RiskList(None, kind, "", "", min_risk)
    records = read_csv(iter([body]), source.describe(kind), raw="EvidenceDetails")
    rlist._header(next(records, []))
    tally, rows, skipped = SimpleNamespace(rows=0, valid=0, rejected=0, ipv6=0), [], []
    for record in records:
        tally.rows += 1
        try:
            if isinstance(record, BadRecord):
                raise record
            row = rlist.to_row(record)
        except BadRecord as bad:
            tally.rejected += 1
            skipped.append(str(bad))
            continue
        tally.valid += 1
        if row is None:
            continue
        six = source.ip_version(row) == 1 and kind in ("ip", FUSION)
        tally.ipv6 += six
        if version is None or version == (6 if six else 4):
            rows.append(as_dict(row))
    tally.below, tally.malformed = rlist.tally["below"], rlist.tally["malformed"]
    return rows, tally, skipped


def as_dict(row):
    return dict(zip(source.COLUMNS + ("Algorithm",), row))


# ---- the recorded samples ----------------------------------------------------------------------------------------

def test_domain_list_rows_carry_name_risk_and_the_rules_of_their_evidence():
    rows, tally, skipped = parse(sample("risklist_domain_csv_splunk.csv"), "domain")
    assert tally.rows == tally.valid == len(rows) == 8 and not skipped
    first = rows[0]
    assert first["Name"] == "ubykou33.top" and first["Risk"] == "67" and first["RiskString"] == "4/52"
    assert first["Rules"] == ("Historical Suspected C&C DNS Name; Historically Detected Malware Operation; "
                              "Historically Suspected Malware Operation; Recently Detected Malware Operation")
    assert first["CriticalRule"] == "Recently Detected Malware Operation"
    assert first["CriticalityLabel"] == "Malicious"
    assert all(r["Risk"] == str(int(r["Risk"])) for r in rows)


def test_ip_list_with_2021_evidence_marks_ipv4_and_ipv6_rows():
    body = sample("risklist_ip_csv_splunk_excerpt_ipv4_ipv6.csv")
    v4, tally, _ = parse(body, "ip", version=4)
    assert [r["Name"] for r in v4] == ["1.128.3.4"] and tally.ipv6 == 1 and tally.valid == 2
    v6, _, _ = parse(body, "ip", version=6)
    assert [r["Name"] for r in v6] == ["2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"]
    assert v4[0]["CriticalRule"] == "Actively Communicating C&C Server"
    assert v4[0]["CriticalityLabel"] == "Very Malicious"
    assert "Historically Reported as a Defanged IP" in v4[0]["Rules"]


def test_url_and_fusion_samples_parse_whole():
    urls, tally, _ = parse(sample("risklist_url_csv_splunk_excerpt.csv"), "url")
    assert [r["Name"] for r in urls] == [
        "http://144.34.179.162/a", "http://adminsys.serveftp.com/nensa/fabio/ex/478632215/zer7855/nuns566623"]
    fusion, tally, _ = parse(sample("fusion_public_test-ip_csv.csv"), FUSION, version=4)
    assert tally.rows == tally.valid == len(fusion) == 9
    assert fusion[2]["Rules"] == "Recently Reported C&C Server"  # the \u0026 escape decoded


@pytest.mark.parametrize("second", [False, True], ids=["algorithm-last", "algorithm-second"])
def test_hash_list_reads_algorithm_by_header_name_in_either_position(second):
    body = sample("risklist_hash_csv_excerpt_algorithm_column.csv")
    if second:  # Elastic's other sample puts Algorithm second (reference 3.3)
        header, row = body.decode().splitlines()
        fields = row[1:-1].split('","')
        body = ('"Name","Algorithm","Risk","RiskString","EvidenceDetails"\n"'
                + '","'.join([fields[0], fields[4], fields[1], fields[2], fields[3]]) + '"\n').encode()
    rows, tally, _ = parse(body, "hash")
    assert tally.valid == 1
    assert rows[0]["Name"] == "63212aa8c94098a844945ed1611389b2e1c9dc3906a5ba9d7d0d320344213f4f"
    assert rows[0]["Algorithm"] == "SHA-256" and rows[0]["Risk"] == "75" and rows[0]["RiskString"] == "2/17"
    assert rows[0]["CriticalRule"] == "Positive Malware Verdict"


def test_hand_made_body_with_spaces_and_single_quoted_evidence_is_read_tolerantly():
    rows, tally, _ = parse(sample("xsoar_feed_duplicate_indicator_test.txt"), "url")
    assert [r["Risk"] for r in rows] == ["72", "72", "72"] and rows[0]["RiskString"] == "4/24"
    assert tally.malformed == 3 and rows[0]["Rules"] == ""   # kept without their rules


# ---- the CSV dialect ---------------------------------------------------------------------------------------------

HEADER = b'"Name","Risk","RiskString","EvidenceDetails"\n'
EVIDENCE = (b'"{""EvidenceDetails"": [{""Rule"": ""A, \\""quoted\\"" rule"", ""Criticality"": 2.0, '
            b'""CriticalityLabel"": ""Suspicious"", ""Sources"": [""a"",""b""], ""Timestamp"": ""2024-01-01""}]}"')


def test_evidence_with_commas_quotes_and_list_separators_is_unquoted():
    rows, _, _ = parse(HEADER + b'"1.2.3.4","70","1/77",' + EVIDENCE + b"\n", "ip")
    assert rows[0]["Rules"] == 'A, "quoted" rule' and rows[0]["CriticalityLabel"] == "Suspicious"


def test_a_quoted_field_spanning_lines_and_crlf_line_ends():
    body = HEADER + b'"1.2.3.4","70","1/77","{""EvidenceDetails"": [{""Rule"": ""multi\r\nline""}]}"\r\n' \
        + b'"5.6.7.8","71","1/77",""\r\n'
    rows, tally, _ = parse(body, "ip")
    assert [r["Name"] for r in rows] == ["1.2.3.4", "5.6.7.8"] and tally.rows == 2
    assert rows[0]["Rules"] == "multi\r\nline"


def test_unquoted_fields_and_a_quote_inside_a_plain_field_go_through_the_csv_module():
    body = HEADER + b'1.2.3.4,70,1/77,\n"5.6.7.8","7""1","1/77",""\n'
    rows, tally, skipped = parse(body, "ip")
    assert [r["Name"] for r in rows] == ["1.2.3.4"] and tally.rejected == 1
    assert "Risk is not an integer" in skipped[0]


def test_a_short_row_is_counted_and_skipped():
    rows, tally, skipped = parse(HEADER + b'"1.2.3.4","70"\n"5.6.7.8","71","1/77",""\n', "ip")
    assert [r["Name"] for r in rows] == ["5.6.7.8"] and tally.rejected == 1
    assert "row has 2 fields, the header 4" in skipped[0]


def test_a_header_only_list_is_empty_not_rejected():
    rows, tally, _ = parse(HEADER, "domain")
    assert rows == [] and tally.rows == tally.rejected == 0


@pytest.mark.parametrize("body,looks", [
    (b"<html><body>Login</body></html>\n", "an HTML page"),
    (b'{"error": {"status": 500}}\n', "a body starting"),
    (b"", "a body starting ''"),
])
def test_a_body_that_is_not_a_risk_list_fails_the_list(body, looks):
    with pytest.raises(SourceError) as caught:
        parse(body, "domain")
    assert "The domain risk list is not a csv/splunk risk list" in caught.value.message
    assert looks in caught.value.message


def test_min_risk_leaves_out_lower_scores_without_rejecting_them():
    body = HEADER + b'"a.com","64","1/52",""\n"b.com","65","1/52",""\n"c.com","99","1/52",""\n'
    rows, tally, _ = parse(body, "domain", min_risk=65)
    assert [r["Name"] for r in rows] == ["b.com", "c.com"] and tally.below == 1 and tally.rejected == 0


# ---- evidence ----------------------------------------------------------------------------------------------------

def csv_form(raw):
    """Return a JSON text as the CSV reader hands the cell over."""
    return raw.decode("utf-8", "replace").replace('"', '""')


TIES = (b'{"EvidenceDetails": [{"Rule": "Old", "Criticality": 3.0, "CriticalityLabel": "Malicious", '
        b'"Timestamp": "2021-01-01T00:00:00.000Z"}, {"Rule": "Low", "Criticality": 1.0, "CriticalityLabel": '
        b'"Unusual", "Timestamp": "2024-05-01T00:00:00.000Z"}, {"Rule": "New", "Criticality": 3.0, '
        b'"CriticalityLabel": "Malicious", "Timestamp": "2024-01-01T00:00:00.000Z"}]}')


def test_most_critical_rule_is_the_highest_criticality_then_the_latest():
    assert source.evidence_summary(csv_form(TIES)) == ("Old; Low; New", "New", "Malicious")


@pytest.mark.parametrize("raw", [
    TIES,
    TIES.replace(b'"Rule": "Low"', b'"Rule": "L\\u006fw"'),      # an escape: read as JSON
    TIES.replace(b'"Rule": "Low", ', b'"Name": "Low", '),          # no Rule: the Name stands in
    TIES.replace(b'"Timestamp": "2024-01-01T00:00:00.000Z"', b'"Timestamp": "2020-01-01T00:00:00.000Z"'),
    TIES.replace(b'"Rule": "Old"', b'"Rule": "A \\"quoted\\" rule"'),
    TIES.replace(b'"Criticality": 1.0, ', b''),                     # an item without Criticality
    TIES.replace(b", ", b","),                                       # no spaces
    TIES.replace(b'"Old", ', b'"Old" '),                             # not JSON: no rules
    TIES.replace(b'"Malicious", "Timestamp": "2021', b'"Malicious""Timestamp": "2021'),
    TIES.replace(b'"Rule": "New"', b'"Rule": "New", "Note": "Rule"'),  # "Rule" as a value
])
def test_the_quick_reading_agrees_with_json(raw):
    assert source.evidence_summary(csv_form(raw)) == source._summary_of_json(csv_form(raw))


@pytest.mark.parametrize("raw", [b"{'EvidenceDetails': []}", b'{"EvidenceDetails": {}}', b"[1]", b"\xff\xfe"])
def test_evidence_that_is_not_the_expected_json_is_reported(raw):
    assert source.evidence_summary(csv_form(raw)) is None


def test_empty_evidence_is_no_rules():
    assert source.evidence_summary("") == ("", "", "")
    assert source.evidence_summary(csv_form(b'{"EvidenceDetails": []}')) == ("", "", "")


# ---- per type checks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,name,stored", [
    ("ip", "1.128.3.4", "1.128.3.4"),
    ("ip", "2001:db8::17", "2001:db8::17"),
    ("ip", "185.220.101.0/24", "185.220.101.0/24"),
    ("ip", "185.220.101.5/24", "185.220.101.5/24"),     # host bits set: a range as the data gives it
    ("ip", "2a02:cf40::/32", "2a02:cf40::/32"),
    ("domain", "calalertaveds.firebaseapp.com", "calalertaveds.firebaseapp.com"),
    ("domain", "_dmarc.example.com", "_dmarc.example.com"),
    ("domain", "*.no-ip.biz", "*.no-ip.biz"),
    ("domain", "xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
    ("hash", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
    ("url", "http://144.34.179.162/a", "http://144.34.179.162/a"),
    ("url", "https://x.example/path?q=1#f", "https://x.example/path?q=1#f"),
    ("vulnerability", "cve-2021-44228", "CVE-2021-44228"),
])
def test_valid_names_per_type(kind, name, stored):
    assert source.RiskList(None, kind, "", "", 0).check(name) == stored


@pytest.mark.parametrize("kind,name", [
    ("ip", "999.1.2.3"), ("ip", "1.2.3"), ("ip", "example.com"), ("ip", "1.2.3.4/33"),
    ("domain", "bad domain.com"), ("domain", "1.2.3.4"), ("domain", "localhost"), ("domain", "-a.com"),
    ("domain", "a" * 64 + ".com"),
    ("hash", "xyz"), ("hash", "d41d8cd98f00b204e9800998ecf8427"), ("hash", "g" * 64),
    ("url", "not a url"), ("url", "example.com/path"), ("url", "http://"), ("url", "http://[::1"),
    ("vulnerability", "GHSA-1234"), ("vulnerability", "CVE-21-1"),
])
def test_invalid_names_per_type(kind, name):
    with pytest.raises(BadRecord):
        source.RiskList(None, kind, "", "", 0).check(name)


@pytest.mark.parametrize("length,algorithm", [(32, "MD5"), (40, "SHA-1"), (64, "SHA-256"), (128, "SHA-512")])
def test_hash_algorithm_follows_its_length(length, algorithm):
    body = b'"Name","Risk","RiskString","EvidenceDetails"\n"' + b"a" * length + b'","70","1/77",""\n'
    assert parse(body, "hash")[0][0]["Algorithm"] == algorithm


def test_hash_algorithm_column_must_fit_the_length():
    body = b'"Name","Algorithm","Risk","RiskString","EvidenceDetails"\n"' + b"a" * 40
    assert parse(body + b'","SHA1","70","1/77",""\n', "hash")[0][0]["Algorithm"] == "SHA-1"
    rows, _, skipped = parse(body + b'","SHA-256","70","1/77",""\n', "hash")
    assert not rows and "Algorithm SHA-256 does not fit a hash of 40 hex digits" in skipped[0]


# ---- URLs --------------------------------------------------------------------------------------------------------

def test_list_urls_follow_base_url():
    base = "https://api.recordedfuture.com/v2/{0}/risklist?format=csv/splunk"
    get, head = source.list_urls(base, "domain")
    assert get == head == "https://api.recordedfuture.com/v2/domain/risklist?format=csv/splunk"
    get, head = source.list_urls(base, "ip", "cncSite", compressed=True)
    # The etag is asked of the very URL downloaded, gzip included (reference, 2026 corrections).
    assert get == head == "https://api.recordedfuture.com/v2/ip/risklist?format=csv/splunk&list=cncSite&gzip=true"


def test_fusion_urls_use_the_seed_v2_path_and_v3_for_the_etag():
    get, head = source.list_urls("http://127.0.0.1:9/rf/v2/{0}/risklist?format=csv/splunk", FUSION, "x", True)
    assert get == "http://127.0.0.1:9/rf/v2/fusion/files/?path=/public/ukraine/ukraine_russia_ip.csv"
    assert head == "http://127.0.0.1:9/rf/fusion/v3/files/%2Fpublic%2Fukraine%2Fukraine_russia_ip.csv"
    get, head = source.list_urls("https://rf.example/v2/{0}/risklist", FUSION, fusion_path="/home/x/c2 ips.csv")
    assert get == "https://rf.example/v2/fusion/files/?path=/home/x/c2%20ips.csv"
    assert head == "https://rf.example/fusion/v3/files/%2Fhome%2Fx%2Fc2%20ips.csv"


# ---- the recorded samples read whole --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["risklist_domain_csv_splunk.csv", "risklist_ip_csv_splunk_excerpt_ipv4_ipv6.csv",
                                  "risklist_hash_csv_excerpt_algorithm_column.csv", "fusion_public_test-ip_csv.csv",
                                  "risklist_url_csv_splunk_excerpt.csv"])
def test_recorded_evidence_reads_quickly_as_json_would(name):
    records = list(read_csv(iter([sample(name)]), name, raw="EvidenceDetails"))
    column = [c.lower() for c in records[0]].index("evidencedetails")
    for record in records[1:]:
        summary = source.evidence_summary(record[column])
        assert summary == source._summary_of_json(record[column]) and summary[0] and summary[1] in summary[0]


def test_a_record_spanning_lines_stays_whole_and_one_that_is_not_csv_is_skipped():
    # The third record spans three lines: the IPv6 address on its second line is not a row.
    body = (HEADER + b'"1.2.3.4","70","1/77",""\n"2001:db8::1","71","1/77",""\n'
            + b'"5.6.7.8","72","1/77","{""EvidenceDetails"": [{""Rule"": ""a\n'
            + b'"2001:db8::2","99","1/77",""\n"" }]}"\n"2001:db8::3","73","1/77",""\n')
    rows, tally, skipped = parse(body, "ip", version=4)
    assert [r["Name"] for r in rows] == ["1.2.3.4", "5.6.7.8"] and tally.ipv6 == 2 and tally.rejected == 1
    assert rows[1]["Rules"] == ""   # its evidence is not JSON


def test_blocks_cut_anywhere_give_the_same_rows():
    body = (sample("risklist_ip_csv_splunk_excerpt_ipv4_ipv6.csv")
            + b'"5.6.7.8","72","1/77","{""EvidenceDetails"": [{""Rule"": ""multi\r\nline""}]}"\r\n'
            + b'"9.9.9.9","73","1/77",""')   # no newline at the end
    whole = list(read_csv(iter([body]), "ip list", raw="EvidenceDetails"))
    assert [r[0] for r in whole[1:]] == ["1.128.3.4", "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", "5.6.7.8", "9.9.9.9"]
    for size in (1, 2, 3, 7, 100, 1000):
        chunks = iter([body[i:i + size] for i in range(0, len(body), size)])
        assert list(read_csv(chunks, "ip list", raw="EvidenceDetails")) == whole, size
