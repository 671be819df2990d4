"""tq_conn_common: the shared framework of the tq-conn connectors. Connectors import only what __all__ offers."""

from tq_conn_common.version import __version__
from tq_conn_common.errors import (AuthError, BadRecord, ConfigError, Declared, DeliveryError,  # noqa: E402
                                   LockHeldError, SourceError, TqConnError, UsageError, stop)
from tq_conn_common.config import Config, Param, Secret, reveal  # noqa: E402
from tq_conn_common.service import Service, excerpt  # noqa: E402
from tq_conn_common.paging import cursor_pages, offset_pages, scroll_pages, window_pages  # noqa: E402
from tq_conn_common.rows import chunks, flatten  # noqa: E402
from tq_conn_common.download import Download, etag  # noqa: E402
from tq_conn_common.devo import Column, EventTable, LookupSpec, MAX_CELL  # noqa: E402
from tq_conn_common.connector import Changes, Connector, Stream  # noqa: E402
from tq_conn_common import checks, cli, clock, collector, devo, iocs, threatq  # noqa: E402

__all__ = ["__version__", "Changes", "Connector", "Stream", "Param", "Secret", "Config", "reveal", "Service",
           "excerpt", "offset_pages", "cursor_pages", "scroll_pages", "window_pages", "chunks", "flatten", "Download", "etag", "Declared",
           "Column", "LookupSpec", "EventTable", "MAX_CELL", "stop",
           "TqConnError", "ConfigError", "UsageError", "AuthError", "SourceError", "DeliveryError", "LockHeldError",
           "BadRecord", "checks", "cli", "clock", "collector", "devo", "iocs", "threatq"]
