"""The cron.d entry of a connector command: written commented out until the user enables it."""

import os
import shutil
import sys

from tq_conn_common.errors import UsageError
from tq_conn_common.files import write_private

FIELDS = 5


def check_schedule(schedule):
    """Return the schedule if it has five cron fields (or an @keyword); raise UsageError otherwise."""
    text = (schedule or "").strip()
    if text.startswith("@") and text in ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@reboot",
                                         "@annually", "@midnight"):
        return text
    if len(text.split()) != FIELDS:
        raise UsageError(f"The cron schedule {schedule!r} does not have five fields.",
                         'give minute hour day month weekday, e.g. --cron "0 */2 * * *".')
    return text


def line(schedule, command, config_dir, log_location, verbosity, name=None, user="root"):
    """Return the cron.d line that runs command with its config and log locations."""
    executable = command if os.path.isabs(command) else (
        os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), command)
        if os.path.basename(sys.argv[0]) == command else shutil.which(command) or command)
    parts = [check_schedule(schedule), user, executable, "-c", os.path.abspath(config_dir),
             "-ll", log_location if log_location == "stdout" else os.path.abspath(log_location), "-v", str(verbosity)]
    if name:
        parts += ["-n", name]
    return " ".join(parts)


def entry(cron_line, command):
    """Return the whole cron.d file: a header explaining how to enable it, then the line commented out."""
    return (f"# cron entry for {command}, written by {command} --cron.\n"
            "# It is commented out so that you can finish the configuration first.\n"
            "# To enable it, remove the '#' at the start of the last line; cron reads /etc/cron.d by itself.\n"
            "# Logs go to the -ll folder; run the command by hand first to check it works.\n"
            f"#{cron_line}\n")


def check_dir(cron_dir):
    """Return cron_dir if it is a folder this user can write; raise UsageError otherwise."""
    if not os.path.isdir(cron_dir):
        raise UsageError(f"The cron folder {cron_dir} does not exist.",
                         "create it, or give another with --cron-dir.")
    if not os.access(cron_dir, os.W_OK):
        raise UsageError(f"The cron folder {cron_dir} is not writable by this user.",
                         "run the command with sudo, or write the entry elsewhere with --cron-dir and copy it there.")
    return cron_dir


def write(cron_dir, command, cron_line, name=None):
    """Write the commented-out entry into cron_dir (file name without dots, as cron.d requires); return its path."""
    check_dir(cron_dir)
    filename = (command + (f"-{name}" if name else "")).replace(".", "-")
    path = os.path.join(cron_dir, filename)
    write_private(path, entry(cron_line, command))
    os.chmod(path, 0o644)
    return path


__all__ = ["check_schedule", "check_dir", "line", "entry", "write"]
