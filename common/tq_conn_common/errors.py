"""The error types of every connector, each carrying the exit code and the fix the user needs."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class TqConnError(Exception):
    """Root of every error a connector reports to its user: one line saying what failed and the fix."""

    exit_code = EXIT_FAILED
    retryable = False

    def __init__(self, message, fix=None, *, retryable=None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        if retryable is not None:
            self.retryable = retryable

    def __str__(self):
        return self.message if not self.fix else f"{self.message}\nFix: {self.fix}"


class ConfigError(TqConnError):
    """A setting is missing or wrong; the message names the parameter and the fix."""

    exit_code = EXIT_CONFIG

    def __init__(self, message, fix=None, *, problems=(), error_id=None):
        super().__init__(message, fix)
        self.problems = list(problems)
        self.error_id = error_id


class UsageError(TqConnError):
    """A command-line flag is wrong."""

    exit_code = EXIT_CONFIG


class AuthError(TqConnError):
    """A credential was refused; the message names which one and where it is set."""

    exit_code = EXIT_CONFIG


class SourceError(TqConnError):
    """The vendor service failed after retries."""

    exit_code = EXIT_FAILED


class DeliveryError(TqConnError):
    """The destination (Devo, Collective Insights) refused or failed after retries."""

    exit_code = EXIT_FAILED


class LockHeldError(TqConnError):
    """Another run of the same connector instance holds the lock."""

    exit_code = EXIT_LOCKED


class BadRecord(Exception):
    """One vendor record is unusable: counted, logged and skipped, never fatal."""

    def __init__(self, reason, **context):
        super().__init__(reason)
        self.reason = reason
        self.context = context

    def __str__(self):
        extra = ", ".join(f"{k}={v!r}" for k, v in self.context.items())
        return f"{self.reason} ({extra})" if extra else self.reason


__all__ = [
    "EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG", "EXIT_LOCKED",
    "TqConnError", "ConfigError", "UsageError", "AuthError", "SourceError", "DeliveryError",
    "LockHeldError", "BadRecord",
]
