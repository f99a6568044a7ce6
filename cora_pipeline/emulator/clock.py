"""The org clock and Salesforce's wire formats for dates and datetimes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

# REST JSON writes datetimes with milliseconds and an offset without a colon.
_WIRE_FORMAT = "%Y-%m-%dT%H:%M:%S.000+0000"


def format_datetime(moment: datetime) -> str:
    """Format a datetime as REST JSON does, e.g. ``2020-10-22T21:03:23.000+0000`` (UTC)."""
    return moment.astimezone(UTC).strftime(_WIRE_FORMAT)


def parse_datetime(text: str) -> datetime:
    """Parse a REST or SOQL datetime (``…+0000``, ``…+00:00`` or ``…Z``) to an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_date(day: date) -> str:
    return day.isoformat()


class OrgClock:
    """An org's notion of now: a start instant plus real elapsed time plus a test-controlled offset.

    Record timestamps have whole-second precision, as Salesforce stores them.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._started_monotonic = time.monotonic()
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        elapsed = timedelta(seconds=time.monotonic() - self._started_monotonic)
        with self._lock:
            offset = self._offset
        return (self._start + elapsed + offset).replace(microsecond=0)

    def now_wire(self) -> str:
        return format_datetime(self.now())

    def today(self) -> date:
        return self.now().date()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the org clock only moves forward, got {seconds} seconds")
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset.total_seconds()

    def set_offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = timedelta(seconds=seconds)
