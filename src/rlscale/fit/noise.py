"""Error models of a fit's residuals, chosen by name from `NOISE_MODELS`, and what they imply for
the parameters' covariance and for prediction bands.

`independent` is the textbook least-squares model: every point an independent draw, covariance
s²(JᵀJ)⁻¹, a normal quantile. It is what learning curves violate: successive evaluations of one
run share its trajectory (drift) and its own offset, so the residuals of a run are correlated and
independent bands are too narrow (most of all for forecasts that extrapolate).

`correlated` models the residual of point t of run c as u_c + a_{c,t}: a run offset u_c
(variance σ_run²) plus AR(1) noise a along the run (variance σ_point², lag-1 correlation ρ over
successive evaluations). The three are estimated by the method of moments from three quadratic
forms of the residuals (Σe², Σ e_t·e_{t−1} within runs, Σ (run sums)²), with the expectation of
each taken *after* the fit's own projection (E[eᵀAe] = tr(MAMΣ), M = I − H): the parameters
absorb part of the noise (a run's offset disappears into a per-size E; a trend into k), and
ignoring that biases ρ towards zero on short curves. The parameters' covariance is then the
sandwich B·JᵀΣJ·B (B = (JᵀJ)⁻¹), and bands use a Student t quantile whose degrees of freedom
combine those of σ_run and σ_point (Satterthwaite): few runs or few points give wide bands.
On short runs ρ itself is uncertain, and a ρ estimated too low gives bands too narrow for
extrapolation. So the spread of ρ's estimate is measured (`rho_se`, a parametric bootstrap of
the moments) and the covariance is averaged over it, in the spirit of Kenward and Roger's
correction for estimated variance parameters in mixed models.
The noise may also scale with the fitted loss, SD ∝ L^power (`variance_power`): an error rate
seen in ln L scatters more where L is low. The power is read from the differences of successive
residuals of a run, where run offsets and the law's misfit per size cancel; residuals are
divided by that scale before the moments are taken (so it applies to the run offsets too), and
a forecast's own noise is scaled to its L.

All functions here are pure: arrays in, arrays or frozen values out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize, signal, stats

NOISE_MODELS = ("correlated", "independent")
RHO_MAX = 0.98
MIN_CORRELATION_DOF = 8  # residual degrees of freedom below which ρ and σ_run are not estimated
RHO_TOL = 1e-4
POWER_MAX = 2.0
MIN_POWER_POINTS = 10  # residuals (or differences) below which no power is estimated
RHO_DRAWS = 64  # simulated residual sets that measure the spread of ρ's estimate
RHO_GRID = 13  # ρ values on which each draw's estimate is found
RHO_SPREAD_MAX_POINTS = 20_000  # beyond, ρ's estimate is taken as exact (its spread is tiny)
# ρ's estimate as normal (ρ̂, se²): 3-point Gauss–Hermite nodes (weight, offset in se)
RHO_NODES = ((1 / 6, -math.sqrt(3.0)), (2 / 3, 0.0), (1 / 6, math.sqrt(3.0)))

Apply = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Noise:
    """A fitted error model, in the fit's residual space (weighted residuals)."""

    model: str
    sigma_point: float  # marginal SD of a point's own noise
    sigma_run: float  # SD of a run's offset
    rho: float  # correlation of successive points of a run
    df_point: float  # degrees of freedom of the σ_point estimate
    df_run: float  # … of the σ_run estimate (0: not estimable; σ_run is then 0)
    power: float = 0.0  # noise SD ∝ (L / level)^power: where L is low, ln L scatters more
    level: float = 1.0  # the L at which the SDs above hold (geometric mean of the fitted L)
    rho_se: float = 0.0  # spread of ρ's estimate, which the parameters' covariance averages over

    def scale(self, L: np.ndarray) -> np.ndarray:
        """The noise SD at fitted loss L relative to its SD at `level`."""
        if self.power == 0:
            return np.ones_like(np.asarray(L, dtype=float))
        return np.asarray(
            (np.maximum(np.asarray(L, dtype=float), 1e-300) / self.level) ** self.power
        )

    def to_json(self) -> dict[str, float | str]:
        return {
            "model": self.model,
            "sigma_point": self.sigma_point,
            "sigma_run": self.sigma_run,
            "rho": self.rho,
            "df_point": self.df_point,
            "df_run": self.df_run,
            "power": self.power,
            "level": self.level,
            "rho_se": self.rho_se,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Noise:
        def number(key: str) -> float:
            value = d.get(key)
            return math.inf if value is None else float(value)

        names = ("sigma_point", "sigma_run", "rho", "df_point", "df_run")
        shape = {
            "power": float(d.get("power", 0.0)),
            "level": float(d.get("level", 1.0)),
            "rho_se": float(d.get("rho_se", 0.0)),
        }
        return cls(str(d["model"]), *(number(k) for k in names), **shape)

    def band_sd_and_df(
        self,
        unit_run: np.ndarray,
        unit_point: np.ndarray,
        var_other: np.ndarray,
        new_point: bool = True,
        L: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """SD and degrees of freedom of a forecast's error: the parameters' variance per unit
        σ_run² (`unit_run`) and per unit σ_point² (`unit_point`), a variance known outright
        (`var_other`, e.g. a bootstrap's), and a new point's own noise (its run's offset and
        its scatter, at its forecast loss `L`) when `new_point`."""
        own = 0.0 if not new_point else (1.0 if L is None else self.scale(L) ** 2)
        run = (unit_run + own) * self.sigma_run**2
        point = (unit_point + own) * self.sigma_point**2
        total = run + point + var_other
        if self.model == "independent":
            return np.sqrt(total), np.full(total.shape, np.inf)
        spread = np.zeros_like(total)
        if self.df_run > 0:
            spread += run**2 / self.df_run
        if self.df_point > 0:
            spread += point**2 / self.df_point
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(spread > 0, total**2 / spread, np.inf)
        return np.sqrt(total), df


def quantile(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided `level` quantile: Student t with `df` (normal where df is infinite)."""
    p = 0.5 + level / 2
    df_arr = np.asarray(df, dtype=float)
    z = stats.norm.ppf(p)
    finite = np.isfinite(df_arr)
    t = stats.t.ppf(p, np.where(finite, np.maximum(df_arr, 1.0), 1.0))
    return np.asarray(np.where(finite, t, z))


# --- block operators on points sorted by (run, X) ----------------------------------------------
def _segments(curve: np.ndarray) -> list[slice]:
    edges = np.flatnonzero(np.diff(curve)) + 1
    bounds = np.concatenate([[0], edges, [curve.size]])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


class Layout:
    """Points sorted by (run, X) laid out as a (runs × longest run) grid, so a filter along
    every run is one vectorised call instead of one per run."""

    def __init__(self, segments: list[slice]):
        lengths = np.array([s.stop - s.start for s in segments])
        self.shape = (len(segments), int(lengths.max()) if len(segments) else 0)
        self.row = np.repeat(np.arange(len(segments)), lengths)
        self.col = np.arange(int(lengths.sum())) - np.repeat(
            np.array([s.start for s in segments]), lengths
        )

    def pad(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape + x.shape[1:])
        out[self.row, self.col] = x
        return out

    def unpad(self, grid: np.ndarray) -> np.ndarray:
        return np.asarray(grid[self.row, self.col])


def ar1_apply(layout: Layout, rho: float) -> Apply:
    """X ↦ R X, R block-diagonal with R_ij = ρ^|i−j| inside each run: a forward and a backward
    recursive filter along each run (zero padding after a run's end adds nothing backwards)."""

    def apply(x: np.ndarray) -> np.ndarray:
        if rho == 0:
            return x.copy()
        grid = layout.pad(x)
        fwd = signal.lfilter([1.0], [1.0, -rho], grid, axis=1)
        bwd = signal.lfilter([1.0], [1.0, -rho], grid[:, ::-1], axis=1)[:, ::-1]
        return layout.unpad(fwd + bwd - grid)

    return apply


def run_sum_apply(curve: np.ndarray) -> Apply:
    """X ↦ U X, U block-diagonal of ones: every row gets its run's column sums (rows sorted
    by run, so each run is one contiguous block)."""
    starts = np.flatnonzero(np.concatenate([[True], curve[1:] != curve[:-1]]))
    lengths = np.diff(np.append(starts, curve.size))

    def apply(x: np.ndarray) -> np.ndarray:
        return np.repeat(np.add.reduceat(x, starts, axis=0), lengths, axis=0)

    return apply


def lag_apply(curve: np.ndarray) -> Apply:
    """X ↦ A X, A symmetric with ½ between successive points of one run (eᵀAe = Σ e_t e_{t−1})."""
    same = curve[1:] == curve[:-1]

    def apply(x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        shape = (-1,) + (1,) * (x.ndim - 1)
        half = 0.5 * same.reshape(shape)
        out[:-1] += half * x[1:]
        out[1:] += half * x[:-1]
        return out

    return apply


def _projected_trace(
    LtAL: np.ndarray, AL: np.ndarray, SK: np.ndarray, K: np.ndarray, trace_AS: float
) -> float:
    """tr(PᵀAP·S) with P = I − L·Kᵀ, the map from noise to scaled residuals, from LᵀAL, A·L
    and S·K: tr(AS) − 2 tr((AL)ᵀ·SK) + tr(LᵀAL·KᵀSK) (A symmetric). Unscaled, L = K = Q."""
    if K.shape[1] == 0:
        return trace_AS
    return float(trace_AS - 2 * np.sum(AL * SK) + np.sum(LtAL * (K.T @ SK).T))


def variance_power(
    e: np.ndarray, L: np.ndarray, run: np.ndarray | None = None
) -> tuple[float, float]:
    """(power, level): how the point noise's SD scales with L (SD ∝ L^power) and the geometric
    mean of L. The slope of ln|d| on ln L (E ln|z| is a constant for Gaussian z, so the slope is
    the SD's), d the differences of successive residuals of one run (points sorted by `run`,
    then X): a run's offset and the law's misfit at its size barely change along the run, so
    they cancel in d, while over raw residuals the few runs that sit far off their curve decide
    the slope. Raw residuals where no run has two points (or `run` is None). No slope (0) when
    L spans less than 10% or the residuals are too few or exactly zero."""
    L = np.maximum(np.asarray(L, dtype=float), 1e-300)
    lnL = np.log(L)
    level = float(np.exp(lnL.mean()))
    d, ln_at = e, lnL
    if run is not None:
        same = run[1:] == run[:-1]
        if same.sum() >= MIN_POWER_POINTS:
            d, ln_at = np.diff(e)[same], ((lnL[1:] + lnL[:-1]) / 2)[same]
    use = np.abs(d) > 0
    if use.sum() < MIN_POWER_POINTS or np.ptp(ln_at[use]) < 0.1:
        return 0.0, level
    slope = np.polyfit(ln_at[use], np.log(np.abs(d[use])), 1)[0]
    return float(np.clip(slope, -POWER_MAX, POWER_MAX)), level


# --- estimation --------------------------------------------------------------------------------
def estimate_noise(
    model: str,
    e: np.ndarray,
    J: np.ndarray,
    curve: np.ndarray,
    X: np.ndarray,
    L: np.ndarray | None = None,
) -> tuple[Noise, np.ndarray, np.ndarray]:
    """The error model of weighted residuals `e` (Jacobian `J` of the weighted residuals in the
    free parameters; `L` the fitted loss of each point, for a noise that varies with it), with
    the unit covariances (Cov_run, Cov_point) of the parameters: the parameters' covariance is
    σ_run²·Cov_run + σ_point²·Cov_point."""
    if model not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {model!r}; choose one of {', '.join(NOISE_MODELS)}")
    n, p = J.shape
    bread = np.linalg.pinv(J.T @ J)
    if model == "independent":
        s2 = float(e @ e) / max(n - p, 1)
        return Noise(model, math.sqrt(s2), 0.0, 0.0, float(max(n - p, 1)), 0.0), 0 * bread, bread
    order = np.lexsort((X, curve))
    e, J = e[order], J[order]
    _, run = np.unique(curve[order], return_inverse=True)
    power, level = variance_power(e, L[order], run) if L is not None else (0.0, 1.0)
    h = (np.maximum(L[order], 1e-300) / level) ** power if L is not None else np.ones(n)
    segments = _segments(run)
    layout = Layout(segments)
    Q = _orthonormal_basis(J)
    if n - Q.shape[1] < MIN_CORRELATION_DOF:  # too few points to tell correlation from noise
        s2 = float(np.sum((e / h) ** 2)) / max(n - Q.shape[1], 1)
        noise = Noise("correlated", math.sqrt(s2), 0.0, 0.0, float(max(n - Q.shape[1], 1)), 0.0)
        noise = replace(noise, power=power, level=level)
        moments: _Moments | None = None
    else:
        moments = _Moments(e / h, run, segments, layout, (Q / h[:, None], Q * h[:, None]))
        noise = replace(moments.solve(), power=power, level=level)
        if noise.sigma_point > 0 and n <= RHO_SPREAD_MAX_POINTS:
            noise = replace(noise, rho_se=moments.rho_spread(noise))
    HJ = J * h[:, None]
    cov_run = bread @ (HJ.T @ run_sum_apply(run)(HJ)) @ bread
    if moments is None or noise.rho_se == 0:
        return noise, cov_run, bread @ (HJ.T @ ar1_apply(layout, noise.rho)(HJ)) @ bread
    return noise, *_averaged_over_rho(noise, moments, layout, HJ, bread, cov_run)


def _averaged_over_rho(
    noise: Noise,
    moments: _Moments,
    layout: Layout,
    HJ: np.ndarray,
    bread: np.ndarray,
    cov_run: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The unit covariances (run, point) averaged over ρ's estimate, ρ ~ N(ρ̂, rho_se²)
    clipped to [0, RHO_MAX], with σ_run² and σ_point² as each ρ implies them: a ρ estimated
    too low from short runs gives too narrow bands, one too high too wide ones, and the
    coverage lost on the first is not won back on the second."""
    point, run_var = np.zeros_like(bread), 0.0
    for weight, offset in RHO_NODES:
        rho = float(np.clip(noise.rho + offset * noise.rho_se, 0.0, RHO_MAX))
        a, b, _, _ = moments._variances(rho)
        point += weight * b * (bread @ (HJ.T @ ar1_apply(layout, rho)(HJ)) @ bread)
        run_var += weight * a
    run_scale = run_var / noise.sigma_run**2 if noise.sigma_run > 0 else 1.0
    return cov_run * run_scale, point / noise.sigma_point**2


def _orthonormal_basis(J: np.ndarray) -> np.ndarray:
    if J.size == 0:
        return J
    u, s, _ = np.linalg.svd(J, full_matrices=False)
    keep = s > s.max() * max(J.shape) * np.finfo(float).eps if s.size and s.max() > 0 else []
    return np.asarray(u[:, keep])


def _block_sum(lengths: np.ndarray, powers: np.ndarray) -> float:
    """Σ over runs of Σ_ij powers[|i−j|]: the sum of all entries of each run's block."""
    total = 0.0
    for L in lengths.astype(int):
        lags = np.arange(L)
        total += float(2 * np.sum((L - lags) * powers[:L]) - L)
    return total


class _Moments:
    """The three quadratic forms of the residuals and their expectations under the model."""

    def __init__(
        self,
        e: np.ndarray,
        run: np.ndarray,
        segments: list[slice],
        layout: Layout,
        basis: tuple[np.ndarray, np.ndarray],
    ):
        self.segments, self.layout, self.B = segments, layout, basis
        self.n = e.size
        self.lengths = np.array([s.stop - s.start for s in segments], dtype=float)
        self.A, self.U = lag_apply(run), run_sum_apply(run)
        self.q = self.quadratic_forms(e[:, None])[:, 0]
        L, K = basis
        # A·L and LᵀAL for A = I, lag, U: fixed, whatever ρ
        self.AL = {"0": L, "1": self.A(L), "b": self.U(L)}
        self.LtAL = {key: L.T @ AL for key, AL in self.AL.items()}
        UK = self.U(K)
        traces = {
            "0": self.n,
            "1": float(np.sum(self.lengths - 1)),
            "b": float(np.sum(self.lengths**2)),
        }
        self.U_coef = {  # tr(PᵀAP·U) for A = I, lag, U
            key: _projected_trace(self.LtAL[key], self.AL[key], UK, K, traces[key])
            for key in traces
        }
        self.df_run = self._df_run()

    def _df_run(self) -> float:
        """Satterthwaite df of the run-offset part: tr(K)²/tr(K²), K = CᵀPC (C: run indicator),
        the run sums left free by the fit (0 when every run has its own free level)."""
        G = len(self.segments)
        starts = np.array([s.start for s in self.segments])
        CtL = np.add.reduceat(self.B[0], starts, axis=0) if G else self.B[0][:0]
        CtK = np.add.reduceat(self.B[1], starts, axis=0) if G else self.B[1][:0]
        # K = D − CtL·CtKᵀ (D the run lengths): its traces from p×p products, never G×G
        VtU = CtK.T @ CtL
        trace = float(self.lengths.sum() - np.trace(VtU))
        trace2 = float(
            np.sum(self.lengths**2)
            - 2 * np.sum(self.lengths * np.sum(CtL * CtK, axis=1))
            + np.sum(VtU * VtU.T)
        )
        if G < 2 or trace <= 1e-9 * self.lengths.sum() or trace2 <= 0:
            return 0.0  # every run's sum absorbed by the fit: none left free
        free = trace**2 / trace2
        return free if free > 0.5 else 0.0

    def _point_coefs(self, rho: float) -> tuple[float, float, float, float]:
        """tr(PᵀAP·R(ρ)) for A = I, lag, U; and the df of σ_point (tr(MR)²/tr(MRMR), with P
        in place of M)."""
        R, (L, K) = ar1_apply(self.layout, rho), self.B
        powers = rho ** np.arange(int(self.lengths.max()))
        RK, RL = R(K), R(L)
        traces = {
            "0": self.n,
            "1": rho * float(np.sum(self.lengths - 1)),
            "b": _block_sum(self.lengths, powers),
        }
        c0, c1, cb = (
            _projected_trace(self.LtAL[k], self.AL[k], RK, K, traces[k]) for k in ("0", "1", "b")
        )
        c_RR = _projected_trace(L.T @ RL, RL, RK, K, _block_sum(self.lengths, powers**2))
        df = c0**2 / c_RR if c_RR > 0 else 0.0
        return c0, c1, cb, df

    def quadratic_forms(self, e: np.ndarray) -> np.ndarray:
        """(Σe², Σ e_t·e_{t−1} within runs, Σ run sums²) of each column of `e` (3 × columns)."""
        return np.array([np.sum(e * e, 0), np.sum(e * self.A(e), 0), np.sum(e * self.U(e), 0)])

    def _variances(self, rho: float, q: np.ndarray | None = None) -> tuple[Any, Any, Any, float]:
        """(σ_run², σ_point², expected Σ e_t e_{t−1}, df_point) at ρ, from Σe² and Σ run sums²
        of the observed residuals, or of each column of `q` (3 × draws: one value per draw)."""
        q0, _, qb = self.q if q is None else q
        c0, c1, cb, df = self._point_coefs(rho)
        u0, u1, ub = self.U_coef["0"], self.U_coef["1"], self.U_coef["b"]
        point_only = q0 / c0 if c0 > 0 else 0.0 * q0
        a, b = 0.0 * q0, point_only
        if self.df_run > 0:
            det = u0 * cb - ub * c0
            if abs(det) > 1e-12 * abs(u0 * cb):
                a = (q0 * cb - qb * c0) / det
                b = (u0 * qb - ub * q0) / det
            # a negative variance: the other component alone explains Σe²
            a, b = (
                np.where(a < 0, 0.0, np.where(b < 0, q0 / u0, a)),
                np.where(a < 0, point_only, np.where(b < 0, 0.0, b)),
            )
        return a, b, a * u1 + b * c1, df

    def solve(self) -> Noise:
        """ρ where the expected lag-1 product meets the observed one (Brent; it rises with ρ),
        clipped to [0, RHO_MAX]; σ_run and σ_point as that ρ implies them."""

        def excess(rho: float) -> float:
            return float(self._variances(rho)[2] - self.q[1])

        if excess(0.0) >= 0:
            rho = 0.0
        elif excess(RHO_MAX) <= 0:
            rho = RHO_MAX
        else:
            rho = float(optimize.brentq(excess, 0.0, RHO_MAX, xtol=RHO_TOL))
        a, b, _, df_point = self._variances(rho)
        df_run = self.df_run if a > 0 else 0.0
        return Noise(
            "correlated", math.sqrt(b), math.sqrt(a), rho, max(df_point, 1.0), float(df_run)
        )

    def rho_spread(self, noise: Noise, draws: int = RHO_DRAWS, seed: int = 0) -> float:
        """The SD of ρ's estimate: ρ estimated again from residual sets simulated under the
        fitted error model and projected as the fit projects its residuals (a parametric
        bootstrap of the moments), each draw's root found on a grid of ρ."""
        forms = self.quadratic_forms(self._simulate(noise, draws, seed))
        grid = np.linspace(0.0, RHO_MAX, RHO_GRID)
        excess = np.array([self._variances(r, forms)[2] - forms[1] for r in grid])
        above = excess >= 0
        first = np.where(above.any(axis=0), above.argmax(axis=0), grid.size)
        inner = (first > 0) & (first < grid.size)
        i = np.clip(first, 1, grid.size - 1)
        cols = np.arange(draws)
        lo, hi = excess[i - 1, cols], excess[i, cols]
        root = grid[i - 1] + (grid[i] - grid[i - 1]) * lo / np.where(inner, lo - hi, 1.0)
        rho = np.where(first == 0, 0.0, np.where(first == grid.size, RHO_MAX, root))
        return float(np.std(rho))

    def _simulate(self, noise: Noise, draws: int, seed: int) -> np.ndarray:
        """`draws` residual sets (n × draws): a run offset plus stationary AR(1) noise,
        projected by P = I − L·Kᵀ."""
        rng = np.random.default_rng(seed)
        runs, longest = self.layout.shape
        innovations = rng.standard_normal((runs, longest, draws))
        scale = math.sqrt(1.0 - noise.rho**2)
        innovations[:, 0, :] /= scale  # the first point at the stationary variance
        ar = signal.lfilter([scale], [1.0, -noise.rho], innovations, axis=1)
        offsets = rng.standard_normal((runs, draws))[self.layout.row]
        noise_draws = noise.sigma_point * self.layout.unpad(ar) + noise.sigma_run * offsets
        L, K = self.B
        return np.asarray(noise_draws - L @ (K.T @ noise_draws))
