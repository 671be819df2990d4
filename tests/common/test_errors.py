"""Errors: one root, exit codes by what the user must do next, one-line messages with the fix."""

import pytest

from tq_conn_common import errors


def test_exit_codes():
    assert (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_CONFIG, errors.EXIT_LOCKED) == (0, 1, 2, 3)
    expected = {errors.ConfigError: 2, errors.UsageError: 2, errors.AuthError: 2, errors.SourceError: 1,
                errors.DeliveryError: 1, errors.LockHeldError: 3}
    for cls, code in expected.items():
        assert issubclass(cls, errors.TqConnError) and cls("m").exit_code == code, cls


def test_message_and_fix():
    error = errors.SourceError("Vendor failed.", "run again later.", retryable=True)
    assert str(error) == "Vendor failed.\nFix: run again later." and error.retryable
    assert str(errors.DeliveryError("Devo refused.")) == "Devo refused." and not errors.DeliveryError("x").retryable
    config = errors.ConfigError("2 problems", problems=["a", "b"], error_id="E1")
    assert config.problems == ["a", "b"] and config.error_id == "E1"


def test_bad_record_is_not_an_error_of_the_run():
    bad = errors.BadRecord("no CVE id", entry_id="x1")
    assert not isinstance(bad, errors.TqConnError)
    assert str(bad) == "no CVE id (entry_id='x1')" and str(errors.BadRecord("plain")) == "plain"


def test_a_declared_error_is_raised_from_its_templates_and_gives_its_readme_row():
    too_old = errors.Declared(errors.ConfigError, "SetupError 16: {start} is older than a year.", "set after {after}.")
    raised = too_old(start="2020-01-01", after="2025-01-01")
    assert isinstance(raised, errors.ConfigError)
    assert (raised.message, raised.fix) == ("SetupError 16: 2020-01-01 is older than a year.", "set after 2025-01-01.")
    assert too_old.row() == ("SetupError 16 (exit 2)", "<start> is older than a year.", "set after <after>.")
    skip = errors.Declared(errors.BadRecord, "row has {n} fields")
    assert str(skip(context={"cve": "x"}, n=3)) == "row has 3 fields (cve='x')"
    assert skip.row() == ("skipped (exit 0)", "row has <n> fields", "")
    with pytest.raises(errors.Stop) as stopped:
        raise errors.Declared(errors.Stop, "Skipped: {name} is off.")(name="x")
    assert (stopped.value.code, stopped.value.message) == (0, "Skipped: x is off.")
