"""The interface of a Devo lookup transport, and the registry of the transports (rest, tls) by name."""

import logging
import tempfile

from tq_conn_common.devo import settings as devo_settings

log = logging.getLogger(__name__)

MODES = ("replace", "upsert", "delete")
SPOOL_MEMORY = 4 * 1024 * 1024   # rows stay in memory up to this size, then the spool moves to disk
_REGISTRY = {}


def register(name):
    """Class decorator: the Upload class of the transport name."""
    def add(cls):
        _REGISTRY[name] = cls
        return cls
    return add


def settings_of(run):
    """Return the run's Devo Settings (checked once, at the start of the run)."""
    found = getattr(run, "devo", None)
    if found is None:
        found = run.devo = devo_settings.check(run.config)
    return found


def upload(run, spec, name, mode="replace", allow_empty=False):
    """Return an Upload of rows to lookup name through the transport the run's Devo settings select."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return _REGISTRY[settings_of(run).transport](run, spec, name, mode, allow_empty)


class Upload:
    """The rows of one lookup on their way to Devo: written to a private spool as they come, sent by send().

    add() takes tuples of texts in the order of spec.columns; send() delivers them and returns how many, or raises
    AuthError or DeliveryError; nothing counts as delivered before send() returned. close() drops the spool.
    """

    def __init__(self, run, spec, name, mode, allow_empty=False):
        self.run, self.spec, self.name, self.mode, self.allow_empty = run, spec, name, mode, allow_empty
        self.settings = settings_of(run)
        self.count = 0
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, mode="w+b", prefix="tq-conn-devo-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add(self, rows):
        """Spool rows (a list of tuples of texts)."""
        raise NotImplementedError

    def send(self):
        """Deliver what was spooled; return how many rows."""
        raise NotImplementedError

    def nothing_to_send(self):
        """Return True (and say so) when there is nothing to send: no rows, unless an empty replace was asked for."""
        if self.count == 0 and (self.mode != "replace" or not self.allow_empty):
            log.warning("No rows to %s in lookup %s; it was left unchanged.", self.mode, self.name)
            return True
        return False

    def close(self):
        self.spool.close()


__all__ = ["Upload", "register", "upload", "settings_of", "MODES"]
