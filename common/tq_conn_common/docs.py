"""README tables generated from a connector's declaration: its parameters, and the errors it declares or raises
(Declared errors, the wording of its Services, the messages of its Params), kept current by a check."""

import argparse
import importlib
import re
import sys

from tq_conn_common import runner  # noqa: F401  (its Declared skips are in the table of every Devo connector)
from tq_conn_common.config import markdown_table
from tq_conn_common.errors import Declared, _shown
from tq_conn_common.service import TABLE, Service, _Blank, named

_GENERIC_ERRORS = (
    ("exit 2", "Missing configuration and no terminal to ask: ...", "run once by hand, or write the config file"),
    ("exit 2", "The configuration ... has N problem(s): <Label> (<key>): ...", "each line names the parameter and the fix"),
    ("exit 3", "Skipped: process N has held the lock ... for N s.", "wait, or set kill_after_seconds / allow_multiple_runs"),
    ("exit 1", "<service> answered HTTP 5xx ... / could not connect after N attempts", "run again later; state was kept"),
    ("exit 2", "<service> answered HTTP 401 / 403 ...", "the named credential was refused or lacks permission"),
)
_WHEN = {"credential": "HTTP 401", "permission": "HTTP 403", "not_found": "HTTP 404", "rate_limited": "HTTP 429",
         "failing": "HTTP 5xx", "refused": "another HTTP status", "unreachable": "no connection", "tls": "TLS failed",
         "unreadable": "an unreadable body"}
_PARTS = ("tq_conn_common.threatq", "tq_conn_common.devo", "tq_conn_common.runner")
_ID = re.compile(r"^([A-Za-z]+(?: [A-Za-z]+)* \d+(?:, \d+)?): ")


def declared(connector):
    """Return the Declared errors and the Services of the connector's package and of the parts of common it uses
    (threatq, devo, the runner), in the order they are defined."""
    package = "tq_conn_" + connector.name
    own = sorted(m for m in sys.modules if m == package or m.startswith(package + "."))
    used = {value.__name__ for name in own for value in vars(sys.modules[name]).values()
            if getattr(value, "__name__", "") in _PARTS}
    if "tq_conn_common.devo" in used:   # the runner's skips of lookup rows
        used.add("tq_conn_common.runner")
    parts = [m for part in sorted(used) for m in sorted(sys.modules) if m == part or m.startswith(part + ".")]
    errors, services, seen = [], [], set()
    for name in own + parts:
        for value in vars(sys.modules[name]).values():
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, Declared):
                errors.append(value)
            elif isinstance(value, Service):
                services.append(value)
    return errors, services


def error_rows(connector):
    """Return the README error rows (id or exit, message, fix) of the connector's own errors."""
    errors, services = declared(connector)
    rows = [row for param in connector.params for row in _param_rows(param)]
    rows += [error.row() for error in errors]
    for service in services:
        rows += _service_rows(service)
    rows += list(connector.errors or ())
    return list(dict.fromkeys(rows))


def _param_rows(param):
    rows = []
    for kind, message in param.messages.items():
        if kind == "changed":
            continue
        found = _ID.match(message)
        text, _, fix = message.partition("; ")
        rows.append((f"{found.group(1)} (exit 2)" if found else "exit 2",
                     _shown(text[found.end():] if found else text), _shown(fix)))
    return rows


def _service_rows(service):
    known = _Blank(service=service.name, credential=named(service.credential) or "the credential",
                   url=named(service.url) or f"the URL of {service.name}")
    rows = []
    for key, message in service.messages.items():
        kinds = [k for k, spec in TABLE.items() if k == key or (spec[0] == key and k not in service.messages)]
        cls = service.classes.get(key) or service.classes.get(kinds[0]) if kinds else None
        cls = cls or TABLE[kinds[0]][1]
        found = _ID.match(message)
        ident = f"{found.group(1)} (exit {cls.exit_code})" if found else f"exit {cls.exit_code}"
        fixes = [f"{_WHEN[k]}: {service.fixes.get(k) or service.fixes.get(TABLE[k][0]) or TABLE[k][4]}".rstrip(".")
                 for k in kinds]
        rows.append((ident, _shown((message[found.end():] if found else message).format_map(known)),
                     _shown("; ".join(fixes).format_map(known) + ".")))
    return rows


def error_table(connector):
    """Return the README error table: the connector's own errors, then the ones every connector shares."""
    rows = ["| Id / exit | Message | Fix |", "| --- | --- | --- |"]
    for ident, message, fix in error_rows(connector) + list(_GENERIC_ERRORS):
        rows.append(f"| {ident} | {_cell(message)} | {_cell(fix)} |")
    return "\n".join(rows)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def sections(connector):
    """Return {section name: generated Markdown} for a connector."""
    return {"params": markdown_table(connector.params), "errors": error_table(connector)}


def _replace(text, name, body):
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        return text, False
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text), True


def update(readme_path, connector, check=False):
    """Rewrite the generated sections of readme_path; with check, return the names of stale sections instead."""
    with open(readme_path, encoding="utf-8") as fh:
        text = fh.read()
    new, stale = text, []
    for name, body in sections(connector).items():
        new, found = _replace(new, name, body)
        if not found:
            stale.append(f"{name} (markers <!-- {name}:start --> / <!-- {name}:end --> missing)")
    if new != text:
        stale.append("tables out of date")
        if not check:
            with open(readme_path, "w", encoding="utf-8") as fh:
                fh.write(new)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tq_conn_common.docs",
                                     description="Regenerate (or --check) the tables of a connector README.")
    parser.add_argument("module", help="connector import package, e.g. tq_conn_ctci")
    parser.add_argument("readme", help="path of its README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is not current")
    args = parser.parse_args(argv)
    connector = importlib.import_module(args.module).CONNECTOR
    stale = update(args.readme, connector, check=args.check)
    if stale:
        print(f"{args.readme}: " + "; ".join(stale))
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
