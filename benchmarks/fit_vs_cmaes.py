"""The paper's fitting method (CMA-ES) against rlscale's variable projection, same data, same loss.

arXiv:2509.25300 fits the 9 parameters of its law (Kmax, N0, E per size) with CMA-ES: population
20, 5 trials of up to 1,600 iterations, mean squared error in linear L. Here both methods minimise
that same objective on `simulate --preset paper-base` data for 10 noise seeds: CMA-ES through the
`cma` package (candidates evaluated as a batch, which only helps it), rlscale through
`LawFit(law="paper", space="linear")`. Printed: per seed the seconds and the objective reached, then
the median time ratio and how often each method reached the lower objective.

Run: python benchmarks/fit_vs_cmaes.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace

import numpy as np

with warnings.catch_warnings():  # cma warns that matplotlib (for its plots) is absent
    warnings.simplefilter("ignore")
    import cma

from rlscale.fit.data import load_fit_data
from rlscale.fit.estimator import LawFit
from rlscale.simulate import preset, simulate

# CMA-ES search box (the paper's scale: N0 in billions): Kmax, N0/1e9, then E per size (log10).
LOWER = np.array([0.0, 0.1] + [-1.0] * 7)
UPPER = np.array([1.0, 1000.0] + [5.0] * 7)


def mse_batch(
    theta: np.ndarray, N: np.ndarray, log10_C: np.ndarray, g: np.ndarray, L: np.ndarray
) -> np.ndarray:
    """Linear-space MSE of the paper law for a batch of parameter vectors (rows of theta)."""
    kmax, n0 = theta[:, :1], theta[:, 1:2] * 1e9
    k = kmax / (1.0 + n0 / N[None, :])
    pred = 10.0 ** (theta[:, 2:][:, g] - k * log10_C[None, :])
    return np.asarray(np.mean((pred - L[None, :]) ** 2, axis=1))


def run_cmaes(N: np.ndarray, log10_C: np.ndarray, g: np.ndarray, L: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)
    best = np.inf
    for trial in range(5):
        x0 = LOWER + rng.uniform(0.2, 0.8, LOWER.size) * (UPPER - LOWER)
        es = cma.CMAEvolutionStrategy(
            list(x0),
            0.25,
            {
                "popsize": 20,
                "maxiter": 1600,
                "bounds": [list(LOWER), list(UPPER)],
                "CMA_stds": list(UPPER - LOWER),
                "seed": seed * 10 + trial + 1,
                "verbose": -9,
            },
        )
        while not es.stop():
            xs = es.ask()
            es.tell(xs, list(mse_batch(np.array(xs), N, log10_C, g, L)))
        best = min(best, float(es.result.fbest))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    times_ours, times_cma, gaps, wins_ours, wins_cma, ties = [], [], [], 0, 0, 0
    print(f"{'seed':>4} {'ours s':>8} {'cma s':>8} {'ours MSE':>14} {'cma MSE':>14}")
    for seed in range(args.seeds):
        df = simulate(replace(preset("paper-base"), seed=seed))
        fd = load_fit_data(df, "C", space="linear")
        N, L, g = fd.N, fd.L, fd.curves.g
        log10_C = np.log10(fd.curves.X)
        start = time.perf_counter()
        fit = LawFit(law="paper", x="C", space="linear").fit(fd)
        t_ours = time.perf_counter() - start
        p = fit.params_
        theta = np.array([[p["Kmax"], p["N0"] / 1e9] + [fit.per_N_[k]["E"] for k in fit.per_N_]])
        ours = float(mse_batch(theta, N, log10_C, g, L)[0])
        start = time.perf_counter()
        theirs = run_cmaes(N, log10_C, g, L, seed)
        t_cma = time.perf_counter() - start
        times_ours.append(t_ours)
        times_cma.append(t_cma)
        gaps.append((theirs - ours) / ours)
        if abs(ours - theirs) <= 1e-12 * max(ours, theirs):
            ties += 1
        elif ours < theirs:
            wins_ours += 1
        else:
            wins_cma += 1
        print(f"{seed:>4} {t_ours:8.3f} {t_cma:8.2f} {ours:14.10e} {theirs:14.10e}")
    ratio = np.median(np.array(times_cma) / np.array(times_ours))
    print(
        f"median time: ours {np.median(times_ours) * 1000:.1f} ms, "
        f"CMA-ES {np.median(times_cma):.2f} s; median ratio CMA-ES/ours = {ratio:.0f}x"
    )
    print(
        f"lower objective (relative tie 1e-12): ours {wins_ours}, CMA-ES {wins_cma}, "
        f"ties {ties} of {args.seeds}; median (CMA-ES − ours)/ours = {np.median(gaps):.2e}"
    )


if __name__ == "__main__":
    main()
