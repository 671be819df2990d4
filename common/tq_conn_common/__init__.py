"""tq_conn_common: the shared framework of the tq-conn connectors."""

__version__ = "1.0.0"

from tq_conn_common.errors import (AuthError, BadRecord, ConfigError, DeliveryError, LockHeldError,  # noqa: E402
                                   SourceError, TqConnError, UsageError)
from tq_conn_common.config import Config, Param, Secret, reveal  # noqa: E402
from tq_conn_common.devo import Column, LookupSpec  # noqa: E402
from tq_conn_common.cli import Connector, Run, Stats, stop  # noqa: E402

__all__ = ["__version__", "Connector", "Run", "Stats", "stop", "Param", "Secret", "Config", "reveal",
           "Column", "LookupSpec", "TqConnError", "ConfigError", "UsageError", "AuthError", "SourceError",
           "DeliveryError", "LockHeldError", "BadRecord"]
