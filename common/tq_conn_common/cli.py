"""The command line every connector shares: its standard flags, and the connector's own added to them."""

import argparse
import importlib.metadata

from tq_conn_common.version import __version__

LEVELS = {"DEBUG": 3, "INFO": 2, "WARNING": 1, "ERROR": 1, "CRITICAL": 1}


class _LogLevel(argparse.Action):
    """-l LEVEL: the verbosity by its level name (DEBUG is -v 3, INFO -v 2, WARNING -v 1; ERROR also quiets warnings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.log_level, namespace.verbosity = values, LEVELS[values]


def whole(low, high=None):
    """Return an argparse type: a whole number from low to high (no high: no maximum)."""
    def convert(text):
        value = int(text) if text.strip().lstrip("-").isdecimal() else None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number " + (
                f"from {low} to {high}" if high is not None else f"of {low} or more"))
        return value
    return convert

EPILOG = """exit codes: 0 ok, 1 run failed (rerun later; nothing is lost), 2 configuration or usage error,
3 skipped because another run holds the lock.
Environment: every parameter may also be set as TQ_CONN_<KEY> (see --print-config-template);
TQ_CONN_NOW sets the clock refresh times and windows are measured with (a testing aid)."""


def parser(connector):
    """Return the argument parser of a connector command: the standard flags plus the connector's own."""
    parser = argparse.ArgumentParser(
        prog=connector.command, description=connector.description or connector.title,
        epilog=connector.epilog or EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", metavar="CONFIG", default=".",
                        help="folder holding the config file and the run state (default: the current folder)")
    parser.add_argument("-ll", "--loglocation", metavar="LOGLOCATION", default="stdout",
                        help="folder for the rotating log file, or 'stdout' (default)")
    parser.add_argument("-v", "--verbosity", type=int, choices=(1, 2, 3), default=connector.verbosity,
                        help=f"1 warnings and the summary, 2 progress, 3 debug with the effective config (default "
                             f"{connector.verbosity})")
    parser.add_argument("-l", "--log-level", metavar="LEVEL", action=_LogLevel, type=str.upper, choices=tuple(LEVELS),
                        default={1: "WARNING", 2: "INFO", 3: "DEBUG"}[connector.verbosity],
                        help="the verbosity by name: DEBUG (-v 3), INFO (-v 2), WARNING (-v 1) or ERROR")
    parser.add_argument("-n", "--name", metavar="NAME", default=None,
                        help="instance name: several instances on one host, each with its own config, state and lock")
    parser.add_argument("--cron", metavar="SCHEDULE", default=None,
                        help='write the cron.d entry with this schedule, e.g. "0 */2 * * *" or @hourly, and exit: '
                             'commented out when new, kept enabled if you enabled it; no config needed yet')
    parser.add_argument("--cron-dir", metavar="DIR", default="/etc/cron.d", help="where --cron writes (default /etc/cron.d)")
    parser.add_argument("--cron-user", metavar="USER", default=None,
                        help="the user the cron entry runs as (default: the user running --cron)")
    parser.add_argument("--print-config-template", action="store_true",
                        help="print every parameter with its help as a YAML template and exit")
    parser.add_argument("--show-config", action="store_true", help="print the effective config (secrets masked) and exit")
    parser.add_argument("--show-state", action="store_true",
                        help="print what earlier runs remembered (each stream's last run, each lookup's delta index: "
                             "rows and last full replacement) and exit")
    parser.add_argument("--reset-state", action="store_true",
                        help="forget what earlier runs remembered (checkpoints, last run) and start over")
    parser.add_argument("--force", action="store_true",
                        help="pull and deliver everything now, whatever the refresh times and versions say")
    parser.add_argument("--dry-run", action="store_true",
                        help="fetch and map everything, deliver nothing and change no state; say what would be sent")
    parser.add_argument("--version", action="version", version=version(connector),
                        help="print the versions of this connector and of tq-conn-common, and exit")
    if connector.add_arguments:
        connector.add_arguments(parser)
    return parser


def version(connector):
    """Return the version line of a connector command: its own version and that of tq-conn-common."""
    try:
        own = importlib.metadata.version(connector.distribution)
    except importlib.metadata.PackageNotFoundError:
        own = "(not installed as a distribution)"
    return f"{connector.command} {own} (tq-conn-common {__version__})"


__all__ = ["parser", "whole", "version", "EPILOG", "LEVELS"]
