"""ThreatQ as a source: the connection settings, the login, the API client, indicator fields and the UI record."""

from tq_conn_common.threatq.settings import (params, check_host, base_url, ui_base, indicator_link, TOKEN_KEY,  # noqa
                                             PAGING)
from tq_conn_common.threatq.auth import Login, TokenCache  # noqa
from tq_conn_common.threatq.client import ThreatQ, SERVICE, WITH, FIELDS  # noqa
from tq_conn_common.threatq.indicator import (Indicator, Named, as_indicator, name_of, text_of, score,  # noqa
                                              attribute_values, attributes_by_name, adversaries, adversary_count,
                                              unique)
from tq_conn_common.threatq.ui import (client, register, on_configured, remote_values, record_run,  # noqa
                                       record_name, merge_definition, field_values, definition_changed, CONFIGURED,
                                       _is_true)

__all__ = ["ThreatQ", "TokenCache", "Login", "SERVICE", "params", "check_host", "base_url", "ui_base",
           "indicator_link", "Indicator", "Named", "as_indicator", "name_of", "text_of", "score", "attribute_values",
           "attributes_by_name", "adversaries", "adversary_count", "unique", "merge_definition", "field_values",
           "definition_changed", "client",
           "register", "on_configured", "remote_values", "record_run", "record_name", "WITH", "FIELDS", "CONFIGURED",
           "TOKEN_KEY", "PAGING"]
