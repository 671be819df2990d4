"""tq_conn_flashpoint: Flashpoint indicators into Devo lookups per type, and alerts into a Devo table."""

from tq_conn_flashpoint.connector import CONNECTOR, main

__all__ = ["CONNECTOR", "main"]
