"""Synthetic learning curves from a law plus noise, in the fit's long format.

Used for examples and tests, and to check before spending compute whether a planned grid (sizes,
steps, seeds, noise) can identify a law's parameters: simulate it, fit it, look at the intervals.
Noise is Gaussian in L: a draw per point (`noise`; successive points of a run correlated by
`rho`, an AR(1) process, as evaluations along one trajectory are) plus one offset per run
(`run_noise`); L is clipped to [1e-4, 1]. A `family` names the model family of every row (a
`family` column; runs named after it), and `shift_E` moves the whole law up or down by that
many decades of L (E(N) + shift_E for the paper laws): two simulations that differ only there
are two families sharing k(N) but not E(N); `params` set apart are families that do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.fit.data import X_NAMES, XName
from rlscale.fit.estimator import LawFit
from rlscale.fit.laws import LN10, Curves, get_law, size_param

L_MIN = 1e-4


@dataclass(frozen=True)
class SimulationConfig:
    """A law with all its parameters, the grid of runs, and the noise."""

    law: str
    params: Mapping[str, float]  # the law's global parameters
    per_N: Mapping[float, Mapping[str, float]]  # per size: its per-size parameters (may be empty)
    x: XName = "C"  # the resource the law is written in
    steps: int = 105
    seeds: int = 1  # runs per size
    noise: float = 0.01
    run_noise: float = 0.0
    rho: float = 0.0  # AR(1) correlation of successive points' noise within a run
    tokens_per_step: float = 3.1e6  # prompt + response tokens of all rollouts in a step
    prompts_per_step: int = 512
    seed: int = 0
    family: str | None = None  # written as a `family` column (and in run names) when set
    shift_E: float = 0.0  # added to log10 L everywhere: E(N) + shift_E for the paper laws

    def __post_init__(self) -> None:
        law = get_law(self.law)
        if self.x not in X_NAMES:
            raise InputError(f"x must be one of {', '.join(X_NAMES)}, not {self.x!r}")
        if not self.per_N:
            raise InputError("a simulation needs at least one model size")
        for name in law.global_names:
            if name not in self.params:
                raise InputError(f"law {self.law!r} needs parameter {name!r}")
        for N, values in self.per_N.items():
            missing = [n for n in law.size_names if n not in values]
            if missing:
                raise InputError(f"size N={N:g} lacks per-size parameter(s) {', '.join(missing)}")
        if self.steps < 1 or self.seeds < 1:
            raise InputError("steps and seeds must be >= 1")
        if self.noise < 0 or self.run_noise < 0:
            raise InputError("noise and run_noise must be >= 0")
        if not -1 < self.rho < 1:
            raise InputError(f"rho must be in (-1, 1), not {self.rho}")
        if self.tokens_per_step <= 0 or self.prompts_per_step < 1:
            raise InputError("tokens_per_step and prompts_per_step must be positive")
        if self.family is not None and not self.family.strip():
            raise InputError("a family needs a non-empty name")
        if not np.isfinite(self.shift_E):
            raise InputError(f"shift_E must be finite, not {self.shift_E}")

    @property
    def sizes(self) -> np.ndarray:
        return np.array(sorted(float(n) for n in self.per_N))

    def with_params(self, values: Mapping[str, float]) -> SimulationConfig:
        """The same simulation with some of the law's global parameters set (e.g. another
        family's Kmax)."""
        law = get_law(self.law)
        for name, value in values.items():
            if name not in law.global_names:
                have = ", ".join(law.global_names) or "none"
                raise InputError(f"cannot set {name!r}: law {self.law!r} has globals {have}")
            if not np.isfinite(value):
                raise InputError(f"{name} must be finite, not {value}")
        return replace(self, params={**self.params, **values})

    def with_sizes(self, sizes: Sequence[float]) -> SimulationConfig:
        """The same law at other sizes (needs per-size parameters or a law that forecasts)."""
        law = get_law(self.law)
        known = {float(k): v for k, v in self.per_N.items()}
        if law.size_names and not all(float(s) in known for s in sizes):
            raise InputError(
                f"law {self.law!r} has per-size parameters; sizes must be among "
                f"{', '.join(f'{s:g}' for s in known)}"
            )
        return replace(self, per_N={float(s): known.get(float(s), {}) for s in sizes})


def true_ln_L(cfg: SimulationConfig, N: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The law's ln L at (N, X) for sizes among the configuration's."""
    law = get_law(cfg.law)
    curves = Curves.from_arrays(N, X)
    p = dict(cfg.params)
    for i, size in enumerate(curves.sizes):
        per_size = cfg.per_N[float(size)]
        p.update({size_param(n, i): float(per_size[n]) for n in law.size_names})
    return np.asarray(law.ln_L(p, curves) + LN10 * cfg.shift_E)


def simulate(cfg: SimulationConfig) -> pd.DataFrame:
    """One row per (run, step ≥ 1): run, seed, N, step, D, C, L, L_true (and family, when the
    configuration names one)."""
    rng = np.random.default_rng(cfg.seed)
    steps = np.arange(1, cfg.steps + 1, dtype=float)
    frames = []
    for N in cfg.sizes:
        for s in range(cfg.seeds):
            C = 6.0 * N * cfg.tokens_per_step * steps
            D = steps * cfg.prompts_per_step
            X = {"C": C, "D": D, "step": steps}[cfg.x]
            L_true = np.exp(true_ln_L(cfg, np.full_like(steps, N), X))
            offset = rng.normal(0.0, cfg.run_noise) if cfg.run_noise else 0.0
            L = L_true + offset + ar1_noise(rng, cfg.noise, cfg.rho, steps.size)
            prefix = f"{cfg.family}-" if cfg.family is not None else ""
            family = {"family": cfg.family} if cfg.family is not None else {}
            frames.append(
                pd.DataFrame(
                    {
                        **family,
                        "run": f"{prefix}N{N:.4g}-s{s}",
                        "seed": s,
                        "N": N,
                        "step": steps.astype(int),
                        "D": D,
                        "C": C,
                        "L": np.clip(L, L_MIN, 1.0),
                        "L_true": L_true,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def ar1_noise(rng: np.random.Generator, sd: float, rho: float, n: int) -> np.ndarray:
    """n successive draws of a stationary AR(1) process with marginal SD `sd`."""
    z = rng.normal(0.0, sd, n)
    out = np.empty(n)
    scale = np.sqrt(1.0 - rho * rho)
    for t in range(n):
        out[t] = z[t] if t == 0 else rho * out[t - 1] + scale * z[t]
    return out


PAPER_BASE_E = {
    0.5e9: 0.064,
    1.5e9: 0.207,
    3e9: 0.374,
    7e9: 0.704,
    14e9: 1.085,
    32e9: 1.536,
    72e9: 1.896,
}

PRESETS: dict[str, SimulationConfig] = {
    # arXiv:2509.25300, all-size Base fit on C (log10): Kmax, N0 and E per size as published;
    # 105 steps of 512 prompts × 8 rollouts; ~750 tokens a rollout (prompt + response).
    "paper-base": SimulationConfig(
        law="paper",
        params={"Kmax": 0.13304, "N0": 13.78e9},
        per_N={N: {"E": E} for N, E in PAPER_BASE_E.items()},
        x="C",
        steps=105,
        noise=0.01,
    ),
}


def preset(name: str) -> SimulationConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def from_fit(fit: LawFit) -> SimulationConfig:
    """A fitted law as the truth of a simulation (its sizes; `with_sizes` to change them)."""
    law = fit.law_
    per_N = {
        float(N): {name: fit.all_params_[size_param(name, i)] for name in law.size_names}
        for i, N in enumerate(fit.sizes_)
    }
    noise = float(fit.rmse_) if fit.rmse_ is not None else 0.01
    return SimulationConfig(
        law=law.name, params=dict(fit.params_), per_N=per_N, x=fit.config.x, noise=noise
    )
