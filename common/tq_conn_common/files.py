"""Atomic, private file writes: a temporary file beside the target, fsync, rename, mode 0600."""

import json
import os
import tempfile

from tq_conn_common.errors import ConfigError


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


__all__ = ["write_private", "write_json"]
