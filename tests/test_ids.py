"""Identifiers: a prefix, the milliseconds, then a counter from a random start, in Crockford base32."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from owp_bot.scheduler.ids import b32, new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def digits(value: int, width: int) -> str:
    """The definition: `width` base-32 digits, most significant first."""
    out = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        out.append(CROCKFORD[digit])
    return "".join(reversed(out))


@given(st.integers(0, 2**80 - 1))
def test_sixteen_digits_are_the_value_in_base32(value: int) -> None:
    assert b32(value, 16) == digits(value, 16)


@given(st.integers(0, 2**50 - 1))
def test_ten_digits_hold_the_milliseconds(millis: int) -> None:
    assert b32(millis, 10) == digits(millis, 10)


def test_ids_sort_by_creation_within_a_millisecond_and_across() -> None:
    made = [new_id("t", 1_800_000_000.0) for _ in range(1000)] + [new_id("t", 1_800_000_000.002)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 2 + 26 and set(i[2:]) <= set(CROCKFORD) for i in made)
