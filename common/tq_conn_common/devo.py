"""Devo delivery: lookups as data, the Lookups REST API and devo-sdk TLS transports, events to tables."""

import re
from dataclasses import dataclass

from tq_conn_common.errors import ConfigError

NAME_RULE = re.compile(r"^[A-Za-z0-9_]+$")
COLUMN_TYPES = ("str", "int", "int4", "int8", "float", "bool", "ip4")


@dataclass(frozen=True)
class Column:
    """One lookup column: its name and Devo type (str, int, int4, int8, float, bool, ip4)."""

    name: str
    type: str = "str"


@dataclass(frozen=True)
class LookupSpec:
    """A lookup's shape: its name (fixed, or taken from a parameter), key column and typed columns."""

    key: str
    columns: tuple
    name: str = None
    name_from: str = None

    def resolve_name(self, config=None):
        """Return the lookup name, from the spec or the config; raise ConfigError if Devo cannot carry it."""
        name = self.name if self.name else (config.get(self.name_from) if config is not None else None)
        return check_name(name, self.name_from)


def check_name(name, key=None):
    """Return name if it is a valid Devo lookup name (letters, digits, underscore); raise ConfigError otherwise."""
    if not name or not NAME_RULE.match(str(name)):
        where = f" ({key})" if key else ""
        raise ConfigError(f"Lookup name{where} {name!r} is not valid for Devo.",
                          "use only letters, digits and underscore, e.g. My_Lookup_1.")
    return str(name)


__all__ = ["Column", "LookupSpec", "check_name", "NAME_RULE", "COLUMN_TYPES"]
