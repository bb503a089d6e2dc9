"""The primitives under the features: exact searches, ordering, local time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from features.kernel import SortedGroups, group_time_order
from features.timezones import hour_of_week, local_ns, offset_table


@pytest.mark.parametrize("scale", [1, 10**9, 10**17])
def test_positions_are_exact_even_when_the_key_is_coarse(scale: int) -> None:
    """Timestamps spanning centuries force a shifted (coarse) key; ties must still resolve."""
    rng = np.random.default_rng(scale % 97)
    for _ in range(60):
        n_groups, n = int(rng.integers(1, 6)), int(rng.integers(0, 40))
        group = np.sort(rng.integers(0, n_groups, n))
        ts = rng.integers(0, 20, n) * scale + rng.integers(-3, 3, n)
        order = np.lexsort((ts, group))
        group, ts = group[order], ts[order]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
        searcher = SortedGroups.build(group, ts, offsets)
        queries = rng.integers(0, n_groups, 50)
        times = rng.integers(-2, 22, 50) * scale + rng.integers(-3, 3, 50)
        for inclusive in (False, True):
            side = "right" if inclusive else "left"
            expected = [offsets[g] + np.searchsorted(ts[offsets[g]:offsets[g + 1]], t, side=side)
                        for g, t in zip(queries, times, strict=True)]
            np.testing.assert_array_equal(searcher.positions(queries, times, inclusive),
                                          expected)


def test_group_time_order_is_lexsort() -> None:
    rng = np.random.default_rng(0)
    for groups in (1, 300, 70_000, 5_000_000):
        group, ts = rng.integers(0, groups, 20_000), rng.integers(0, 40, 20_000)
        np.testing.assert_array_equal(group_time_order(group, ts), np.lexsort((ts, group)))


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
                                  "Europe/Dublin", "UTC"])
def test_local_time_matches_zoneinfo_over_a_century(zone: str) -> None:
    seconds = np.random.default_rng(1).integers(0, 4_000_000_000, 3_000)
    local = local_ns(seconds * 10**9, np.zeros(0, dtype=np.int16), (zone,))
    expected = [datetime.fromtimestamp(int(s), ZoneInfo(zone)).utcoffset().total_seconds()
                for s in seconds]
    np.testing.assert_array_equal((local - seconds * 10**9) // 10**9, expected)
    since, _ = offset_table(zone)
    assert np.all(since[1:-1] < since[2:])  # since[0] is the int64 minimum


def test_hour_of_week_starts_monday_midnight() -> None:
    monday = np.datetime64("2024-03-04T00:00", "ns").astype(np.int64)
    hours = monday + np.array([0, 1, 24, 5 * 24 + 13, 7 * 24 - 1]) * 3_600 * 10**9
    np.testing.assert_array_equal(hour_of_week(hours), [0, 1, 24, 133, 167])
    before_epoch = np.datetime64("1969-12-29T05:00", "ns").astype(np.int64)  # a Monday
    assert hour_of_week(np.array([before_epoch]))[0] == 5
