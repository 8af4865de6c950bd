"""Identifiers like `t_01jd7k3x9q4m2c8h5w6e0r1tyv`: a prefix, then time-ordered, then random (ULID-style).

Monotonic within a process: ids made in the same millisecond (a whole import runs at one `now`) still sort
in the order they were made, so "older first" keeps the order in which tasks arrived.
"""

from __future__ import annotations

import secrets
import threading

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]  # every 10 bits as two digits


def b32(value: int, width: int) -> str:
    """`value` in `width` (even) digits of Crockford base32, most significant first: two digits a lookup, a new
    id for every lease and offer (half the time of a divmod a digit)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(5 * width - 10, -1, -10)])


class _Monotonic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0, 0)

    def next(self, millis: int) -> tuple[int, int]:
        with self._lock:
            last_millis, last_random = self._last
            if millis <= last_millis and last_random + 1 < 2**_RANDOM_BITS:
                self._last = (last_millis, last_random + 1)
            else:
                self._last = (millis, secrets.randbits(_RANDOM_BITS - 1))  # room to count up
            return self._last


_sequence = _Monotonic()


def new_id(prefix: str, now: float) -> str:
    """Sorts by creation (milliseconds, then order within the process); unique by 79 random bits."""
    millis, randomness = _sequence.next(int(now * 1000))
    return f"{prefix}_{b32(millis, 10)}{b32(randomness, 16)}"
