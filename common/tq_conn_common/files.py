"""Atomic, private file writes (a temporary file beside the target, fsync, rename, mode 0600), and reads of the
files that hold credentials or state only when they deserve trust: not a link, ours, private."""

import errno
import json
import logging
import os
import stat
import tempfile

from tq_conn_common.errors import ConfigError

log = logging.getLogger(__name__)


def read_trusted(path, what):
    """Return the bytes of path, or None if it does not exist. A symbolic link, or a file of another user, is
    refused (ConfigError naming the file and the fix); a file others may read or write is made 0600 with a warning;
    a folder every user may write to is warned about. what: how messages name the file ("config file")."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise _link(path, what) from None
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise _link(path, what) from None
        raise ConfigError(f"Cannot read the {what} {path}: {exc.strerror}.",
                          "make it readable by this user or choose another folder with -c.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"The {what} {path} is not a regular file.", "replace it with a file, or remove it.")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError(f"The {what} {path} belongs to another user (uid {info.st_uid}), not to the user "
                              "running this command; it is not trusted.",
                              f"run the command as its owner, or make it yours (chown {os.getuid()} {path}) after "
                              "checking what it holds.")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning("The %s %s could be read or changed by other users (mode %s); made 0600.", what, path,
                        oct(mode)[2:].zfill(4))
        _warn_open_folder(os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "rb") as fh:
            fd = None
            return fh.read()
    finally:
        if fd is not None:
            os.close(fd)


_WARNED = set()


def _warn_open_folder(folder):
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return
    if mode & stat.S_IWOTH and folder not in _WARNED:
        _WARNED.add(folder)
        log.warning("The folder %s is writable by every user (mode %s): anyone could replace the config or state "
                    "in it; chmod 700 %s.", folder, oct(stat.S_IMODE(mode))[2:].zfill(4), folder)


def _link(path, what):
    return ConfigError(f"The {what} {path} is a symbolic link; it is not followed (it could show or change another "
                       "file).", f"put the file itself there (cp --remove-destination \"$(readlink -f {path})\" "
                                 f"{path}), or give its folder with -c.")


def write_private(path, data):
    """Write text or bytes to path atomically with mode 0600; the old file stays whole if this fails."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.",
                          f"make {directory} writable by this user, or choose another folder with -c.") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.",
                          f"free space or permissions in {directory}; nothing was changed.") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(directory)


def write_json(path, obj):
    """Write obj as JSON atomically with mode 0600."""
    write_private(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["write_private", "write_json", "read_trusted"]
