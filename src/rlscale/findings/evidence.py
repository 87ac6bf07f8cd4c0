"""The uncertainty the findings' rules use: the run-to-run spread of L (measured from seeds, or
an assumption stated in every verdict), each size's mean curve with its variance, and where each
size starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

RUN_SD_ASSUMED = 0.01  # the paper: run-to-run std of the final test loss about 0.01


@dataclass(frozen=True)
class RunNoise:
    """Standard deviation of a run's L beyond its evaluation's sampling noise, with the degrees
    of freedom of its estimate (infinite when assumed)."""

    sd: float
    df: float
    source: str

    def to_dict(self) -> dict[str, float | str]:
        return {"sd": self.sd, "df": self.df, "source": self.source}

    @property
    def text(self) -> str:
        return f"run-to-run sd {self.sd:.3g} ({self.source})"


def se_column(rows: pd.DataFrame) -> str | None:
    """The evaluation's standard error column: sampling (the holdout is fixed) before
    between-problem."""
    for col in ("L_se_sampling", "L_se"):
        if col in rows and rows[col].notna().any():
            return col
    return None


def sampling_var(rows: pd.DataFrame) -> pd.Series:
    col = se_column(rows)
    if col is None:
        return pd.Series(0.0, index=rows.index)
    return rows[col].astype(float).fillna(0.0) ** 2


def run_noise(table: pd.DataFrame, assumed: float = RUN_SD_ASSUMED) -> RunNoise:
    """The run-to-run variance pooled over sizes: at each evaluated step of a size's second
    half with two or more runs, the runs' variance less their mean sampling variance; each size
    counts its runs − 1 degrees of freedom once (its steps are not independent)."""
    rows = table[table["step"] > 0]
    shares, dfs = [], []
    for _, size in rows.groupby("N"):
        runs = size["run"].nunique()
        if runs < 2:
            continue
        late = size[size["step"] >= size["step"].max() / 2]
        samp = sampling_var(late)
        cells = late.assign(v=samp).groupby("step").agg(s2=("L", "var"), v=("v", "mean"))
        cells = cells.dropna()
        if cells.empty:
            continue
        shares.append(float((cells["s2"] - cells["v"]).mean()))
        dfs.append(runs - 1)
    if not dfs:
        return RunNoise(assumed, math.inf, "assumed: one run a size, the paper's figure")
    var = max(0.0, float(np.dot(shares, dfs) / np.sum(dfs)))
    return RunNoise(math.sqrt(var), float(np.sum(dfs)), f"measured: seeds, {int(sum(dfs))} df")


def mean_curve(rows: pd.DataFrame, x: str, noise: RunNoise) -> pd.DataFrame:
    """One size's L against x, step by step the mean over its runs (x too: a seed's C depends
    on its token counts), with the variance of that mean: the runs' sampling variances and the
    run-to-run variance, over the number of runs."""
    part = rows.assign(_v=sampling_var(rows))
    grouped = part.groupby("step")
    n = grouped["L"].count()
    var = grouped["_v"].sum() / n**2 + noise.sd**2 / n
    curve = pd.DataFrame({x: grouped[x].mean(), "L": grouped["L"].mean(), "var": var, "n": n})
    return curve.set_index(x).sort_index()


@dataclass(frozen=True)
class Start:
    """Where a size starts: its mean L before training (or at its first evaluated step when the
    table has no step 0) and that mean's variance."""

    L: float
    var: float
    step: int


def starting_levels(table: pd.DataFrame) -> dict[float, Start]:
    """Each size's starting level: step-0 rows where present (no run noise: every run starts
    from the same weights), else the first evaluated step."""
    out = {}
    for N in table["N"].unique():
        rows = table[table["N"] == N]
        first = rows[rows["step"] == rows["step"].min()]
        var = float(sampling_var(first).sum()) / len(first) ** 2
        out[float(N)] = Start(float(first["L"].mean()), var, int(first["step"].iloc[0]))
    return out


def at(curve: pd.DataFrame, X: float) -> tuple[float, float]:
    """L and its variance at X, interpolated in log x (the variance linearly: an upper bound of
    the interpolated mean's)."""
    logx = np.log(curve.index.to_numpy(dtype=float))
    lx = math.log(X)
    return (
        float(np.interp(lx, logx, curve["L"].to_numpy())),
        float(np.interp(lx, logx, curve["var"].to_numpy())),
    )
