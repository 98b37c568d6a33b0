"""What every ``nnfs-fast`` command shares: the program name and exit statuses, UsageError
(one line on stderr, exit status 2), notes on stderr, and the checks made before any work
starts (output files writable, enough memory, a loadable model)."""
import os
import sys
from importlib.util import find_spec

PROG = "nnfs-fast"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with the arguments or files: one line on stderr, exit status 2."""


def note(message):
    """How an input was read, when that was guessed: one line on stderr."""
    print(f"{PROG}: note: {message}", file=sys.stderr)


def header_note(path, header, columns):
    """With --header/--no-header left out, say what the first line was taken for."""
    if header is not None:
        return
    if columns is None:
        note(f"{path}: no header line (the first line holds numbers; --header would skip it)")
    else:
        names = ", ".join(columns[:6]) + (", ..." if len(columns) > 6 else "")
        note(f"{path}: the first line ({names}) read as column names (--no-header would read "
              f"it as data)")


def check_memory(n_bytes, what):
    """UsageError when ``n_bytes`` (a lower bound of what ``what`` needs) is more memory than
    this machine has, before anything of that size is allocated (it would fail with a
    MemoryError, or be killed by the system, only after a long wait)."""
    limit = _memory_limit()
    if limit is not None and n_bytes > limit:
        raise UsageError(f"{what} needs at least {n_bytes / 2**30:,.1f} GiB of memory, more "
                         f"than the {limit / 2**30:,.1f} GiB this machine has")


def _memory_limit():
    """Bytes of memory this process may use: the physical memory, or a smaller cgroup (v2)
    limit; None when unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not on Windows
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    return min(limits) if limits else None


def check_writable(path, option):
    """Fail before the work starts if ``path`` cannot be written later."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")


def check_plot(path, option):
    check_writable(path, option)
    if find_spec("matplotlib") is None:
        raise UsageError(f"{option} needs matplotlib: pip install matplotlib (or "
                         f'"nnfs_fast[plot]")')
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        raise UsageError(f"{option} {path}: expected a .png, .svg, .pdf or .jpg file name")


def load_model(path, allow_pickle):
    from nnfs_fast import Model
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, not a model file")
    try:
        return Model.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UsageError(f"{path}: cannot load the model: {exc}") from None
    except Exception as exc:  # e.g. pickle.UnpicklingError from a foreign pickle
        raise UsageError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") \
            from None

