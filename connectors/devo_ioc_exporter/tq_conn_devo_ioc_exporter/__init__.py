"""tq-conn-devo-ioc-exporter: the indicators of a ThreatQ data collection into a Devo lookup."""

from tq_conn_devo_ioc_exporter.connector import CONNECTOR, main

__all__ = ["CONNECTOR", "main"]
