"""Deterministic fitting of a law: variable projection, grid start, bounded polish, checks.

For fixed nonlinear parameters θ the linear parameters β are solved in closed form (weighted least
squares; iteratively reweighted for Huber; non-negative where the law asks), so only θ is searched:
a deterministic grid over θ's bounds, then `least_squares` from the best grid points with tight
tolerances. With Huber, the result is polished once more over all parameters jointly, because the
reweighted inner solve is iterative. A final numerical gradient of the exact objective over all
free parameters decides convergence — a fit that stops early is reported as such.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import least_squares, minimize_scalar, nnls

from rlscale.fit.laws import Curves, Law, ParamSpec, Space, size_param, split_size_param

Loss = Literal["l2", "huber"]
GRID_BUDGET = 700  # objective evaluations spent on the start grid
GRID_BUDGET_WARM = 100  # ... when a warm start is given
POLISH_STARTS = 3
SCREEN_POINTS = 20_000  # above this many points, starts are found on a subsample of this size
DESCENT_RTOL = 1e-9  # a step along one parameter may lower F by at most this fraction
IRLS_ITERATIONS = 25  # Huber inner solve; the joint polish afterwards makes the optimum exact
SCREEN_ITERATIONS = 3
BOUND_RTOL = 1e-4  # within this fraction of its (internal) range a parameter is on its bound


@dataclass(frozen=True)
class Objective:
    """What is minimised: Σ w·ρ(r), r = prediction − target in `space`."""

    space: Space = "log"
    loss: Loss = "l2"
    delta: float = 1e-3

    def target(self, L: np.ndarray) -> np.ndarray:
        return np.log(L) if self.space == "log" else L

    def predict(self, ln_L: np.ndarray) -> np.ndarray:
        return ln_L if self.space == "log" else np.exp(ln_L)

    def value(self, r: np.ndarray, w: np.ndarray) -> float:
        if self.loss == "l2":
            return float(0.5 * np.sum(w * r * r))
        a = np.abs(r)
        rho = np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        return float(np.sum(w * rho))

    def scipy_loss(self, w: np.ndarray) -> Any:
        """`least_squares` loss on f = √w·r that equals Σ w·huber_δ(r) (threshold δ√w)."""
        if self.loss == "l2":
            return "linear"
        c2 = self.delta * self.delta * w

        def huber(z: np.ndarray) -> np.ndarray:
            out = np.empty((3, z.size))
            inside = z <= c2
            root = np.sqrt(np.where(inside, 1.0, z))
            c = np.sqrt(c2)
            out[0] = np.where(inside, z, 2.0 * c * root - c2)
            out[1] = np.where(inside, 1.0, c / root)
            out[2] = np.where(inside, 0.0, -0.5 * c / (root * root * root))
            return out

        return huber


@dataclass(frozen=True)
class Solution:
    params: dict[str, float]
    objective: float
    converged: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def solve_linear(
    phi: np.ndarray,
    z: np.ndarray,
    w: np.ndarray,
    objective: Objective,
    nonneg: bool,
    iterations: int = IRLS_ITERATIONS,
    block: np.ndarray | None = None,
) -> np.ndarray:
    """argmin_β Σ w·ρ(Φβ − z): weighted least squares, IRLS for Huber, NNLS when nonneg.

    `block[i]` names the only nonzero column of row i (per-size amplitudes): then each β_j is a
    ratio of sums over its rows, O(n) instead of a matrix solve.
    """
    if phi.shape[1] == 0:
        return np.zeros(0)

    def wls(u: np.ndarray) -> np.ndarray:
        if block is not None and not nonneg:
            return _block_lstsq(phi, z, u, block)
        return _weighted_lstsq(phi, z, u, nonneg)

    beta = wls(w)
    if objective.loss == "l2":
        return beta
    for _ in range(iterations):
        r = np.abs(z - phi @ beta)
        u = w * np.minimum(1.0, objective.delta / np.maximum(r, 1e-300))
        new = wls(u)
        done = np.max(np.abs(new - beta)) <= 1e-13 * (1.0 + np.max(np.abs(beta)))
        beta = new
        if done:
            break
    return beta


def _block_lstsq(phi: np.ndarray, z: np.ndarray, u: np.ndarray, block: np.ndarray) -> np.ndarray:
    m = phi.shape[1]
    x = phi[np.arange(block.size), block]
    den = np.bincount(block, u * x * x, minlength=m)
    num = np.bincount(block, u * x * z, minlength=m)
    return np.asarray(num / np.where(den > 0, den, 1.0))


def _weighted_lstsq(phi: np.ndarray, z: np.ndarray, u: np.ndarray, nonneg: bool) -> np.ndarray:
    s = np.sqrt(u)
    a, b = phi * s[:, None], z * s
    if nonneg:
        return np.asarray(nnls(a, b, maxiter=50 * phi.shape[1])[0])
    # Cholesky of the column-equilibrated Gram matrix: several times faster than an SVD solve for
    # these tall, thin designs; a nearly singular one falls back to the SVD solve.
    gram, rhs = a.T @ a, a.T @ b
    d = np.sqrt(np.diag(gram))
    d[d == 0] = 1.0
    try:
        factor = cho_factor(gram / np.outer(d, d), check_finite=False)
        diag = np.abs(np.diag(factor[0]))
        if diag.min() ** 2 > 1e-12 * diag.max() ** 2:
            return np.asarray(cho_solve(factor, rhs / d, check_finite=False) / d)
    except np.linalg.LinAlgError:
        pass
    return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


class Problem:
    """One law on one data set: profiled residuals over θ and full residuals over all params."""

    def __init__(
        self,
        law: Law,
        curves: Curves,
        y: np.ndarray,
        w: np.ndarray,
        objective: Objective,
        fixed: Mapping[str, float],
    ) -> None:
        self.law, self.curves, self.y, self.w, self.objective = law, curves, y, w, objective
        self.specs = {s.name: s for s in law.specs(curves)}
        self.fixed = dict(fixed)
        searched = law.searched(objective.space, curves)
        self.theta_specs = [self.specs[n] for n in searched if n not in self.fixed]
        self.free_specs = [s for s in self.specs.values() if s.name not in self.fixed]
        self.sqrt_w = np.sqrt(w)

    # --- profiled problem over θ -----------------------------------------------------------
    def theta_of(self, u: np.ndarray) -> dict[str, float]:
        theta = {
            s.name: s.from_internal(float(v)) for s, v in zip(self.theta_specs, u, strict=True)
        }
        searched = self.law.searched(self.objective.space, self.curves)
        return {**theta, **{n: v for n, v in self.fixed.items() if n in searched}}

    def profile(
        self, u: np.ndarray, iterations: int = IRLS_ITERATIONS
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Residuals (prediction − target) and the full parameters at internal θ = u."""
        theta = self.theta_of(u)
        d = self.law.design(self.objective.space, self.curves, theta)
        offset, free_cols, free_names = d.offset.copy(), [], []
        for j, name in enumerate(d.names):
            if name in self.fixed:
                offset += self.fixed[name] * d.phi[:, j]
            else:
                free_cols.append(j)
                free_names.append(name)
        phi = d.phi[:, free_cols]
        block = d.block if len(free_cols) == d.phi.shape[1] else None
        beta = solve_linear(
            phi, self.y - offset, self.w, self.objective, d.nonneg, iterations, block
        )
        r = offset + phi @ beta - self.y
        fixed_beta = {n: v for n, v in self.fixed.items() if n in d.names}
        linear = {**dict(zip(free_names, map(float, beta), strict=True)), **fixed_beta}
        return r, self.law.complete(self.objective.space, theta, linear)

    def subset(self, index: np.ndarray) -> Problem:
        """The same problem on some of its points, with the whole data's parameter bounds."""
        sub = copy.copy(self)
        sub.curves = self.curves.take(index)
        sub.y, sub.w, sub.sqrt_w = self.y[index], self.w[index], self.sqrt_w[index]
        return sub

    def profiled_value(self, u: np.ndarray, iterations: int = IRLS_ITERATIONS) -> float:
        r, _ = self.profile(u, iterations)
        value = self.objective.value(r, self.w)
        return value if math.isfinite(value) else math.inf

    # --- full problem over all free parameters ----------------------------------------------
    def full_vector(self, params: Mapping[str, float]) -> np.ndarray:
        return np.array([s.to_internal(params[s.name]) for s in self.free_specs])

    def full_params(self, v: np.ndarray) -> dict[str, float]:
        free = {s.name: s.from_internal(float(x)) for s, x in zip(self.free_specs, v, strict=True)}
        return {**free, **self.fixed}

    def full_residuals(self, v: np.ndarray) -> np.ndarray:
        return self.full_residuals_from(self.full_params(v))

    def full_residuals_from(self, params: Mapping[str, float]) -> np.ndarray:
        ln_L = self.law.ln_L(params, self.curves)
        return np.asarray(self.objective.predict(ln_L) - self.y)

    def full_value(self, v: np.ndarray) -> float:
        value = self.objective.value(self.full_residuals(v), self.w)
        return value if math.isfinite(value) else math.inf


def _bounds(specs: Sequence[ParamSpec]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([s.internal_bounds[0] for s in specs])
    hi = np.array([s.internal_bounds[1] for s in specs])
    return lo, hi


def _grid(specs: Sequence[ParamSpec], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell midpoints over the internal bounds (~budget points) and their grid indices."""
    dim = len(specs)
    per_dim = max(3, min(41, round(budget ** (1.0 / dim))))
    lo, hi = _bounds(specs)
    index = np.array(list(itertools.product(range(per_dim), repeat=dim)))
    return lo + (index + 0.5) * (hi - lo) / per_dim, index


def _grid_starts(problem: Problem, budget: int, wanted: int) -> list[np.ndarray]:
    """The best grid point, then the best other local minima of the grid (distinct basins)."""
    points, index = _grid(problem.theta_specs, budget)
    # Screening only ranks starts, so Huber's inner solve gets a few reweightings here.
    values = np.array([problem.profiled_value(u, SCREEN_ITERATIONS) for u in points])
    order = [int(i) for i in np.argsort(values, kind="stable") if math.isfinite(values[i])]
    minima = _grid_local_minima(values, index)
    chosen = order[:1] + [i for i in order[1:] if minima[i]]
    return [points[i] for i in chosen[:wanted]]


def _grid_local_minima(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Points no higher than their neighbours along each axis of the grid."""
    per_dim = int(index[:, -1].max()) + 1
    shape = (per_dim,) * index.shape[1]
    grid = np.where(np.isfinite(values), values, np.inf).reshape(shape)
    minimum = np.ones(shape, dtype=bool)
    for axis in range(grid.ndim):
        for shift in (1, -1):
            neighbour = np.roll(grid, shift, axis=axis)
            edge = [slice(None)] * grid.ndim
            edge[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
            neighbour[tuple(edge)] = np.inf  # no wrap-around
            minimum &= grid <= neighbour
    return np.asarray(minimum.reshape(-1))


def _polish_theta(problem: Problem, u0: np.ndarray, tolerance: float = 1e-15) -> np.ndarray:
    lo, hi = _bounds(problem.theta_specs)
    u0 = np.clip(u0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
    if u0.size == 1:
        return _polish_scalar(problem, float(u0[0]), float(lo[0]), float(hi[0]))

    def fun(u: np.ndarray) -> np.ndarray:
        r, _ = problem.profile(u)
        return np.asarray(np.nan_to_num(problem.sqrt_w * r, nan=1e6, posinf=1e6, neginf=-1e6))

    res = least_squares(
        fun,
        u0,
        jac=_closed_form_jacobian(problem) or "2-point",
        bounds=(lo, hi),
        method="trf",
        loss=problem.objective.scipy_loss(problem.w),
        ftol=tolerance,
        xtol=tolerance,
        gtol=tolerance,
        max_nfev=200 * (u0.size + 1),
    )
    return np.asarray(res.x)


def _closed_form_jacobian(problem: Problem) -> Callable[[np.ndarray], np.ndarray] | None:
    """The weighted residuals' Jacobian over θ when the residuals are ln L itself (log space,
    L2), nothing is profiled out (no linear columns) and the law differentiates ln L in closed
    form; None otherwise (then least_squares takes differences)."""
    if problem.objective.space != "log" or problem.objective.loss != "l2":
        return None
    one = problem.curves.take(np.arange(1))
    theta = problem.theta_of(np.array([s.to_internal(s.value) for s in problem.theta_specs]))
    no_columns = problem.law.design("log", one, theta).phi.shape[1] == 0
    if not no_columns or problem.law.ln_L_gradient(theta, one) is None:
        return None

    def jac(u: np.ndarray) -> np.ndarray:
        gradient = problem.law.ln_L_gradient(problem.theta_of(u), problem.curves) or {}
        columns = [gradient[s.name] for s in problem.theta_specs]
        return np.asarray(problem.sqrt_w[:, None] * np.column_stack(columns))

    return jac


def _polish_scalar(problem: Problem, u0: float, lo: float, hi: float) -> np.ndarray:
    """One searched parameter: bounded Brent on the exact objective around the start."""
    step = (hi - lo) / 40
    a, b = max(lo, u0 - step), min(hi, u0 + step)
    xatol = 1e-10 * max(1.0, abs(u0))
    u = _brent(problem, a, b, xatol, 200)
    # A minimum on the bracket's edge means the basin extends further: widen to the bounds.
    if (u - a < 1e-6 * step and a > lo) or (b - u < 1e-6 * step and b < hi):
        u = _brent(problem, lo, hi, xatol, 500)
    # Brent never evaluates the ends of its interval; an optimum on a bound is there.
    values = {u: problem.profiled_value(np.array([u]))}
    for end in (lo, hi):
        values[end] = problem.profiled_value(np.array([end]))
    return np.array([min(values, key=lambda k: values[k])])


def _brent(problem: Problem, a: float, b: float, xatol: float, maxiter: int) -> float:
    res = minimize_scalar(
        lambda u: problem.profiled_value(np.array([u])),
        bounds=(a, b),
        method="bounded",
        options={"xatol": xatol, "maxiter": maxiter},
    )
    return float(res.x)


def _polish_full(problem: Problem, params: Mapping[str, float]) -> dict[str, float]:
    """Projected Gauss–Newton with Huber reweighting over all free parameters jointly."""
    lo, hi = _bounds(problem.free_specs)
    v = np.clip(problem.full_vector(params), lo, hi)
    delta = problem.objective.delta if problem.objective.loss == "huber" else math.inf
    value = problem.full_value(v)
    for _ in range(100):
        r = problem.full_residuals(v)
        jac = _residual_jacobian(problem, v)
        u = problem.w * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        grad = jac.T @ (problem.w * np.clip(r, -delta, delta))
        hess = jac.T @ (jac * u[:, None])
        hess += 1e-12 * np.trace(hess) / max(v.size, 1) * np.eye(v.size)
        step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
        improved = False
        for t in 0.5 ** np.arange(30):
            trial = np.clip(v + t * step, lo, hi)
            trial_value = problem.full_value(trial)
            if trial_value < value:
                improved = value - trial_value > 1e-15 * value
                v, value = trial, trial_value
                break
        if not improved:
            break
    return problem.full_params(v)


def _residual_jacobian(problem: Problem, v: np.ndarray) -> np.ndarray:
    jac = np.empty((problem.y.size, v.size))
    for j in range(v.size):
        h = 1e-7 * max(1.0, abs(v[j]))
        up, down = v.copy(), v.copy()
        up[j] += h
        down[j] -= h
        jac[:, j] = (problem.full_residuals(up) - problem.full_residuals(down)) / (2 * h)
    return jac


def solve(
    problem: Problem,
    starts: Sequence[Mapping[str, float]] = (),
    grid: bool = True,
    check: bool = True,
    starts_only: bool = False,
) -> Solution:
    """Minimise the problem's objective from a grid and the given starts; check the optimum.
    `starts_only`: the result only starts another objective's fit, so on large data it is the
    subsample's optimum (that fit's own polish reads every point)."""
    if starts_only:
        problem = _screening_problem(problem)
    candidates = [np.array([s.to_internal(p[s.name]) for s in problem.theta_specs]) for p in starts]
    screen = _screening_problem(problem)
    if problem.theta_specs and (grid or not candidates):
        # A warm start already comes from a global search of a related objective: a coarser
        # grid here only guards against a different basin.
        warm = bool(candidates)
        wanted = POLISH_STARTS if problem.objective.loss == "l2" and not warm else 1
        candidates += _grid_starts(screen, GRID_BUDGET_WARM if warm else GRID_BUDGET, wanted)
    if not problem.theta_specs:
        candidates = [np.zeros(0)]
    elif screen is not problem:
        candidates = _best_on_screen(screen, candidates)
    best: dict[str, float] | None = None
    best_value = math.inf
    for u0 in candidates:
        u = _polish_theta(problem, u0, _final_tolerance(problem, screen)) if u0.size else u0
        _, params = problem.profile(u)
        value = problem.objective.value(problem.full_residuals_from(params), problem.w)
        if value < best_value:
            best, best_value = params, value
    if best is None:
        return Solution({}, math.inf, False, ("no finite objective at any start",))
    if problem.objective.loss == "huber":
        best = _keep_better(problem, best, _polish_full(problem, best))
    if not check:
        return Solution(
            best, problem.objective.value(problem.full_residuals_from(best), problem.w), True
        )
    return check_solution(problem, best)


def _screening_problem(problem: Problem) -> Problem:
    """On large data, starts are searched and first polished on an even subsample of every
    size's points (bounds from all of them); only the final polish reads every point. The
    optimum is the whole data's: the subsample only decides where the last polish begins."""
    n = problem.curves.n
    if n <= SCREEN_POINTS:
        return problem
    stride = math.ceil(n / SCREEN_POINTS)
    index = np.concatenate(
        [np.flatnonzero(problem.curves.g == i)[::stride] for i in range(problem.curves.G)]
    )
    return problem.subset(np.sort(index))


def _final_tolerance(problem: Problem, screen: Problem) -> float:
    """From a start polished on the subsample, the last polish on every point stops at a
    relative change of 1e-12: on a million points rounding in the summed objective keeps 1e-15
    from ever being met, and the convergence check below still decides."""
    return 1e-15 if screen is problem else 1e-12


def _best_on_screen(screen: Problem, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """Each start polished on the subsample; those within 1% of the best go on."""
    polished = [_polish_theta(screen, u0) for u0 in candidates]
    values = np.array([screen.profiled_value(u) for u in polished])
    best = float(np.min(values))
    return [u for u, v in zip(polished, values, strict=True) if v <= best + 0.01 * abs(best)]


def _keep_better(problem: Problem, a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    fa = problem.objective.value(problem.full_residuals_from(a), problem.w)
    fb = problem.objective.value(problem.full_residuals_from(b), problem.w)
    return b if fb <= fa else a


def check_solution(problem: Problem, params: dict[str, float]) -> Solution:
    """Bounds and a projected numerical gradient of the exact objective decide convergence."""
    notes: list[str] = []
    converged = True
    at_lower, at_upper = [], []
    for s in problem.free_specs:
        value = params[s.name]
        if not math.isfinite(value):
            return Solution(params, math.inf, False, (f"{s.name} is not finite",))
        slack = 1e-9 * (abs(s.lower) + abs(s.upper))
        if value < s.lower - slack or value > s.upper + slack:
            notes.append(f"{s.name} = {value:.6g} outside its bounds [{s.lower:g}, {s.upper:g}]")
            converged = False
    value = problem.objective.value(problem.full_residuals_from(params), problem.w)
    if not converged:
        return Solution(params, value, False, tuple(notes))
    v = problem.full_vector(params)
    lo, hi = _bounds(problem.free_specs)
    span = hi - lo
    for j, s in enumerate(problem.free_specs):
        if v[j] <= lo[j] + BOUND_RTOL * span[j]:
            at_lower.append(j)
            notes.append(f"{s.name} at its lower bound {s.lower:g}: not identified by the data")
        elif v[j] >= hi[j] - BOUND_RTOL * span[j]:
            at_upper.append(j)
            notes.append(f"{s.name} at its upper bound {s.upper:g}: not identified by the data")
    name, gain = _best_coordinate_step(problem, v, lo, hi, value)
    if gain > DESCENT_RTOL * value + 1e-15:
        converged = False
        notes.append(
            f"not at a minimum: a step in {name} lowers the objective by {gain:.3g} "
            f"(F = {value:.6g})"
        )
    return Solution(params, value, converged, tuple(notes))


def _best_coordinate_step(
    problem: Problem, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, value: float
) -> tuple[str, float]:
    """The largest decrease of the exact objective found by a step along one parameter.

    Tries the 1-D Newton step from central differences and fixed steps of 1e-7…1e-3 either way,
    all inside the bounds: measured decreases, so a kink (Huber) cannot fake or hide one.
    """
    best_name, best_gain = "", 0.0
    for j, spec in enumerate(problem.free_specs):
        scale = max(1.0, abs(v[j]))
        h = 1e-5 * scale
        up, down = v.copy(), v.copy()
        up[j], down[j] = min(v[j] + h, hi[j]), max(v[j] - h, lo[j])
        f_up, f_down = problem.full_value(up), problem.full_value(down)
        steps = [s * scale for s in (1e-7, 1e-6, 1e-5, 1e-4, 1e-3) for s in (s, -s)]
        width = up[j] - down[j]
        if width > 0:
            g = (f_up - f_down) / width
            curvature = (f_up - 2 * value + f_down) / (0.25 * width * width)
            if curvature > 0:
                steps.append(-g / curvature)
        for step in steps:
            trial = v.copy()
            trial[j] = min(max(v[j] + step, lo[j]), hi[j])
            gain = value - problem.full_value(trial)
            if gain > best_gain:
                best_name, best_gain = spec.name, gain
    return best_name, best_gain


def solve_law(
    law: Law,
    curves: Curves,
    y: np.ndarray,
    w: np.ndarray,
    objective: Objective,
    fixed: Mapping[str, float] | None = None,
    starts: Sequence[Mapping[str, float]] = (),
    grid: bool = True,
    check: bool = True,
    starts_only: bool = False,
) -> Solution:
    """Fit `law`; a separable law is fitted one size at a time (its sizes share nothing)."""
    fixed = dict(fixed or {})
    if not law.separable:
        problem = Problem(law, curves, y, w, objective, fixed)
        return solve(problem, starts, grid, check, starts_only)
    params: dict[str, float] = {}
    notes: list[str] = []
    converged, value = True, 0.0
    for i, size in enumerate(curves.sizes):
        idx = np.flatnonzero(curves.g == i)
        sub = curves.take(idx)
        sub_starts = [_select_size(s, i, 0) for s in starts]
        problem = Problem(law, sub, y[idx], w[idx], objective, fixed)
        sol = solve(problem, sub_starts, grid, check, starts_only)
        params.update(_select_size(sol.params, 0, i))
        notes += [f"N={size:g}: {note}" for note in sol.notes]
        converged &= sol.converged
        value += sol.objective
    return Solution(params, value, converged, tuple(notes))


def _select_size(params: Mapping[str, float], src: int, dst: int) -> dict[str, float]:
    """Per-size parameters of size `src`, renamed to size `dst` (globals are kept)."""
    out: dict[str, float] = {}
    for name, value in params.items():
        base, i = split_size_param(name)
        if i is None:
            out[name] = value
        elif i == src:
            out[size_param(base, dst)] = value
    return out
