"""One demo per connector: every module here with a run(ctx) function is run by `make demo`, in name order."""

import importlib
import pkgutil


def available():
    """Return [(name, module)] of every demo module."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "run"):
            found.append((info.name, module))
    return found
