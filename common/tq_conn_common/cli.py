"""The driver of every connector command: standard flags, the run sequence, exit codes and the summary."""

import argparse
import importlib.metadata
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from tq_conn_common import config as cfg
from tq_conn_common import cron, logs
from tq_conn_common.errors import (EXIT_CONFIG, EXIT_FAILED, EXIT_OK, BadRecord, ConfigError, TqConnError,
                                   UsageError)
from tq_conn_common.http import HttpClient
from tq_conn_common.lock import RunLock
from tq_conn_common.state import State

log = logging.getLogger(__name__)
summary_log = logging.getLogger("tq_conn_common.summary")


class _Stop(Exception):
    """Ends the command early with an exit code and a message (no error)."""

    def __init__(self, code=EXIT_OK, message=""):
        super().__init__(message)
        self.code, self.message = code, message


def stop(message="", code=EXIT_OK):
    """End the run now, print message, exit with code (used for 'disabled in the UI' and first-run setup)."""
    raise _Stop(code, message)


class Stats:
    """Counters of one run, printed as the last line of every run."""

    def __init__(self):
        self.requests = 0
        self.received = 0
        self.skipped = 0
        self.duplicates = 0
        self.delivered = 0
        self.started = time.monotonic()

    @property
    def elapsed(self):
        return time.monotonic() - self.started

    def line(self):
        """Return the one-line run summary."""
        elapsed = self.elapsed
        rate = self.delivered / elapsed if elapsed > 0 else 0.0
        return (f"Run statistics: requests made {self.requests}, items received {self.received}, "
                f"skipped as invalid {self.skipped}, duplicates dropped {self.duplicates}, "
                f"items delivered {self.delivered}, items per second {rate:.1f}, elapsed {elapsed:.2f} s")


class Run:
    """Everything one run of a connector needs: its config, state, HTTP clients, counters and paths."""

    def __init__(self, connector, args, config, state, paths):
        self.connector = connector
        self.args = args
        self.config = config
        self.state = state
        self.paths = paths
        self.stats = Stats()
        self.started = False  # set once the lock is taken: from then on the run ends with its statistics line
        self._clients = []

    @property
    def name(self):
        return self.args.name

    def http(self, base_url="", **kwargs):
        """Return an HttpClient that counts its requests in this run's statistics."""
        kwargs.setdefault("stats", self.stats)
        client = HttpClient(base_url, **kwargs)
        self._clients.append(client)
        return client

    def records(self, records, to_row, what="record"):
        """Yield to_row(record) for each record, counting received and skipped; a BadRecord is logged and skipped."""
        for record in records:
            self.stats.received += 1
            try:
                row = to_row(record)
            except BadRecord as bad:
                self.skip(bad, what)
                continue
            if row is not None:
                yield row

    def skip(self, bad, what="record"):
        """Count and log one unusable vendor record."""
        self.stats.skipped += 1
        level = logging.WARNING if self.stats.skipped <= 20 else logging.DEBUG
        log.log(level, "Skipped %s: %s", what, bad)
        if self.stats.skipped == 20:
            log.warning("More records skipped; the rest are logged at -v 3 only.")

    def close(self):
        for client in self._clients:
            client.close()


@dataclass
class Connector:
    """A connector declared as data: its parameters, its run function, and optional hooks."""

    name: str
    title: str
    params: tuple
    run: Callable = None              # run(run): fetch, map, deliver, commit state
    fetch: Callable = None            # simple form: fetch(run) yields records ...
    to_row: Callable = None           # ... to_row(record) -> row or BadRecord ...
    lookup: object = None             # ... delivered to this LookupSpec as a full replacement
    description: str = ""
    add_arguments: Callable = None    # add_arguments(parser): connector flags
    load_config: Callable = None      # load_config(config_dir, name) -> raw dict or None (foreign config files)
    on_configured: Callable = None    # on_configured(run): after the first-run prompts wrote the config
    remote_values: Callable = None    # remote_values(run) -> raw values of the UI parameters
    lock_params: tuple = ("allow_multiple_runs", "kill_after_seconds")
    errors: tuple = ()                # README error table: (id or exit code, message, fix)
    log_subdir: str = ""
    epilog: str = ""
    requires_common: str = None
    _parser: argparse.ArgumentParser = field(default=None, repr=False)

    @property
    def command(self):
        return "tq-conn-" + self.name.replace("_", "-")

    @property
    def distribution(self):
        return self.command

    def parser(self):
        """Return the argument parser: the standard flags plus the connector's own."""
        parser = argparse.ArgumentParser(
            prog=self.command, description=self.description or self.title, epilog=self.epilog or _EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("-c", "--config", metavar="CONFIG", default=".",
                            help="folder holding the config file and the run state (default: the current folder)")
        parser.add_argument("-ll", "--loglocation", metavar="LOGLOCATION", default="stdout",
                            help="folder for the rotating log file, or 'stdout' (default)")
        parser.add_argument("-v", "--verbosity", type=int, choices=(1, 2, 3), default=1,
                            help="1 warnings and the summary (default), 2 progress, 3 debug with the effective config")
        parser.add_argument("-n", "--name", metavar="NAME", default=None,
                            help="instance name: several instances on one host, each with its own config, state and lock")
        parser.add_argument("--cron", metavar="SCHEDULE", default=None,
                            help='write a commented-out cron.d entry with this schedule, e.g. "0 */2 * * *", and exit')
        parser.add_argument("--cron-dir", metavar="DIR", default="/etc/cron.d", help="where --cron writes (default /etc/cron.d)")
        parser.add_argument("--print-config-template", action="store_true",
                            help="print every parameter with its help as a YAML template and exit")
        parser.add_argument("--show-config", action="store_true", help="print the effective config (secrets masked) and exit")
        parser.add_argument("--reset-state", action="store_true",
                            help="forget what earlier runs remembered (checkpoints, last run) and start over")
        if self.add_arguments:
            self.add_arguments(parser)
        return parser

    def paths(self, args):
        """Return the file paths of this instance: config, state, lock base, log file name."""
        stem = self.command + (f"-{args.name}" if args.name else "")
        directory = args.config
        return {"dir": directory, "config": os.path.join(directory, stem + ".yaml"),
                "state": os.path.join(directory, stem + ".state.json"), "lock": os.path.join(directory, stem),
                "log": stem + ".log"}

    def main(self, argv=None):
        """Run the command and exit with its code."""
        sys.exit(self.execute(argv))

    def execute(self, argv=None):
        """Run the command; return the exit code."""
        parser = self.parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            return EXIT_CONFIG if exc.code else EXIT_OK
        if args.print_config_template:
            sys.stdout.write(cfg.template(self.params, self.command) + "\n")
            return EXIT_OK
        run = None
        try:
            if args.name and not args.name.replace("-", "").replace("_", "").isalnum():
                raise UsageError(f"The instance name {args.name!r} may hold only letters, digits, '-' and '_'.",
                                 "choose another -n NAME.")
            if args.cron:  # before any prompt, so that a typo does not cost the answers
                cron.check_schedule(args.cron)
                cron.check_dir(args.cron_dir)
            logdir = args.loglocation
            if logdir != "stdout" and self.log_subdir:
                logdir = os.path.join(logdir, self.log_subdir)
                os.makedirs(logdir, exist_ok=True)
            logs.setup(logdir, args.verbosity, self.paths(args)["log"])
            _check_common(self)
            run = self._configure(args)
            if args.show_config:
                for key, value in run.config.masked().items():
                    sys.stdout.write(f"{key}: {value}\n")
                return EXIT_OK
            log.debug("Effective config: %s", run.config.masked())
            return self._run(run)
        except _Stop as done:
            if done.message:
                sys.stdout.write(done.message + "\n")
            return done.code
        except TqConnError as exc:
            return _report(exc)
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted; state was not advanced.\n")
            return EXIT_FAILED
        except Exception as exc:  # the boundary of the command: nothing escapes as a bare traceback
            log.debug("Unexpected failure", exc_info=True)
            if _logging_to_file():
                log.error("Unexpected failure: %s: %s", type(exc).__name__, exc)
            sys.stderr.write(logs.redact(f"Error: unexpected failure: {type(exc).__name__}: {exc}\n"
                                         "The traceback is in the log at -v 3; please report it.\n"))
            return EXIT_FAILED
        finally:
            if run is not None:
                run.close()
                if run.started:
                    _summary(run)

    def _configure(self, args):
        """Load, prompt for and validate the config; return a Run ready to start."""
        paths = self.paths(args)
        if not os.path.isdir(paths["dir"]):
            raise UsageError(f"The config folder {paths['dir']} does not exist.",
                             f"create it (mkdir -p {paths['dir']}) or give another with -c.")
        first_run = not os.path.exists(paths["config"])
        file_values = cfg.read_file(paths["config"])
        if self.load_config:
            foreign = self.load_config(paths["dir"], args.name)
            if foreign:
                file_values = {**foreign, **file_values}
                first_run = False
        raw = cfg.merge_sources(self.params, file_values)
        local = tuple(p for p in self.params if not p.ui)
        needed = [p for p in cfg.missing(local, raw) if p.asked] or cfg.missing(local, raw)
        prompted = False
        if needed:
            _other_problems(local, raw, paths["config"], needed)  # those first: prompting would not fix them
            if not sys.stdin.isatty():
                names = ", ".join(f"{p.label} ({p.key})" for p in needed)
                ids = "".join(f"\n  {p.messages['missing']}" for p in needed if p.messages.get("missing"))
                raise ConfigError(f"Missing configuration and no terminal to ask: {names}.{ids}",
                                  f"run {self.command} once by hand to answer the prompts, write them to "
                                  f"{paths['config']} (see --print-config-template), or set them as environment "
                                  "variables (" + ", ".join(p.env or f"TQ_CONN_{p.key.upper()}" for p in needed) + ").")
            ask = [p for p in local if p.asked] if first_run else needed
            raw = cfg.prompt(ask, raw)
            prompted = True
        config = cfg.validate(local, raw, paths["config"])
        logs.add_secrets(config.secrets())
        if prompted or (first_run and args.cron):
            # typed values (500, not '500'; true, not 'y'), as validation converted them
            typed = {**raw, **{k: v for k, v in config.items()
                               if k in raw and isinstance(cfg.reveal(v), (str, int, float, bool, list, dict))}}
            cfg.write_file(paths["config"], self.params, typed, f"# {self.command} configuration (mode 0600)")
            log.info("Configuration written to %s", paths["config"])
        state = State(paths["state"])
        run = Run(self, args, config, state, paths)
        run.raw = raw
        if args.cron:
            line = cron.line(args.cron, self.command, args.config, args.loglocation, args.verbosity, args.name)
            path = cron.write(args.cron_dir, self.command, line, args.name)
            sys.stdout.write(f"Cron entry written (commented out) to {path}:\n#{line}\n")
        if prompted or args.cron:
            if self.on_configured:
                self.on_configured(run)
            stop(f"Configuration written to {paths['config']}." if prompted and not self.on_configured else "")
        if self.remote_values:
            remote = self.remote_values(run) or {}
            raw = {**raw, **{k: v for k, v in remote.items() if v not in (None, "")}}
        run.config = cfg.validate(self.params, raw, paths["config"])
        run.raw = raw
        logs.add_secrets(run.config.secrets())
        if any(p.key == "devo_transport" for p in self.params):
            from tq_conn_common import devo
            log.info("Devo transport: %s", devo.check_output(run.config))
        if args.reset_state:
            log.warning("State reset: this run starts over.")
            state.reset()
        return run

    def _run(self, run):
        """Take the lock, run, and print the summary; return the exit code."""
        allow, kill = self.lock_params
        declared = {p.key for p in self.params}
        roles = (("allow_multiple_runs", allow), ("kill_after_seconds", kill))
        lock = RunLock(run.paths["lock"], allow_multiple_runs=bool(run.config.get(allow, False)),
                       kill_after_seconds=run.config.get(kill, 0) or 0,
                       settings=tuple(role for role, key in roles if key in declared))
        with lock:
            # Read when the run was configured, the state may have moved since: a run that held the lock then
            # has committed what it delivered. Starting from the older state would send it again.
            run.state.reload()
            run.started = True
            if self.run:
                self.run(run)
            else:
                _simple_run(self, run)
        return EXIT_OK


def _other_problems(params, raw, path, missing):
    """Raise the ConfigError of validation if it finds problems other than the missing params."""
    try:
        cfg.validate(params, raw, path)
    except ConfigError as exc:
        heads = tuple(f"{p.label} ({p.key}):" for p in missing) + tuple(
            p.messages["missing"] for p in missing if p.messages.get("missing"))
        if any(not problem.startswith(heads) for problem in exc.problems):
            raise


def _simple_run(connector, run):
    """Fetch, map, dedupe and deliver one lookup as a full replacement; commit state after Devo accepted it."""
    from tq_conn_common import devo
    rows = run.records(connector.fetch(run), connector.to_row)
    devo.deliver(run, connector.lookup, rows, mode="replace")
    run.state["last_run"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run.state.commit()


def _logging_to_file():
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)


def _summary(run):
    """Log the run statistics line; print it too when the log goes to a file."""
    line = run.stats.line()
    summary_log.info("%s", line)
    if _logging_to_file():
        sys.stdout.write(line + "\n")


def _report(exc):
    """Print the error and its fix to stderr (and to the log file, if there is one); return the exit code."""
    message = logs.redact(f"Error: {exc.message}")
    fix = logs.redact(f"Fix: {exc.fix}") if exc.fix else ""
    log.debug("Error detail", exc_info=True)
    if _logging_to_file():  # on stdout the log line would repeat what stderr says
        log.error("%s%s", exc.message, f" Fix: {exc.fix}" if exc.fix else "")
    sys.stderr.write(message + ("\n" + fix if fix else "") + "\n")
    return exc.exit_code


def _check_common(connector):
    """Refuse to run with an installed tq-conn-common outside the connector's declared range."""
    from tq_conn_common import __version__
    spec = connector.requires_common
    if spec is None:
        try:
            requirements = importlib.metadata.requires(connector.distribution) or []
        except importlib.metadata.PackageNotFoundError:
            return
        for req in requirements:
            if req.replace("_", "-").lower().startswith("tq-conn-common"):
                spec = req[len("tq-conn-common"):].split(";")[0].strip().strip("()")
                break
    if not spec:
        return
    from packaging.specifiers import SpecifierSet
    if __version__ not in SpecifierSet(spec):
        raise UsageError(f"{connector.command} needs tq-conn-common {spec}, but {__version__} is installed.",
                         f"pip install 'tq-conn-common{spec}' (from the same wheels/ folder as the connector).")


_EPILOG = """exit codes: 0 ok, 1 run failed (rerun later; nothing is lost), 2 configuration or usage error,
3 skipped because another run holds the lock.
Environment: every parameter may also be set as TQ_CONN_<KEY> (see --print-config-template)."""

__all__ = ["Connector", "Run", "Stats", "stop"]
