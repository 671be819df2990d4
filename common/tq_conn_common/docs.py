"""README tables generated from a connector's declaration: parameters and errors, kept current by a check."""

import argparse
import importlib
import re
import sys

from tq_conn_common.config import markdown_table

_GENERIC_ERRORS = (
    ("exit 2", "Missing configuration and no terminal to ask: ...", "run once by hand, or write the config file"),
    ("exit 2", "The configuration ... has N problem(s): <Label> (<key>): ...", "each line names the parameter and the fix"),
    ("exit 3", "Skipped: process N has held the lock ... for N s.", "wait, or set kill_after_seconds / allow_multiple_runs"),
    ("exit 1", "<service> answered HTTP 5xx ... / could not connect after N attempts", "run again later; state was kept"),
    ("exit 2", "<service> answered HTTP 401 / 403 ...", "the named credential was refused or lacks permission"),
)


def error_table(connector):
    """Return the README error table: the connector's own errors, then the ones every connector shares."""
    rows = ["| Id / exit | Message | Fix |", "| --- | --- | --- |"]
    for ident, message, fix in tuple(getattr(connector, "errors", ()) or ()) + _GENERIC_ERRORS:
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
