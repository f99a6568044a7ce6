"""The rolling 24-hour API request counter of one org."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

_WINDOW = timedelta(hours=24)


class ApiUsage:
    """Counts API requests in per-minute buckets over a rolling 24 hours of the org clock."""

    def __init__(self, maximum: int, now: Callable[[], datetime]) -> None:
        self.maximum = maximum
        self._now = now
        self._buckets: deque[list] = deque()  # [minute start, count], oldest first
        self._lock = threading.Lock()

    def _expire(self, now: datetime) -> None:
        while self._buckets and self._buckets[0][0] <= now - _WINDOW:
            self._buckets.popleft()

    def used(self) -> int:
        with self._lock:
            self._expire(self._now())
            return sum(count for _, count in self._buckets)

    def try_count(self, calls: int = 1) -> tuple[bool, int]:
        """Count ``calls`` requests unless the org is at its limit; return (allowed, used after)."""
        now = self._now()
        minute = now.replace(second=0)
        with self._lock:
            self._expire(now)
            used = sum(count for _, count in self._buckets)
            if used >= self.maximum:
                return False, used
            if self._buckets and self._buckets[-1][0] == minute:
                self._buckets[-1][1] += calls
            else:
                self._buckets.append([minute, calls])
            return True, used + calls

    def set_used(self, used: int) -> None:
        """Replace the counter with ``used`` requests made now (tests use this to near the limit)."""
        with self._lock:
            self._buckets.clear()
            if used:
                self._buckets.append([self._now().replace(second=0), used])

    def header(self) -> str:
        return f"api-usage={self.used()}/{self.maximum}"

    def state(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(start.isoformat(), count) for start, count in self._buckets]

    def restore(self, buckets: list[tuple[str, int]]) -> None:
        with self._lock:
            self._buckets = deque([datetime.fromisoformat(s), c] for s, c in buckets)
