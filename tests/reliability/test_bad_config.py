"""The bad-input corpus, config files: each ends in exit 2 and one message naming what to fix, never a traceback."""

import re
import time

import pytest
import yaml

from reliability_kit import CONNECTORS, TALLY

pytestmark = pytest.mark.e2e

DROP = object()
BOMB = "\n".join(["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
                 + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(8)])

# Per connector: (the required secret, an integer parameter with a range, its label, the source URL parameter).
FACTS = {
    "ctci": ("api_token", "event_fetch_limit_in_items", "event_fetch_limit_in_items", "api_base_url"),
    "recorded_future": ("api_token", "requests_per_second", r"Requests per Second \(requests_per_second\)",
                        "base_url"),
    "flashpoint": ("bearer_token_base64", "page_size", r"Indicators Page Size \(page_size\)", "indicators_url"),
    "logrhythm_collective_insights": ("logrhythm_api_key", "batch_size", r"Batch Size \(batch_size\)",
                                      "logrhythm_api_url"),
    "devo_ioc_exporter": ("threatq_password", "batch_size", r"Batch Size \(batch_size\)", "threatq_host"),
}


def _generic(connector):
    secret, number, label, url = FACTS[connector]
    return [
        ("missing required key", {secret: DROP}, rf"(Missing configuration and no terminal to ask: .*{secret}|"
                                                 rf"SetupError [16]: .*{secret})"),
        ("wrong type", {number: "many"}, rf"{label}.*'many' is not a whole number|SetupError 11"),
        ("out of range", {number: 0}, rf"{label}.*0 is below the minimum|SetupError 11"),
        ("bad URL", {url: "ftp//nowhere example"}, rf"\b{url}\b.*(http|https|URL)"),
        ("a list where text belongs", {url: ["http://a", "http://b"]}, rf"\b{url}\b"),
        ("a secret of the wrong type", {secret: {"nested": "x" * 12}}, rf"\b{secret}\b"),
        ("YAML bomb under a known key", "bomb-known", r"expands to more than 100000 values \(YAML anchors"),
        ("YAML bomb under an unknown key", "bomb-unknown", r"expands to more than 100000 values \(YAML anchors"),
        ("deeply nested YAML", "a: " + "[" * 5000 + "]" * 5000 + "\n", r"nests its values too deeply"),
        ("not UTF-8", b"api_token: caf\xe9\xff\xfe\n", r"is not UTF-8 text \(byte \d+\)"),
        ("invalid YAML", "a: [1, 2\nb: {\n", r"is not valid YAML at line \d+"),
        ("not a mapping", "- one\n- two\n", r"does not hold a mapping of parameters"),
    ] + ([("huge file", "a: " + "x" * 1_000_000 + "\n", r"Missing configuration")] if connector == "ctci" else [])


def _specific():
    return [
        ("ctci", "bad date", {"historical_poll_datetime": "yesterday"},
         r"SetupError 15: historical_poll_datetime 'yesterday' does not match expected format"),
        ("ctci", "date in the future", {"historical_poll_datetime": "2999-01-01T00:00:00Z"}, r"SetupError 17"),
        ("ctci", "bad lookup name", {"lookup_name": "my lookup!"}, r"lookup_name.*not a valid Devo lookup name"),
        ("flashpoint", "bad date", {"initial_start_time": "2023-13-45T00:00:00Z"},
         r"initial_start_time.*is not a UTC time like"),
        ("flashpoint", "bad PEM",
         {"devo_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----"},
         r"'Devo X.509 Private Key' \(devo_key\) cannot be read as a private key"),
        ("flashpoint", "certificate text that is not a certificate", {"devo_cert": "just some text"},
         r"'Devo X.509 Certificate' \(devo_cert\) is neither PEM text nor an existing file"),
        ("flashpoint", "mismatched key and certificate", "mismatched",
         r"'Devo X.509 Private Key' \(devo_key\) does not belong to 'Devo X.509 Certificate' \(devo_cert\)"),
        ("flashpoint", "expired certificate", "expired", r"'Devo X.509 Certificate' \(devo_cert\) expired on"),
        ("flashpoint", "unknown lookup status",
         {"lookups": [{"domain": {"lookup_key": "fpid", "lookup_status": "Old"}}]},
         r"lookups.*lookup_status 'Old' of 'domain' is not allowed"),
        ("flashpoint", "token not base64", {"bearer_token_base64": "not base64 at all!"}, r"SetupError 2"),
        ("recorded_future", "unknown data source", {"types": ["ip", "ipz"]}, r"types.*'ipz' is not a data source"),
        ("recorded_future", "risk out of range", {"min_risk": {"ip": 120}}, r"min_risk.*ip: 120 is not a risk score"),
        ("recorded_future", "URL without the {0} placeholder", {"base_url": "https://api.example.com/v2/ip"},
         r"base_url.*placeholder"),
        ("recorded_future", "Devo transport not allowed", {"devo_transport": "carrier-pigeon"},
         r"devo_transport.*'carrier-pigeon' is not allowed"),
        ("recorded_future", "Devo URL not http", {"devo_lookups_url": "ftp://devo"},
         r"devo_lookups_url.*is not an http\(s\) URL"),
        ("logrhythm_collective_insights", "API key of the wrong shape", {"rf_api_key": "ABC-123"},
         r"rf_api_key.*is not 32 lower-case letters and digits"),
        ("logrhythm_collective_insights", "CA bundle that does not exist",
         {"logrhythm_ca_bundle": "/nonexistent/ca.pem"},
         r"CA bundle /nonexistent/ca.pem of LogRhythm does not exist"),
        ("devo_ioc_exporter", "host that is not a host", {"threatq_host": "http://"}, r"threatq_host"),
        ("devo_ioc_exporter", "negative kill time", {"kill_after_seconds": -5},
         r"kill_after_seconds.*below the minimum"),
        ("devo_ioc_exporter", "Devo credentials missing", {"devo_token": DROP},
         r"No Devo credentials are set|Devo API Token"),
    ]


CASES = [(c, name, change, expect) for c in CONNECTORS for name, change, expect in _generic(c)] + _specific()


def _write(h, change):
    path = h.folder / h.adapter.config_file
    secret, _, _, url = FACTS[h.adapter.name]
    values = h.adapter.config(h)
    if isinstance(change, dict):
        values.update(change)
        h.values = {k: v for k, v in values.items() if v is not DROP}
        path.write_text(yaml.safe_dump(h.values, sort_keys=False))
    elif change in ("bomb-known", "bomb-unknown"):
        key = url if change == "bomb-known" else "colour"
        h.values = {k: v for k, v in values.items() if k != key}
        text = yaml.safe_dump(h.values, sort_keys=False) + BOMB + f"\n{key}: *i\n"
        path.write_text(text)
    elif change in ("mismatched", "expired"):
        other = h.sandbox["devo"].client_certificate(expired=change == "expired")
        if change == "mismatched":
            values["devo_key"] = other.key_pem
        else:
            values.update(devo_cert=other.cert_pem, devo_key=other.key_pem)
        h.values = values
        path.write_text(yaml.safe_dump(values, sort_keys=False))
    elif isinstance(change, bytes):
        h.values = values
        path.write_bytes(change)
    else:
        h.values = values
        path.write_text(change)


@pytest.mark.parametrize("connector,name,change,expect", CASES, ids=[f"{c}-{n}" for c, n, _, _ in CASES])
def test_bad_config(connector, name, change, expect, harness_for):
    h = harness_for(connector, prepare=False, reference=False)
    TALLY.bad_inputs += 1
    _write(h, change)
    started = time.monotonic()
    result = h.run(verbosity=3, env={"TQ_CONN_HTTP_RETRIES": "0"}, timeout=30)
    assert time.monotonic() - started < 20, f"the bad config took {time.monotonic() - started:.0f} s"
    h.assert_clean_exit(result, 2)
    assert re.search(expect, result.err, re.S), f"stderr does not name what to fix ({expect!r}): {result!r}"
    assert len(result.err) < 4000, f"the message is {len(result.err)} characters long: {result.err[:300]!r}..."
    for request in [r for s in h.sandbox.running.services.values() for r in s.requests]:
        assert request["method"] in ("GET", "HEAD", "POST") or "deploy" not in request["path"]
    assert not [k for k in h.sandbox["devo"].lookups], "a lookup was delivered despite the bad config"
    TALLY.bad_handled += 1
