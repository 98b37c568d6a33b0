"""The one progress bar of nnfs_fast, used by ``Model.train(progress=...)`` and the command line.

``ProgressBar(total, description)`` shows ``description [#####.....] done/total text``: tqdm's
bar when tqdm is installed, else a one-line text bar on stderr redrawn in place at most ten
times a second. ``write(line)`` prints a line above the bar that is showing (or just prints it
when none is), so lines and the bar never overwrite each other.
"""
import sys
import time

try:
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # tqdm is optional: the text bar is used instead
    _tqdm = None

_active = []   # the bars being shown, innermost last (write() goes above them)


class ProgressBar:
    """A bar over ``total`` units of work.

    Args:
        total: int >= 0, the number of ``update`` calls that fill the bar.
        description: the text before the bar (e.g. ``"epoch 3/10"``).
        leave: keep the finished bar on screen (True) or erase it on ``close`` (False).
        unit: tqdm's unit name (``"it"``, ``"epoch"``); the text bar shows counts only.
        stream: where the text bar draws (default ``sys.stderr``).
    """

    width = 30

    def __init__(self, total, description, *, leave=True, unit="it", stream=None):
        self._total, self._description, self._leave = total, description, leave
        self._done, self._text, self._last = 0, "", 0.0
        self._stream = stream if stream is not None else sys.stderr
        self._tqdm = None
        if _tqdm is not None and stream is None:
            kwargs = {"total": total, "desc": description, "leave": leave}
            if unit != "it":
                kwargs["unit"] = unit
            self._tqdm = _tqdm(**kwargs)
        else:
            self._draw()
        _active.append(self)

    def update(self, text=""):
        """One unit done; ``text`` is shown after the count (e.g. ``"acc: 0.912"``)."""
        self._done += 1
        self._text = text
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(text, refresh=False)
            self._tqdm.update(1)
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or self._done == self._total:
            self._draw()

    def _draw(self):
        self._last = time.monotonic()
        filled = self.width * self._done // max(self._total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self._stream.write(f"\r{self._description} [{bar}] {self._done}/{self._total} "
                           f"{self._text}")
        self._stream.flush()

    def _clear(self):
        self._stream.write("\r\033[K")
        self._stream.flush()

    def close(self):
        """Finish the bar: a last draw and a newline (``leave=True``) or erase it."""
        if self in _active:
            _active.remove(self)
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._leave:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
        else:
            self._clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def write(line, file=None):
    """Print ``line`` (to ``file``, default stdout) above the bar being shown, if any."""
    file = file if file is not None else sys.stdout
    bar = _active[-1] if _active else None
    if bar is not None and bar._tqdm is not None:
        bar._tqdm.write(line, file=file)
        return
    if bar is not None:
        bar._clear()
    print(line, file=file)
    file.flush()
    if bar is not None:
        bar._draw()
