"""The error types of every connector, each carrying the exit code and the fix the user needs."""

import re

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class TqConnError(Exception):
    """Root of every error a connector reports to its user: one line saying what failed and the fix."""

    exit_code = EXIT_FAILED
    retryable = False
    kind = None          # the failure kind of a service call (see service.TABLE), else None
    status = None        # the HTTP status behind it, for the log
    excerpt = ""         # the start of the response body, for the log
    stops_run = False    # True: the other streams would fail the same way (a refused credential, a rate limit)

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


class Stop(Exception):
    """Ends the command early with an exit code and a message, not as an error ('disabled in the UI', set-up done)."""

    def __init__(self, code=EXIT_OK, message=""):
        super().__init__(message)
        self.code, self.message = code, message


def stop(message="", code=EXIT_OK):
    """End the run now: print message and exit with code."""
    raise Stop(code, message)


class BadRecord(Exception):
    """One vendor record is unusable: counted, logged and skipped, never fatal."""

    def __init__(self, reason, **context):
        super().__init__(reason)
        self.reason = reason
        self.context = context

    def __str__(self):
        extra = ", ".join(f"{k}={_brief(v)!r}" for k, v in self.context.items())
        return f"{self.reason} ({extra})" if extra else self.reason


def _brief(value, limit=60):
    """Return a context value as a log line shows it: scalars as they are, long text cut, others as <type>."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class Declared:
    """An error (or skip, or stop) a connector may end in, declared once: its class and message and fix templates.

    Calling it with the values of the templates returns the error to raise; the connector's README error table is
    generated from its declarations (ident: the id a vendor document gives the error, e.g. 'SetupError 16', else
    taken from the message's 'Id N:' prefix, else the exit code).
    """

    def __init__(self, cls, message, fix="", ident=None):
        self.cls, self.message, self.fix = cls, message, fix
        prefix = message.split(":", 1)[0]
        self.ident = ident or (prefix if ": " in message and prefix.split()[-1].replace(",", "").isdigit() else None)

    def __call__(self, context=None, **values):
        message = self.message.format(**values)
        if issubclass(self.cls, BadRecord):
            return self.cls(message, **(context or {}))
        if issubclass(self.cls, Stop):
            return self.cls(EXIT_OK, message)
        return self.cls(message, self.fix.format(**values) if self.fix else None)

    def row(self):
        """Return the README row (id or exit code, message, fix), placeholders shown as <name>."""
        if issubclass(self.cls, BadRecord):
            outcome = "skipped (exit 0)"
        elif issubclass(self.cls, Stop):
            outcome = "exit 0"
        else:
            outcome = f"exit {self.cls.exit_code}"
        ident = f"{self.ident} ({outcome})" if self.ident else outcome
        message = self.message[len(self.ident) + 2:] if self.ident and self.message.startswith(self.ident) else \
            self.message
        return ident, _shown(message), _shown(self.fix)


def _shown(template):
    """Return a message template as the README shows it: {name} as <name>, doubled braces single."""
    shown = re.sub(r"(?<!\{)\{(\w+)(![rs])?\}(?!\})", r"<\1>", template or "")
    return shown.replace("{{", "{").replace("}}", "}")


__all__ = ["Declared", 
    "EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG", "EXIT_LOCKED",
    "TqConnError", "ConfigError", "UsageError", "AuthError", "SourceError", "DeliveryError",
    "LockHeldError", "BadRecord", "Stop", "stop",
]
