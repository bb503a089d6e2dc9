"""Send slots against a plain zoneinfo computation, around DST changes and odd offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.policy.config import QuietHours, SendTime
from models.policy.slots import build_slot_grid, from_ns, quiet_key, to_ns

ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
         "Pacific/Chatham", "UTC", "America/St_Johns"]
QUIET = QuietHours(start="21:00", end="08:00")
SEND_TIME = SendTime(horizon_hours=48, slots_per_pair=3)


def _hour_of_week(moment: datetime) -> int:
    return moment.weekday() * 24 + moment.hour


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
)
def test_slots_match_zoneinfo(zone_name: str, now: datetime) -> None:
    tz = ZoneInfo(zone_name)
    grid = build_slot_grid(to_ns(now), zone_name, SEND_TIME, quiet_key(QUIET))
    plain = [from_ns(int(ns)).astimezone(tz) for ns in grid.send_ns[0]]
    assert int(grid.send_ns[0, 0]) == to_ns(now)  # "send now" (PEP 495: no == across folds)
    # (compared in UTC: aware datetimes of one zone compare by wall clock, ignoring DST folds)
    assert (np.diff(grid.send_ns[0]) > 0).all()
    assert plain[-1] <= now + timedelta(hours=SEND_TIME.horizon_hours)
    assert grid.hour_of_week[0].tolist() == [_hour_of_week(t) for t in plain]
    assert grid.local_hour[0].tolist() == [t.hour for t in plain]
    for local in plain[1:]:
        if zone_name != "Australia/Lord_Howe":  # its 30-minute DST shift moves the grid
            assert local.minute == 0 and local.second == 0

    quiet_times = [from_ns(int(ns)).astimezone(tz) for ns in grid.send_ns[1]]
    kept = ~grid.blocked[1]
    assert kept.any()
    for local, shifted, keep, how in zip(quiet_times, grid.shifted[1], kept,
                                         grid.hour_of_week[1], strict=True):
        minutes = local.hour * 60 + local.minute
        assert not (minutes >= 21 * 60 or minutes < 8 * 60), local
        assert how == _hour_of_week(local)
        if shifted and keep:
            assert (local.hour, local.minute) == (8, 0)
    kept_times = grid.send_ns[1][kept]
    assert np.unique(kept_times).shape[0] == kept_times.shape[0]  # merged, not duplicated


@pytest.mark.parametrize(
    ("zone_name", "now", "expected_local"),
    [
        # 23:30 the night before spring forward in New York: 08:00 EDT, 7 hours later in UTC
        ("America/New_York", datetime(2024, 3, 10, 4, 30, tzinfo=UTC), "2024-03-10T08:00-04:00"),
        # 23:30 the night before fall back in Paris: 08:00 CET
        ("Europe/Paris", datetime(2024, 10, 26, 21, 30, tzinfo=UTC), "2024-10-27T08:00+01:00"),
    ],
)
def test_send_now_at_night_moves_to_the_end_of_quiet_hours_across_dst(
    zone_name: str, now: datetime, expected_local: str
) -> None:
    grid = build_slot_grid(to_ns(now), zone_name, SEND_TIME, quiet_key(QUIET))
    first_morning = from_ns(int(grid.send_ns[1][~grid.blocked[1]].min()))
    assert first_morning == datetime.fromisoformat(expected_local)
    assert grid.shifted[1][~grid.blocked[1]][np.argmin(grid.send_ns[1][~grid.blocked[1]])]
