"""pandas in, pandas out: the index of a forecast made from a Series or DataFrame."""

from __future__ import annotations

import warnings
from typing import Any


def future_index(index: Any, horizon: int, labels: list[str]) -> Any:
    """The ``horizon`` index values after ``index``: dates continue its frequency, periods the next periods,
    integers their step; anything else gets the time labels the CSV reader would have made (``labels``)."""
    import pandas as pd

    if isinstance(index, pd.PeriodIndex) and len(index):
        return pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex) and len(index):
        freq = index.freq
        if freq is None and len(index) >= 3:
            with warnings.catch_warnings():  # pandas 3 announces infer_freq's next return type; either works here
                warnings.simplefilter("ignore")
                freq = pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
        return pd.DatetimeIndex(pd.to_datetime(labels))
    if isinstance(index, pd.RangeIndex):
        return pd.RangeIndex(index.stop, index.stop + horizon * index.step, index.step)
    if pd.api.types.is_integer_dtype(index) and len(index) >= 2:
        step = int(index[-1] - index[-2]) or 1
        return pd.Index([int(index[-1]) + step * (i + 1) for i in range(horizon)])
    return pd.Index(labels)
