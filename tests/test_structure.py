"""The shape of the code: each connector's own lines within its target, no import cycle anywhere, and none of what a
connector leaves to the framework (commits, status codes, catch-all excepts). Run as a script (make loc) it prints
the lines per connector."""

import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMITS = {"flashpoint": 400, "logrhythm_collective_insights": 400}   # two outputs, seed-required error ids
DEFAULT_LIMIT = 300
FORBIDDEN = ((re.compile(r"\.commit\("), "a commit() of the state"), (re.compile(r"except\s+Exception"), "except Exception"),
             (re.compile(r"status(_code)?\s*(==|!=|in|>=|<=)\s*[(\[{]?\s*[45]\d\d"), "an HTTP status code"))


def python_files(folder):
    for path, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in ("build", "__pycache__") and not d.endswith(".egg-info")]
        yield from (os.path.join(path, f) for f in sorted(files) if f.endswith(".py"))


def own_lines(path):
    """Non-blank, non-comment lines (docstrings count)."""
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip() and not line.strip().startswith("#"))


def connectors():
    """Return {connector folder name: [its .py files]}."""
    base = os.path.join(ROOT, "connectors")
    return {name: list(python_files(os.path.join(base, name))) for name in sorted(os.listdir(base))
            if os.path.isdir(os.path.join(base, name))}


def modules():
    """Return {module name: path} of every package under common/, connectors/ and sandbox/."""
    found = {}
    for top in ("common", "connectors", "sandbox"):
        for path in python_files(os.path.join(ROOT, top)):
            parts = os.path.relpath(path, ROOT).split(os.sep)
            start = next((i for i, part in enumerate(parts) if part.startswith("tq_conn_")), None)
            if start is None:
                continue
            parts = parts[start:]
            parts[-1] = parts[-1][:-3]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name, path, known):
    """Return the known modules that the module imports (a package's names resolve to its submodules)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(base)
    resolved = set()
    for module in out:
        while module and module not in known:
            module = module.rpartition(".")[0]
        if module and module != name:
            resolved.add(module)
    return resolved


def cycles():
    """Return the import cycles (strongly connected groups of more than one module), each sorted."""
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))
    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    assert cycles() == []


def test_each_connector_stays_within_its_line_target():
    for name, files in connectors().items():
        lines = sum(map(own_lines, files))
        assert lines <= LIMITS.get(name, DEFAULT_LIMIT), f"{name}: {lines} own lines"


def test_connectors_leave_commits_status_codes_and_catch_alls_to_the_framework():
    found = []
    for name, files in connectors().items():
        for path in files:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            found += [f"{os.path.relpath(path, ROOT)}: {what}" for rule, what in FORBIDDEN if rule.search(text)]
    assert found == []


def test_connectors_import_only_what_common_offers():
    """A connector imports from tq_conn_common only the names of its __all__ (and the modules it names there)."""
    import tq_conn_common
    offered = set(tq_conn_common.__all__)
    wrong = []
    for name, files in connectors().items():
        for path in files:
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tq_conn_common"):
                    part = node.module.split(".")[1] if "." in node.module else None
                    names = {part} if part else {alias.name for alias in node.names}
                    wrong += [f"{os.path.relpath(path, ROOT)}: {n}" for n in names - offered]
    assert wrong == []


if __name__ == "__main__":
    total = 0
    for folder, files in connectors().items():
        lines = sum(map(own_lines, files))
        total += lines
        limit = LIMITS.get(folder, DEFAULT_LIMIT)
        print(f"{folder:<32} {lines:>5} own lines (target {limit}){'  OVER' if lines > limit else ''}")
    print(f"{'all connectors':<32} {total:>5}")
    for group in cycles():
        print("import cycle: " + " <-> ".join(group))
