"""Events for a Devo table: the table as data, and sending events to it through the X.509 collector."""

import re
from dataclasses import dataclass

from tq_conn_common.devo import tls
from tq_conn_common.errors import ConfigError

TAG_RULE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")


def check_tag(value):
    """Param check of a Devo table tag: dot-separated words of letters, digits, '_' or '-'."""
    if not TAG_RULE.match(str(value)):
        raise ValueError(f"{value!r} is not a Devo table tag; use dot-separated words of letters, digits, '_' or '-', "
                         "e.g. my.app.vendor.alerts.")
    return str(value)


@dataclass(frozen=True)
class EventTable:
    """A Devo table events go to: its tag, fixed or taken from a parameter, and the field that identifies an event
    (events are dicts; with a key, one without a value for it is skipped and a repeated one dropped)."""

    tag: str = None
    tag_from: str = None
    key: str = None

    def resolve_tag(self, config=None):
        """Return the table tag, from the declaration or the config; raise ConfigError if it is not one."""
        try:
            return check_tag(self.tag if self.tag else config.get(self.tag_from))
        except ValueError as exc:
            raise ConfigError(f"The Devo table tag: {exc}".split(";")[0] + ".",
                              "use dot-separated words of letters, digits, '_' or '-', e.g. my.app.vendor.alerts.") \
                from None


class EventUpload:
    """Events of one table on their way to Devo, sent together by send()."""

    def __init__(self, run, table):
        self.run, self.tag, self.events = run, table.resolve_tag(run.config), []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def count(self):
        return len(self.events)

    def add(self, events):
        self.events.extend(events)

    def send(self):
        """Send the events added since the last send; return how many."""
        sent = tls.send_events(self.run, self.tag, self.events)
        self.events = []
        return sent

    def close(self):
        self.events = []


__all__ = ["EventTable", "EventUpload", "check_tag", "TAG_RULE"]
