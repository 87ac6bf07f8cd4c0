"""How often `rlscale fit --by family` gets the verdict right (issue 21, item 2).

Two families are simulated with `rlscale.simulate` (the paper-base preset: its sizes, 105 steps,
noise 0.01 in L, one run per size), over seeds 0..SEEDS-1, in four scenarios: they share k(N)
and differ only in E(N) (instruct = base shifted by −0.05 decades), or they differ as the paper's
own Base and Instruct fits do (Table 6, intra-C: Kmax 0.1349 / 0.1276, N0 13.09B / 17.27B) —
each with independent noise and with AR(1) noise (ρ = 0.5) along a run. It prints, per scenario,
the share of each verdict and of each criterion's vote (the likelihood-ratio test, AIC and BIC
on the effective sample size, the held-out forecasts): for the shared scenarios "differ" is a
false alarm, for the differing ones "differ" is a detection.

    python benchmarks/family_comparison.py [--seeds 20] [--sizes 0.5B,1.5B,3B,7B,14B,32B,72B]
        [--criterion lr|aic|bic] [--fractions 0.5,0.75] [--margin 0.1]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace

import pandas as pd

from rlscale.fit.estimator import FitConfig
from rlscale.fit.families import FamilyConfig, FamilyFits
from rlscale.simulate import SimulationConfig, preset, simulate
from rlscale.units import parse_number

TABLE6_BASE = {"Kmax": 0.1349, "N0": 13.09e9}
TABLE6_INSTRUCT = {"Kmax": 0.1276, "N0": 17.27e9}
SHIFT_E = -0.05


def two_families(
    base: SimulationConfig, k_base: dict[str, float], k_instruct: dict[str, float], seed: int
) -> pd.DataFrame:
    a = replace(base.with_params(k_base), family="base", seed=seed)
    b = replace(
        base.with_params(k_instruct), family="instruct", shift_E=SHIFT_E, seed=10_000 + seed
    )
    return pd.concat([simulate(a), simulate(b)], ignore_index=True)


def votes(joint: dict[str, object]) -> dict[str, str]:
    """Each criterion's vote, recomputed from the JSON (the verdict uses one of them)."""
    lr, aic, bic = joint["lr"], joint["aic"], joint["bic"]
    assert isinstance(lr, dict) and isinstance(aic, dict) and isinstance(bic, dict)
    held = joint["votes"]["held_out"]  # type: ignore[index]
    return {
        "lr": "differ" if lr["p_value"] < 0.05 else "shared",
        "aic": "differ" if aic["separate"] < aic["shared"] else "shared",
        "bic": "differ" if bic["separate"] < bic["shared"] else "shared",
        "held_out": str(held),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", default="")
    parser.add_argument("--criterion", default="lr")
    parser.add_argument("--fractions", default="0.5,0.75", help="held-out prefix fractions")
    parser.add_argument("--margin", type=float, default=0.1)
    args = parser.parse_args()
    base = preset("paper-base")
    if args.sizes:
        base = base.with_sizes([parse_number(s, "--sizes") for s in args.sizes.split(",")])
    scenarios = {
        "shared k(N), E shifted": (TABLE6_BASE, TABLE6_BASE),
        "differ as Table 6": (TABLE6_BASE, TABLE6_INSTRUCT),
    }
    fractions = tuple(float(f) for f in args.fractions.split(","))
    families = FamilyConfig(criterion=args.criterion, fractions=fractions, margin=args.margin)
    print(
        f"{args.seeds} seeds, sizes {', '.join(f'{s:g}' for s in base.sizes)}, noise 0.01, "
        f"criterion {args.criterion}, held out after prefixes {args.fractions}, margin "
        f"{args.margin}"
    )
    print(f"{'scenario':<28} {'rho':>4}  verdict shares (shared/differ/undecided)   votes 'differ'")
    for name, (k_a, k_b) in scenarios.items():
        for rho in (0.0, 0.5):
            verdicts: Counter[str] = Counter()
            differ: Counter[str] = Counter()
            began = time.perf_counter()
            for seed in range(args.seeds):
                data = two_families(replace(base, rho=rho), k_a, k_b, seed)
                joint = FamilyFits(FitConfig(), families).fit(data).joint_
                verdicts[str(joint["verdict"])] += 1
                differ.update(k for k, v in votes(joint).items() if v == "differ")
            share = "/".join(
                f"{verdicts[v] / args.seeds:.2f}" for v in ("shared", "differ", "undecided")
            )
            vote = " ".join(f"{k} {differ[k] / args.seeds:.2f}" for k in VOTE_NAMES)
            seconds = (time.perf_counter() - began) / args.seeds
            print(f"{name:<28} {rho:>4}  {share:<40} {vote}   ({seconds:.2f} s a comparison)")


VOTE_NAMES = ("lr", "aic", "bic", "held_out")

if __name__ == "__main__":
    main()
