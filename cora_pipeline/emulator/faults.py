"""Faults that tests queue on an org; each applies to the next matching REST request."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """One queued fault.

    ``kind`` is ``status`` (respond with ``status`` and, when ``json_body``, a Salesforce error
    array), ``slow`` (wait ``delay`` seconds, then respond normally), ``drop`` (send the headers
    and part of the body, then close the connection) or ``query_timeout`` (400 QUERY_TIMEOUT on
    the next query request). ``path_contains`` narrows which requests the fault applies to.
    """

    kind: str
    status: int = 0
    error_code: str = ""
    message: str = ""
    json_body: bool = True
    delay: float = 0.0
    path_contains: str = ""


class FaultPlan:
    """The queue of faults for one org, consumed in order by matching requests."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def add(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([fault] * times)

    def fail_next(
        self,
        n: int = 1,
        status: int = 401,
        error_code: str | None = None,
        message: str | None = None,
        json_body: bool = True,
        path_contains: str = "",
    ) -> None:
        """Fail the next ``n`` REST requests with ``status`` and a Salesforce error body."""
        defaults = {
            401: ("INVALID_SESSION_ID", "Session expired or invalid"),
            403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            500: (
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this "
                "ErrorId if you contact support: 1234567890-12345 (-1234567890)",
            ),
            503: ("SERVER_UNAVAILABLE", "Server Unavailable"),
        }
        default_code, default_message = defaults.get(status, ("UNKNOWN_EXCEPTION", "Error"))
        self.add(
            Fault(
                "status",
                status=status,
                error_code=error_code or default_code,
                message=message or default_message,
                json_body=json_body,
                path_contains=path_contains,
            ),
            n,
        )

    def unavailable(self, n: int = 1, json_body: bool = True) -> None:
        """Fail the next ``n`` REST requests with 503, with or without a JSON error body."""
        self.fail_next(n, status=503, json_body=json_body)

    def slow(self, seconds: float, n: int = 1, path_contains: str = "") -> None:
        self.add(Fault("slow", delay=seconds, path_contains=path_contains), n)

    def drop_connection(self, n: int = 1, path_contains: str = "") -> None:
        """Close the connection in the middle of the next ``n`` response bodies."""
        self.add(Fault("drop", path_contains=path_contains), n)

    def query_timeout(self, n: int = 1) -> None:
        self.add(Fault("query_timeout", path_contains="/query"), n)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, path: str) -> Fault | None:
        """Remove and return the first queued fault that applies to ``path``."""
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.kind == "query_timeout" and "/query" not in path:
                    continue
                del self._queue[index]
                return fault
        return None
