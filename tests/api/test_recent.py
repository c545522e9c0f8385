"""The API's memo of per-request database answers (access key secrets, known regions)."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from kiln.api.recent import Recent


def test_a_key_is_looked_up_once_per_period_and_failures_are_not_kept() -> None:
    asked: list[Hashable] = []

    def lookup(key: Hashable) -> str:
        asked.append(key)
        if key == "bad":
            raise LookupError(key)
        return f"value of {key}"

    memo = Recent(3600, lookup)
    assert [memo("a"), memo("a"), memo("b")] == ["value of a", "value of a", "value of b"]
    assert asked == ["a", "b"]
    for _ in range(2):
        with pytest.raises(LookupError):
            memo("bad")
    assert asked == ["a", "b", "bad", "bad"]
    expired = Recent(0, lookup)
    expired("a")
    expired("a")
    assert asked[-2:] == ["a", "a"]
