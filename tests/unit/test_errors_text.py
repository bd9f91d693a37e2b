"""How a timestamp reads in a message (``driftline.errors.show_time``/``show_span``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.errors import show_span, show_time


def test_messages_show_a_midnight_as_its_date_and_keep_any_other_time():
    assert show_time(pd.Timestamp("2024-03-01")) == "2024-03-01"
    assert show_time(np.datetime64("2024-03-01T00:00:00")) == "2024-03-01"
    assert show_time(pd.Timestamp("2024-03-01 16:30")) == "2024-03-01 16:30:00"
    assert show_time(pd.NaT) == "NaT"
    assert show_span("2024-03-01T00:00:00", "2024-03-08T00:00:00") == "2024-03-01 .. 2024-03-08"
    assert show_span("2017-03-11T08:30:00", "2017-03-22T00:00:00") == "2017-03-11 08:30:00 .. 2017-03-22 00:00:00"


def test_with_the_datas_zone_a_utc_time_shows_on_that_clock_with_its_offset():
    """Rows read in ``data.timezone`` are kept as UTC; messages show them on the zone's clock."""
    zone = "Europe/Berlin"
    assert show_time("2024-03-30T23:00:00", zone) == "2024-03-31"  # local midnight: the date
    assert show_time("2024-03-31T01:00:00", zone) == "2024-03-31 03:00:00+02:00"  # summer time
    assert show_time("2024-03-31T01:00:00") == "2024-03-31 01:00:00"  # no zone: as kept
    assert show_span("2024-01-01T23:00:00", "2024-01-04T23:00:00", zone) == "2024-01-02 .. 2024-01-05"
    assert show_span("2024-03-30T23:00:00", "2024-03-31T08:15:00", zone) == (
        "2024-03-31 00:00:00+01:00 .. 2024-03-31 10:15:00+02:00"
    )
    assert show_time(pd.Timestamp("2024-03-31 03:00", tz=zone), "UTC") == "2024-03-31 03:00:00+02:00"  # has its own
