"""Declared parameters: one declaration drives prompts, validation, the config file, the UI definition and docs."""

import difflib
import getpass
import logging
import os
import reprlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from tq_conn_common.errors import ConfigError
from tq_conn_common.files import read_trusted, write_private

log = logging.getLogger(__name__)

_MISSING = object()
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}


class Secret:
    """A secret value: str() and repr() are '****'; call reveal() only where the value is used."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def reveal(self):
        """Return the real value."""
        return self._value

    def __str__(self):
        return "****"

    __repr__ = __str__

    def __bool__(self):
        return bool(self._value)

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self):
        return hash(self._value)


def reveal(value):
    """Return the plain value of a Secret, or the value itself."""
    return value.reveal() if isinstance(value, Secret) else value


@dataclass(frozen=True)
class Param:
    """One connector parameter, declared once."""

    key: str
    label: str
    type: Any = str
    default: Any = None
    required: bool = False
    secret: bool = False
    choices: tuple = ()
    range: tuple = ()
    help: str = ""
    prompt: bool = None          # asked on first run; default: when required and without default
    ask_if: Callable = None      # asked only when ask_if(the values answered so far, converted) is true
    ui: bool = False             # set by the user in the ThreatQ UI (ThreatQ connectors)
    env: str = None              # environment variable that may carry the value
    renamed_from: tuple = ()     # older keys migrated on load
    multiline: bool = False      # pasted PEM text and the like
    resets_state: bool = False   # a new value makes the next run forget the state once (messages["changed"])
    check: Callable = None       # extra check: value -> value, raise ValueError("what is wrong; the fix")
    messages: dict = field(default_factory=dict)  # kind -> message replacing the generated one

    @property
    def named(self):
        """How messages name this parameter: 'Label' (key)."""
        return f"'{self.label}' ({self.key})"

    @property
    def asked(self):
        if self.prompt is not None:
            return self.prompt
        return self.required and self.default is None

    def type_name(self):
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        return {str: "text", int: "integer", float: "number", bool: "true/false", list: "list",
                dict: "mapping"}.get(self.type, getattr(self.type, "__name__", "text"))


class Config:
    """Validated values by key; secrets stay Secret until revealed."""

    def __init__(self, values, params, path=None):
        self._values = dict(values)
        self._params = {p.key: p for p in params}
        self.path = path

    def __getattr__(self, key):
        try:
            return self.__dict__["_values"][key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key):
        return self._values[key]

    def get(self, key, default=None):
        value = self._values.get(key)
        return default if value is None else value

    def __contains__(self, key):
        return key in self._values

    def items(self):
        return self._values.items()

    def secrets(self):
        """Return the plain text of every secret value, for the log redaction filter."""
        return [reveal(v) for v in self._values.values() if isinstance(v, Secret) and reveal(v)]

    def masked(self):
        """Return the values with secrets shown as '****'."""
        return {k: ("****" if isinstance(v, Secret) and reveal(v) else v) for k, v in self._values.items()}


def _problem(param, kind, text):
    custom = param.messages.get(kind)
    return custom if custom else f"{param.label} ({param.key}): {text}"


def _convert(param, value):
    """Return value converted to the param's type, or raise ValueError with the fix."""
    t = param.type
    if t is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not true or false; set true or false.")
    if t is int:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a whole number; set a whole number.")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{_short(value)} is not a whole number; set a whole number.") from None
    if t is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{_short(value)} is not a number; set a number.") from None
    if t is list:
        if isinstance(value, str):
            return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError(f"{_short(value)} is not a list; give a list (YAML) or comma-separated text.")
    if t is dict:
        if isinstance(value, dict):
            return value
        raise ValueError(f"{_short(value)} is not a mapping; give a YAML mapping.")
    if t is str:
        if isinstance(value, (dict, list)):
            raise ValueError(f"{_short(value)} is not text; give a single value.")
        return str(value) if param.multiline else str(value).strip()
    return t(value)


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 4, 4, 3


def _short(value):
    # reprlib: a nested value (a YAML alias bomb, a huge list) is shown in bounded time, not expanded
    text = _REPR.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_value(param, value):
    """Return (converted value, None) or (None, problem line) for one raw value."""
    converted, problem = _check_value(param, value)
    if problem and param.secret:  # the problem line must not show the secret it is about
        problem = _hide(problem, value)
    return converted, problem


def _hide(text, value):
    plain = reveal(value)
    for shown in (_short(plain), repr(plain), _short(str(plain)), repr(str(plain))):
        text = text.replace(shown, "the value")
    if len(str(plain).strip()) >= 4:
        text = text.replace(str(plain).strip(), "****")
    return text


def _check_value(param, value):
    if value is None or (isinstance(value, str) and not value.strip() and param.type is not bool):
        if param.required:
            return None, _problem(param, "missing", f"is required and not set; {param.help or 'set a value'}")
        return (param.default, None)
    try:
        converted = _convert(param, value)
    except ValueError as exc:
        return None, _problem(param, "type", str(exc))
    if param.choices:
        items = converted if isinstance(converted, list) else [converted]
        for item in items:
            if item not in param.choices:
                return None, _problem(param, "choice",
                                      f"{_short(item)} is not allowed; set one of {', '.join(map(str, param.choices))}.")
    if param.range:
        low, high = param.range
        if low is not None and converted < low:
            span = f"{low} to {high}" if high is not None else f"at least {low}"
            return None, _problem(param, "range", f"{converted} is below the minimum {low}; set {span}.")
        if high is not None and converted > high:
            span = f"{low} to {high}" if low is not None else f"at most {high}"
            return None, _problem(param, "range", f"{converted} is above the maximum {high}; set {span}.")
    if param.check is not None:
        try:
            converted = param.check(converted)
        except ValueError as exc:
            return None, _problem(param, "format", str(exc))
    if param.secret and converted is not None:
        converted = Secret(converted)
    return converted, None


def validate(params, raw, path=None, origins=None):
    """Return a Config from raw values, or raise ConfigError listing every problem at once.

    origins maps a key to where its value was set when that is not the file at path (the ThreatQ UI, the
    environment, the collector config.yaml): a problem with such a value says so, and the file is not blamed."""
    origins = origins or {}
    values, found = {}, []
    for param in params:
        value, problem = check_value(param, raw.get(param.key))
        if problem:
            found.append((problem, None if raw.get(param.key) is None else origins.get(param.key, path)))
        else:
            values[param.key] = value
    if found:
        elsewhere = any(origin not in (None, path) for _, origin in found)
        problems = [f"{problem} (set in {origin})" if elsewhere and origin else problem for problem, origin in found]
        where = f" in {path}" if path and not elsewhere else ""
        raise ConfigError(f"The configuration{where} has {len(problems)} problem(s):\n  " + "\n  ".join(problems),
                          problems=problems)
    return Config(values, params, path)


def read_file(path):
    """Return the mapping stored in a YAML config file, or {} if it does not exist."""
    data = read_trusted(path, "config file")
    if data is None:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"The config file {path} is not UTF-8 text (byte {exc.start}).",
                          "save it as UTF-8, or delete it and run again to answer the prompts.") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"The config file {path} is not valid YAML{where}.",
                          "fix the syntax there, or delete the file and run again to answer the prompts.") from None
    except RecursionError:
        raise ConfigError(f"The config file {path} nests its values too deeply to be read.",
                          "write one 'key: value' per line, see --print-config-template.") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"The config file {path} does not hold a mapping of parameters.",
                          "write one 'key: value' per line, see --print-config-template.")
    if _expanded_size(loaded, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"The config file {path} expands to more than {MAX_VALUES} values (YAML anchors '&' "
                          "and aliases '*' repeat them).",
                          "write the values out without anchors and aliases, see --print-config-template.")
    return loaded


MAX_VALUES = 100_000  # values a config file may hold once its YAML aliases are expanded


def _expanded_size(value, limit):
    """Return how many values value holds, aliases counted each time they are used; stop counting past limit."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def merge_sources(params, file_values, environ=None, origins=None):
    """Return raw values: the file, then environment variables, older keys migrated; warn on unknown keys (with
    the known key they most look like). origins, if given, learns the environment variable of each value set
    there, and follows a migrated key."""
    environ = os.environ if environ is None else environ
    origins = {} if origins is None else origins
    known = {p.key for p in params}
    raw = dict(file_values)
    for param in params:
        for old in param.renamed_from:
            if old in raw and param.key not in raw:
                log.warning("Config key '%s' is now '%s'; migrated.", old, param.key)
                raw[param.key] = raw.pop(old)
                if old in origins:
                    origins[param.key] = origins.pop(old)
            else:
                raw.pop(old, None)
    unknown = set(raw) - known
    for key in sorted(k for k in unknown if _plausible(k)):
        near = difflib.get_close_matches(str(key).lower(), sorted(known), n=1, cutoff=0.75)
        log.warning("Unknown config key '%s' ignored; %s", key, f"did you mean '{near[0]}'?" if near else
                    "see --print-config-template for the known keys.")
    if any(not _plausible(k) for k in unknown):   # never echoed: a file that is not a config may hold anything
        log.warning("%d config entries that do not look like keys were ignored (not shown); see "
                    "--print-config-template for the known keys.", sum(1 for k in unknown if not _plausible(k)))
    for param in params:
        name = param.env or f"TQ_CONN_{param.key.upper()}"
        if environ.get(name):
            raw[param.key] = environ[name]
            origins[param.key] = f"the environment variable {name}"
    return {k: v for k, v in raw.items() if k in known}


def migrate_file(path, params):
    """Rewrite the renamed keys of a config file (top-level 'old_key:' lines) to their new names, the rest of the
    file (comments, order) kept; warn once for each. An upgrade never means editing the file by hand."""
    renames = {old: p.key for p in params for old in p.renamed_from}
    if not renames or not os.path.isfile(path) or os.path.islink(path):
        return
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return   # read_file says what is wrong with it
    present = {line.split(":", 1)[0] for line in lines if ":" in line and not line[:1].isspace()}
    changed = []
    for i, line in enumerate(lines):
        old = line.split(":", 1)[0]
        if ":" in line and old in renames and renames[old] not in present:
            lines[i] = renames[old] + line[len(old):]
            changed.append(old)
    if changed:
        try:
            write_private(path, "\n".join(lines))
        except ConfigError:   # a read-only file: the old keys are still read under their new names (merge_sources)
            return
        for old in changed:
            log.warning("Config key '%s' is now '%s'; rewritten in %s.", old, renames[old], path)


def ui_origin(param):
    """Return how a problem names a value set in the ThreatQ UI: the field by its label."""
    return f"the ThreatQ UI (Configuration tab of the connector, field '{param.label}')"


def _plausible(key):
    """Return whether an unknown key may be named in a message: short and identifier-like, like a real key."""
    return isinstance(key, str) and len(key) <= 64 and key.replace("_", "a").replace("-", "a").isalnum() \
        and key.isascii()


def missing(params, raw):
    """Return the params that must be asked for: required, unset and without default."""
    out = []
    for param in params:
        value = raw.get(param.key)
        if (value is None or value == "") and param.required and param.default is None:
            out.append(param)
    return out


def prompt(params, raw, *, ask=input, ask_secret=getpass.getpass, out=None):
    """Ask for each param in turn (defaults shown, secrets hidden, bad answers re-asked); return raw values."""
    out = out or sys.stdout
    answers = dict(raw)
    known = {p.key: p for p in params}
    for param in params:
        if param.ask_if is not None and not param.ask_if(
                {k: check_value(known[k], v)[0] if k in known else v for k, v in answers.items()}):
            continue
        while True:
            shown = f" [{_shown_default(param)}]" if param.default not in (None, "") and not param.secret else ""
            question = f"{param.label}{shown}: "
            read = ask_secret if param.secret else ask
            try:
                answer = read(question)
                if param.multiline and answer.strip().startswith("-----BEGIN"):
                    answer = _read_pem(answer, read)
            except EOFError:
                raise ConfigError(f"No answer for {param.label} ({param.key}): the input ended.",
                                  "run again and answer every prompt, or write the config file "
                                  "(see --print-config-template).") from None
            if answer == "" and param.default is not None:
                answer = param.default
            _, problem = check_value(param, answer)
            if problem is None:
                answers[param.key] = answer
                break
            print(problem, file=out, flush=True)
    return answers


def _shown_default(param):
    if param.type is bool:
        return "yes" if param.default else "no"
    if isinstance(param.default, (list, tuple)):
        return ", ".join(map(str, param.default))
    return param.default


def _read_pem(first, read):
    """Return pasted PEM text: the first line, then every line up to an empty one (a chain holds several blocks)."""
    lines = [first.strip()]
    while True:
        line = read("").strip()
        if not line:
            return "\n".join(lines) + "\n"
        lines.append(line)


def write_file(path, params, raw, header=""):
    """Write raw values (only declared keys, declared order) to path atomically, mode 0600; the other local
    parameters follow commented out, with their help and default, for the user to finish the configuration."""
    ordered = {p.key: _plain(raw[p.key]) for p in params if raw.get(p.key) is not None}
    text = (header + "\n" if header else "") + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)
    rest = [p for p in params if p.key not in ordered and not p.ui]
    if rest:
        lines = ["", "# Other parameters: remove the '#' before a key to set it (the value shown is the default)."]
        for param in rest:
            lines.append(f"# {param.label}: {param.help}".rstrip())
            value = param.default
            dumped = (yaml.safe_dump({param.key: value}, sort_keys=False, allow_unicode=True).rstrip()
                      if value is not None else f"{param.key}:")
            lines.extend(f"# {line}" for line in dumped.splitlines())
        text += "\n".join(lines) + "\n"
    write_private(path, text)


def _plain(value):
    return reveal(value)


def dump(config, params, origins=None, header=""):
    """Return the effective config as a YAML config file the command reads back: unset values commented out,
    secrets never shown (commented, to be set again), and where a value came from when it was not this file."""
    origins = origins or {}
    lines = [header] if header else []
    for param in params:
        value = config.get(param.key) if param.key in config else None
        if isinstance(value, Secret):
            lines.append(f"# {param.key}: '****'   # secret, set but not shown: write it here or set "
                         f"{param.env or 'TQ_CONN_' + param.key.upper()}")
            continue
        if value is None:
            lines.append(f"# {param.key}:")
            continue
        text = yaml.safe_dump({param.key: _yaml_safe(value)}, sort_keys=False, allow_unicode=True,
                              default_flow_style=False).rstrip()
        if param.key in origins:
            text += f"\n# ({param.key} above is set in {origins[param.key]})"
        lines.append(text)
    return "\n".join(lines) + "\n"


def _yaml_safe(value):
    """Return value as plain YAML data (a checked value may be of a richer type: written as its text)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _yaml_safe(v) for k, v in value.items()}
    return str(value)


def template(params, command=""):
    """Return a YAML template with every parameter, commented with its help, type and default."""
    lines = [f"# Configuration of {command}" if command else "# Configuration", "#"]
    for param in params:
        lines.append(f"# {param.label}: {param.help}".rstrip())
        req = "required" if param.required else "optional"
        lines.append(f"#   {param.type_name()}, {req}" + (", secret" if param.secret else ""))
        if param.range:
            lines.append(f"#   range {param.range[0]} to {param.range[1]}")
        value = param.default
        if value is None:
            lines.append(f"# {param.key}:")
        else:
            dumped = yaml.safe_dump({param.key: value}, sort_keys=False).rstrip()
            lines.extend(f"# {line}" for line in dumped.splitlines())
        lines.append("")
    return "\n".join(lines)


def ui_definition(params):
    """Return the ThreatQ UI field definitions of the UI parameters."""
    fields = []
    for param in params:
        if not param.ui:
            continue
        kind = "password" if param.secret and not param.multiline else (
            "textarea" if param.multiline else "select" if param.choices else
            "checkbox" if param.type is bool else "number" if param.type in (int, float) else "text")
        item = {"name": param.key, "label": param.label, "type": kind, "required": param.required,
                "description": param.help}
        if param.default is not None:
            item["default"] = param.default
        if param.choices:
            item["options"] = list(param.choices)
        if param.secret:
            item["masked"] = True
        fields.append(item)
    return fields


def markdown_table(params):
    """Return the README parameter table of params, in Markdown."""
    rows = ["| Parameter | Key | Type | Default | Required | Description |",
            "| --- | --- | --- | --- | --- | --- |"]
    for p in params:
        default = "" if p.default is None else f"`{p.default}`"
        desc = p.help.replace("|", "\\|")
        if p.secret:
            desc += " Secret: never logged."
        if p.env:
            desc += f" Environment: `{p.env}`."
        if p.range:
            desc += f" Range {p.range[0]} to {p.range[1]}."
        rows.append(f"| {p.label} | `{p.key}` | {p.type_name()} | {default} | {'yes' if p.required else 'no'} | {desc} |")
    return "\n".join(rows)


__all__ = ["Param", "Secret", "Config", "reveal", "validate", "check_value", "read_file", "merge_sources",
           "ui_origin", "dump", "migrate_file", "missing", "prompt", "write_file", "template", "ui_definition", "markdown_table"]
