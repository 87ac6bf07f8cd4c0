"""Turn a long table (design: Fit input) into validated arrays for a fit.

Accepts the long format (`N`, `C`|`D`|`step`, `L`|`pass1`, optional `run`, `seed`, `tau`) and the
StepRecord format of `steps.jsonl` (`flops_paper_cum`, `prompts_seen`, `eval_L`), whose step-0 rows
(the evaluation before training, X = 0) and rows without an evaluation are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from rlscale.errors import InputError
from rlscale.fit.laws import Curves
from rlscale.steprecord import is_step_records, to_fit_table
from rlscale.units import parse_number

XName = Literal["C", "D", "step"]
Space = Literal["log", "linear"]
X_NAMES: tuple[XName, ...] = ("C", "D", "step")


@dataclass(frozen=True)
class FitData:
    """Validated fit input: arrays of equal length, one entry per (run, step) point."""

    curves: Curves
    L: np.ndarray
    curve_id: np.ndarray  # integer id of the run (curve) of each point
    has_runs: bool  # True when curve ids come from a `run` column
    c_per_step: dict[float, float]  # per size: median compute per step, when C and step are known
    d_per_step: float | None  # prompts per step, when D and step are known
    source: str

    @property
    def n(self) -> int:
        return int(self.L.size)

    @property
    def N(self) -> np.ndarray:
        return self.curves.N

    def subset(self, index: np.ndarray) -> FitData:
        """Points selected by an integer or boolean index (sizes re-indexed)."""
        idx = np.flatnonzero(index) if index.dtype == bool else index
        return FitData(
            curves=self.curves.take(idx),
            L=self.L[idx],
            curve_id=self.curve_id[idx],
            has_runs=self.has_runs,
            c_per_step=self.c_per_step,
            d_per_step=self.d_per_step,
            source=self.source,
        )


def load_fit_data(
    df: pd.DataFrame,
    x: XName,
    *,
    by: str = "N",
    space: Space = "log",
    source: str = "data",
    dedupe: bool = False,
) -> FitData:
    """Validate `df` and build a FitData; raises InputError naming file, column and row.

    Rows repeating another in every column the fit reads (size, resource, L, and run, seed and
    τ when present) are an error — they would count twice and narrow every interval, and they
    usually mean a file was appended twice — unless `dedupe` drops them."""
    df = _from_step_records(df)
    if x not in X_NAMES:
        raise InputError(f"--x must be one of {', '.join(X_NAMES)}, not {x!r}")
    l_col = "L" if "L" in df.columns else "pass1"
    for col in (by, x, l_col):
        if col not in df.columns:
            have = ", ".join(str(c) for c in df.columns if c != "_row")
            raise InputError(f"{source}: missing column '{col}' (have: {have})")
    if df.empty:
        raise InputError(f"{source}: no rows")
    df = _without_duplicates(df, [by, x, l_col, "run", "seed", "tau"], source, dedupe)
    rows = df["_row"].to_numpy()
    N = _numeric(df, by, source, rows, sizes=True)
    X = _numeric(df, x, source, rows)
    L = _numeric(df, l_col, source, rows)
    if l_col == "pass1":  # a pass rate: L = 1 − pass1 is an error rate in [0, 1]
        _require((L >= 0) & (L <= 1), source, l_col, rows, L, "a pass rate must be in [0, 1]")
        L = 1.0 - L
    _require(N > 0, source, by, rows, N, "must be > 0")
    _require(X > 0, source, x, rows, X, "must be > 0 (drop step-0 rows: there X = 0)")
    if space == "log":  # any positive loss: an error rate, or a cross-entropy in nats
        _require(L > 0, source, l_col, rows, L, "L must be > 0 for a fit in log space")
    else:
        _require(L >= 0, source, l_col, rows, L, "L must be >= 0")
    curve_id, has_runs = _curve_ids(df, N)
    return FitData(
        curves=Curves.from_arrays(N, X),
        L=L,
        curve_id=curve_id,
        has_runs=has_runs,
        c_per_step=_c_per_step(df, by),
        d_per_step=_d_per_step(df),
        source=source,
    )


def _from_step_records(df: pd.DataFrame) -> pd.DataFrame:
    """StepRecords as the fit table (`to_fit_table`), keeping 1-based source row numbers."""
    df = df.copy()
    df["_row"] = np.arange(len(df)) + 1
    return to_fit_table(df) if is_step_records(df) else df


def _without_duplicates(
    df: pd.DataFrame, columns: list[str], source: str, dedupe: bool
) -> pd.DataFrame:
    key = [c for c in columns if c in df.columns]
    repeated = df.duplicated(subset=key, keep="first")
    if not repeated.any() or dedupe:
        return df[~repeated]
    first = df[repeated].iloc[0]
    original = df[(df[key] == first[key]).all(axis=1)].iloc[0]
    raise InputError(
        f"{source}: row {first['_row']} repeats row {original['_row']} in {', '.join(key)} "
        f"({int(repeated.sum())} repeated rows; the same data appended twice?); fix the file, "
        "or pass --dedupe to drop the repeats"
    )


def _numeric(
    df: pd.DataFrame, col: str, source: str, rows: np.ndarray, sizes: bool = False
) -> np.ndarray:
    """A column as floats; `sizes` also reads suffixed sizes such as 7B or 1.5M."""
    raw = df[col]
    readable = raw.map(_size_or_text) if sizes and not is_numeric_dtype(raw) else raw
    values = pd.to_numeric(readable, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        what = "non-finite" if pd.notna(values[i]) or pd.isna(raw.iloc[i]) else "non-numeric"
        raise InputError(
            f"{source}: column '{col}' row {rows[i]}: {what} value {_shown(raw.iloc[i])}"
        )
    return values


def _size_or_text(value: Any) -> Any:
    try:
        return parse_number(value, "size") if isinstance(value, str) else value
    except InputError:
        return value


def _shown(value: Any) -> str:
    """A cell as the user wrote it (numpy scalars print as plain numbers)."""
    return repr(float(value)) if isinstance(value, float | np.floating) else repr(value)


def _require(
    ok: np.ndarray, source: str, col: str, rows: np.ndarray, values: np.ndarray, why: str
) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{source}: column '{col}' row {rows[i]}: value {values[i]:g} — {why}")


def _curve_ids(df: pd.DataFrame, N: np.ndarray) -> tuple[np.ndarray, bool]:
    if "run" in df.columns:
        codes, _ = pd.factorize(df["run"].astype(str))
        return codes.astype(np.int64), True
    _, inverse = np.unique(N, return_inverse=True)
    return inverse.astype(np.int64), False


def _c_per_step(df: pd.DataFrame, by: str) -> dict[float, float]:
    if not {"C", "step", by} <= set(df.columns):
        return {}
    sub = df[[by, "C", "step"]].apply(pd.to_numeric, errors="coerce").dropna()
    sub = sub[sub["step"] > 0]
    ratio = (sub["C"] / sub["step"]).groupby(sub[by]).median()
    return {float(k): float(v) for k, v in ratio.items() if np.isfinite(v) and v > 0}


def _d_per_step(df: pd.DataFrame) -> float | None:
    if not {"D", "step"} <= set(df.columns):
        return None
    sub = df[["D", "step"]].apply(pd.to_numeric, errors="coerce").dropna()
    sub = sub[sub["step"] > 0]
    if sub.empty:
        return None
    value = float((sub["D"] / sub["step"]).median())
    return value if np.isfinite(value) and value > 0 else None
