"""Salesforce record ids: 15-character case-sensitive ids and their 18-character form."""

from __future__ import annotations

import threading

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def id_suffix(id15: str) -> str:
    """Compute the 3-character suffix that makes a 15-character id case-insensitive.

    Each 5-character chunk sets bit j when its character j is an uppercase A-Z, and the value
    maps through A-Z0-5 (the algorithm Salesforce documents for 18-character ids).
    """
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 characters before its suffix, got {id15!r}")
    suffix = []
    for start in (0, 5, 10):
        bits = 0
        for offset, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def to_id18(record_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character id."""
    if len(record_id) == 18:
        return record_id[:15] + id_suffix(record_id[:15])
    return record_id + id_suffix(record_id)


def is_valid_id(record_id: str) -> bool:
    """Return whether the string is a well-formed 15- or 18-character id."""
    if len(record_id) not in (15, 18) or not record_id.isalnum() or not record_id.isascii():
        return False
    return len(record_id) == 15 or record_id[15:].upper() == id_suffix(record_id[:15])


def base62(number: int, width: int) -> str:
    """Encode a non-negative integer in base 62, left-padded with zeros to ``width``."""
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    encoded = "".join(reversed(digits)) or "0"
    if len(encoded) > width:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    return encoded.rjust(width, "0")


class IdFactory:
    """Issues sequential ids per key prefix for one org.

    ``pod`` fills characters 4-5, which Salesforce uses for the instance; the remaining ten
    characters are a base-62 sequence, so ids sort in creation order within a prefix.
    """

    def __init__(self, pod: str, start: int = 1) -> None:
        if len(pod) != 2:
            raise ValueError(f"pod must be 2 characters, got {pod!r}")
        self._pod = pod
        self._next: dict[str, int] = {}
        self._start = start
        self._lock = threading.Lock()

    def new_id(self, key_prefix: str) -> str:
        with self._lock:
            sequence = self._next.get(key_prefix, self._start)
            self._next[key_prefix] = sequence + 1
        return to_id18(key_prefix + self._pod + base62(sequence, 10))

    def state(self) -> dict[str, int]:
        with self._lock:
            return dict(self._next)

    def restore(self, state: dict[str, int]) -> None:
        with self._lock:
            self._next = dict(state)
