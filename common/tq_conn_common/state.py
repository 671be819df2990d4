"""What a connector remembers between runs: a JSON document per instance, committed only after delivery."""

import copy
import json
import logging

from tq_conn_common.errors import ConfigError
from tq_conn_common.files import read_trusted, write_json

log = logging.getLogger(__name__)


class State:
    """Committed state plus pending changes; pending changes reach disk only through commit()."""

    def __init__(self, path):
        self.path = path
        self.cleared = False
        self.committed = self._read()
        self.pending = copy.deepcopy(self.committed)

    def reload(self):
        """Read the state again (another run may have committed since it was first read); a reset stays a reset."""
        self.committed = self._read()
        self.pending = {} if self.cleared else copy.deepcopy(self.committed)

    def _read(self):
        raw = read_trusted(self.path, "state file")
        if raw is None:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise ConfigError(f"The state file {self.path} cannot be read ({exc}).",
                              "delete it to start over (the next run pulls everything again).") from None
        if not isinstance(data, dict):
            raise ConfigError(f"The state file {self.path} does not hold an object.",
                              "delete it to start over (the next run pulls everything again).")
        return data

    def get(self, key, default=None):
        """Return a pending value (what this run has seen so far)."""
        return self.pending.get(key, default)

    def __getitem__(self, key):
        return self.pending[key]

    def __setitem__(self, key, value):
        self.pending[key] = value

    def __contains__(self, key):
        return key in self.pending

    def setdefault(self, key, default):
        return self.pending.setdefault(key, default)

    def pop(self, key, default=None):
        return self.pending.pop(key, default)

    def commit(self):
        """Write the pending state atomically; call only after the destination accepted the data it covers."""
        write_json(self.path, self.pending)
        self.committed = copy.deepcopy(self.pending)
        log.debug("State committed to %s", self.path)

    def rollback(self):
        """Forget uncommitted changes."""
        self.pending = copy.deepcopy(self.committed)

    def reset(self):
        """Forget everything, committed too (the next commit writes an empty start)."""
        self.cleared = True
        self.pending = {}


__all__ = ["State"]
