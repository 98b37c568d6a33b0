"""Regular files only: ``open_regular`` for every reader (model archives, MNIST files) and
``check_regular``, which ``atomic_write`` applies to its target too: a named pipe, a device or
a directory is refused with one message, before a byte is read or written."""
import os
import stat

_FILE_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def open_regular(path, where):
    """``path`` opened for binary reading, after checking (``os.stat``, before opening) that
    it is a regular file: opening a named pipe blocks until a writer comes, a device such as
    /dev/zero never ends, a directory holds no data. Raises ValueError naming the file and
    what it is; a missing or unreadable file raises the usual OSError."""
    check_regular(os.stat(path).st_mode, path, where)
    f = open(path, "rb")
    try:
        check_regular(os.fstat(f.fileno()).st_mode, path, where)  # replaced since the stat
    except ValueError:
        f.close()
        raise
    return f


def check_regular(mode, path, where):
    """Raise ValueError naming ``path`` and what it is unless ``mode`` (an ``st_mode``) is a
    regular file's; ``where`` names the caller (``"Model.load"``, ``"load_mnist"``, ...)."""
    if not stat.S_ISREG(mode):
        what = next((what for test, what in _FILE_TYPES if test(mode)), "not a regular file")
        raise ValueError(f"{path}: {what}, not a regular file ({where} reads and writes "
                         "regular files only)")
