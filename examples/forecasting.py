"""Forecast monthly airline passengers from a pandas Series: 24 months in, the next 12 out, with an interval.

python examples/forecasting.py
"""

import os
from pathlib import Path

import pandas as pd

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # a folder laid out like rnnkit's data cache; None: the cache
RELPATH = "timeseries/airline-passengers.csv"
source = Path(DATA) / RELPATH if DATA else rnnkit.datasets.files("timeseries")[RELPATH]

passengers = pd.read_csv(source, index_col="Month", parse_dates=True)["Passengers"]

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.hidden": 8})

run = rnnkit.train("airline", data=passengers, overrides=settings, max_steps=20 if QUICK else None)
print("test RMSE:", round(run.summary["test"]["rmse"], 1))
forecast = run.forecast(history=passengers, horizon=12)  # a DataFrame: time, column, forecast, lower, upper
print(forecast.round(1).to_string())
