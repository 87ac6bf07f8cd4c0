"""Study analysis on simulated StepRecords whose true law is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlscale import analysis
from rlscale.fit.estimator import n_key
from rlscale.fit.laws import k_of_N

SIZES = (3e4, 2e5, 6e5, 1e6)
KMAX, N0 = 0.2, 3e5
STEPS = 20
P = 32


def records(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """StepRecords of one τ = 1 run per size following the paper's law in C exactly (plus
    optional noise), and three reuse runs on the third size."""
    rng = np.random.default_rng(seed)
    rows = []
    for N in SIZES:
        k = float(k_of_N(np.array([N]), KMAX, N0)[0])
        # log10 L = E − k log10 C, with L at step 1 falling from 0.8 (small) to 0.4 (large)
        E = np.log10(0.8) - 0.15 * np.log10(N / SIZES[0]) + k * np.log10(6 * N * 3000)
        reuse = SIZES[2] == N
        for tau in (1, 5, 25) if reuse else (1,):
            slower = 1.0 + 0.02 * (tau - 1)  # more reuse: slower progress
            for step in range(STEPS + 1):
                C = 6 * N * 3000 * step
                L = 10 ** (E - k * np.log10(C / slower)) if step else 0.9
                L = min(0.99, L * float(np.exp(noise * rng.standard_normal())))
                rows.append(
                    {
                        "run": f"n{N:g}-tau{tau}",
                        "model": f"m{N:g}",
                        "N": N,
                        "seed": 0,
                        "tau": tau,
                        "step": step,
                        "flops_paper_cum": C,
                        "prompts_seen": step * P,
                        "unique_prompts": STEPS * P // tau,
                        "eval_L": L,
                        "eval_L_se": 0.02,
                    }
                )
    return pd.DataFrame(rows)


def test_scaling_table_keeps_tau1_evaluated_steps_after_zero() -> None:
    table = analysis.scaling_table(records())
    assert set(table["tau"]) == {1} and table["step"].min() == 1
    assert len(table) == len(SIZES) * STEPS
    assert set(table.columns) >= {"N", "C", "D", "L", "run"}


def test_study_fits_recover_the_law_and_rank_the_shapes() -> None:
    recs = records()
    table = analysis.scaling_table(recs)
    fits = analysis.fit_study(table)
    paper = fits["paper-C"]
    assert paper["converged"]
    assert paper["params"]["Kmax"] == pytest.approx(KMAX, rel=1e-6)
    assert paper["params"]["N0"] == pytest.approx(N0, rel=1e-6)
    assert fits["paper-D"]["converged"]
    summary = analysis.study_summary(table, recs, fits, "m600000")
    assert summary["k_rises_with_N"]["loglinear-C"] is True
    for row in summary["per_size"]:
        assert row["r2_loglog"] == pytest.approx(1.0, abs=1e-9)
        assert row["r2_exp"] < row["r2_loglog"]  # a power law is not an exponential
    assert summary["paper_C"]["Kmax"]["value"] == pytest.approx(KMAX, rel=1e-6)
    compared = [e["larger_lower"] for e in summary["equal_compute"]]
    assert compared.count(True) >= 3 and False not in compared
    ratio = summary["paper_C"]["k_per_N"]
    assert ratio["value"] == pytest.approx(KMAX / N0, rel=1e-6)
    assert ratio["ci95"][0] <= ratio["value"] <= ratio["ci95"][1]
    reuse = summary["reuse"]
    assert sorted(reuse, key=int) == ["1", "5", "25"]
    assert reuse["1"]["final_L"] < reuse["5"]["final_L"] < reuse["25"]["final_L"]
    assert reuse["25"]["unique_prompts"] == STEPS * P // 25


def test_a_fit_that_cannot_be_made_is_kept_with_its_reason() -> None:
    one_size = analysis.scaling_table(records()).query("N == 30000.0")
    fits = analysis.fit_study(one_size, fits=(("paper", "C"), ("loglinear", "C")))
    assert fits["paper-C"]["converged"] is False and "size" in fits["paper-C"]["message"]
    assert fits["loglinear-C"]["converged"] is True
    assert analysis.equal_compute(one_size) == []


def test_equal_compute_says_when_larger_sizes_are_not_lower() -> None:
    table = analysis.scaling_table(records())
    table.loc[table["N"] == SIZES[-1], "L"] = 0.99  # the largest size learns nothing
    rows = analysis.equal_compute(table)
    largest = n_key(SIZES[-1])
    with_largest = [
        e
        for e in rows
        if e["L"].get(largest) is not None
        and len([v for v in e["L"].values() if v is not None]) > 1
    ]
    assert with_largest and not any(e["larger_lower"] for e in with_largest)
    alone = [e for e in rows if sum(v is not None for v in e["L"].values()) == 1]
    assert all(e["larger_lower"] is None for e in alone)  # one size: nothing to compare


def test_prefix_forecast_covers_the_true_final_loss() -> None:
    run = records(noise=0.02, seed=3).query("run == 'n1e+06-tau1'")
    truth = float(run[run["step"] == STEPS]["eval_L"].iloc[0])
    prefix = run[run["step"] <= 8]
    forecast = analysis.forecast_final(prefix, STEPS)
    assert forecast is not None
    assert forecast["lo"] <= truth <= forecast["hi"]
    assert abs(forecast["L"] - truth) < 0.1 * truth
    assert analysis.forecast_final(run[run["step"] <= 2], STEPS) is None  # too few points


def test_prefix_and_held_out_forecasts_on_an_exact_power_law() -> None:
    table = analysis.scaling_table(records())
    prefixes = analysis.prefix_forecasts(table, "C", fraction=0.3)
    assert len(prefixes) == len(SIZES)
    for r in prefixes:  # each run is an exact power law in C: its start predicts the rest
        assert r["prefix_points"] == 6 and len(r["truth"]) == STEPS - 6
        assert r["mae"] < 1e-9 and r["coverage95"] == 1.0
    held = analysis.holdout_forecast(table, "C", law="paper_e_sat")
    assert held["held_out"] == SIZES[-1]
    assert held["ok"] is False or len(held["truth"]) == STEPS
    assert analysis.holdout_forecast(table[table["N"] < SIZES[2]])["ok"] is False  # 2 sizes
