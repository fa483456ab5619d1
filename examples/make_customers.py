"""Write the synthetic export the README trains on: ``customers.csv`` and ``new_customers.csv``.

The files are what a spreadsheet or a database export looks like rather than a tidy
benchmark: semicolons, a text identifier, text and boolean columns, empty and ``NA``
cells, and a label in words. Who churns depends on the monthly usage, the plan, the
age and autopay, plus noise. The new customers come in another column order, with
an extra column, a region never seen in training and an empty cell. Run from the
repository's root: ``python examples/make_customers.py`` (the seed is fixed, so the
files are always the same).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(2026)
    n = 600
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n)
    age = np.clip(rng.normal(41, 12, n), 18, 90).round()
    usage = rng.gamma(2.0, 10.0, n).round(1)
    autopay = rng.random(n) < 0.6
    score = usage / 20 + 1.2 * (plan == "premium") + 0.8 * autopay - (age - 40) / 25 + rng.normal(0, 0.6, n)
    label = np.where(score > 1.6, "stays", "churns")
    lines = ["customer_id;age;plan;region;monthly_usage;autopay;outcome"]
    for i in range(n):
        cells = [
            f"C-{10000 + i}",
            "" if rng.random() < 0.05 else f"{age[i]:.0f}",
            plan[i],
            "" if rng.random() < 0.03 else region[i],
            "NA" if rng.random() < 0.04 else f"{usage[i]}",
            "true" if autopay[i] else "false",
            label[i],
        ]
        lines.append(";".join(cells))
    (HERE / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    new = [
        "customer_id,plan,monthly_usage,region,age,autopay,signup_channel",
        "N-001,premium,31.5,north,35,true,web",
        "N-002,basic,4.2,south,67,false,phone",
        "N-003,plus,18.0,central,29,true,web",
        "N-004,basic,22.7,east,,true,store",
        "N-005,plus,9.9,west,52,false,web",
    ]
    (HERE / "new_customers.csv").write_text("\n".join(new) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
