"""LawFit: fit a law to a long table, predict with bands, serialise to the FitResult JSON.

Follows the estimator convention: `fit` returns self, learned values end in `_`. Uncertainty is
either the Jacobian covariance at the optimum or, with `bootstrap > 0`, a bootstrap that resamples
whole runs (curves) when the data has a `run` column, else points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.fit.bootstrap import bootstrap_draws
from rlscale.fit.data import X_NAMES, FitData, XName, load_fit_data
from rlscale.fit.laws import LAWS, Curves, Law, Space, get_law, size_param
from rlscale.fit.noise import NOISE_MODELS, Noise, estimate_noise, quantile
from rlscale.fit.profile import (
    design_effect,
    grid,
    narrowed,
    open_ends,
    plausible,
    unidentified,
)
from rlscale.fit.solver import Loss, Objective, Problem, Solution, solve_law

Weighting = Literal["point", "curve"]
Profiling = Literal["auto", "on", "off"]
Interval = Literal["prediction", "confidence"]
Z95 = 1.959963984540054
Progress = Callable[[int], None]
PROFILE_LEVEL = 0.95
PROFILE_MEMBERS = 24  # plausible fits kept for the envelope (and stored)
PROFILE_AUTO_POINTS = 20_000  # a profile refits the law dozens of times: automatic up to here
OPEN_WORDS = {"above": "above", "below": "below", "both": "both ways"}
Bands = dict[float, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FitConfig:
    """Everything that decides a fit; validated when built."""

    law: str = "paper"
    x: XName = "C"
    by: str = "N"
    space: Space = "log"
    loss: Loss = "l2"
    delta: float = 1e-3
    weighting: Weighting = "point"
    bootstrap: int = 0
    seed: int = 0
    fixed: tuple[tuple[str, float], ...] = ()
    noise: str = "correlated"
    profile: Profiling = "auto"  # auto: on up to PROFILE_AUTO_POINTS points

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise InputError(f"unknown law {self.law!r}; choose one of: {', '.join(LAWS)}")
        _one_of("--x", self.x, X_NAMES)
        _one_of("--space", self.space, ("log", "linear"))
        _one_of("--loss", self.loss, ("l2", "huber"))
        _one_of("--weighting", self.weighting, ("point", "curve"))
        _one_of("--noise", self.noise, NOISE_MODELS)
        _one_of("--profile", self.profile, ("auto", "on", "off"))
        if not (math.isfinite(self.delta) and self.delta > 0):
            raise InputError(f"--delta must be a positive number, not {self.delta}")
        if self.bootstrap < 0:
            raise InputError(f"--bootstrap must be >= 0, not {self.bootstrap}")
        allowed = LAWS[self.law].global_names
        for name, value in self.fixed:
            if name not in allowed:
                have = ", ".join(allowed) or "none"
                raise InputError(f"cannot fix {name!r}: law {self.law!r} has globals {have}")
            if not math.isfinite(value):
                raise InputError(f"fixed value of {name} must be finite, not {value}")

    @property
    def objective(self) -> Objective:
        return Objective(self.space, self.loss, self.delta)


def _one_of(flag: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InputError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")


def n_key(N: float) -> str:
    """JSON key of a model size: an integer when N is whole, else the shortest float repr."""
    return str(int(N)) if float(N).is_integer() else repr(float(N))


def curve_weights(curve_id: np.ndarray, weighting: Weighting) -> np.ndarray:
    """Per-point weights with mean 1: equal per point, or equal total weight per curve."""
    if weighting == "point":
        return np.ones(curve_id.size)
    counts = np.bincount(curve_id)
    w = 1.0 / counts[curve_id]
    return np.asarray(w * (w.size / w.sum()))


class LawFit:
    """Fit a scaling law (`FitConfig.law`) and predict from it."""

    bootstrap_: dict[str, Any] | None
    _cov_parts: tuple[np.ndarray, np.ndarray] | None  # unit covariances (run, point), if Jacobian

    def __init__(self, config: FitConfig | None = None, **overrides: Any) -> None:
        self.config = config if config is not None else FitConfig(**overrides)
        self.validation_: list[dict[str, Any]] = []

    # --- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame | FitData,
        source: str = "data",
        progress: Progress | None = None,
        start: Mapping[str, float] | None = None,
    ) -> LawFit:
        """Fit the law. Parameters the data leaves unidentified are profiled (`config.profile`;
        see `rlscale.fit.profile`) and forecasts come from the plausible fits. From `start`
        (all parameters), the fit is polished from there alone, without a grid search."""
        began = time.perf_counter()
        cfg, law = self.config, get_law(self.config.law)
        fd = data if isinstance(data, FitData) else self._load(data, source)
        if cfg.space == "log" and np.any(fd.L <= 0):
            raise InputError(
                f"{fd.source}: L = 0 cannot be fitted in log space; try --space linear"
            )
        check_identifiable(law, fd, cfg)
        objective = cfg.objective
        w = curve_weights(fd.curve_id, cfg.weighting)
        y = objective.target(fd.L)
        fixed = dict(cfg.fixed)
        if start is None:
            starts = self._warm_starts(law, fd, w, fixed)
            sol = solve_law(law, fd.curves, y, w, objective, fixed, starts)
        else:
            sol = solve_law(law, fd.curves, y, w, objective, fixed, [start], grid=False)
        problem = Problem(law, fd.curves, y, w, objective, fixed)
        self._set_point_estimate(law, fd, problem, sol)
        if cfg.bootstrap:
            draws, self.bootstrap_ = bootstrap_draws(
                law, fd, objective, fixed,
                weights=lambda cid: curve_weights(cid, cfg.weighting),
                start=sol.params, names=self.cov_names_, log_scale=self.cov_log_,
                replicates=cfg.bootstrap, seed=cfg.seed, progress=progress,
            )  # fmt: skip
            self._set_bootstrap(draws)
        else:
            self._set_jacobian_uncertainty()
        self.profile_: dict[str, Any] | None = None
        if cfg.profile != "off":
            self._profile(fd, problem)
        self.seconds_ = time.perf_counter() - began
        return self

    # --- partially identified fits -----------------------------------------------------------
    def _profile(self, fd: FitData, problem: Problem) -> None:
        """Refit with the unidentified parameters fixed on a grid and keep the fits the data
        does not reject: their envelope is the forecast band and the parameters' intervals."""
        cfg, law = self.config, self.law_
        diag = np.diag(self.cov_)
        se = {
            n: math.sqrt(d) if d >= 0 else math.inf
            for n, d in zip(self.cov_names_, diag, strict=True)
        }
        free_globals = [problem.specs[n] for n in law.global_names if n not in dict(cfg.fixed)]
        names = unidentified(free_globals, self.all_params_, se, law.searched(cfg.space, fd.curves))
        if not names:
            return
        if cfg.profile == "auto" and fd.n > PROFILE_AUTO_POINTS:
            self.message_ += (
                f"; not profiled on {fd.n:,} points (automatic up to {PROFILE_AUTO_POINTS:,}): "
                f"--profile on forecasts from the fits the data does not reject, slowly"
            )
            return
        specs = [problem.specs[n] for n in names]
        fits = self._profile_pass(fd, grid(specs))
        if not fits:
            return
        keep = self._plausible(fd, fits, len(names))
        fits += self._profile_pass(
            fd, grid(narrowed(specs, [m.all_params_ for m, k in zip(fits, keep, strict=True) if k]))
        )
        keep = self._plausible(fd, fits, len(names))
        plausible_fits = sorted((m for m, k in zip(fits, keep, strict=True) if k), key=_objective)
        members = _thinned(plausible_fits, names)
        self.profile_ = {
            "params": names,
            "level": PROFILE_LEVEL,
            "plausible": len(plausible_fits),
            "open": open_ends(
                specs, [m.all_params_ for m in plausible_fits], [m.all_params_ for m in fits]
            ),
            "members": members,
        }
        self._set_profile_intervals(members)
        self.message_ += "; " + self.profile_note

    def _profile_pass(self, fd: FitData, points: Sequence[Mapping[str, float]]) -> list[LawFit]:
        """The converged fits with the profiled parameters fixed at each grid point, each
        polished from the nearest converged one (a full search where that fails)."""
        cfg, fits = self.config, list[LawFit]()
        for values in points:
            member_cfg = replace(
                cfg, fixed=cfg.fixed + tuple(values.items()), bootstrap=0, profile="off"
            )
            start = _nearest(fits, values) if fits else self.all_params_
            member = LawFit(member_cfg).fit(fd, start={**start, **values})
            if not member.converged_:
                member = LawFit(member_cfg).fit(fd)
            if member.converged_:
                fits.append(member)
        return fits

    @staticmethod
    def _plausible(fd: FitData, fits: Sequence[LawFit], profiled: int) -> np.ndarray:
        best = min(fits, key=_objective)
        effect = design_effect(best.noise_, fd.n / np.unique(fd.curve_id).size)
        sigma2 = best.noise_.sigma_point**2 + best.noise_.sigma_run**2
        return plausible([m.objective_ for m in fits], sigma2, effect, profiled, PROFILE_LEVEL)

    def _set_profile_intervals(self, members: Sequence[LawFit]) -> None:
        """Each global's and per-size value's 95% interval: the envelope of the plausible fits'
        own intervals (a profiled parameter's values across them)."""
        for name in self.params_:
            lows = [(m.ci95_.get(name) or [m.all_params_[name]] * 2)[0] for m in members]
            highs = [(m.ci95_.get(name) or [m.all_params_[name]] * 2)[1] for m in members]
            self.ci95_[name] = [float(np.nanmin(lows)), float(np.nanmax(highs))]
            if name in self.profile_["params"]:  # type: ignore[index]
                self.stderr_[name] = math.nan
        for key, row in self.per_N_ci95_.items():
            for name in row:
                ends = np.array([m.per_N_ci95_[key][name] for m in members], dtype=float)
                row[name] = [float(np.nanmin(ends[:, 0])), float(np.nanmax(ends[:, 1]))]
        self.uncertainty_ += " + profile"

    @property
    def profile_note(self) -> str:
        """One line for the user: what was profiled and the range the data allows."""
        if not self.profile_:
            return ""
        parts = []
        for name in self.profile_["params"]:
            lo, hi = self.ci95_[name]
            end = self.profile_["open"].get(name)
            tail = (
                f" (open {OPEN_WORDS[end]}: the law's bounds end it, not the data)" if end else ""
            )
            parts.append(f"{name} in [{lo:.3g}, {hi:.3g}]{tail}")
        level = round(100 * self.profile_["level"])
        return (
            f"not identified by the data: {', '.join(self.profile_['params'])}; forecasts and "
            f"intervals span the {self.profile_['plausible']} fits the data does not reject "
            f"(profile likelihood, {level}%): {'; '.join(parts)}"
        )

    def _load(self, df: pd.DataFrame, source: str) -> FitData:
        cfg = self.config
        return load_fit_data(df, cfg.x, by=cfg.by, space=cfg.space, source=source)

    def _warm_starts(
        self, law: Law, fd: FitData, w: np.ndarray, fixed: Mapping[str, float]
    ) -> list[dict[str, float]]:
        """Start from the closed-form-friendly fit when the asked objective is a harder one."""
        cfg = self.config
        if (cfg.space, cfg.loss) == (law.warm_space, "l2") or np.any(fd.L <= 0):
            return []
        warm = Objective(law.warm_space, "l2")
        y = warm.target(fd.L)
        sol = solve_law(law, fd.curves, y, w, warm, fixed, check=False, starts_only=True)
        return [sol.params] if all(map(math.isfinite, sol.params.values())) else []

    def _set_point_estimate(self, law: Law, fd: FitData, problem: Problem, sol: Solution) -> None:
        self.law_ = law
        self.sizes_ = fd.curves.sizes.copy()
        self.all_params_ = dict(sol.params)
        self.params_ = {n: sol.params[n] for n in law.global_names}
        self.cov_names_ = [s.name for s in problem.free_specs]
        self.cov_log_ = [s.log_scale for s in problem.free_specs]
        self.converged_ = sol.converged
        self.objective_ = sol.objective
        self.message_ = "; ".join(sol.notes) if sol.notes else "converged"
        if not sol.converged and not sol.notes:
            self.message_ = "did not converge"
        r = problem.full_residuals_from(sol.params)
        y, w = problem.y, problem.w
        n, p = y.size, len(problem.free_specs)
        self.sigma_ = float(np.sqrt(np.sum(w * r * r) / max(n - p, 1)))
        y_bar = np.sum(w * y) / np.sum(w)
        total = float(np.sum(w * (y - y_bar) ** 2))
        # undefined (None) when L never varies: there is nothing for a law to explain
        self.r2_ = float(1.0 - np.sum(w * r * r) / total) if total > 0 else None
        ln_pred = law.ln_L(sol.params, fd.curves)
        self.rmse_log_ = float(np.sqrt(np.mean((ln_pred - np.log(np.maximum(fd.L, 1e-300))) ** 2)))
        self.rmse_ = float(np.sqrt(np.mean((np.exp(ln_pred) - fd.L) ** 2)))
        self.n_points_ = fd.n
        self.per_step_ = {"C": {n_key(k): v for k, v in fd.c_per_step.items()}, "D": fd.d_per_step}
        noise, parts = _noise_and_covariance(problem, fd, sol.params, self.config.noise)
        self.noise_, self._cov_parts = noise, parts
        run_unit, point_unit = parts
        self._jacobian_cov = (
            self.noise_.sigma_run**2 * run_unit + self.noise_.sigma_point**2 * point_unit
        )
        self.bootstrap_ = None

    # --- uncertainty -------------------------------------------------------------------------
    def _set_jacobian_uncertainty(self) -> None:
        self.cov_ = self._jacobian_cov
        self.uncertainty_ = "jacobian"
        se = np.sqrt(np.clip(np.diag(self.cov_), 0, None))
        self.stderr_, self.ci95_ = {}, {}
        for j, name in enumerate(self.cov_names_):
            if name not in self.params_:
                continue
            v = self.params_[name]
            if self.cov_log_[j]:
                self.stderr_[name] = v * se[j]
                # An unidentified scale parameter can have se in the hundreds: an unbounded
                # interval (inf), not an overflow.
                width = float(np.exp(np.minimum(Z95 * se[j], 700.0)))
                self.ci95_[name] = [v / width, v * width]
            else:
                self.stderr_[name] = se[j]
                self.ci95_[name] = [v - Z95 * se[j], v + Z95 * se[j]]
        grad = numeric_jacobian(self._reported, self._vector(self.all_params_))
        se_rep = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", grad, self.cov_, grad), 0, None))
        values = self._reported(self._vector(self.all_params_))
        self.per_N_ci95_ = self._per_n_intervals(values - Z95 * se_rep, values + Z95 * se_rep)

    def _set_bootstrap(self, draws: np.ndarray) -> None:
        self.uncertainty_ = "bootstrap"
        self._cov_parts = None
        used = int(np.sum(np.any(np.isfinite(draws), axis=1)))
        cov = pd.DataFrame(draws).cov(min_periods=max(10, used // 10)).to_numpy()
        self.cov_ = np.where(np.isfinite(cov), cov, self._jacobian_cov)
        natural = np.array([[self._params(v)[n] for n in self.cov_names_] for v in draws])
        self.stderr_, self.ci95_ = {}, {}
        for j, name in enumerate(self.cov_names_):
            if name in self.params_:
                col = natural[:, j]
                self.stderr_[name] = float(np.nanstd(col, ddof=1))
                lo, hi = np.nanpercentile(col, [2.5, 97.5])
                self.ci95_[name] = [float(lo), float(hi)]
        reported = np.array([self._reported(v) for v in draws])
        lo, hi = np.nanpercentile(reported, [2.5, 97.5], axis=0)
        self.per_N_ci95_ = self._per_n_intervals(lo, hi)

    def _reported(self, v: np.ndarray) -> np.ndarray:
        """Per-size reported values (e.g. k and E per N), flattened, at internal vector v."""
        rows = self.law_.per_size(self._params(v), self._curves_at_sizes())
        return np.array([row[name] for row in rows for name in self.law_.report_names])

    def _per_n_intervals(self, lo: np.ndarray, hi: np.ndarray) -> dict[str, dict[str, list[float]]]:
        names = self.law_.report_names
        out: dict[str, dict[str, list[float]]] = {}
        for i, N in enumerate(self.sizes_):
            k = i * len(names)
            out[n_key(N)] = {n: [float(lo[k + j]), float(hi[k + j])] for j, n in enumerate(names)}
        return out

    def _curves_at_sizes(self) -> Curves:
        G = self.sizes_.size
        return Curves(N=self.sizes_, X=np.ones(G), g=np.arange(G), sizes=self.sizes_)

    def _vector(self, params: Mapping[str, float]) -> np.ndarray:
        return np.array(
            [
                math.log(max(params[n], 1e-300)) if log else params[n]
                for n, log in zip(self.cov_names_, self.cov_log_, strict=True)
            ]
        )

    def _params(self, v: np.ndarray) -> dict[str, float]:
        free = {
            n: (math.exp(x) if log else float(x))
            for n, log, x in zip(self.cov_names_, self.cov_log_, v, strict=True)
        }
        return {**dict(self.config.fixed), **free}

    # --- results -----------------------------------------------------------------------------
    @property
    def per_N_(self) -> dict[str, dict[str, float]]:
        rows = self.law_.per_size(self.all_params_, self._curves_at_sizes())
        return {n_key(N): dict(row) for N, row in zip(self.sizes_, rows, strict=True)}

    def predict(
        self,
        N: Sequence[float] | np.ndarray | float,
        X: Sequence[float] | np.ndarray | float,
        interval: Interval = "prediction",
        level: float = 0.95,
    ) -> pd.DataFrame:
        """L at (N, X) with a `level` band: `prediction` adds a new point's own noise (its run's
        offset and its scatter), `confidence` is the band of the fitted curve alone."""
        if not 0 < level < 1:
            raise InputError(f"a band's level must be in (0, 1), not {level}")
        N_arr, X_arr, L, bands = self.bands(N, X, [level], interval)
        lo, hi = bands[level]
        return pd.DataFrame({"N": N_arr, "X": X_arr, "L": L, "lo": lo, "hi": hi})

    def bands(
        self,
        N: Sequence[float] | np.ndarray | float,
        X: Sequence[float] | np.ndarray | float,
        levels: Sequence[float],
        interval: Interval = "prediction",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Bands]:
        """(N, X, L, {level: (lo, hi)}): the forecast and its bands; for a profiled fit, the
        best plausible fit's forecast and the envelope of every plausible fit's bands."""
        members = (self.profile_ or {}).get("members")
        if members:
            each = [m.bands(N, X, levels, interval) for m in members]
            envelope = {
                lv: (
                    np.min([b[3][lv][0] for b in each], axis=0),
                    np.max([b[3][lv][1] for b in each], axis=0),
                )
                for lv in levels
            }
            return (*each[0][:3], envelope)
        N_arr, X_arr, center, sd, df = self.forecast(N, X, interval)
        L = np.exp(center) if self.config.space == "log" else center
        return N_arr, X_arr, L, {lv: band(center, sd, df, lv, self.config.space) for lv in levels}

    def forecast(
        self,
        N: Sequence[float] | np.ndarray | float,
        X: Sequence[float] | np.ndarray | float,
        interval: Interval = "prediction",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(N, X, center, sd, df) in the fit's residual space: the forecast's centre, its
        error's SD and the degrees of freedom of its quantile (inf: normal)."""
        N_arr, X_arr = np.broadcast_arrays(np.asarray(N, float), np.asarray(X, float))
        N_arr, X_arr = N_arr.ravel(), X_arr.ravel()
        if np.any(~np.isfinite(X_arr) | (X_arr <= 0)) or np.any(~np.isfinite(N_arr) | (N_arr <= 0)):
            raise InputError("predict needs finite N > 0 and X > 0")
        fn = self._prediction_function(N_arr, X_arr)
        v = self._vector(self.all_params_)
        center = fn(v)
        grad = numeric_jacobian(fn, v)

        def quad(cov: np.ndarray) -> np.ndarray:
            return np.asarray(np.clip(np.einsum("ij,jk,ik->i", grad, cov, grad), 0, None))

        zero = np.zeros(center.size)
        if self._cov_parts is not None:
            unit_run, unit_point, var_other = (
                quad(self._cov_parts[0]),
                quad(self._cov_parts[1]),
                zero,
            )
        else:
            unit_run, unit_point, var_other = zero, zero, quad(self.cov_)
        L = np.exp(center) if self.config.space == "log" else center
        sd, df = self.noise_.band_sd_and_df(
            unit_run, unit_point, var_other, new_point=interval == "prediction", L=L
        )
        return N_arr, X_arr, center, sd, df

    def _prediction_function(
        self, N: np.ndarray, X: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        law, objective = self.law_, self.config.objective
        if law.forecasts_unseen:
            return lambda v: objective.predict(law.ln_L_unseen(self._params(v), N, X))
        match = np.isclose(N[:, None], self.sizes_[None, :], rtol=1e-6, atol=0)
        unseen = ~match.any(axis=1)
        if unseen.any():
            fitted = ", ".join(f"{s:g}" for s in self.sizes_)
            raise InputError(
                f"law {law.name!r} defines L only at the fitted sizes ({fitted}), not at "
                f"N={N[unseen][0]:g}; fit 'paper_e_sat' or 'powerlaw_floor' to forecast other sizes"
            )
        curves = Curves(N=N, X=X, g=match.argmax(axis=1), sizes=self.sizes_)
        return lambda v: objective.predict(law.ln_L(self._params(v), curves))

    def summary(self) -> dict[str, Any]:
        """The FitResult JSON of the design (plus what `predict`/`plan` need to reload it)."""
        cfg = self.config
        result: dict[str, Any] = {
            "law": cfg.law,
            "x": cfg.x,
            "by": cfg.by,
            "space": cfg.space,
            "loss": cfg.loss,
            "delta": cfg.delta,
            "weighting": cfg.weighting,
            "fixed": dict(cfg.fixed),
            "params": self.params_,
            "stderr": self.stderr_,
            "ci95": self.ci95_,
            "per_N": self.per_N_,
            "per_N_ci95": self.per_N_ci95_,
            "r2": self.r2_,
            "rmse_log": self.rmse_log_,
            "rmse": self.rmse_,
            "n_points": self.n_points_,
            "n_sizes": int(self.sizes_.size),
            "converged": self.converged_,
            "message": self.message_,
            "seconds": self.seconds_,
            "uncertainty": self.uncertainty_,
            "bootstrap": self.bootstrap_,
            "sigma": self.sigma_,
            "noise": self.noise_.to_json(),
            "covariance": {
                "names": self.cov_names_,
                "log_scale": self.cov_log_,
                "matrix": self.cov_.tolist(),
            }
            | _unit_parts(self._cov_parts),
            "per_step": self.per_step_,
            "validation": self.validation_,
            "profile": _profile_json(self.profile_),
        }
        safe: dict[str, Any] = json_safe(result)
        return safe

    @classmethod
    def from_summary(cls, result: Mapping[str, Any]) -> LawFit:
        """Rebuild a fitted LawFit from its FitResult JSON (for predict and plan), validated:
        the law known, its own parameters present, finite and inside the law's sign bounds."""
        if not isinstance(result, Mapping):
            raise InputError(
                f"not a FitResult JSON: an object expected, got {type(result).__name__}"
            )
        try:
            law = get_law(str(result.get("law")))
        except ValueError as exc:
            raise InputError(f"not a FitResult JSON: {exc}") from None
        _check_fitted_params(law, result)
        try:
            fixed = tuple((str(k), float(v)) for k, v in result.get("fixed", {}).items())
            config = FitConfig(
                law=result["law"],
                x=result["x"],
                by=result.get("by", "N"),
                space=result["space"],
                loss=result["loss"],
                delta=result["delta"],
                weighting=result["weighting"],
                fixed=fixed,
                noise=(result.get("noise") or {}).get("model", "independent"),
            )
            self = cls(config)
            self.law_ = get_law(config.law)
            per_N = result["per_N"]
            self.sizes_ = np.array(sorted(float(k) for k in per_N))
            self.params_ = {k: float(v) for k, v in result["params"].items()}
            self.all_params_ = dict(self.params_)
            for i, N in enumerate(self.sizes_):
                for name in self.law_.size_names:
                    self.all_params_[size_param(name, i)] = float(per_N[n_key(N)][name])
            cov = result["covariance"]
            self.cov_names_, self.cov_log_ = list(cov["names"]), list(cov["log_scale"])
            self.cov_ = np.array(cov["matrix"], dtype=float).reshape(len(self.cov_names_), -1)
            self.sigma_ = float(result["sigma"])
            self.noise_, self._cov_parts = _read_noise(result, len(self.cov_names_))
            for key in (
                "stderr",
                "ci95",
                "per_N_ci95",
                "r2",
                "rmse_log",
                "rmse",
                "n_points",
                "converged",
                "message",
                "seconds",
                "uncertainty",
                "bootstrap",
                "per_step",
            ):
                setattr(self, key + "_", result.get(key))
            self.validation_ = list(result.get("validation") or [])
            self.profile_ = _read_profile(cls, result.get("profile"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a FitResult JSON: {exc!r}") from exc
        _check_per_size_agrees(self, result["per_N"])
        return self


def _check_fitted_params(law: Law, result: Mapping[str, Any]) -> None:
    """The FitResult's numbers are this law's: every global and per-size parameter present,
    no other, each finite, and positive where the law searches it on a log scale."""
    params, per_N = result.get("params"), result.get("per_N")
    if not isinstance(params, Mapping) or not isinstance(per_N, Mapping) or not per_N:
        raise InputError("not a FitResult JSON: 'params' and 'per_N' must be objects")
    fixed = set(result.get("fixed") or {})
    want = set(law.global_names)
    if set(params) - fixed != want - fixed or not set(params) <= want:
        raise InputError(
            f"law {law.name!r} has parameters {', '.join(law.global_names) or 'per size only'}; "
            f"the file has {', '.join(params) or 'none'} (law name changed or a parameter lost?)"
        )
    try:
        sizes = np.array(sorted(float(k) for k in per_N))
    except ValueError:
        raise InputError("not a FitResult JSON: per_N keys must be model sizes") from None
    specs = {s.name: s for s in law.specs(Curves.from_arrays(sizes, np.ones_like(sizes)))}
    rows = [(name, params[name]) for name in params]
    rows += [
        (f"per_N[{k}].{n}", (row or {}).get(n)) for k, row in per_N.items() for n in law.size_names
    ]
    for name, value in rows:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{name} = {value!r}: a fitted parameter must be a finite number")
        spec = specs.get(name)
        if spec is not None and spec.log_scale and value <= 0:
            raise InputError(f"{name} = {value:g}: law {law.name!r} needs it > 0")


def _check_per_size_agrees(fit: LawFit, per_N: Mapping[str, Any]) -> None:
    """The per-size values a FitResult reports are those its parameters give (k from Kmax and
    N0, …): a file edited in one place but not the other is refused."""
    curves = Curves.from_arrays(fit.sizes_, np.ones_like(fit.sizes_))
    for N, derived in zip(fit.sizes_, fit.law_.per_size(fit.all_params_, curves), strict=True):
        for name, value in derived.items():
            stored = per_N[n_key(N)].get(name)
            if isinstance(stored, int | float) and not math.isclose(
                stored, value, rel_tol=1e-6, abs_tol=1e-12
            ):
                raise InputError(
                    f"per_N[{n_key(N)}].{name} = {stored:g}, but the fit's parameters give "
                    f"{value:g} (edited by hand?)"
                )


def check_identifiable(law: Law, fd: FitData, cfg: FitConfig) -> None:
    """Enough sizes and points for the law's free parameters, or a one-line InputError."""
    G = fd.curves.G
    if law.min_sizes > G:
        sizes = ", ".join(f"{s:g}" for s in fd.curves.sizes)
        raise InputError(
            f"{fd.source}: law {law.name!r} needs at least {law.min_sizes} model sizes in column "
            f"'{cfg.by}'; the data has {G} ({sizes})"
        )
    if law.separable:
        counts = np.bincount(fd.curves.g)
        p, n, worst = len(law.size_names), int(counts.min()), int(np.argmin(counts))
        where = f" at N={fd.curves.sizes[worst]:g}"
    else:
        p, n, where = len(law.specs(fd.curves)) - len(cfg.fixed), fd.n, ""
    if n < p + 1:
        raise InputError(
            f"{fd.source}: {n} points{where} for {p} free parameters of law {law.name!r}; "
            f"need at least {p + 1}"
        )


def numeric_jacobian(fn: Callable[[np.ndarray], np.ndarray], v: np.ndarray) -> np.ndarray:
    f0 = fn(v)
    jac = np.empty((f0.size, v.size))
    for j in range(v.size):
        h = 1e-6 * max(1.0, abs(v[j]))
        up, down = v.copy(), v.copy()
        up[j] += h
        down[j] -= h
        jac[:, j] = (fn(up) - fn(down)) / (2 * h)
    return jac


def _noise_and_covariance(
    problem: Problem, fd: FitData, params: Mapping[str, float], model: str
) -> tuple[Noise, tuple[np.ndarray, np.ndarray]]:
    """The residuals' error model and the unit covariances (run, point) of the free internal
    parameters (log for log-scale ones): Cov = σ_run²·run + σ_point²·point."""
    v = problem.full_vector(params)
    if not np.all(np.isfinite(v)):
        nan = np.full((v.size, v.size), np.nan)
        return Noise("independent", math.nan, 0.0, 0.0, 1.0, 0.0), (nan, nan)

    def weighted(x: np.ndarray) -> np.ndarray:
        return np.asarray(problem.sqrt_w * problem.full_residuals(x))

    fitted_L = np.exp(problem.law.ln_L(params, fd.curves))
    noise, run_unit, point_unit = estimate_noise(
        model, weighted(v), numeric_jacobian(weighted, v), fd.curve_id, fd.curves.X, fitted_L
    )
    return noise, (run_unit, point_unit)


def band(
    center: np.ndarray, sd: np.ndarray, df: np.ndarray, level: float, space: Space
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of a `level` band around `center` (residual space) back in L."""
    half = quantile(level, df) * sd
    if space == "log":
        with np.errstate(over="ignore"):  # an unbounded band is inf, as it should read
            return np.exp(center - half), np.exp(center + half)
    return np.clip(center - half, 0, None), center + half


def _nearest(fits: Sequence[LawFit], values: Mapping[str, float]) -> dict[str, float]:
    """The parameters of the fit whose profiled values lie nearest `values` (log distance)."""

    def gap(a: float, b: float) -> float:
        return abs(math.log(a / b)) if a > 0 and b > 0 else abs(a - b)

    def distance(fit: LawFit) -> float:
        return sum(gap(fit.all_params_[k], v) for k, v in values.items())

    return dict(min(fits, key=distance).all_params_)


def _thinned(members: list[LawFit], names: Sequence[str]) -> list[LawFit]:
    """At most PROFILE_MEMBERS plausible fits (best first): the best, the extremes of every
    profiled parameter, and fits evenly spread over the rest (the envelope of their bands is
    what forecasts use, and every member is stored in the FitResult)."""
    if len(members) <= PROFILE_MEMBERS:
        return members
    keep = {0}
    for name in names:
        values = [m.all_params_[name] for m in members]
        keep |= {int(np.argmin(values)), int(np.argmax(values))}
    spread = np.linspace(0, len(members) - 1, PROFILE_MEMBERS - len(keep)).round().astype(int)
    keep |= set(spread.tolist())
    return [members[i] for i in sorted(keep)]


def _objective(fit: LawFit) -> float:
    return float(fit.objective_)


def _profile_json(profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not profile:
        return None
    members = [m.summary() for m in profile["members"]]
    return {k: v for k, v in profile.items() if k != "members"} | {"members": members}


def _read_profile(cls: type[LawFit], profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not profile:
        return None
    members = [cls.from_summary(m) for m in profile["members"]]
    return {k: v for k, v in profile.items() if k != "members"} | {"members": members}


def _unit_parts(parts: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    if parts is None:
        return {}
    return {"run_unit": parts[0].tolist(), "point_unit": parts[1].tolist()}


def _read_noise(
    result: Mapping[str, Any], p: int
) -> tuple[Noise, tuple[np.ndarray, np.ndarray] | None]:
    """A FitResult's error model and unit covariances; a file written before error models
    were recorded reads as independent noise of SD `sigma` around its covariance matrix."""
    cov = result["covariance"]
    if not result.get("noise"):
        sigma = float(result["sigma"])
        return Noise("independent", sigma, 0.0, 0.0, math.inf, 0.0), None
    noise = Noise.from_json(result["noise"])
    if "run_unit" not in cov:
        return noise, None
    parts = (np.array(cov["run_unit"], dtype=float), np.array(cov["point_unit"], dtype=float))
    return noise, (parts[0].reshape(p, -1), parts[1].reshape(p, -1))


def json_safe(obj: Any) -> Any:
    """Numpy scalars and arrays as plain JSON values; non-finite floats as null."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj
