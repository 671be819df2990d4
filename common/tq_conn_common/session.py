"""The run sequence of every connector command: arguments, configuration, the lock, the runner, the summary."""

import importlib.metadata
import logging
import os
import signal
import sys
import threading
import time

from tq_conn_common import cli, cron, http, logs, runner
from tq_conn_common import config as cfg
from tq_conn_common.devo import delta, settings as devo_settings
from tq_conn_common.errors import (EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ConfigError, Stop, TqConnError,
                                   UsageError, stop)
from tq_conn_common.http import HttpClient
from tq_conn_common.devo import certs
from tq_conn_common.lock import MAX_RUN_SECONDS, RunLock
from tq_conn_common.state import State
from tq_conn_common.version import __version__

log = logging.getLogger(__name__)
summary_log = logging.getLogger("tq_conn_common.summary")
record_log = logging.getLogger("tq_conn_common.cli")   # the command's own voice about the records it skips


EXIT_INTERRUPTED = 130   # Ctrl-C, as shells report it


class Stopped(BaseException):
    """A signal or the run's deadline ends the run: raised wherever the main thread is, so that every finally runs
    (temporary files go, the lock is released) and nothing after it commits state. Not an Exception: no handler of
    a library's own errors swallows it."""

    def __init__(self, message, fix):
        super().__init__(message)
        self.message, self.fix = message, fix


def _on_signal(signum, frame):
    signal.signal(signum, signal.SIG_IGN)   # a second one must not cut the cleanup short
    name = signal.Signals(signum).name
    raise Stopped(f"Stopped by {name}; the lock was released and the state was not advanced past what was "
                  "delivered.", "run again; the next run goes on from the last delivery.")


def _on_deadline(signum, frame):
    raise Stopped(f"The run passed its {_deadline[0]} s deadline and stopped; the state was not advanced past "
                  "what was delivered.", f"raise {MAX_RUN_SECONDS.named} if runs need longer, or see what is slow "
                                         "in the log at -v 2.")


_deadline = [0]
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _handle_signals():
    """Install the run's signal handlers (main thread only); return the previous ones, to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in _SIGNALS:
        previous[signum] = signal.signal(signum, _on_signal)
    if hasattr(signal, "SIGALRM"):
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _on_deadline)
    return previous


def _restore_signals(previous):
    if hasattr(signal, "setitimer") and previous:
        signal.setitimer(signal.ITIMER_REAL, 0)
    http.set_run_deadline(None)
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _start_deadline(seconds):
    """Make the run stop itself after seconds (SIGALRM), and every HTTP wait respect it."""
    if not seconds:
        return
    _deadline[0] = seconds
    http.set_run_deadline(seconds)
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, seconds)


class Stats:
    """Counters of one run, printed as the last line of every run."""

    def __init__(self):
        self.requests = 0
        self.received = 0
        self.skipped = 0
        self.duplicates = 0
        self.delivered = 0
        self.unconfirmed = []   # lookups sent over the X.509 collector, which confirms nothing
        self.lookups = []       # how each lookup was delivered: "<name> full (N rows)", "<name> delta (...)"
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
                f"items delivered {self.delivered}, items per second {rate:.1f}, elapsed {elapsed:.2f} s"
                + (f"; lookups: {', '.join(self.lookups)}" if self.lookups else "")
                + (f"; sent unconfirmed: lookups {', '.join(self.unconfirmed)} went through the X.509 collector "
                   "(devo_transport: tls), which acknowledges nothing and whose lookup upload Devo announced to end "
                   "on 2026-01-01" if self.unconfirmed else ""))


class Run:
    """Everything one run of a connector needs: its config, state, HTTP clients, counters and paths."""

    def __init__(self, connector, args, config, state, paths, stats=None):
        self.connector = connector
        self.args = args
        self.config = config
        self.raw = {}
        self.origins = {}     # key -> where its value was set, when not in the config file (see config.validate)
        self.state = state
        self.paths = paths
        self.stats = stats or Stats()
        self.devo = None      # the Devo settings, checked once when the run starts
        self.started = False  # set once the lock is taken
        self.clients = []     # the HttpClients of the run (closed with it)

    @property
    def name(self):
        return self.args.name

    def http(self, service, base_url="", **kwargs):
        """Return an HttpClient of service that counts its requests in this run's statistics."""
        kwargs.setdefault("stats", self.stats)
        kwargs.setdefault("ca_param", _ca_param(self.connector, service))
        client = HttpClient(service, base_url, **kwargs)
        self.clients.append(client)
        return client

    def skip(self, bad, what="record"):
        """Count and log one unusable vendor record."""
        self.stats.skipped += 1
        level = logging.WARNING if self.stats.skipped <= 20 else logging.DEBUG
        record_log.log(level, "Skipped %s: %s", what, bad)
        if self.stats.skipped == 20:
            record_log.warning("More records skipped; the rest are logged at -v 3 only.")

    def close(self):
        for client in self.clients:
            client.close()


def _ca_param(connector, service):
    """Return the declared CA bundle parameter of a service (its label starts with the service's first word)."""
    word = str(getattr(service, "name", service)).split(" ")[0]
    return next((p for p in connector.params if p.key.endswith("_ca_bundle") and p.label.startswith(word)), None)


def paths(connector, args):
    """Return the file paths of an instance: config, state, lock base, log file name."""
    stem = connector.command + (f"-{args.name}" if args.name else "")
    directory = args.config
    return {"dir": directory, "config": os.path.join(directory, stem + ".yaml"),
            "state": os.path.join(directory, stem + ".state.json"), "lock": os.path.join(directory, stem),
            "log": stem + ".log"}


def execute(connector, argv=None):
    """Run a connector command; return the exit code."""
    parser = cli.parser(connector)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_CONFIG if exc.code else EXIT_OK
    if args.print_config_template:
        sys.stdout.write(cfg.template(connector.params, connector.command) + "\n")
        return EXIT_OK
    run = None
    stats = Stats()   # every run ends with its statistics line, a configuration error or a lock skip too
    previous = _handle_signals()
    try:
        certs.sweep()   # credential folders of runs that were killed (only where in-memory files are not possible)
        if args.name and not args.name.replace("-", "").replace("_", "").isalnum():
            raise UsageError(f"The instance name {args.name!r} may hold only letters, digits, '-' and '_'.",
                             "choose another -n NAME.")
        if args.cron:  # before any prompt, so that a typo does not cost the answers
            cron.check_schedule(args.cron)
            cron.check_user(args.cron_user)
            cron.check_dir(args.cron_dir)
        logdir = args.loglocation
        if logdir != "stdout" and connector.log_subdir:
            logdir = os.path.join(logdir, connector.log_subdir)
            os.makedirs(logdir, exist_ok=True)
        logs.setup(logdir, args.verbosity, paths(connector, args)["log"])
        if args.log_level in ("ERROR", "CRITICAL") and args.verbosity == 1:   # a later -v 2 or 3 wins
            logging.getLogger().setLevel(args.log_level)
        _check_common(connector)
        if args.show_state:
            sys.stdout.write(delta.state_view(paths(connector, args)["state"]))
            return EXIT_OK
        run = _configure(connector, args, stats)
        if args.show_config:
            sys.stdout.write(cfg.dump(run.config, connector.params, run.origins,
                                      f"# {connector.command}: the effective configuration (usable as "
                                      f"{os.path.basename(run.paths['config'])}; secrets are not shown)"))
            return EXIT_OK
        log.debug("Effective config: %s", run.config.masked())
        return _run(run)
    except Stop as done:
        if done.message:
            sys.stdout.write(done.message + "\n")
        return done.code
    except TqConnError as exc:
        return _report(exc)
    except Stopped as exc:
        return _report(exc)
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted; the lock was released and the state was not advanced past what was "
                         "delivered.\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # the boundary of the command: nothing escapes as a bare traceback
        log.debug("Unexpected failure", exc_info=True)
        if _logging_to_file():
            log.error("Unexpected failure: %s: %s", type(exc).__name__, exc)
        sys.stderr.write(logs.redact(f"Error: unexpected failure: {type(exc).__name__}: {exc}\n"
                                     "The traceback is in the log at -v 3; please report it.\n"))
        return EXIT_FAILED
    finally:
        _restore_signals(previous)
        if run is not None:
            run.close()
        if not (args.show_config or args.show_state or args.cron):
            _summary(run.stats if run is not None else stats)


def _configure(connector, args, stats=None):
    """Load, prompt for and validate the config; return a Run ready to start."""
    where = paths(connector, args)
    if not os.path.isdir(where["dir"]):
        raise UsageError(f"The config folder {where['dir']} does not exist.",
                         f"create it (mkdir -p {where['dir']}) or give another with -c.")
    first_run = not os.path.exists(where["config"])
    cfg.migrate_file(where["config"], connector.params)
    file_values = cfg.read_file(where["config"])
    origins = {}
    if connector.load_config:
        foreign = connector.load_config(where["dir"], args.name)
        if foreign:
            origins = {k: v for k, v in getattr(foreign, "origins", {}).items() if k not in file_values}
            file_values = {**foreign, **file_values}
            first_run = False
    raw = cfg.merge_sources(connector.params, file_values, origins=origins)
    local = tuple(p for p in connector.params if not p.ui)
    needed = [p for p in cfg.missing(local, raw) if p.asked] or cfg.missing(local, raw)
    prompted = False
    if args.cron:
        _write_cron(connector, args)
        if needed and not sys.stdin.isatty():   # laid before the configuration (automation): finish it later
            stop(f"Configure {connector.command} before enabling the entry: run it once by hand, write "
                 f"{where['config']} (see --print-config-template), or set TQ_CONN_<KEY> variables in the entry.")
    if needed:
        _other_problems(local, raw, where["config"], needed, origins)  # those first: prompting would not fix them
        if not sys.stdin.isatty():
            names = ", ".join(f"{p.label} ({p.key})" for p in needed)
            ids = "".join(f"\n  {p.messages['missing']}" for p in needed if p.messages.get("missing"))
            raise ConfigError(f"Missing configuration and no terminal to ask: {names}.{ids}",
                              f"run {connector.command} once by hand to answer the prompts, write them to "
                              f"{where['config']} (see --print-config-template), or set them as environment "
                              "variables (" + ", ".join(p.env or f"TQ_CONN_{p.key.upper()}" for p in needed) + ").")
        ask = [p for p in local if p.asked] if first_run else needed
        raw = cfg.prompt(ask, raw)
        prompted = True
    config = cfg.validate(local, raw, where["config"], origins)
    logs.add_secrets(config.secrets())
    if prompted or (first_run and args.cron):
        # typed values (500, not '500'; true, not 'y'), as validation converted them
        typed = {**raw, **{k: v for k, v in config.items()
                           if k in raw and isinstance(cfg.reveal(v), (str, int, float, bool, list, dict))}}
        try:
            cfg.write_file(where["config"], connector.params, typed, f"# {connector.command} configuration (mode 0600)")
        except ConfigError as exc:   # the temporary file is gone: no answer (no secret) is left on disk
            raise ConfigError(f"Nothing was saved: {exc.message[:-1] if exc.message.endswith('.') else exc.message}, "
                              "so the answers typed were not kept.",
                              f"{exc.fix.rstrip('.')}; then run again and answer the prompts again (or write the "
                              "file by hand, see --print-config-template).") from None
        log.info("Configuration written to %s", where["config"])
    state = State(where["state"])
    run = Run(connector, args, config, state, where, stats)
    run.raw, run.origins = raw, origins
    if prompted or args.cron:
        if connector.on_configured:
            connector.on_configured(run)
        stop(f"Configuration written to {where['config']}." if prompted and not connector.on_configured else "")
    if connector.remote_values:
        remote = {k: v for k, v in (connector.remote_values(run) or {}).items() if v not in (None, "")}
        raw = {**raw, **remote}
        origins.update((p.key, cfg.ui_origin(p)) for p in connector.params if p.key in remote)
    run.config = cfg.validate(connector.params, raw, where["config"], origins)
    run.raw = raw
    logs.add_secrets(run.config.secrets())
    if any(p.key == devo_settings.TRANSPORT.key for p in connector.params):
        run.devo = devo_settings.check(run.config)   # once a run: certificate warnings print once
        log.info("Devo transport: %s", run.devo.transport)
    if args.reset_state:
        log.warning("State reset: this run starts over.")
        state.reset()
    return run


def _run(run):
    """Take the lock, run the streams, and print the summary; return the exit code."""
    connector = run.connector
    allow, kill = connector.lock_params
    declared = {p.key for p in connector.params}
    roles = (("allow_multiple_runs", allow), ("kill_after_seconds", kill))
    lock = RunLock(run.paths["lock"], allow_multiple_runs=bool(run.config.get(allow, False)),
                   kill_after_seconds=run.config.get(kill, 0) or 0,
                   settings=tuple(role for role, key in roles if key in declared))
    with lock:
        # Read when the run was configured, the state may have moved since: a run that held the lock then
        # has committed what it delivered. Starting from the older state would send it again.
        run.state.reload()
        run.started = True
        _start_deadline(run.config.get(MAX_RUN_SECONDS.key, MAX_RUN_SECONDS.default))
        _reset_if_changed(run)
        streams = connector.streams(run) if callable(connector.streams) else connector.streams
        runner.run_streams(run, streams)
    return EXIT_OK


def _reset_if_changed(run):
    """Forget the state when a parameter declared resets_state holds another value than the one stored with it."""
    for param in run.connector.params:
        if not param.resets_state:
            continue
        value, stored = run.config.get(param.key), run.state.get(param.key)
        if value is None:
            continue
        value = str(value)
        if value != stored and (stored is not None or any(k != param.key for k in run.state.pending)):
            template = param.messages.get("changed", "{key} changed ({old!r} -> {new!r}): the checkpoints are "
                                                     "forgotten and this run starts over.")
            log.warning(template.format(key=param.key, label=param.label, old=stored, new=value))
            run.state.reset()
        run.state[param.key] = value


def _write_cron(connector, args):
    """Write the cron entry (kept enabled if the user enabled it) and say where, and where it logs."""
    line = cron.line(args.cron, connector.command, args.config, args.loglocation, args.verbosity, args.name,
                     args.cron_user)
    path, enabled = cron.write(args.cron_dir, connector.command, line, args.name)
    sys.stdout.write(f"Cron entry updated in {path}; it stays enabled:\n{line}\n" if enabled else
                     f"Cron entry written (commented out) to {path}:\n#{line}\n")
    if args.loglocation == "stdout":
        folder = cron.DEFAULT_LOG_DIR
        ready = os.path.isdir(folder) and os.access(folder, os.W_OK)
        sys.stdout.write(f"It logs into {folder} (no -ll given)" + ("" if ready else
                         f", which cron's user must be able to write: mkdir -p {folder} && chown "
                         f"{cron.check_user(args.cron_user)} {folder}") + ".\n")


def _other_problems(params, raw, path, missing, origins=None):
    """Raise the ConfigError of validation if it finds problems other than the missing params."""
    try:
        cfg.validate(params, raw, path, origins)
    except ConfigError as exc:
        heads = tuple(f"{p.label} ({p.key}):" for p in missing) + tuple(
            p.messages["missing"] for p in missing if p.messages.get("missing"))
        if any(not problem.startswith(heads) for problem in exc.problems):
            raise


def _logging_to_file():
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)


def _summary(stats):
    """Log the run statistics line; print it too when the log goes to a file."""
    line = stats.line()
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
    return getattr(exc, "exit_code", EXIT_FAILED)


def _check_common(connector):
    """Refuse to run with an installed tq-conn-common outside the connector's declared range."""
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


__all__ = ["execute", "Run", "Stats", "Stopped", "paths"]
