"""In-memory throttles: cheap refusals before a request reaches the database.

The database's rate counters are shared by every process of a deployment but cost a write
per request; these counters cost nothing and stop a flood from one client address in the
process it reaches, so that a flood of anonymous requests (bad tokens, failed sign-ins,
predictions, bundle downloads) never turns into a flood of database writes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["RecentSet", "Throttle"]


class Throttle:
    """Counters per key: at most ``limit`` hits in the ``window`` seconds from a key's first hit.

    Parameters
    ----------
    limit : int
        Hits allowed per key and window.
    window : float
        Window length in seconds.
    max_keys : int
        Keys remembered; the least recently used are forgotten first, so a flood of new
        keys costs bounded memory.

    Examples
    --------
    >>> throttle = Throttle(limit=2, window=60)
    >>> [throttle.hit("10.0.0.1")[0] for _ in range(3)]
    [True, True, False]
    >>> throttle.blocked("10.0.0.1"), throttle.blocked("10.0.0.2")
    (True, False)
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self.max_keys = int(max_keys)
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def _current(self, key: str, stamp: float) -> tuple[float, int]:
        # A key's window starts at its first hit, so a burst is never split by a boundary.
        found = self._counts.get(key)
        if found is None or stamp - found[0] >= self.window:
            return stamp, 0
        return found

    def hit(self, key: str) -> tuple[bool, int]:
        """Count one hit; return (allowed, seconds until the window ends)."""
        stamp = time.monotonic()
        with self._lock:
            start, count = self._current(key, stamp)
            count += 1
            self._counts[key] = (start, count)
            self._counts.move_to_end(key)
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
        return count <= self.limit, max(1, int(start + self.window - stamp) + 1)

    def blocked(self, key: str) -> bool:
        """True when ``key`` has used up its hits in this window (nothing is counted)."""
        with self._lock:
            return self._current(key, time.monotonic())[1] >= self.limit

    def retry_after(self, key: str) -> int:
        stamp = time.monotonic()
        with self._lock:
            start = self._current(key, stamp)[0]
        return max(1, int(start + self.window - stamp) + 1)


class RecentSet:
    """A bounded set that forgets its least recently added members first.

    Examples
    --------
    >>> recent = RecentSet(max_size=2)
    >>> for key in ("a", "b", "c"):
    ...     recent.add(key)
    >>> "a" in recent, "c" in recent
    (False, True)
    """

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = int(max_size)
        self._items: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._items[key] = None
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items
