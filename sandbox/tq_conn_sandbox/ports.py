"""Where the stand-ins listen by default: BASE_PORT + n for the n-th stand-in in name order."""

BASE_PORT = 18000


def default_port(name, names):
    """Return the default port of the stand-in name among names (sorted as tq-conn-sandbox starts them)."""
    return BASE_PORT + list(names).index(name)


__all__ = ["BASE_PORT", "default_port"]
