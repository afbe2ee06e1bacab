"""``--reload``: the source files a development server restarts its workers on.

Theory of operation.  The supervisor polls: a reactor timer calls
``SourceWatcher.changed()`` every ``interval_s``, which walks the watched
folders, ``stat``s each file whose name matches an include pattern and
compares ``(st_mtime_ns, st_size)`` with the previous walk.  Standard library
only, no thread and no inotify; uvicorn's ``StatReload`` and gunicorn's
polling reloader do the same.  Folders whose names start with ``.``
(``.git``, ``.venv``), ``__pycache__`` and ``node_modules`` are not entered.

A change replaces the workers as SIGHUP does: each new worker imports the
application afresh, and the old one drains only once its successor listens,
so code that does not load keeps the old worker serving (see
``supervisor.py``).

Python's bytecode cache trusts a ``.pyc`` whose recorded source mtime (whole
seconds) and size match: an edit that keeps a file's size within the second
of the last compile would be loaded stale.  ``changed()`` deletes the cached
bytecode of each changed ``.py`` file, so the new worker compiles it again.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator

__all__ = ["SourceWatcher"]

logger = logging.getLogger("evloop.workers")

_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


class SourceWatcher:
    """Files under ``dirs`` whose names (or paths relative to their folder) match ``include`` globs.

    ``changed()`` returns the files added, modified or removed since the
    previous call (or since construction, which takes the first snapshot),
    sorted.  ``interval_s`` is how often the supervisor asks.
    """

    def __init__(self, dirs: Iterable[str], include: Iterable[str] = ("*.py",), interval_s: float = 0.5) -> None:
        self.dirs = [os.path.abspath(d) for d in dirs]
        self.include = list(include) or ["*.py"]
        if not 0 < interval_s < float("inf"):
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
        self.interval_s = interval_s
        for folder in self.dirs:
            if not os.path.isdir(folder):
                raise ValueError(f"reload folder is not a directory: {folder}")
        self._seen = self._snapshot()

    def __len__(self) -> int:
        """How many files are watched."""
        return len(self._seen)

    def _files(self) -> Iterator[str]:
        for top in self.dirs:
            for folder, subdirs, names in os.walk(top):
                subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
                for name in names:
                    relative = os.path.relpath(os.path.join(folder, name), top)
                    if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in self.include):
                        yield os.path.join(folder, name)

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        seen = {}
        for path in self._files():
            try:
                st = os.stat(path)
            except OSError:  # removed during the walk
                continue
            seen[path] = (st.st_mtime_ns, st.st_size)
        return seen

    def changed(self) -> list[str]:
        """The files that differ from the last walk; their cached bytecode is deleted."""
        now = self._snapshot()
        old = self._seen
        self._seen = now
        changed = sorted(path for path in now.keys() | old.keys() if now.get(path) != old.get(path))
        for path in changed:
            if path.endswith(".py"):
                try:
                    os.unlink(importlib.util.cache_from_source(path))
                except (OSError, ValueError, NotImplementedError):
                    pass  # no cached bytecode, or none to be had
        return changed
