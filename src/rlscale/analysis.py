"""A study's analysis after (or during) its runs: the scaling fits, per-size comparisons of curve
shapes, losses at equal compute, the data-reuse curves and a run's forecast from its prefix.

Everything here takes the StepRecords of a study as a DataFrame (`store.load_study_records`)
and returns plain dicts and lists (JSON-ready); nothing reads or writes files.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import asdict
from typing import Any, cast

import numpy as np
import pandas as pd

from rlscale.errors import InputError, RlscaleError
from rlscale.findings import (
    law_holds_per_family,
    paper_findings,
    ratio_interval,
    reuse_from_table,
)
from rlscale.fit.estimator import FitConfig, LawFit, n_key
from rlscale.fit.families import FamilyFits
from rlscale.fit.validate import (
    BACKTEST_FRACTIONS,
    MIN_PREFIX_POINTS,
    backtest,
    forecast_points,
    prefix_length,
)
from rlscale.steprecord import FIT_COLUMNS, FIT_TABLE, is_step_records, to_fit_table

# (law, resource) pairs fitted for every study: the paper's law on compute and on data, its
# per-size diagnostic, the exponential rival and the Chinchilla-style rival.
STUDY_FITS: tuple[tuple[str, str], ...] = (
    ("paper", "C"),
    ("paper", "D"),
    ("loglinear", "C"),
    ("expdecay", "C"),
    ("loglinear", "D"),
    ("expdecay", "D"),
    ("powerlaw_floor", "C"),
)


def scaling_table(records: pd.DataFrame, runs: Collection[str] | None = None) -> pd.DataFrame:
    """The fit input of the τ = 1 runs (of `runs` only, when given: a reuse grid may have a τ = 1
    run of its own, outside the scaling grid): one row per evaluated step after step 0."""
    if records.empty:
        return pd.DataFrame(columns=FIT_TABLE)
    rows = to_fit_table(records)
    rows = rows[rows["tau"] == 1]
    if runs is not None:
        rows = rows[rows["run"].isin(list(runs))]
    family = {"family": rows["family"].astype(str)} if "family" in rows else {}
    out = pd.DataFrame(
        {
            "run": rows["run"],
            **family,
            "N": rows["N"].astype(float),
            "seed": rows["seed"],
            "tau": rows["tau"],
            "step": rows["step"],
            **{c: pd.to_numeric(rows[c], errors="coerce").astype(float) for c in FIT_TABLE[5:]},
        }
    )
    return out.sort_values(["N", "run", "step"]).reset_index(drop=True)


# the fits the findings read: per-size power law and exp-decay on C and D, the paper law on C
FINDING_FITS: tuple[tuple[str, str], ...] = (
    ("paper", "C"),
    ("loglinear", "C"),
    ("expdecay", "C"),
    ("loglinear", "D"),
    ("expdecay", "D"),
)


def start_rows(records: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The step-0 evaluations (before training, C = D = 0) of the runs in `table`, as fit-table
    rows: each size's starting level for the findings."""
    if records.empty or "eval_L" not in records:
        return table.iloc[:0]
    rows = records[(records["step"] == 0) & records["eval_L"].notna()]
    rows = rows[rows["run"].isin(table["run"])]
    out = pd.DataFrame(
        {
            "run": rows["run"],
            "N": rows["N"].astype(float),
            "seed": rows["seed"],
            "tau": rows["tau"],
            "step": 0,
            "C": 0.0,
            "D": 0.0,
            "L": rows["eval_L"].astype(float),
            "L_se": rows.get("eval_L_se"),
            "L_se_sampling": rows.get("eval_L_se_sampling"),
        }
    )
    if "family" in table:
        out["family"] = rows["family"].astype(str) if "family" in rows else table["family"].iloc[0]
    return out.astype({c: float for c in ("L_se", "L_se_sampling")})


FINDINGS_COLUMNS = ("run", "N", "step", "C", "D", "L")


def findings_table(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """A long table for `table_findings`: StepRecords (a run's `steps.jsonl`, a study's
    records) mapped to fit-table columns with their step-0 rows kept, `pass1` turned into
    L = 1 − pass1; refused, naming the column or the row, when something is missing or not
    finite."""
    if is_step_records(df):
        rows = df[df["eval_L"].notna()]
        df = rows.rename(columns={k: v for k, v in FIT_COLUMNS.items() if k in rows})
    elif "L" not in df and "pass1" in df:
        df = df.assign(L=1.0 - pd.to_numeric(df["pass1"], errors="coerce"))
    missing = [c for c in FINDINGS_COLUMNS if c not in df]
    if missing:
        raise InputError(
            f"{source}: needs columns {', '.join(FINDINGS_COLUMNS)} (or StepRecords); "
            f"missing {', '.join(missing)}"
        )
    out = df.copy()
    for column in ("N", "step", "C", "D", "L"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
        bad = out.index[~np.isfinite(out[column].to_numpy(dtype=float))]
        if len(bad):
            raise InputError(f"{source}: row {int(bad[0]) + 1}: {column} is not a finite number")
    for column, default in (("seed", 0), ("tau", 1)):
        if column not in out:
            out[column] = default
    return out.sort_values(["N", "run", "step"]).reset_index(drop=True)


def table_findings(table: pd.DataFrame, departures: Sequence[str] = ()) -> dict[str, Any]:
    """The paper's findings (a)–(d) judged on a long table of any runs (`run, N, step, C, D,
    L`, optional SEs, `seed`, `tau`; step-0 rows give the starting levels): the τ = 1 runs are
    fitted, the reuse runs (a size with τ > 1) compared."""
    scaling = table[table["tau"] == 1]
    fits = fit_study(scaling[scaling["step"] > 0], fits=FINDING_FITS)
    reuse, reuse_N = reuse_from_table(table)
    return paper_findings(scaling, fits, reuse, reuse_N, departures)


def fit_study(
    table: pd.DataFrame,
    fits: Sequence[tuple[str, str]] = STUDY_FITS,
    bootstrap: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each (law, x) fit's FitResult, plus per-size R² in ln L; a fit that cannot be made
    (too few sizes, L = 0 in log space, …) is kept with `converged: false` and the reason."""
    results: dict[str, dict[str, Any]] = {}
    for law, x in fits:
        name = f"{law}-{x}"
        try:
            fit = LawFit(law=law, x=x, bootstrap=bootstrap).fit(table, source="study")
        except (InputError, RlscaleError, ValueError) as exc:
            results[name] = {"law": law, "x": x, "converged": False, "message": str(exc)}
            continue
        results[name] = fit.summary() | {"r2_per_N": per_size_r2(fit, table, x)}
    return results


def families_in(table: pd.DataFrame) -> list[str]:
    """The model families of a table's rows, in their order ([] without a `family` column)."""
    if "family" not in table or table.empty:
        return []
    return [str(f) for f in dict.fromkeys(table["family"].dropna())]


def fit_families(table: pd.DataFrame, bootstrap: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """Every study fit per family: {family: {"<law>-<x>": FitResult}}."""
    return {
        family: fit_study(table[table["family"] == family], bootstrap=bootstrap)
        for family in families_in(table)
    }


def family_equal_compute(table: pd.DataFrame, points: int = 4) -> list[dict[str, Any]]:
    """For each size two or more families share: their L at common compute budgets (log-spaced
    over the C range every family's run spans; log-linear interpolation, mean over seeds) and
    which family is lower there."""
    families = families_in(table)
    out = []
    for N in sorted(table["N"].unique()) if len(families) > 1 else []:
        rows = table[table["N"] == N]
        curves = {f: rows[rows["family"] == f].groupby("C")["L"].mean() for f in families}
        curves = {f: c for f, c in curves.items() if len(c) > 1}
        if len(curves) < 2:
            continue
        lo = max(float(c.index.min()) for c in curves.values())
        hi = min(float(c.index.max()) for c in curves.values())
        if not lo < hi:
            continue
        for C in np.geomspace(lo, hi, points):
            L = {
                f: float(np.interp(np.log(C), np.log(c.index.to_numpy()), c.to_numpy()))
                for f, c in curves.items()
            }
            out.append({"N": float(N), "C": float(C), "L": L, "lower": min(L, key=L.__getitem__)})
    return out


def per_size_r2(fit: LawFit, table: pd.DataFrame, x: str) -> dict[str, float | None]:
    """R² of the fit in ln L within each size (how well it follows that size's curve shape);
    None for a size whose L never changed (nothing to explain)."""
    out: dict[str, float | None] = {}
    for N in sorted(table["N"].unique()):
        rows = table[table["N"] == N]
        ln_obs = np.log(rows["L"].to_numpy())
        ln_fit = np.log(fit.predict(float(N), rows[x].to_numpy(dtype=float))["L"].to_numpy())
        total = float(np.sum((ln_obs - ln_obs.mean()) ** 2))
        resid = float(np.sum((ln_obs - ln_fit) ** 2))
        out[n_key(float(N))] = 1.0 - resid / total if total > 0 else None
    return out


def k_rises_with_N(result: dict[str, Any]) -> bool | None:
    """Whether a fit's per-size k increases with N (None for a failed fit, one size or a law
    without k)."""
    per_N = result.get("per_N") or {}
    if not result.get("converged") or len(per_N) < 2:
        return None
    if not all("k" in row for row in per_N.values()):
        return None
    ks = [row["k"] for _, row in sorted(per_N.items(), key=lambda kv: float(kv[0]))]
    return bool(all(b > a for a, b in itertools.pairwise(ks)))


def equal_compute(table: pd.DataFrame, points: int = 6) -> list[dict[str, Any]]:
    """Each size's L at common compute budgets (log-spaced over the whole range; log-linear
    interpolation in C, mean over seeds; None where a size's run did not span that C), and
    whether larger sizes have lower L there (the paper's first finding), among the sizes present.
    """
    curves = {
        float(N): table[table["N"] == N].groupby("C")["L"].mean() for N in table["N"].unique()
    }
    if len(curves) < 2:
        return []
    lo = min(float(c.index.min()) for c in curves.values())
    hi = max(float(c.index.max()) for c in curves.values())
    if not lo < hi:
        return []
    out = []
    for C in np.geomspace(lo, hi, points):
        L: dict[str, float | None] = {}
        for N, c in sorted(curves.items()):
            x = np.log(c.index.to_numpy())
            inside = x[0] - 1e-9 <= np.log(C) <= x[-1] + 1e-9
            L[n_key(N)] = float(np.interp(np.log(C), x, c.to_numpy())) if inside else None
        values = [v for v in L.values() if v is not None]
        ordered = all(b < a for a, b in itertools.pairwise(values)) if len(values) > 1 else None
        out.append({"C": float(C), "L": L, "larger_lower": ordered})
    return out


def reuse_curves(
    records: pd.DataFrame, model: str, runs: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The reuse model's curves per τ: L against step (mean over seeds), L at step 0 and the
    final L, each with its standard error (across seeds when there are several, else the
    evaluation's sampling SE, else its between-problem SE); `runs` limits them to the reuse runs
    (when these have a step count of their own)."""
    rows = records[(records["model"] == model) & records["eval_L"].notna()]
    if runs is not None:
        rows = rows[rows["run"].isin(runs)]
    out: dict[str, dict[str, Any]] = {}
    for tau in sorted(rows["tau"].unique()):
        part = rows[rows["tau"] == tau]
        curve = part.groupby("step")["eval_L"].mean()
        spread = part.groupby("step")["eval_L"].std(ddof=1).reindex(curve.index).fillna(0.0)
        start, se_kind = _mean_and_se(part[part["step"] == 0])
        final, _ = _mean_and_se(part[part["step"] == part["step"].max()])
        out[str(int(tau))] = {
            "step": [int(s) for s in curve.index],
            "L": [float(v) for v in curve.to_numpy()],
            "L_sd": [float(v) for v in spread.to_numpy()],
            "start_L": start[0],
            "start_L_se": start[1],
            "final_L": final[0],
            "final_L_se": final[1],
            "se_kind": se_kind,
            "unique_prompts": int(part["unique_prompts"].max()),
            "seeds": int(part["seed"].nunique()),
        }
    return out


def _mean_and_se(rows: pd.DataFrame) -> tuple[tuple[float | None, float | None], str]:
    """Mean eval_L over the rows (one a seed) and its standard error, with the SE's kind."""
    if rows.empty:
        return (None, None), "none"
    mean = float(rows["eval_L"].mean())
    if len(rows) > 1:
        return (mean, float(rows["eval_L"].std(ddof=1) / np.sqrt(len(rows)))), "across seeds"
    for column, kind in (("eval_L_se_sampling", "sampling"), ("eval_L_se", "between problems")):
        if column in rows and pd.notna(rows[column].iloc[0]):
            return (mean, float(rows[column].iloc[0])), kind
    return (mean, None), "none"


def forecast_final(records: pd.DataFrame, final_step: int) -> dict[str, float] | None:
    """One run's L at `final_step` from a log–log fit of L on step over its evaluated prefix
    (the paper's intra-run prediction), with a 95% prediction band; None until enough points."""
    rows = records[(records["step"] > 0) & records["eval_L"].notna() & (records["eval_L"] > 0)]
    if len(rows) < MIN_PREFIX_POINTS or rows["step"].max() >= final_step:
        return None
    table = pd.DataFrame({"N": rows["N"].astype(float), "step": rows["step"], "L": rows["eval_L"]})
    try:
        fit = LawFit(law="loglinear", x="step").fit(table, source="prefix")
    except (InputError, RlscaleError, ValueError):
        return None
    if not fit.converged_:
        return None
    row = fit.predict(float(table["N"].iloc[0]), float(final_step)).iloc[0]
    return {
        "step": final_step,
        "L": float(row["L"]),
        "lo": float(row["lo"]),
        "hi": float(row["hi"]),
    }


def family_comparison(table: pd.DataFrame, x: str = "C") -> dict[str, Any]:
    """The paper law's joint fit of the families on the sizes they share, against each family's
    own fit (`fit.families`): does one k(N) serve them all?"""
    try:
        fits = FamilyFits(FitConfig(law="paper", x=cast(Any, x))).fit(table, source="study")
    except (InputError, RlscaleError, ValueError) as exc:
        return {"law": "paper", "x": x, "verdict": None, "reason": str(exc)}
    joint: dict[str, Any] = fits.summary()["joint"]
    return joint


def family_summary(
    table: pd.DataFrame,
    family_fits: dict[str, dict[str, dict[str, Any]]],
    joint: dict[str, Any] | None,
) -> dict[str, Any]:
    """A study of several families: finding (e) judged, each family's paper-law globals and
    R², the families' L at equal compute per shared size, and the joint fit's comparison."""
    per_family = {f: (fits, table[table["family"] == f]) for f, fits in family_fits.items()}
    return {
        "names": list(family_fits),
        "finding": asdict(law_holds_per_family(per_family, joint)),
        "per_family": {
            f: _paper_globals(fits.get("paper-C", {})) | {"r2": fits.get("paper-C", {}).get("r2")}
            for f, fits in family_fits.items()
        },
        "equal_compute": family_equal_compute(table),
        "joint": joint,
    }


def study_summary(
    table: pd.DataFrame,
    records: pd.DataFrame,
    fits: dict[str, dict[str, Any]],
    reuse_model: str | None,
    reuse_runs: list[str] | None = None,
    departures: Sequence[str] = (),
    families: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a study found: the paper's findings judged (first), per-size curve shapes and
    slopes, the C-fit's globals, equal-compute losses and the reuse curves (the figures printed
    at the end of `rlscale study run`). In a study of several families, `table` and `fits` are
    its first family's and `families` is the `family_summary`: finding (e) joins the others."""
    loglog, expo = fits.get("loglinear-C", {}), fits.get("expdecay-C", {})
    paper_c = fits.get("paper-C", {})
    per_size = []
    for N in sorted(table["N"].unique()):
        key = n_key(float(N))
        per_size.append(
            {
                "N": float(N),
                "r2_loglog": (loglog.get("r2_per_N") or {}).get(key),
                "r2_exp": (expo.get("r2_per_N") or {}).get(key),
                "k_loglinear": (loglog.get("per_N") or {}).get(key, {}).get("k"),
                "k_loglinear_ci95": (loglog.get("per_N_ci95") or {}).get(key, {}).get("k"),
                "k_paper": (paper_c.get("per_N") or {}).get(key, {}).get("k"),
            }
        )
    reuse = reuse_curves(records, reuse_model, reuse_runs) if reuse_model else {}
    reuse_N = records.loc[records["model"] == reuse_model, "N"] if reuse_model else None
    N_reuse = float(reuse_N.iloc[0]) if reuse_N is not None and len(reuse_N) else None
    findings = paper_findings(
        pd.concat([start_rows(records, table), table]), fits, reuse, N_reuse, departures
    )
    if families is not None:
        findings["findings"].append(families["finding"])
    return {
        "paper_findings": findings,
        **({"families": families} if families is not None else {}),
        "per_size": per_size,
        "k_rises_with_N": {name: k_rises_with_N(fits.get(name, {})) for name in fits},
        "paper_C": _paper_globals(paper_c),
        "equal_compute": equal_compute(table),
        "reuse": reuse,
    }


def _paper_globals(fit: dict[str, Any]) -> dict[str, Any]:
    """Kmax and N0 with intervals; and Kmax/N0, the one combination left identified when k(N)
    has not begun to saturate over the sizes (N0 far above them: k(N) ≈ (Kmax/N0)·N)."""
    params, ci = fit.get("params") or {}, fit.get("ci95") or {}
    out: dict[str, Any] = {n: {"value": params.get(n), "ci95": ci.get(n)} for n in ("Kmax", "N0")}
    kmax, n0 = params.get("Kmax"), params.get("N0")
    ratio = kmax / n0 if kmax is not None and n0 else None
    out["k_per_N"] = {"value": ratio, "ci95": ratio_interval(fit, ratio)}
    return out | {"converged": fit.get("converged"), "message": fit.get("message")}


def holdout_forecast(table: pd.DataFrame, x: str = "C", law: str = "paper_e_sat") -> dict[str, Any]:
    """Fit a law that defines L at unseen sizes on every size but the largest, and forecast the
    largest's curve (the paper's extrapolation to a held-out size)."""
    sizes = sorted(table["N"].unique()) if not table.empty else []
    if len(sizes) < 3:
        return {"ok": False, "message": "needs at least 3 sizes (2 to fit, 1 to forecast)"}
    held = float(sizes[-1])
    try:
        fit = LawFit(law=law, x=x).fit(table[table["N"] < held], source="holdout")
    except (InputError, RlscaleError, ValueError) as exc:
        return {"ok": False, "message": str(exc), "law": law, "x": x, "held_out": held}
    if not fit.converged_ and not fit.profile_:
        return {"ok": False, "message": fit.message_, "law": law, "x": x, "held_out": held}
    rows = table[table["N"] == held].sort_values(x)
    head = {"ok": True, "law": law, "x": x, "held_out": held, "profile": fit.profile_note or None}
    return head | _points(fit, rows, x)


def forecast_backtests(table: pd.DataFrame, x: str = "C") -> list[dict[str, Any]]:
    """The study's backtests (validate.backtest): the paper law's rolling-origin prefix
    forecasts, and paper_e_sat's forecasts of each size from the others."""
    out = []
    for law, fractions in (("paper", BACKTEST_FRACTIONS), ("paper_e_sat", ())):
        try:
            out.append(backtest(table, FitConfig(law=law, x=cast(Any, x)), fractions))
        except (InputError, RlscaleError, ValueError) as exc:
            out.append({"law": law, "x": x, "failed": str(exc)})
    return out


def prefix_forecasts(
    table: pd.DataFrame, x: str = "C", fraction: float = 0.3
) -> list[dict[str, Any]]:
    """Per run: a log–log fit of its first `fraction` of points (at least 3) forecasting the
    rest (the paper's intra-run prediction)."""
    out = []
    for run in sorted(table["run"].unique()) if not table.empty else []:
        rows = table[table["run"] == run].sort_values(x)
        keep = prefix_length(len(rows), fraction)
        if len(rows) <= keep:
            continue
        try:
            fit = LawFit(law="loglinear", x=x).fit(rows.iloc[:keep], source=str(run))
        except (InputError, RlscaleError, ValueError):
            continue
        if fit.converged_:
            head = rows.iloc[:keep]
            out.append(
                {"run": str(run), "N": float(rows["N"].iloc[0]), "prefix_points": keep}
                | {"prefix_X": head[x].astype(float).tolist(), "prefix_L": head["L"].tolist()}
                | _points(fit, rows.iloc[keep:], x)
            )
    return out


def _points(fit: LawFit, rows: pd.DataFrame, x: str) -> dict[str, Any]:
    N, X = rows["N"].to_numpy(dtype=float), rows[x].to_numpy(dtype=float)
    return forecast_points(fit, N, X, rows["L"].to_numpy(dtype=float))
