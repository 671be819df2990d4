"""Logs: stdout or a rotating file, verbosity levels, and no secret in any line at any verbosity."""

import logging
import os

import pytest

from tq_conn_common import logs
from tq_conn_common.errors import UsageError

TOKEN = "tok-9f8e7d6c5b4a"
API_KEY = "key-0a1b2c3d4e5f"


@pytest.fixture
def redactor():
    filt = logs.RedactFilter()
    filt.add_secrets([TOKEN, "abc", None, "line-one-secret\nline-two-secret"])
    return filt


@pytest.mark.parametrize("text", [
    f"token {TOKEN} in the middle",
    "{'User-Agent': 'tq-conn/1', 'Authorization': 'Bearer raw-bearer-value'}",
    '{"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}',
    "Authorization: Bearer raw-bearer-value",
    "authorization=raw-bearer-value",
    "{'x-api-key': 'raw-api-key-value'}",
    "X-API-KEY: raw-api-key-value",
    "{'X-RFToken': 'raw-rf-token-value'}",
    "X-RFToken: raw-rf-token-value",
    "Proxy-Authorization: Basic raw-proxy-value",
    "GET /x?token=raw-query-token&page=2",
    "https://h/oauth?client_secret=raw-client-secret",
    '{"access_token": "raw-access-token", "expires_in": 3600}',
    "https://user:raw-url-password@proxy.example:8080",
    "-----BEGIN PRIVATE KEY-----\nMIIEraw-key-body\n-----END PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEraw-key-body-cut-short",
    "pasted: line-two-secret",
])
def test_redact_masks_secrets_and_credential_shaped_text(redactor, text):
    out = redactor.redact(text)
    for raw in (TOKEN, "raw-bearer-value", "dXNlcjpwYXNzd29yZA", "raw-api-key-value", "raw-rf-token-value",
                "raw-proxy-value", "raw-query-token", "raw-client-secret", "raw-access-token", "raw-url-password",
                "raw-key-body", "line-two-secret"):
        assert raw not in out, out
    assert "****" in out


def test_redact_keeps_ordinary_text_and_short_values(redactor):
    assert redactor.redact("page=2 of abcd, total 10") == "page=2 of abcd, total 10"  # 'abc' is too short to mask
    assert redactor.redact("GET /items?page=2") == "GET /items?page=2"


def test_a_secret_inside_a_longer_one_is_masked_whole():
    filt = logs.RedactFilter()
    filt.add_secrets(["secret-1234", "secret-1234-and-more"])
    assert filt.redact("x secret-1234-and-more y") == "x **** y"


def test_setup_to_a_rotating_private_file_masks_every_level_and_tracebacks(tmp_path):
    path = logs.setup(str(tmp_path), 3, "t.log", max_bytes=2000, backups=2)
    logs.add_secrets([TOKEN])
    log = logging.getLogger("tq_conn_common.test")
    try:
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
            log.log(level, "value %s and header %s", TOKEN, {"Authorization": f"Bearer {TOKEN}"})
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            log.exception("boom")
        for _ in range(60):
            log.info("filler line to make the file rotate %s", "x" * 40)
    finally:
        logs.setup("stdout", 1)
    assert path == str(tmp_path / "t.log")
    files = sorted(os.listdir(tmp_path))
    assert files == ["t.log", "t.log.1", "t.log.2"]
    assert {oct(os.stat(tmp_path / name).st_mode & 0o777) for name in files} == {"0o600"}  # rotated ones too
    text = "".join(open(tmp_path / name).read() for name in files)
    assert TOKEN not in text


def test_levels_follow_verbosity(tmp_path, capsys):
    log = logging.getLogger("tq_conn_common.test")
    seen = {}
    for verbosity in (1, 2, 3):
        logs.setup("stdout", verbosity)
        log.debug("d-line")
        log.info("i-line")
        log.warning("w-line")
        logging.getLogger("tq_conn_common.summary").info("summary-line")
        seen[verbosity] = capsys.readouterr().out
    logs.setup("stdout", 1)
    assert ("d-line" in seen[1], "i-line" in seen[1], "w-line" in seen[1]) == (False, False, True)
    assert ("d-line" in seen[2], "i-line" in seen[2]) == (False, True)
    assert "d-line" in seen[3]
    assert all("summary-line" in out for out in seen.values())  # the summary shows at every verbosity


def test_setup_refuses_bad_locations_and_levels(tmp_path):
    with pytest.raises(UsageError, match="is not a folder"):
        logs.setup(str(tmp_path / "missing"), 1)
    with pytest.raises(UsageError, match="not 1, 2 or 3"):
        logs.setup("stdout", 4)


@pytest.mark.parametrize("verbosity", ["1", "2", "3"])
@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "file"])
def test_no_secret_in_any_output_of_a_run(toy, tmp_path, verbosity, to_file):
    """A run that logs its secrets and auth headers on purpose, at every level: none reaches stdout, stderr or
    the log file."""
    toy.configure(token="sandbox-token", api_key=API_KEY, verbose_secrets=True, mode="crash")
    where = ["-ll", str(tmp_path)] if to_file else []
    result = toy.run("-v", verbosity, *where)
    assert result.code == 1, result
    outputs = [result.out, result.err]
    if to_file:
        outputs.append(open(tmp_path / "tq-conn-toy.log").read())
    text = "\n".join(outputs)
    assert "****" in text
    for secret in ("sandbox-token", API_KEY):
        assert secret not in text, text
    if verbosity == "3":
        assert "Traceback" in text and "Effective config" in text  # the debug detail is there, masked
