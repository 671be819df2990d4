"""Hostile services, files and signals: a drip-fed or endless body, a gzip bomb, a huge Retry-After, a self-signed
certificate, a symlinked or world-writable config, a read-only folder, SIGTERM and SIGKILL during an X.509 send."""

import os
import signal
import stat
import time

import pytest

from hostile import Hostile, drip, endless, gzip_bomb
from reliability_kit import TALLY, kill_group, rerun_delivers, scenario, wait_for

pytestmark = pytest.mark.e2e


def _scenario(h, name, body):
    """Run body(h) as one scenario of the summary; a failed scenario fails its test."""
    scenario(h.adapter.name, name, lambda: body(h))


@pytest.fixture
def hostile():
    servers = []

    def start(answer, **kwargs):
        servers.append(Hostile(answer, **kwargs))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


# ---- hostile services --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ctci", "logrhythm_collective_insights", "recorded_future"])
def test_a_drip_fed_body_ends_at_the_response_deadline(harness_for, hostile, name):
    def body(h):
        server = hostile(drip(every=0.4))
        h.write_config(**{h.adapter.source_url_key: h.adapter.source_url(h, server.url)})
        began = time.monotonic()
        result = h.run(env={"TQ_CONN_HTTP_DEADLINE": "2", "TQ_CONN_HTTP_RETRIES": "1"}, timeout=60)
        assert time.monotonic() - began < 30, result
        h.assert_clean_exit(result, 1, r"did not finish .*within 2 s")
        h.prepare()
        rerun_delivers(h, private=False)
    _scenario(harness_for(name), "drip-fed body", body)


def test_an_endless_json_body_ends_at_the_size_limit(harness_for, hostile):
    def body(h):
        server = hostile(endless())
        h.write_config(api_base_url=server.url)
        result = h.run(env={"TQ_CONN_MAX_RESPONSE_MB": "4", "TQ_CONN_HTTP_RETRIES": "0"}, timeout=60)
        h.assert_clean_exit(result, 1, r"CTCI sent more than the limit of 4 MiB")
        h.prepare()
        rerun_delivers(h, private=False)
    _scenario(harness_for("ctci"), "endless body", body)


def test_an_endless_risk_list_ends_at_the_download_limit(harness_for, hostile):
    def body(h):
        server = hostile(endless(start=b'"Name","Risk","RiskString","EvidenceDetails"\n',
                                 item=b'"1.2.3.4","90","1/2","{}"\n', content_type=b"text/csv"))
        h.write_config(base_url=h.adapter.source_url(h, server.url))
        result = h.run(env={"TQ_CONN_MAX_DOWNLOAD_MB": "3"}, timeout=60)
        h.assert_clean_exit(result, 1, r"is larger than the limit of 3 MiB")
        h.prepare()
        rerun_delivers(h, private=False)
    _scenario(harness_for("recorded_future"), "endless risk list", body)


@pytest.mark.parametrize("name", ["recorded_future", "ctci"])
def test_a_gzip_bomb_stops_at_the_inflation_limit(harness_for, hostile, name):
    def body(h):
        if name == "recorded_future":   # a .gz risk list: one field of 1 GiB in a file of about 1 MiB
            server = hostile(gzip_bomb(head=b'"Name","Risk","RiskString","EvidenceDetails"\n"1.2.3.4","9","1","'))
        else:                           # a JSON answer sent with Content-Encoding: gzip
            server = hostile(gzip_bomb(encoded=True, head=b'{"data": ["'))
        h.write_config(**{h.adapter.source_url_key: h.adapter.source_url(h, server.url)})
        began = time.monotonic()
        result = h.run(env={"TQ_CONN_HTTP_RETRIES": "0"}, timeout=90)
        assert time.monotonic() - began < 60, result
        h.assert_clean_exit(result, 1, r"inflat\w+ more than 200 times")
        h.prepare()
        rerun_delivers(h, private=False)
    _scenario(harness_for(name), "gzip bomb", body)


def test_a_huge_retry_after_stops_the_run_at_once(harness_for):
    def body(h):
        h.fault(h.adapter.source, path=h.adapter.data_path, count=0, status=429, retry_after=100000)
        began = time.monotonic()
        result = h.run(timeout=60)
        assert time.monotonic() - began < 20, result
        h.assert_clean_exit(result, 1, r"asked to wait 100000 s \(Retry-After\)")
        rerun_delivers(h, private=False)
    _scenario(harness_for("ctci"), "Retry-After: 100000", body)


def test_a_self_signed_certificate_says_certificate_verify_failed_and_is_not_retried(harness_for, hostile, sandbox):
    from tq_conn_sandbox.pki import Authority
    authority = Authority("tq-conn self-signed")
    issued = authority.issue("localhost", server=True, hosts=("localhost", "127.0.0.1"))

    def body(h):
        server = hostile(drip(every=0), ssl_context=authority.server_context(issued, require_client_cert=False))
        h.write_config(rf_api_url=server.url)
        result = h.run(timeout=60)
        h.assert_clean_exit(result, 1, r"certificate verify failed")
        assert "127.0.0.1" in result.err and "Could not reach" not in result.err, result
        assert server.requests == 0     # no request went through the failed handshake
    _scenario(harness_for("logrhythm_collective_insights", reference=False), "self-signed certificate", body)


# ---- hostile files -----------------------------------------------------------------------------------------------

def test_a_symlinked_config_is_refused_without_showing_its_target(harness_for, tmp_path):
    def body(h):
        target = tmp_path / "shadow"
        target.write_text("root:$6$secrethash$abcdef:19000:0:99999:7:::\nsecond-line-of-the-target\n")
        config = h.folder / h.adapter.config_file
        config.unlink()
        config.symlink_to(target)
        result = h.run(timeout=60)
        h.assert_clean_exit(result, 2, r"is a symbolic link")
        assert "secrethash" not in result.everything and "second-line" not in result.everything, result
    _scenario(harness_for("ctci", reference=False), "symlinked config", body)


def test_a_world_writable_config_is_made_private_with_one_warning(harness_for):
    def body(h):
        config = h.folder / h.adapter.config_file
        os.chmod(config, 0o666)
        os.chmod(h.folder, 0o777)
        result = h.run(verbosity=1, to_log=False, timeout=60)
        h.assert_clean_exit(result, 0)
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert result.everything.count("could be read or changed by other users (mode 0666); made 0600") == 1
        assert "writable by every user (mode 0777)" in result.everything
        os.chmod(h.folder, 0o700)
    _scenario(harness_for("ctci"), "world-writable config", body)


def test_a_config_of_another_user_is_refused(harness_for):
    def body(h):
        config = h.folder / h.adapter.config_file
        os.chown(config, 54321, -1)
        result = h.run(timeout=60)
        h.assert_clean_exit(result, 2, r"belongs to another user \(uid 54321\)")
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    _scenario(harness_for("ctci", reference=False), "config of another user", body)


def test_an_unwritable_config_folder_is_a_clear_error(harness_for):
    """A folder the run cannot create its lock in (read-only file system; as root, a folder in the lock's place)."""
    def body(h):
        (h.folder / (h.adapter.command + ".lock")).mkdir()
        result = h.run(timeout=60)
        h.assert_clean_exit(result, 2, r"Cannot create the lock file .*make .* writable")
    _scenario(harness_for("ctci", reference=False), "read-only folder", body)


# ---- signals -----------------------------------------------------------------------------------------------------

def _key_files(h, key_pem):
    """Return the files under TMPDIR and the config folder that hold a line of the private key (but the config
    file, 0600, where the user pasted it)."""
    lines = [line for line in key_pem.splitlines() if len(line) > 16 and "-----" not in line]
    found = []
    for base in (h.tmpdir, h.folder):
        for path in base.rglob("*"):
            if path.name == h.adapter.config_file:
                continue
            try:
                text = path.read_text(errors="replace") if path.is_file() else ""
            except OSError:
                continue
            if any(line in text for line in lines):
                found.append(str(path))
    return found


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_signal_during_an_x509_send_leaves_no_key_file(harness_for, how):
    def body(h):
        h.write_config(devo_transport="tls", devo_tls_delay=2)
        proc = h.spawn(verbosity=2)
        assert wait_for(lambda: "Devo transport: X.509 collector" in h.read_logs() or proc.poll() is not None,
                        timeout=60), h.read_logs()[-2000:]
        time.sleep(0.5)
        assert _key_files(h, h.values["devo_key"]) == []
        if how == "SIGTERM":
            os.killpg(proc.pid, signal.SIGTERM)
            result = h.finish(proc, timeout=30)
            assert result.code == 1 and "Stopped by SIGTERM" in result.err, result
            assert not (h.folder / (h.adapter.command + ".pid")).exists()   # the lock was let go
        else:
            kill_group(proc)
        assert _key_files(h, h.values["devo_key"]) == [] and h.leftovers() == []
        h.prepare()
        rerun_delivers(h, private=False)
        TALLY.key_files_left += len(_key_files(h, h.values["devo_key"]))
        assert _key_files(h, h.values["devo_key"]) == []
    _scenario(harness_for("flashpoint"), f"{how} during an X.509 send", body)


# ---- values as sent ----------------------------------------------------------------------------------------------

def test_a_backslash_n_arrives_as_two_characters_over_x509():
    from tq_conn_common.devo.tls import wire_row
    from tq_conn_sandbox.devo_wire import parse_fields
    TALLY.scenarios += 1
    values = ["C:\\new\\table", "line\nbreak", 'say "\\n"', "\\\\n", "  padded  "]
    assert parse_fields(wire_row(values, ["str"] * 5, 0)) == values
    TALLY.survived += 1
    TALLY.record("common", "backslash-n over X.509", True)
