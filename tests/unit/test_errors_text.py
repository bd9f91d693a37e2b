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
