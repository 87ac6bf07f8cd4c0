"""The findings' verdicts on simulated studies whose truth is known: how often each rule says
"holds" when its claim is false (its error), and when it is true (its power).

A simulated study has the shape of a real one (sizes, steps, evaluation points, prompts and
tokens a step) and its noise: each evaluation's sampling error and a run-to-run offset. Its
curves follow L(step) = L0(N)·(1 + step)^−k(N) from ordered starting levels; k(N) saturating,
linear in ln N, a power of N, or zero (nothing learns). The reuse runs' final L costs a chosen
share of what τ = 1 gained. Each study is judged by the same code as a real one (the free k
comes from `LawFit`, the verdicts from `rlscale.findings`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from rlscale.analysis import fit_study
from rlscale.findings.evidence import RunNoise, run_noise
from rlscale.findings.kgrowth import k_rises_and_saturates
from rlscale.findings.level import larger_learns_more
from rlscale.findings.reuse import reuse_costs_little, reuse_from_table

VERDICTS = ("holds", "departs", "not identifiable")


@dataclass(frozen=True)
class Shape:
    """A study's shape and noise."""

    name: str
    sizes: tuple[float, ...]
    starts: tuple[float, ...]  # L at step 0, one a size
    steps: int
    every: int  # evaluated every this many steps (and at step 0)
    prompts: int  # a step's prompts
    tokens: float  # a prompt's tokens, prompt and response
    se: float  # an evaluation's sampling SE
    run_sd: float  # run-to-run sd of L
    reuse_size: int  # index of the size with the reuse runs


MICRO = Shape(
    "micro",
    sizes=(3.3e4, 1.11e5, 3.5e5, 1.1e6, 3.54e6),
    starts=(0.672, 0.62, 0.57, 0.52, 0.485),
    steps=100,
    every=8,
    prompts=32,
    tokens=300.0,
    se=0.006,
    run_sd=0.01,
    reuse_size=2,
)
PAPER = Shape(
    "paper",
    sizes=(0.36e9, 1.31e9, 2.77e9, 6.53e9, 13.07e9, 31.0e9, 70.21e9),
    starts=(0.97, 0.96, 0.93, 0.85, 0.78, 0.70, 0.65),
    steps=105,
    every=5,
    prompts=512,
    tokens=2000.0,
    se=0.02,
    run_sd=0.01,
    reuse_size=3,
)
SHAPES = {s.name: s for s in (MICRO, PAPER)}


def k_forms(shape: Shape) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """k(N) truths over a shape's sizes, each from 0.04 at the smallest to 0.156 at the
    largest, but for `none`; `saturating` has its N0 at the sizes' geometric middle."""
    lo, hi = shape.sizes[0], shape.sizes[-1]
    mid = float(np.sqrt(lo * hi))
    kmax = 0.156 * (1 + mid / hi)

    def saturating(N: np.ndarray) -> np.ndarray:
        return np.asarray(kmax / (1 + mid / N))

    def loglinear(N: np.ndarray) -> np.ndarray:
        return np.asarray(0.04 + (0.156 - 0.04) * np.log(N / lo) / np.log(hi / lo))

    def power(N: np.ndarray) -> np.ndarray:
        return np.asarray(0.04 * (N / lo) ** (np.log(0.156 / 0.04) / np.log(hi / lo)))

    def none(N: np.ndarray) -> np.ndarray:
        return np.zeros_like(N)

    return {"saturating": saturating, "loglinear": loglinear, "power": power, "none": none}


def simulate_study(
    shape: Shape, k_of: Callable[[np.ndarray], np.ndarray], seeds: int, rng: np.random.Generator
) -> pd.DataFrame:
    """A τ = 1 long table with step-0 rows (run, N, seed, tau, step, C, D, L, L_se_sampling)."""
    steps = np.unique(np.r_[np.arange(0, shape.steps + 1, shape.every), shape.steps])
    ks = k_of(np.asarray(shape.sizes, dtype=float))
    frames = []
    for N, L0, k in zip(shape.sizes, shape.starts, ks, strict=True):
        for seed in range(seeds):
            truth = L0 * (1.0 + steps) ** -k
            offset = rng.normal(0.0, shape.run_sd) * (steps > 0)
            L = truth + offset + rng.normal(0.0, shape.se, len(steps))
            frames.append(_run_frame(shape, N, seed, 1, steps, np.clip(L, 1e-3, 1.0)))
    return pd.concat(frames, ignore_index=True)


def _run_frame(
    shape: Shape, N: float, seed: int, tau: int, steps: np.ndarray, L: np.ndarray
) -> pd.DataFrame:
    D = steps * float(shape.prompts)
    return pd.DataFrame(
        {
            "run": f"N{N:.3g}-s{seed}-t{tau}",
            "N": float(N),
            "seed": seed,
            "tau": tau,
            "step": steps,
            "C": 6.0 * N * shape.tokens * D,
            "D": D,
            "L": L,
            "L_se_sampling": shape.se,
        }
    )


def simulate_reuse(
    shape: Shape, cost_share: float, seeds: int, rng: np.random.Generator
) -> dict[str, dict[str, Any]]:
    """The reuse size's start and final L per τ (1, 5, 25), as `reuse_costs_little` reads them:
    τ = 25 costs `cost_share` of τ = 1's gain, τ = 5 a fifth of that."""
    i = shape.reuse_size
    L0 = shape.starts[i]
    k = float(k_forms(shape)["saturating"](np.array([shape.sizes[i]]))[0])
    final = L0 * (1.0 + shape.steps) ** -k
    gain = L0 - final
    frames = []
    for tau, share in ((1, 0.0), (5, cost_share / 5), (25, cost_share)):
        for seed in range(seeds):
            L = np.array([L0, final + share * gain + rng.normal(0.0, shape.run_sd)])
            L = L + rng.normal(0.0, shape.se, 2)
            steps = np.array([0, shape.steps])
            frames.append(_run_frame(shape, shape.sizes[i], seed, tau, steps, L))
    reuse, _ = reuse_from_table(pd.concat(frames, ignore_index=True))
    return reuse


def judge_c(table: pd.DataFrame) -> str:
    fits = fit_study(table[table["step"] > 0], fits=(("loglinear", "C"),))
    return k_rises_and_saturates(fits).verdict


def judge_a(table: pd.DataFrame, noise: RunNoise) -> str:
    return larger_learns_more(table, noise).verdict


def rates(verdicts: list[str]) -> dict[str, float]:
    return {v: verdicts.count(v) / len(verdicts) for v in VERDICTS}


def calibrate_cell(
    finding: str, shape: Shape, truth: str | float, seeds: int, studies: int, seed: int = 0,
    se_scale: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Each verdict's share over `studies` simulated studies of one cell."""
    rng = np.random.default_rng(seed)
    shape = replace(shape, se=shape.se * se_scale, run_sd=shape.run_sd * se_scale)
    out = []
    for _ in range(studies):
        if finding == "d":
            reuse = simulate_reuse(shape, float(truth), seeds, rng)
            noise = _assumed(shape) if seeds == 1 else RunNoise(0.0, float(seeds - 1), "seeds")
            out.append(reuse_costs_little(reuse, None, noise).verdict)
            continue
        table = simulate_study(shape, k_forms(shape)[str(truth)], seeds, rng)
        if finding == "c":
            out.append(judge_c(table))
        else:
            noise = _assumed(shape) if seeds == 1 else run_noise(table[table["step"] > 0])
            out.append(judge_a(table, noise))
    return {"finding": finding, "shape": shape.name, "truth": truth, "seeds": seeds} | {
        "se_scale": se_scale,
        "studies": studies,
        "rates": rates(out),
    }


def _assumed(shape: Shape) -> RunNoise:
    """One run a size: the run-to-run spread a user states (here the simulation's own)."""
    return RunNoise(shape.run_sd, float("inf"), "assumed")
