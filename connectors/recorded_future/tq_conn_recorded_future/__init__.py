"""tq-conn-recorded-future: Recorded Future risk lists and the Ukraine/Russia IP Fusion file into Devo lookups."""

from tq_conn_recorded_future.connector import CONNECTOR, main

__all__ = ["CONNECTOR", "main"]
