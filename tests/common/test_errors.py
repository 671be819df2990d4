"""Errors: one root, exit codes by what the user must do next, one-line messages with the fix."""

from tq_conn_common import errors
from tq_conn_common.http import HttpAuthError, HttpError


def test_exit_codes():
    assert (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_CONFIG, errors.EXIT_LOCKED) == (0, 1, 2, 3)
    expected = {errors.ConfigError: 2, errors.UsageError: 2, errors.AuthError: 2, errors.SourceError: 1,
                errors.DeliveryError: 1, errors.LockHeldError: 3, HttpError: 1, HttpAuthError: 2}
    for cls, code in expected.items():
        assert issubclass(cls, errors.TqConnError) and cls("m").exit_code == code, cls
    assert isinstance(HttpAuthError("m"), errors.AuthError) and isinstance(HttpAuthError("m"), HttpError)


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
