"""The demos of `make demo`: one module per connector, each a table of Steps (STEPS), run in name order.

A demo module names its TITLE, the COMMAND it runs, optionally an ENV for every run (a dict, or a function of the
demo context giving one), and STEPS. Actions in a step are functions of the demo context (see demo.DemoContext).
"""

import dataclasses
import importlib
import operator
import os
import pkgutil

import yaml


@dataclasses.dataclass(frozen=True)
class Step:
    """One row of a demo: what it shows, what to set first, the command's arguments, what to show afterwards."""

    say: str = ""          # printed before the step; "" goes on with the step above
    set: tuple = ()        # actions run before the command: stand-in switches, the config file
    args: tuple = ()       # the command's arguments: "{home}" is the demo's folder; an action gives its value
    env: dict = None       # environment of this run, over the demo's ENV
    check: bool = True     # False: a non-zero exit is part of the story, not a failed demo
    show: tuple = ()       # actions run after the command: what arrived where
    then: tuple = ()       # actions run last: switches put back for the next step


def call(service, method, /, *args, **kwargs):
    """Return an action calling method (a dotted path such as "faults.add") of the stand-in service."""
    def action(ctx):
        return operator.attrgetter(method)(ctx.sandbox[service])(*args, **kwargs)
    return action


def config_file(name, base, style="yaml"):
    """Return config(**values), whose action writes the file name in the demo's folder (mode 0600).

    The file holds base(ctx) updated with values (a value that is a function is called with the context); style
    "yaml" dumps it as YAML, "lines" writes one "key: value" line per item, as a user would type it.
    """
    def config(**values):
        def action(ctx):
            items = {**base(ctx), **{k: v(ctx) if callable(v) else v for k, v in values.items()}}
            text = (yaml.safe_dump(items, sort_keys=False) if style == "yaml"
                    else "".join(f"{key}: {value}\n" for key, value in items.items()))
            path = os.path.join(ctx.home, name)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(path, 0o600)
        return action
    return config


def available():
    """Return [(name, module)] of every demo module."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "STEPS"):
            found.append((info.name, module))
    return found


__all__ = ["Step", "call", "config_file", "available"]
