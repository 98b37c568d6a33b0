"""Atomic writes: a file is replaced whole or not at all, through symbolic links.

``atomic_write`` resolves symbolic links, writes to a temporary file
``.<name>.nnfs-tmp-<pid>-<random>`` next to the real target, fsyncs it, then renames it over
the target with ``os.replace``: an interrupted save leaves the old file whole, and a temporary
file left by a killed process is removed by the next save to the same target. Models,
parameters (archive and safetensors), ONNX and PyTorch exports, and the command line's figures
and predictions are all written through it.
"""
import contextlib
import os
import re
import secrets
import stat

from nnfs_fast.io.files import check_regular

_TMP_MARK = ".nnfs-tmp-"      # .<name>.nnfs-tmp-<pid>-<8 hex digits>
_TMP_TAIL = re.compile(r"([0-9]+)-[0-9a-f]{8}", re.ASCII)


def atomic_write(path, write, where="save"):
    """Call ``write(f)`` on a binary file next to ``path`` under a temporary name, fsync, then
    rename it over ``path`` (atomic on POSIX and Windows): a failure or interrupt at any point
    leaves the previous file whole and no temporary file behind (a SIGKILL leaves the
    temporary file, which the next save to the same target removes).

    Symbolic links are resolved first: the file they point to is replaced, next to itself, and
    the links stay. Refused with ValueError before anything is written: an empty path, a path
    that names a folder, and a target that exists but is not a regular file (a device such as
    /dev/null, a named pipe, a directory)."""
    target = _save_target(path, where)
    directory, name = os.path.split(target)
    _remove_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f".{name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # keep the mode of the file being replaced
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _save_target(path, where):
    """The absolute path ``atomic_write`` replaces: ``path`` with symbolic links resolved,
    a regular file or a missing one (ValueError otherwise, before anything is touched)."""
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{where}: the path is empty; give a file name")
    if path.endswith((os.sep, os.altsep or os.sep)):
        raise ValueError(f"{where}: {path!r} names a folder; give a file name")
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target    # a new file (a missing folder fails when the file is created)
    link = f" (a link to {target})" if target != os.path.abspath(path) else ""
    check_regular(mode, path + link, where)
    return target


def _remove_stale_temporaries(directory, name):
    """Remove this target's temporary files (``.<name>.nnfs-tmp-<pid>-<hex>``) whose process
    is gone: a save killed before its rename (SIGKILL, power loss) leaves one behind."""
    if os.name != "posix":   # os.kill(pid, 0) would terminate the process on Windows
        return
    prefix = f".{name}{_TMP_MARK}"
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        tail = _TMP_TAIL.fullmatch(entry[len(prefix):]) if entry.startswith(prefix) else None
        if tail and not _process_exists(int(tail.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, entry))


def _process_exists(pid):
    """Whether process ``pid`` exists (POSIX; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):   # PermissionError: it exists; odd pids: keep the file
        return True
    return True
