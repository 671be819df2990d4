"""The command line every connector shares: its standard flags, and the connector's own added to them."""

import argparse

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
    parser.add_argument("--force", action="store_true",
                        help="pull and deliver everything now, whatever the refresh times and versions say")
    parser.add_argument("--dry-run", action="store_true",
                        help="fetch and map everything, deliver nothing and change no state; say what would be sent")
    if connector.add_arguments:
        connector.add_arguments(parser)
    return parser


__all__ = ["parser", "EPILOG"]
