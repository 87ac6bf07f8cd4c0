"""A study's per-run prefix forecasts (the report's figure), with the correlated error model
against the independent one, on the same fits: the share of each run's remaining points inside
the 95% band, and the MAE (the same for both: only the bands differ).

Run: python benchmarks/study_forecasts.py STUDY_DIR [--fraction 0.3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlscale.analysis import scaling_table
from rlscale.fit.estimator import LawFit
from rlscale.fit.validate import forecast_points, prefix_length
from rlscale.store import load_study_records

MODELS = ("independent", "correlated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--fraction", type=float, default=0.3)
    args = parser.parse_args()
    table = scaling_table(load_study_records(args.study))
    cover: dict[str, list[float]] = {m: [] for m in MODELS}
    print(f"{'run':<34} {'points':>6} {'MAE':>7} " + " ".join(f"{m:>12}" for m in MODELS))
    for run in sorted(table["run"].unique()):
        rows = table[table["run"] == run].sort_values("C")
        keep = prefix_length(len(rows), args.fraction)
        rest = rows.iloc[keep:]
        results = {}
        for model in MODELS:
            fit = LawFit(law="loglinear", x="C", noise=model).fit(rows.iloc[:keep])
            N, C, L = (rest[c].to_numpy(dtype=float) for c in ("N", "C", "L"))
            results[model] = forecast_points(fit, N, C, L)
            cover[model].append(results[model]["coverage95"])
        cells = " ".join(f"{results[m]['coverage95']:>12.0%}" for m in MODELS)
        print(f"{run:<34} {keep:>6} {results['correlated']['mae']:>7.4f} {cells}")
    means = " ".join(f"{sum(v) / len(v):>12.1%}" for v in cover.values())
    print(f"{'mean 95% coverage':<49} {means}")


if __name__ == "__main__":
    main()
