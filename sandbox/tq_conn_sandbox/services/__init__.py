"""The stand-ins: every module here defining a Service subclass is found and started by name."""

import importlib
import inspect
import pkgutil

from tq_conn_sandbox.server import Service


def available():
    """Return {name: Service class} for every stand-in module in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Service) and obj is not Service and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return dict(sorted(found.items()))


__all__ = ["available"]
