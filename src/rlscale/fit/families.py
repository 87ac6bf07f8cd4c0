"""Fits per model family (base, instruct, …) and whether one k(N) serves them all.

Every family gets its own fit of the law (`<family>/<law>-<x>`). Where the families share model
sizes and the law has the paper's k(N) = Kmax/(1 + N0/N) (`JOINT_LAWS`), two nested models are
fitted to the shared sizes of all families together:

- shared: one (Kmax, N0) for every family, E free per family and size (one fit, the law's own
  solver: a family-and-size group takes the place of a size, so E is per group and k a function
  of N alone);
- separate: each family its own (Kmax, N0) and E (the families' own fits on those sizes).

They are compared in sample by the likelihood-ratio statistic under the error model of the
separate fits (`rlscale.fit.noise`): successive points of a run are correlated, so the
statistic is divided by the design effect before it meets χ² on the extra parameters — a naive
test on hundreds of correlated points calls every small difference significant. AIC and BIC are
reported on the same scale, with the effective sample size n / design effect. Out of sample, both
models forecast the rest of every run from its first part (prefix splits, as `fit.validate`),
scored by each run's mean forecast error. The in-sample vote (`shared` or `differ`) is the
verdict unless the forecasts clearly say otherwise (beyond `FamilyConfig.margin`): then, or when
a fit fails or no point can be held out, `undecided`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from rlscale.errors import InputError
from rlscale.fit.data import FitData, load_fit_data
from rlscale.fit.estimator import (
    FitConfig,
    LawFit,
    curve_weights,
    json_safe,
    n_key,
    numeric_jacobian,
)
from rlscale.fit.laws import Curves, get_law, size_param
from rlscale.fit.noise import Noise, estimate_noise
from rlscale.fit.profile import design_effect
from rlscale.fit.solver import Problem
from rlscale.fit.validate import prefix_length

FAMILY_COLUMN = "family"
JOINT_LAWS = ("paper",)  # laws whose k(N) a joint fit shares while E stays per family
K_NAMES = ("Kmax", "N0")
Vote = Literal["shared", "differ"]
HeldOutVote = Literal["shared", "differ", "tie"]
Verdict = Literal["shared", "differ", "undecided"]


@dataclass(frozen=True)
class Evidence:
    """The in-sample comparison on the error model's scale (deviance = 2F / (σ²·effect))."""

    deviance_shared: float
    deviance_separate: float
    params_shared: int
    params_separate: int
    n: int
    effect: float  # design effect of the separate fits' residuals

    @property
    def df(self) -> int:
        return self.params_separate - self.params_shared

    @property
    def statistic(self) -> float:
        return max(0.0, self.deviance_shared - self.deviance_separate)

    @property
    def n_eff(self) -> float:
        return self.n / self.effect

    @property
    def p_value(self) -> float:
        return float(stats.chi2.sf(self.statistic, self.df))

    def aic(self, shared: bool) -> float:
        dev, p = self._model(shared)
        return dev + 2.0 * p

    def bic(self, shared: bool) -> float:
        dev, p = self._model(shared)
        return dev + p * math.log(max(self.n_eff, 2.0))

    def _model(self, shared: bool) -> tuple[float, int]:
        if shared:
            return self.deviance_shared, self.params_shared
        return self.deviance_separate, self.params_separate


def _lr_says(e: Evidence, level: float) -> Vote:
    return "differ" if e.p_value < 1.0 - level else "shared"


def _aic_says(e: Evidence, level: float) -> Vote:
    return "differ" if e.aic(shared=False) < e.aic(shared=True) else "shared"


def _bic_says(e: Evidence, level: float) -> Vote:
    return "differ" if e.bic(shared=False) < e.bic(shared=True) else "shared"


# The in-sample criterion that votes, by name: the scaled likelihood-ratio test at `level`, or
# the lower AIC / BIC (effective sample size).
CRITERIA: dict[str, Callable[[Evidence, float], Vote]] = {
    "lr": _lr_says,
    "aic": _aic_says,
    "bic": _bic_says,
}


@dataclass(frozen=True)
class FamilyConfig:
    """How families are told apart and compared; validated when built."""

    column: str = FAMILY_COLUMN
    criterion: str = "lr"  # the in-sample vote: lr, aic or bic (all three are reported)
    level: float = 0.95  # the likelihood-ratio test rejects a shared k(N) at p < 1 − level
    fractions: tuple[float, ...] = (0.5, 0.75)  # held out: each run's rest after this prefix
    margin: float = 0.1  # held out: a relative difference in run error below this is a tie

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise InputError(
                f"criterion must be one of {', '.join(CRITERIA)}, not {self.criterion!r}"
            )
        if not 0 < self.level < 1:
            raise InputError(f"level must be in (0, 1), not {self.level}")
        if not self.fractions or not all(0 < f < 1 for f in self.fractions):
            raise InputError(f"fractions must be in (0, 1), not {self.fractions}")
        if not (math.isfinite(self.margin) and 0 <= self.margin < 1):
            raise InputError(f"margin must be in [0, 1), not {self.margin}")


def family_key(family: str, config: FitConfig) -> str:
    """The name of a family's FitResult: `<family>/<law>-<x>`."""
    return f"{family}/{config.law}-{config.x}"


def split_families(
    data: pd.DataFrame, column: str = FAMILY_COLUMN, source: str = "data"
) -> dict[str, pd.DataFrame]:
    """The table's rows per family (in order of first appearance), or a one-line InputError."""
    if column not in data.columns:
        have = ", ".join(str(c) for c in data.columns)
        raise InputError(
            f"{source}: no column '{column}' to fit per family (have: {have}); add one naming "
            f"each row's model family (rlscale simulate --family NAME writes it)"
        )
    labels = data[column]
    missing = np.flatnonzero(labels.isna().to_numpy() | (labels.astype(str).str.strip() == ""))
    if missing.size:
        raise InputError(f"{source}: column '{column}' row {missing[0] + 1}: no family named")
    names = labels.astype(str)
    return {f: data[(names == f).to_numpy()] for f in dict.fromkeys(names)}


class FamilyFits:
    """One fit of `config.law` per family and, where possible, the joint comparison.

    Learned: `data_` and `fits_` (per family: its FitData and LawFit), `joint_` (the comparison
    as JSON-ready dict; `verdict` None with a `reason` when it cannot be made)."""

    def __init__(
        self, config: FitConfig | None = None, families: FamilyConfig | None = None
    ) -> None:
        self.config = config if config is not None else FitConfig()
        self.families = families if families is not None else FamilyConfig()

    def fit(self, data: pd.DataFrame, source: str = "data", dedupe: bool = False) -> FamilyFits:
        cfg = self.config
        tables = split_families(data, self.families.column, source)
        self.data_ = {
            f: load_fit_data(
                t, cfg.x, by=cfg.by, space=cfg.space, source=f"{source} (family {f})",
                dedupe=dedupe,
            )
            for f, t in tables.items()
        }  # fmt: skip
        self.fits_ = {f: LawFit(cfg).fit(fd) for f, fd in self.data_.items()}
        self.joint_ = compare_families(self.data_, self.fits_, cfg, self.families)
        return self

    @property
    def converged_(self) -> bool:
        joint = self.joint_.get("shared") or {}
        return all(f.converged_ for f in self.fits_.values()) and joint.get("converged", True)

    def summary(self) -> dict[str, Any]:
        """Each family's FitResult under `<family>/<law>-<x>`, and the comparison as `joint`."""
        out: dict[str, Any] = {
            family_key(f, self.config): fit.summary() for f, fit in self.fits_.items()
        }
        out["joint"] = json_safe(self.joint_)
        return out


def shared_sizes(data: Mapping[str, FitData]) -> np.ndarray:
    """The model sizes every family has."""
    sets = [set(fd.curves.sizes.tolist()) for fd in data.values()]
    return np.array(sorted(set.intersection(*sets))) if sets else np.zeros(0)


def joint_refusal(data: Mapping[str, FitData], config: FitConfig, sizes: np.ndarray) -> str | None:
    """Why the families cannot be compared (None when they can)."""
    law = get_law(config.law)
    if len(data) < 2:
        return f"one family ({', '.join(data)}): nothing to compare"
    if config.law not in JOINT_LAWS:
        return (
            f"law {config.law!r} has no k(N) shared across sizes with E free per family; the "
            f"joint comparison is made for {', '.join(JOINT_LAWS)} (fit with --law paper)"
        )
    if all(name in dict(config.fixed) for name in K_NAMES):
        return "Kmax and N0 are both fixed (--fix): the families' k(N) cannot differ"
    if sizes.size < law.min_sizes:
        have = ", ".join(f"{s:g}" for s in sizes) or "none"
        return (
            f"the families share {sizes.size} model size(s) ({have}); a joint fit of law "
            f"{config.law!r} needs at least {law.min_sizes}"
        )
    return None


def compare_families(
    data: Mapping[str, FitData],
    fits: Mapping[str, LawFit],
    config: FitConfig,
    families: FamilyConfig,
) -> dict[str, Any]:
    """The shared and separate models on the shared sizes, their evidence and the verdict."""
    sizes = shared_sizes(data)
    head: dict[str, Any] = {
        "law": config.law,
        "x": config.x,
        "families": list(data),
        "sizes": sizes.tolist(),
    }
    refusal = joint_refusal(data, config, sizes)
    if refusal:
        return head | {"verdict": None, "reason": refusal}
    cfg = replace(config, bootstrap=0)
    on_shared = {f: _on_sizes(fd, sizes) for f, fd in data.items()}
    separate = {
        f: fits[f] if on_shared[f].n == data[f].n else LawFit(cfg).fit(on_shared[f]) for f in data
    }
    joint_data = stack_families(on_shared, sizes)
    shared = LawFit(cfg).fit(joint_data)
    noise, rss_sep, p_sep = _separate_noise(on_shared, separate, cfg)
    n_runs = sum(np.unique(fd.curve_id).size for fd in on_shared.values())
    effect = design_effect(noise, joint_data.n / n_runs)
    sigma2 = rss_sep / max(joint_data.n - p_sep, 1)
    rss_shared = 2.0 * shared.objective_ if cfg.loss == "l2" else _rss(shared, joint_data, cfg)
    evidence = Evidence(
        deviance_shared=rss_shared / (sigma2 * effect),
        deviance_separate=rss_sep / (sigma2 * effect),
        params_shared=len(shared.cov_names_),
        params_separate=p_sep,
        n=joint_data.n,
        effect=effect,
    )
    held = held_out(on_shared, joint_data, sizes, cfg, families.fractions)
    verdict, reason, votes = decide(evidence, held, shared, separate, families)
    return head | {
        "n_points": joint_data.n,
        "shared": _shared_json(shared, list(data), sizes, rss_shared),
        "separate": _separate_json(separate, rss_sep, p_sep),
        "noise": noise.to_json(),
        "design_effect": effect,
        "n_eff": evidence.n_eff,
        "lr": {"statistic": evidence.statistic, "df": evidence.df, "p_value": evidence.p_value},
        "aic": {"shared": evidence.aic(True), "separate": evidence.aic(False)},
        "bic": {"shared": evidence.bic(True), "separate": evidence.bic(False)},
        "held_out": held,
        "criterion": families.criterion,
        "level": families.level,
        "votes": votes,
        "verdict": verdict,
        "reason": reason,
    }


def _on_sizes(fd: FitData, sizes: np.ndarray) -> FitData:
    return fd.subset(np.isin(fd.N, sizes))


def stack_families(data: Mapping[str, FitData], sizes: np.ndarray) -> FitData:
    """All families' points as one FitData whose groups are (family, size) pairs, numbered
    family by family in `data`'s order, sizes ascending; runs kept apart across families."""
    parts = list(data.values())
    group = np.concatenate(
        [i * sizes.size + np.searchsorted(sizes, fd.N) for i, fd in enumerate(parts)]
    )
    offsets = np.cumsum([0] + [int(fd.curve_id.max()) + 1 for fd in parts[:-1]])
    N = np.concatenate([fd.N for fd in parts])
    return FitData(
        curves=Curves.grouped(N, np.concatenate([fd.curves.X for fd in parts]), group),
        L=np.concatenate([fd.L for fd in parts]),
        curve_id=np.concatenate([fd.curve_id + o for fd, o in zip(parts, offsets, strict=True)]),
        has_runs=all(fd.has_runs for fd in parts),
        c_per_step={},
        d_per_step=None,
        source="joint: " + ", ".join(fd.source for fd in parts),
    )


def _problem(fit: LawFit, fd: FitData, cfg: FitConfig) -> Problem:
    objective = cfg.objective
    w = curve_weights(fd.curve_id, cfg.weighting)
    return Problem(fit.law_, fd.curves, objective.target(fd.L), w, objective, dict(cfg.fixed))


def _rss(fit: LawFit, fd: FitData, cfg: FitConfig) -> float:
    problem = _problem(fit, fd, cfg)
    r = problem.full_residuals_from(fit.all_params_)
    return float(np.sum(problem.w * r * r))


def _separate_noise(
    data: Mapping[str, FitData], fits: Mapping[str, LawFit], cfg: FitConfig
) -> tuple[Noise, float, int]:
    """The error model of the separate fits' residuals, all families together (the richer model
    holds under either answer), their weighted RSS and their number of free parameters."""
    residuals, jacobians, curves, xs, fitted = [], [], [], [], []
    offset = 0
    for f, fd in data.items():
        problem = _problem(fits[f], fd, cfg)
        v = problem.full_vector(fits[f].all_params_)

        def weighted(x: np.ndarray, p: Problem = problem) -> np.ndarray:
            return np.asarray(p.sqrt_w * p.full_residuals(x))

        residuals.append(weighted(v))
        jacobians.append(numeric_jacobian(weighted, v))
        curves.append(fd.curve_id + offset)
        offset += int(fd.curve_id.max()) + 1
        xs.append(fd.curves.X)
        fitted.append(np.exp(fits[f].law_.ln_L(fits[f].all_params_, fd.curves)))
    e = np.concatenate(residuals)
    J = _block_diagonal(jacobians)
    noise, _, _ = estimate_noise(
        cfg.noise, e, J, np.concatenate(curves), np.concatenate(xs), np.concatenate(fitted)
    )
    return noise, float(e @ e), J.shape[1]


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    out = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)))
    r = c = 0
    for b in blocks:
        out[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


def held_out(
    data: Mapping[str, FitData],
    joint: FitData,
    sizes: np.ndarray,
    cfg: FitConfig,
    fractions: Sequence[float],
) -> dict[str, Any] | None:
    """Both models' forecasts of every run's rest from its first `fraction` (each fraction in
    turn, pooled): the mean absolute error in L over the held-out points (`mae_*`), and over
    runs the absolute mean error of a run's held-out points (`run_error_*`: the noise of single
    points averages out, a wrong k(N) does not). None when no split leaves points to forecast."""
    cfg = replace(cfg, bootstrap=0, profile="off")
    errors: dict[str, list[np.ndarray]] = {"shared": [], "separate": []}
    run_errors: dict[str, list[np.ndarray]] = {"shared": [], "separate": []}
    used = []
    for fraction in fractions:
        masks = {f: _prefix_mask(fd, fraction) for f, fd in data.items()}
        if any(m.all() for m in masks.values()):
            continue
        for f, fd in data.items():
            err = _forecast_error(fd, masks[f], cfg)
            errors["separate"].append(err)
            run_errors["separate"].append(_run_means(err, fd.curve_id[~masks[f]]))
        joint_mask = np.concatenate([masks[f] for f in data])
        err = _forecast_error(joint, joint_mask, cfg)
        errors["shared"].append(err)
        run_errors["shared"].append(_run_means(err, joint.curve_id[~joint_mask]))
        used.append(fraction)
    if not used:
        return None
    mae = {k: float(np.abs(np.concatenate(v)).mean()) for k, v in errors.items()}
    run = {k: float(np.abs(np.concatenate(v)).mean()) for k, v in run_errors.items()}
    return {
        "kind": "prefix",
        "fractions": used,
        "n_test": int(sum(e.size for e in errors["shared"])),
        "mae_shared": mae["shared"],
        "mae_separate": mae["separate"],
        "run_error_shared": run["shared"],
        "run_error_separate": run["separate"],
    }


def _run_means(err: np.ndarray, curve: np.ndarray) -> np.ndarray:
    _, index = np.unique(curve, return_inverse=True)
    return np.asarray(np.bincount(index, err) / np.bincount(index))


def _prefix_mask(fd: FitData, fraction: float) -> np.ndarray:
    train = np.zeros(fd.n, dtype=bool)
    for cid in np.unique(fd.curve_id):
        idx = np.flatnonzero(fd.curve_id == cid)
        order = idx[np.argsort(fd.curves.X[idx], kind="stable")]
        train[order[: prefix_length(idx.size, fraction)]] = True
    return train


def _forecast_error(fd: FitData, train: np.ndarray, cfg: FitConfig) -> np.ndarray:
    """Forecast − truth in L at the points outside `train`, from a fit on those inside (every
    group keeps training points, so the fit's groups are the data's)."""
    fit = LawFit(cfg).fit(fd.subset(train))
    test = ~train
    c = fd.curves
    curves = Curves(N=c.N[test], X=c.X[test], g=c.g[test], sizes=c.sizes)
    return np.asarray(np.exp(fit.law_.ln_L(fit.all_params_, curves)) - fd.L[test])


def held_out_vote(held: Mapping[str, Any] | None, margin: float) -> HeldOutVote | None:
    """`differ` when the separate fits forecast the held-out runs better by more than `margin`
    (relative run error), `shared` when worse by more than that, `tie` in between (the forecasts
    cannot tell; the in-sample vote decides), None without held-out points."""
    if held is None:
        return None
    shared, separate = held["run_error_shared"], held["run_error_separate"]
    if separate < (1.0 - margin) * shared:
        return "differ"
    if separate > (1.0 + margin) * shared:
        return "shared"
    return "tie"


def decide(
    evidence: Evidence,
    held: Mapping[str, Any] | None,
    shared: LawFit,
    separate: Mapping[str, LawFit],
    families: FamilyConfig,
) -> tuple[Verdict, str, dict[str, str | None]]:
    """The verdict, its reason and each criterion's vote: the in-sample vote stands unless the
    held-out forecasts clearly say otherwise (then `undecided`)."""
    in_sample = CRITERIA[families.criterion](evidence, families.level)
    what = _in_sample_text(evidence, families)
    held_vote = held_out_vote(held, families.margin)
    votes: dict[str, str | None] = {"in_sample": in_sample, "held_out": held_vote}
    failed = [f for f, m in separate.items() if not m.converged_]
    if not shared.converged_ or failed:
        which = "the shared fit" if not shared.converged_ else f"the fit of {', '.join(failed)}"
        return "undecided", f"{which} did not converge: no comparison", votes
    if held is None:
        return "undecided", f"{what}; too few points per run to forecast held-out ones", votes
    forecast = (
        f"held-out run error {held['run_error_shared']:.3g} with one k(N), "
        f"{held['run_error_separate']:.3g} with one per family"
    )
    if held_vote not in (in_sample, "tie"):
        return "undecided", f"the criteria disagree: {what}; {forecast}", votes
    words = "one k(N) serves every family" if in_sample == "shared" else "k(N) differs"
    tie = " (a tie within the margin)" if held_vote == "tie" else ""
    return in_sample, f"{words}: {what}; {forecast}{tie}", votes


def _in_sample_text(e: Evidence, families: FamilyConfig) -> str:
    if families.criterion == "lr":
        return (
            f"likelihood ratio {e.statistic:.3g} on {e.df} df after the design effect "
            f"{e.effect:.2f} (p = {e.p_value:.3g})"
        )
    name = families.criterion.upper()
    score = e.aic if families.criterion == "aic" else e.bic
    return (
        f"{name} {score(True):.1f} with one k(N), {score(False):.1f} with one per family "
        f"(effective n {e.n_eff:.0f})"
    )


def _shared_json(
    fit: LawFit, families: Sequence[str], sizes: np.ndarray, rss: float
) -> dict[str, Any]:
    """The shared model: (Kmax, N0) with intervals, and per family its k and E per size."""
    per_family: dict[str, dict[str, dict[str, float]]] = {}
    for i, family in enumerate(families):
        rows: dict[str, dict[str, float]] = {}
        for j, N in enumerate(sizes):
            E = fit.all_params_[size_param("E", i * sizes.size + j)]
            k = fit.params_["Kmax"] / (1.0 + fit.params_["N0"] / N)
            rows[n_key(N)] = {"k": k, "E": E}
        per_family[family] = rows
    return {
        "params": fit.params_,
        "stderr": fit.stderr_,
        "ci95": fit.ci95_,
        "per_family": per_family,
        "rss": rss,
        "n_params": len(fit.cov_names_),
        "converged": fit.converged_,
        "message": fit.message_,
    }


def _separate_json(fits: Mapping[str, LawFit], rss: float, p: int) -> dict[str, Any]:
    """The separate model: each family's (Kmax, N0) with intervals, on the shared sizes."""
    return {
        "per_family": {
            f: {
                "params": m.params_,
                "stderr": m.stderr_,
                "ci95": m.ci95_,
                "per_N": m.per_N_,
                "converged": m.converged_,
                "message": m.message_,
            }
            for f, m in fits.items()
        },
        "rss": rss,
        "n_params": p,
        "converged": all(m.converged_ for m in fits.values()),
    }
