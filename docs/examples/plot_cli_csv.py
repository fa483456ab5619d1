"""
The command line on a CSV of one's own
======================================

Everything the estimators do is also one command away. ``twolayer train``
reads a table (CSV or TSV, compressed or not, Parquet, Feather), works out
which column is the target and which are features, encodes text columns,
standardises the inputs, trains, prints a summary and writes a model file;
``twolayer evaluate`` scores a model on data; ``twolayer predict`` writes its
predictions. The model file is safetensors and JSON: loading it never
unpickles anything.

This example writes a small CSV, runs the three commands on it exactly as one
would in a shell (through ``python -m twolayer``, so that it uses the
interpreter building this page), shows what they print, and reads the
predictions back.
"""

# %%
# A table of one's own
# --------------------
#
# 300 machines with an identifier, two measurements, the production line they
# stand on (a text column) and their status. The chance of a fault grows with
# the temperature and the vibration, and is higher on the south line. The file
# goes into a temporary folder, which is removed at the end.

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

folder = tempfile.TemporaryDirectory()
work = Path(folder.name)

rng = np.random.default_rng(0)
n = 300
temperature = rng.normal(60.0, 8.0, n)
vibration = rng.gamma(2.0, 1.0, n)
line = rng.choice(["north", "south"], n)
risk = 0.3 * (temperature - 60.0) + 2.0 * (vibration - 2.0) + 1.5 * (line == "south") - 0.7
status = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-risk)), "fault", "ok")

with open(work / "machines.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["machine", "temperature", "vibration", "line", "status"])
    for i in range(n):
        writer.writerow([f"M-{i:04d}", f"{temperature[i]:.1f}", f"{vibration[i]:.3f}", line[i], status[i]])

print((work / "machines.csv").read_text().splitlines()[:4])
print(f"{n} rows, {np.mean(status == 'fault'):.0%} faults")

# %%
# Running the tool
# ----------------
#
# A small helper runs ``twolayer`` with its arguments in the folder, prints
# the command line and everything the tool wrote, and stops the example if the
# tool fails (its exit status is not zero). ``COLUMNS`` fixes the width of the
# tables the tool draws.


def twolayer(*args: str) -> str:
    """Run ``python -m twolayer ARGS`` in the work folder; print and return what it wrote."""
    print("$ twolayer " + " ".join(args))
    done = subprocess.run(
        [sys.executable, "-m", "twolayer", *args],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # progress and notes go to standard error: keep them in their place
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )
    print(done.stdout)
    if done.returncode != 0:
        raise RuntimeError(f"twolayer {' '.join(args)} failed with exit status {done.returncode}")
    return done.stdout


# %%
# Training
# --------
#
# ``--id machine`` says that the first column names each row and is not a
# feature; the target is found by itself (the last column, as the summary
# says). The text column ``line`` becomes one input per category. A fifth of
# the rows is held out, stratified, for the held-out accuracy of each epoch
# and the summary's test figures; ``--plot`` draws the learning curves and
# the confusion matrix.

twolayer(
    "train",
    "machines.csv",
    "--id",
    "machine",
    "--hidden",
    "8",
    "--epochs",
    "80",
    "--learning-rate",
    "0.01",
    "--seed",
    "0",
    "--out",
    "machines.safetensors",
    "--plot",
    "training.png",
)

# %%
# The picture that ``--plot`` wrote:

fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
ax.imshow(plt.imread(work / "training.png"))
ax.set_axis_off()
plt.show()

# %%
# Evaluating
# ----------
#
# ``evaluate`` reads the model and the data; ``--rows test`` keeps the rows
# that training held out (the split is stored in the model file), so these
# are the summary's test figures again, with the calibration, per-class
# scores and confusion matrix.

twolayer("evaluate", "machines.safetensors", "machines.csv", "--rows", "test")

# %%
# Predicting for new machines
# ---------------------------
#
# New rows come without a status, with their columns in another order, and
# one of them on a line the model never saw (``east``). Columns are matched
# by name; the unseen category sets none of ``line``'s inputs, and the tool
# says so.

with open(work / "new_machines.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["line", "machine", "vibration", "temperature"])
    writer.writerows(
        [
            ["north", "N-1", "1.2", "55.0"],
            ["south", "N-2", "4.8", "71.5"],
            ["north", "N-3", "2.0", "60.0"],
            ["south", "N-4", "2.0", "60.0"],
            ["east", "N-5", "3.1", "64.0"],
        ]
    )

twolayer(
    "predict", "machines.safetensors", "new_machines.csv", "--id", "machine", "--proba", "--out", "predictions.csv"
)

# %%
# Reading the predictions back
# ----------------------------
#
# ``predictions.csv`` is an ordinary CSV: the identifier first, the predicted
# class, then one probability column per class.

with open(work / "predictions.csv", newline="") as f:
    predictions = list(csv.DictReader(f))
for row in predictions:
    print(row)

fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
names = [row["machine"] for row in predictions]
p_fault = np.array([float(row["proba_fault"]) for row in predictions])
ax.barh(names, p_fault, color=["tab:red" if p > 0.5 else "tab:green" for p in p_fault])
ax.axvline(0.5, color="grey", linestyle=":")
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_xlabel("predicted probability of a fault")
ax.set_title("New machines")
plt.show()

# %%
# N-3 and N-4 differ only in their line, which the data were made to matter:

by_name = {row["machine"]: float(row["proba_fault"]) for row in predictions}
print(f"p(fault) on the north line {by_name['N-3']:.3f}, on the south line {by_name['N-4']:.3f}")

# %%
# The temporary folder goes now.

folder.cleanup()
