"""Forecast next-hour air pollution from the previous 24 hours of 8 weather and pollution
features with one LSTM layer and a dense head, the shape of the Beijing PM2.5 task; beat the
persistence baseline (next hour = this hour) on held-out data. The network predicts the change
over the next hour, so the forecast is the last value plus that change.

    python examples/lstm_timeseries.py [--csv PRSA_data_2010.1.1-2014.12.31.csv] [--epochs 10]

Without --csv, a series with the same features and hourly/seasonal structure is generated:
pollution builds up in calm, humid, low-pressure weather and is blown away by wind. With --csv,
the UCI Beijing PM2.5 file is read (columns pm2.5, DEWP, TEMP, PRES, cbwd, Iws, Is, Ir).
"""
import argparse
import csv
import sys

import numpy as np

import pyfront as pf

FEATURES = ["pollution", "dew", "temp", "press", "wnd_dir", "wnd_spd", "snow", "rain"]


def generate(hours, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    day, year = 2 * np.pi * t / 24, 2 * np.pi * t / (24 * 365)
    temp = 12 - 14 * np.cos(year) + 5 * np.sin(day - 1) + rng.normal(0, 1.5, hours)
    dew = temp - 8 + 6 * np.sin(year + 0.5) + rng.normal(0, 2, hours)
    press = 1016 + 10 * np.cos(year) + np.cumsum(rng.normal(0, 0.3, hours)) * 0.2
    press = press - np.convolve(press - press.mean(), np.ones(240) / 240, "same")
    wnd_dir = rng.integers(0, 4, hours).astype(float)
    gust = np.maximum(0, rng.normal(0, 1, hours))
    wnd_spd = np.convolve(gust, np.ones(12) / 3, "same") * (1 + (wnd_dir == 1))
    snow = (temp < 0) * (rng.random(hours) < 0.03) * rng.integers(1, 5, hours)
    rain = (temp > 0) * (rng.random(hours) < 0.05) * rng.integers(1, 5, hours)
    pollution = np.zeros(hours)
    level = 80.0
    for i in range(hours):
        source = 4 + 3 * (np.sin(day[i] - 2) > 0) + 0.15 * max(0, dew[i] - temp[i] + 8)
        sink = 0.04 * wnd_spd[i] * level + 0.05 * rain[i] * level / 4 + 0.01 * level
        level = max(0.0, level + source - sink + rng.normal(0, 1.5))
        pollution[i] = level
    return np.stack([pollution, dew, temp, press, wnd_dir, wnd_spd, snow, rain], axis=1)


def read_pm25_csv(path):
    """The UCI PRSA file: pollution and 7 weather columns, wind direction as an integer."""
    directions = {}
    rows = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            if rec["pm2.5"] in ("NA", ""):
                value = np.nan
            else:
                value = float(rec["pm2.5"])
            d = directions.setdefault(rec["cbwd"], len(directions))
            rows.append([value, float(rec["DEWP"]), float(rec["TEMP"]), float(rec["PRES"]), d,
                         float(rec["Iws"]), float(rec["Is"]), float(rec["Ir"])])
    data = np.asarray(rows, np.float64)
    start = np.argmax(~np.isnan(data[:, 0]))          # the file starts with a day of NA
    data = data[start:]
    for i in range(1, len(data)):                      # short gaps: carry the last value
        if np.isnan(data[i, 0]):
            data[i, 0] = data[i - 1, 0]
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", help="the UCI Beijing PM2.5 CSV (optional)")
    parser.add_argument("--hours", type=int, default=24 * 365)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=72)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    data = read_pm25_csv(args.csv) if args.csv else generate(args.hours, args.seed)
    train, val, test = pf.data.timeseries.split(data, train=0.7, val=0.15)
    lo, hi = train.min(axis=0), train.max(axis=0)
    scale = lambda a: ((a - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)
    window = lambda a: pf.data.timeseries.windows(scale(a), input_width=24, label_width=1,
                                                  label_columns=[0])
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = map(window, (train, val, test))
    y_train, y_val, y_test = (y.reshape(len(y), -1) for y in (y_train, y_val, y_test))
    # the network forecasts the change over the next hour; the forecast is last value + change
    last = lambda x: x[:, -1, :1]
    d_train, d_val = y_train - last(x_train), y_val - last(x_val)
    print("windows: %s -> %s; %d train, %d validation, %d test"
          % (x_train.shape[1:], y_train.shape[1:], len(x_train), len(x_val), len(x_test)))

    pf.random.seed(args.seed)
    rnn = pf.nn.Sequential([pf.nn.LSTM(50), pf.nn.Dense(1)]).hybridize()
    rnn.compile(optimizer=pf.optim.Adam(lr=1e-3), loss="mse", metrics=["mae"])
    rnn.fit(x_train, d_train, batch_size=args.batch_size, epochs=args.epochs,
            validation_data=(x_val, d_val), shuffle=True, seed=args.seed, verbose=args.verbose)
    pred = last(x_test) + rnn.predict(x_test)
    span = hi[0] - lo[0]
    rmse = float(np.sqrt(np.mean((pred - y_test) ** 2))) * span
    persistence = float(np.sqrt(np.mean((last(x_test) - y_test) ** 2))) * span
    print("test RMSE %.3f vs persistence baseline %.3f (%.1f%% better)"
          % (rmse, persistence, 100 * (1 - rmse / persistence)))
    return 0 if rmse < persistence else 1


if __name__ == "__main__":
    sys.exit(main())
