"""Config: declared parameters drive validation, prompts (through a real terminal), the file, template, UI and docs."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml

from tq_conn_common import config as cfg
from tq_conn_common.config import Param, Secret
from tq_conn_common.errors import ConfigError

PARAMS = (
    Param("host", "Host", required=True, help="The host name; set it to the API host."),
    Param("token", "API Token", secret=True, required=True, help="Create one in the admin portal."),
    Param("batch_size", "Batch Size", type=int, default=1000, range=(1, 10_000)),
    Param("ratio", "Ratio", type=float, default=0.5, range=(0, 1)),
    Param("enabled", "Enabled", type=bool, default=True),
    Param("kinds", "Kinds", type=list, default=["ip"], choices=("ip", "domain", "hash")),
    Param("region", "Region", default="us", choices=("us", "eu")),
    Param("port", "Port", type=int, default=443, check=lambda v: v if v != 22 else _bad("22 is SSH; use 443.")),
)


def _bad(text):
    raise ValueError(text)


def test_secret_hides_its_value():
    secret = Secret("hunter2-long")
    assert str(secret) == repr(secret) == "****" and f"{secret}" == "****"
    assert secret.reveal() == "hunter2-long" and cfg.reveal(secret) == "hunter2-long" and cfg.reveal(3) == 3
    assert secret == Secret("hunter2-long") and bool(Secret("")) is False


def test_validate_converts_types_and_fills_defaults():
    config = cfg.validate(PARAMS, {"host": " api.example ", "token": "abcd1234", "batch_size": "500",
                                   "enabled": "no", "kinds": "ip, hash", "ratio": "0.25"})
    assert config.host == "api.example" and config.batch_size == 500 and config.enabled is False
    assert config.kinds == ["ip", "hash"] and config.ratio == 0.25 and config.region == "us" and config.port == 443
    assert isinstance(config.token, Secret) and config.secrets() == ["abcd1234"]
    assert config.masked()["token"] == "****" and "abcd1234" not in repr(config.masked())
    assert config["host"] == "api.example" and config.get("missing", 7) == 7 and "host" in config
    with pytest.raises(AttributeError):
        config.nothing


def test_validate_reports_every_problem_with_the_parameter_and_the_fix():
    with pytest.raises(ConfigError) as caught:
        cfg.validate(PARAMS, {"batch_size": 0, "ratio": "half", "enabled": "maybe", "kinds": ["ip", "url"],
                              "region": "mars", "port": 22}, path="/etc/x.yaml")
    error = caught.value
    assert error.exit_code == 2
    assert error.problems == [
        "Host (host): is required and not set; The host name; set it to the API host.",
        "API Token (token): is required and not set; Create one in the admin portal.",
        "Batch Size (batch_size): 0 is below the minimum 1; set 1 to 10000.",
        "Ratio (ratio): 'half' is not a number; set a number.",
        "Enabled (enabled): 'maybe' is not true or false; set true or false.",
        "Kinds (kinds): 'url' is not allowed; set one of ip, domain, hash.",
        "Region (region): 'mars' is not allowed; set one of us, eu.",
        "Port (port): 22 is SSH; use 443.",
    ]
    assert "The configuration in /etc/x.yaml has 8 problem(s):" in str(error)


def test_range_above_the_maximum_and_whole_numbers():
    problems = [cfg.check_value(PARAMS[2], value)[1] for value in (10_001, 2.5, True, "12x")]
    assert problems == ["Batch Size (batch_size): 10001 is above the maximum 10000; set 1 to 10000.",
                        "Batch Size (batch_size): 2.5 is not a whole number; set a whole number.",
                        "Batch Size (batch_size): True is not a whole number; set a whole number.",
                        "Batch Size (batch_size): '12x' is not a whole number; set a whole number."]
    assert cfg.check_value(PARAMS[2], 7.0) == (7, None)


def test_a_problem_never_shows_a_secret_value():
    pin = Param("pin", "PIN", type=int, secret=True, range=(1000, 9999))
    for value in ("sesame-secret", 123456):
        _, problem = cfg.check_value(pin, value)
        assert problem and str(value) not in problem, problem
    checked = Param("key", "Key", secret=True, check=lambda v: _bad(f"{v} is not a key; paste the PEM key."))
    _, problem = cfg.check_value(checked, "abcdefgh-secret")
    assert "abcdefgh-secret" not in problem and "is not a key; paste the PEM key." in problem


def test_custom_messages_replace_the_generated_ones():
    param = Param("url", "URL", required=True, messages={"missing": "Set URL (url): the vendor portal address."})
    assert cfg.check_value(param, None)[1] == "Set URL (url): the vendor portal address."


def test_merge_sources_migrates_renamed_keys_warns_on_unknown_and_reads_the_environment(caplog):
    params = (Param("api_token", "Token", renamed_from=("token",)), Param("host", "Host", env="VENDOR_HOST"),
              Param("size", "Size", type=int))
    raw = cfg.merge_sources(params, {"token": "abc", "colour": "red", "size": 3},
                            environ={"VENDOR_HOST": "h.example", "TQ_CONN_SIZE": "9"})
    assert raw == {"api_token": "abc", "host": "h.example", "size": "9"}
    assert "Config key 'token' is now 'api_token'; migrated." in caplog.text
    assert "Unknown config key 'colour' ignored" in caplog.text
    # both keys present: the new one wins and the old one is dropped quietly
    assert cfg.merge_sources(params, {"token": "old", "api_token": "new"}, environ={}) == {"api_token": "new"}


def test_missing_lists_required_unset_params_without_default():
    assert [p.key for p in cfg.missing(PARAMS, {"host": "", "token": None})] == ["host", "token"]
    assert cfg.missing(PARAMS, {"host": "h", "token": "t"}) == []


@pytest.mark.parametrize("content, expected", [
    (b"port: 1\nhost: a: b\n", "is not valid YAML at line 2"),
    (b"- a\n- b\n", "does not hold a mapping"),
    (b"host: \xff\xfe\n", "is not UTF-8 text"),
])
def test_read_file_errors_name_the_file_and_the_fix(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        cfg.read_file(str(path))
    assert expected in str(caught.value) and str(path) in str(caught.value) and caught.value.fix


def test_read_file_of_nothing(tmp_path):
    assert cfg.read_file(str(tmp_path / "none.yaml")) == {}
    (tmp_path / "empty.yaml").write_text("# only a comment\n")
    assert cfg.read_file(str(tmp_path / "empty.yaml")) == {}


def test_write_file_is_private_ordered_and_reads_back(tmp_path):
    path = str(tmp_path / "c.yaml")
    cfg.write_file(path, PARAMS, {"token": Secret("s3cret-value"), "host": "h", "unknown": 1, "batch_size": 5},
                   header="# header line")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert text.startswith("# header line\nhost: h\ntoken: s3cret-value\nbatch_size: 5\n")
    assert "unknown" not in text
    assert "# region: us" in text and "# Other parameters" in text  # the rest, commented out, to finish by hand
    assert cfg.read_file(path) == {"host": "h", "token": "s3cret-value", "batch_size": 5}
    assert [name for name in os.listdir(tmp_path)] == ["c.yaml"]  # no temporary file left


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from tq_conn_common import config as cfg
    from tq_conn_common.config import Param
    where = sys.argv[2]
    if where == "replace":
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
    else:  # killed after half of the data reached the temporary file
        real_fdopen = os.fdopen

        class Half:
            def __init__(self, fh):
                self.fh = fh
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False
            def write(self, data):
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        os.fdopen = lambda fd, mode: Half(real_fdopen(fd, mode))
    cfg.write_file(sys.argv[1], (Param("host", "Host"), Param("big", "Big")), {"host": "new", "big": "x" * 100000})
""")


@pytest.mark.parametrize("where", ["replace", "write"])
def test_a_config_write_killed_midway_leaves_the_old_file_whole(tmp_path, where):
    path = tmp_path / "c.yaml"
    cfg.write_file(str(path), (Param("host", "Host"),), {"host": "old"})
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), where], capture_output=True, timeout=30)
    assert proc.returncode == -9, proc.stderr
    assert path.read_bytes() == before
    assert cfg.read_file(str(path)) == {"host": "old"}


def test_template_lists_every_parameter_with_help_type_and_default():
    text = cfg.template(PARAMS, "tq-conn-x")
    assert text.startswith("# Configuration of tq-conn-x")
    assert "# host:" in text and "# API Token: Create one in the admin portal." in text
    assert "#   text, required, secret" in text and "# batch_size: 1000" in text and "#   range 1 to 10000" in text
    assert "# kinds:\n# - ip" in text
    # every line commented: the template is safe to copy whole
    assert all(not line or line.startswith("#") for line in text.splitlines())


def test_ui_definition_and_markdown_table():
    params = (Param("user", "User", ui=True, required=True, help="Login."),
              Param("secret", "Password", ui=True, secret=True),
              Param("mode", "Mode", ui=True, choices=("a", "b"), default="a"),
              Param("on", "On", ui=True, type=bool), Param("n", "N", ui=True, type=int),
              Param("pem", "PEM", ui=True, multiline=True), Param("local", "Local"))
    fields = cfg.ui_definition(params)
    assert [(f["name"], f["type"]) for f in fields] == [("user", "text"), ("secret", "password"), ("mode", "select"),
                                                       ("on", "checkbox"), ("n", "number"), ("pem", "textarea")]
    assert fields[1]["masked"] is True and fields[2]["options"] == ["a", "b"] and fields[2]["default"] == "a"
    table = cfg.markdown_table(PARAMS).splitlines()
    assert table[0].startswith("| Parameter | Key |") and len(table) == 2 + len(PARAMS)
    assert "| API Token | `token` | text |  | yes | Create one in the admin portal. Secret: never logged. |" in table


class Answers:
    """Scripted answers for prompt(): records the questions asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.questions = []

    def __call__(self, question):
        self.questions.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def test_prompt_shows_defaults_reasks_bad_answers_and_hides_secrets(capsys):
    ask, ask_secret = Answers("h.example", "0", "", "yes"), Answers("", "s3cret-token")
    params = (PARAMS[0], PARAMS[1], PARAMS[2], PARAMS[4])
    raw = cfg.prompt(params, {}, ask=ask, ask_secret=ask_secret)
    assert raw == {"host": "h.example", "token": "s3cret-token", "batch_size": 1000, "enabled": "yes"}
    assert ask.questions == ["Host: ", "Batch Size [1000]: ", "Batch Size [1000]: ", "Enabled [yes]: "]
    assert ask_secret.questions == ["API Token: ", "API Token: "]  # no default shown, asked again when empty
    out = capsys.readouterr().out
    assert "API Token (token): is required and not set" in out
    assert "Batch Size (batch_size): 0 is below the minimum 1; set 1 to 10000." in out


def test_prompt_reads_pasted_pem_until_an_empty_line():
    pem = Param("chain", "Chain CA", multiline=True)
    ask = Answers("-----BEGIN CERTIFICATE-----", "MIIB", "-----END CERTIFICATE-----",
                  "-----BEGIN CERTIFICATE-----", "MIIC", "-----END CERTIFICATE-----", "")
    raw = cfg.prompt((pem,), {}, ask=ask)
    assert raw["chain"] == ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                            "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n")
    assert cfg.prompt((pem,), {}, ask=Answers("/etc/ssl/chain.pem"))["chain"] == "/etc/ssl/chain.pem"


def test_prompt_at_end_of_input_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        cfg.prompt((PARAMS[0],), {}, ask=Answers())
    assert "No answer for Host (host)" in str(caught.value)


# The first run of a command on a real terminal.

def test_first_run_prompts_on_a_terminal_and_writes_a_private_config(toy, sandbox):
    sandbox["echo"].token = "typed-secret-1234"
    term = toy.terminal()
    try:
        term.answer("Echo URL: ", sandbox.url("echo"))
        term.answer("API Token: ", "typed-secret-1234")
        assert "typed-secret-1234" not in term.read_until("Batch Size [10]: ")  # not echoed
        term.answer("Batch Size [10]: ", "0")
        term.read_until("Batch Size (batch_size): 0 is below the minimum 1; set 1 to 1000.")
        term.answer("Batch Size [10]: ", "5")
        assert term.wait() == 0
        assert "Configuration written to" in term.output
    finally:
        term.close()
    assert "typed-secret-1234" not in term.output
    assert stat.S_IMODE(os.stat(toy.config_path).st_mode) == 0o600
    written = yaml.safe_load(open(toy.config_path))
    assert written == {"url": sandbox.url("echo"), "token": "typed-secret-1234", "batch_size": 5}
    # and the next run, from cron (no terminal), uses it
    result = toy.run()
    assert result.code == 0, result
    assert len(sandbox["echo"].items) == 22


def test_first_run_accepts_defaults_with_enter(toy, sandbox):
    term = toy.terminal()
    try:
        term.answer("Echo URL: ", sandbox.url("echo"))
        term.answer("API Token: ", "sandbox-token")
        term.answer("Batch Size [10]: ", "")
        assert term.wait() == 0
    finally:
        term.close()
    assert yaml.safe_load(open(toy.config_path))["batch_size"] == 10


def test_a_terminal_prompt_ended_with_ctrl_d_exits_2(toy):
    term = toy.terminal()
    try:
        term.read_until("Echo URL: ")
        os.write(term.master, b"\x04")
        assert term.wait() == 2
        assert "No answer for Echo URL (url)" in term.output
    finally:
        term.close()
    assert not os.path.exists(toy.config_path)


def test_a_config_with_other_problems_is_not_prompted_over(toy):
    with open(toy.config_path, "w") as fh:
        yaml.safe_dump({"token": "sandbox-token", "batch_size": 0}, fh)
    term = toy.terminal()
    try:
        assert term.wait() == 2
    finally:
        term.close()
    assert "Batch Size (batch_size): 0 is below the minimum 1" in term.output
    assert "Echo URL: " not in term.output


def test_migrate_file_rewrites_renamed_keys_and_keeps_the_rest(tmp_path, caplog):
    from tq_conn_common.config import migrate_file
    params = (Param("devo_verify_tls", "Verify", type=bool, renamed_from=("devo_verify_ssl",)),
              Param("other", "Other"))
    path = tmp_path / "x.yaml"
    path.write_text("# my notes\ndevo_verify_ssl: false   # self-signed relay\nother: devo_verify_ssl: kept\n")
    caplog.set_level("WARNING")
    migrate_file(str(path), params)
    assert path.read_text() == "# my notes\ndevo_verify_tls: false   # self-signed relay\nother: devo_verify_ssl: kept\n"
    assert f"Config key 'devo_verify_ssl' is now 'devo_verify_tls'; rewritten in {path}." in caplog.text
    path.write_text("devo_verify_ssl: false\ndevo_verify_tls: true\n")   # both: the new one wins, the file is left
    migrate_file(str(path), params)
    assert path.read_text() == "devo_verify_ssl: false\ndevo_verify_tls: true\n"
