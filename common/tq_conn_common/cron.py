"""The cron.d entry of a connector command: written commented out, kept enabled once the user enabled it."""

import getpass
import os
import re
import shutil
import sys

from tq_conn_common.errors import UsageError
from tq_conn_common.files import write_private

DEFAULT_LOG_DIR = "/var/log/tq_labs"   # where a cron entry logs when --cron is given without -ll
MACROS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight", "@reboot")
# minute, hour, day of month, month, day of week: their range and the names cron accepts for them
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
           ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
_EXAMPLE = 'give minute hour day month weekday, e.g. --cron "0 */2 * * *", or a macro such as @hourly.'
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


def check_schedule(schedule):
    """Return the schedule if it has five cron fields, each in range, or is an @macro; raise UsageError otherwise."""
    text = " ".join((schedule or "").split())
    if text.startswith("@"):
        if text in MACROS:
            return text
        raise UsageError(f"The cron schedule {schedule!r} is not a cron macro ({', '.join(MACROS)}).", _EXAMPLE)
    fields = text.split(" ") if text else []
    if len(fields) != len(_FIELDS):
        raise UsageError(f"The cron schedule {schedule!r} does not have five fields.", _EXAMPLE)
    for value, (name, low, high, names) in zip(fields, _FIELDS):
        problem = _field_problem(value, low, high, names)
        if problem:
            raise UsageError(f"The cron schedule {schedule!r}: the {name} field {value!r} {problem}.",
                             f"the {name} takes {low} to {high}" + (" or its three-letter name" if names else "") +
                             ", '*', ranges a-b, steps */n and lists a,b; " + _EXAMPLE)
    return text


def _field_problem(value, low, high, names):
    """Return what is wrong with one cron field, or None."""
    for part in value.split(","):
        spec, _, step = part.partition("/")
        if step and (not step.isdecimal() or not 1 <= int(step) <= high):
            return f"has the step {step!r}, not a number from 1 to {high}"
        if spec == "*":
            continue
        ends = spec.split("-")
        if len(ends) > 2 or not all(ends):
            return "is not a number, a range a-b, '*' or a list of them"
        numbers = []
        for end in ends:
            number = names.index(end.lower()) + low if end.lower() in names else (
                int(end) if end.isdecimal() else None)
            if number is None:
                return f"holds {end!r}, which is neither a number" + (" nor a name" if names else "")
            if not low <= number <= high:
                return f"holds {number}, outside {low} to {high}"
            numbers.append(number)
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return f"has the range {spec}, which runs backwards"
    return None


def check_user(user):
    """Return the user the cron entry runs as: user, or the user running this command."""
    user = user or getpass.getuser()
    if not _USER.match(user):
        raise UsageError(f"The cron user {user!r} is not a user name.", "give a user name with --cron-user.")
    return user


def line(schedule, command, config_dir, log_location, verbosity, name=None, user=None):
    """Return the cron.d line that runs command as user with its config and log locations (a file, never stdout)."""
    executable = command if os.path.isabs(command) else (
        os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), command)
        if os.path.basename(sys.argv[0]) == command else shutil.which(command) or command)
    logs = DEFAULT_LOG_DIR if log_location in (None, "", "stdout") else os.path.abspath(log_location)
    parts = [check_schedule(schedule), check_user(user), executable, "-c", os.path.abspath(config_dir),
             "-ll", logs, "-v", str(verbosity)]
    if name:
        parts += ["-n", name]
    return " ".join(parts)


def entry(cron_line, command, enabled=False):
    """Return the whole cron.d file: a header explaining how to enable it, then the line (commented out unless
    enabled)."""
    how = ("It is enabled: cron runs it. To pause it, put a '#' at the start of the last line.\n" if enabled else
           "It is commented out so that you can finish the configuration first.\n"
           "# To enable it, remove the '#' at the start of the last line; cron reads /etc/cron.d by itself.\n")
    return (f"# cron entry for {command}, written by {command} --cron; run --cron again to change it\n"
            f"# (an enabled entry stays enabled). {how}"
            "# Logs go to the -ll folder; run the command by hand first to check it works.\n"
            + ("" if enabled else "#") + f"{cron_line}\n")


def check_dir(cron_dir):
    """Return cron_dir if it is a folder this user can write; raise UsageError otherwise."""
    if not os.path.isdir(cron_dir):
        raise UsageError(f"The cron folder {cron_dir} does not exist.",
                         "create it, or give another with --cron-dir.")
    if not os.access(cron_dir, os.W_OK):
        raise UsageError(f"The cron folder {cron_dir} is not writable by this user.",
                         "run the command with sudo, or write the entry elsewhere with --cron-dir and copy it there.")
    return cron_dir


def path_of(cron_dir, command, name=None):
    """Return the path of the entry of command (and instance name) in cron_dir: no dots, as cron.d requires."""
    return os.path.join(cron_dir, (command + (f"-{name}" if name else "")).replace(".", "-"))


def is_enabled(path):
    """Return True if the entry at path has a line cron runs (not a comment, not empty)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(text.strip() and not text.lstrip().startswith("#") and "=" not in text.split()[0]
                       for text in fh)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UsageError(f"Cannot read the cron entry {path}: {exc.strerror}.",
                         "make it readable by this user, or run the command with sudo.") from exc


def write(cron_dir, command, cron_line, name=None):
    """Write the entry into cron_dir: commented out when new or still commented, enabled when the user enabled it.

    Return (path, enabled)."""
    check_dir(cron_dir)
    path = path_of(cron_dir, command, name)
    enabled = is_enabled(path)
    write_private(path, entry(cron_line, command, enabled))
    os.chmod(path, 0o644)
    return path, enabled


__all__ = ["check_schedule", "check_user", "check_dir", "line", "entry", "write", "path_of", "is_enabled",
           "DEFAULT_LOG_DIR", "MACROS"]
