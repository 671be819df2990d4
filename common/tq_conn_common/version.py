"""The version of tq-conn-common."""

__version__ = "1.1.0"
