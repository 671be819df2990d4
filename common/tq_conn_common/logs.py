"""Logging to stdout or a rotating file, verbosity 1 to 3, with every secret masked at every level."""

import logging
import logging.handlers
import os
import re
import sys

from tq_conn_common.errors import UsageError

_LEVELS = {1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "****"

_PATTERNS = (
    (re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S), r"-----BEGIN \1-----****-----END \1-----"),
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*", re.S), "-----BEGIN " + "PRIVATE KEY-----" + MASK),
    (re.compile(r"(?i)\b(authorization|x-api-key|x-rftoken|proxy-authorization)(['\"]?\s*[:=]\s*['\"]?)"
                r"(bearer\s+|basic\s+|token\s+)?[^'\",\s}]+"), r"\1\2\3" + MASK),
    (re.compile(r"(?i)([?&;](?:access_token|refresh_token|token|password|api_key|apikey|key|client_secret)=)[^&\s'\"]+"),
     r"\1" + MASK),
    (re.compile(r"(?i)(\"(?:access_token|refresh_token|password|client_secret|token)\"\s*:\s*\")[^\"]+"), r"\1" + MASK),
    (re.compile(r"(?i)(https?://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
)


class RedactFilter(logging.Filter):
    """Masks declared secret values and credential-shaped text in every record, traceback included."""

    def __init__(self):
        super().__init__()
        self._secrets = []

    def add_secrets(self, values):
        """Mask these values from now on (longest first, so a secret inside another is masked whole)."""
        found = {str(v) for v in values if v is not None and len(str(v)) >= 4}
        for value in list(found):
            for line in value.splitlines():
                if len(line.strip()) >= 8:
                    found.add(line.strip())
        self._secrets = sorted(set(self._secrets) | found, key=len, reverse=True)

    def redact(self, text):
        """Return text with every secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = RedactFilter()


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every new file is created with mode 0600 (not only the first one)."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup(location="stdout", verbosity=1, filename="connector.log", max_bytes=10 * 1024 * 1024, backups=5):
    """Install the one handler (stdout or a rotating file in location) with the redaction filter; return its path."""
    if verbosity not in _LEVELS:
        raise UsageError(f"Verbosity {verbosity} is not 1, 2 or 3.", "run with -v 1, -v 2 or -v 3.")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    path = None
    if location in (None, "", "stdout"):
        handler = logging.StreamHandler(sys.stdout)
    else:
        if not os.path.isdir(location):
            raise UsageError(f"The log location {location} is not a folder.",
                             f"create it (mkdir -p {location}) or run with -ll stdout.")
        if not os.access(location, os.W_OK):
            raise UsageError(f"The log location {location} is not writable by this user.",
                             "change its permissions or choose another folder with -ll.")
        path = os.path.join(location, filename)
        handler = _PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(REDACTOR)
    root.addHandler(handler)
    root.setLevel(_LEVELS[verbosity])
    logging.getLogger("tq_conn_common.summary").setLevel(logging.INFO)
    for noisy in ("urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 3 else logging.INFO)
    logging.captureWarnings(True)
    return path


def add_secrets(values):
    """Mask these values in every log line from now on."""
    REDACTOR.add_secrets(values)


def redact(text):
    """Return text with every known secret masked (for messages printed outside logging)."""
    return REDACTOR.redact(text)


__all__ = ["setup", "add_secrets", "redact", "RedactFilter", "REDACTOR"]
