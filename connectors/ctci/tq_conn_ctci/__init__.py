"""tq-conn-ctci: the CTCI CEWL (CVE Early Warning List) into a Devo lookup."""

from tq_conn_ctci.connector import CONNECTOR, main

__all__ = ["CONNECTOR", "main"]
