"""Forecasts from partially identified fits: the profile likelihood over what data leaves free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlscale import analysis
from rlscale.findings.kgrowth import k_rises_and_saturates
from rlscale.fit.estimator import LawFit
from rlscale.fit.laws import ParamSpec
from rlscale.fit.noise import Noise
from rlscale.fit.profile import design_effect, grid, open_ends, plausible
from rlscale.simulate import SimulationConfig, simulate

SIZES = (0.5e9, 1e9, 1.5e9, 2e9, 3e9)


@pytest.fixture(scope="module")
def unsaturated() -> pd.DataFrame:
    """paper_e_sat with N0 = 1e11, far above every size: k(N) ≈ (Kmax/N0)·N, so only the
    ratio Kmax/N0 can be learnt from these sizes."""
    cfg = SimulationConfig(
        law="paper_e_sat",
        params={"Kmax": 3.0, "N0": 1e11, "Emax": 8.5, "N1": 2e10},
        per_N={N: {} for N in SIZES},
        x="C",
        steps=60,
        noise=0.01,
        seed=0,
    )
    return simulate(cfg)


@pytest.fixture(scope="module")
def small_fit(unsaturated: pd.DataFrame) -> LawFit:
    return LawFit(law="paper_e_sat").fit(unsaturated[unsaturated["N"] < 3e9])


def test_an_unidentified_N0_is_profiled_and_said_so(small_fit: LawFit) -> None:
    assert small_fit.profile_ is not None
    assert small_fit.profile_["params"] == ["N0"]
    # the data bounds N0 below (k would bend within the sizes) but not above
    lo = small_fit.ci95_["N0"][0]
    assert lo > 3e9 and small_fit.profile_["open"]["N0"] == "above"
    assert "not identified by the data: N0" in small_fit.message_
    assert "profile likelihood" in small_fit.message_
    assert len(small_fit.profile_["members"]) >= 3
    # every plausible fit agrees on the identified combination Kmax/N0 far better than on N0
    ratios = [m.params_["Kmax"] / m.params_["N0"] for m in small_fit.profile_["members"]]
    n0s = [m.params_["N0"] for m in small_fit.profile_["members"]]
    assert max(ratios) / min(ratios) < max(n0s) / min(n0s)


def test_the_profile_band_forecasts_the_held_out_size(
    unsaturated: pd.DataFrame, small_fit: LawFit
) -> None:
    held = unsaturated[unsaturated["N"] == 3e9]
    pred = small_fit.predict(held["N"], held["C"])
    truth = held["L_true"].to_numpy()
    inside = (truth >= pred["lo"].to_numpy()) & (truth <= pred["hi"].to_numpy())
    assert inside.mean() >= 0.9
    # the envelope is at least as wide as the best plausible fit's own band, and wider somewhere
    best = small_fit.profile_["members"][0].predict(held["N"], held["C"])
    assert (pred["hi"] >= best["hi"] - 1e-12).all() and (pred["lo"] <= best["lo"] + 1e-12).all()
    assert ((pred["hi"] - pred["lo"]) > (best["hi"] - best["lo"]) * 1.01).any()


def test_the_profile_survives_the_json_round_trip(small_fit: LawFit) -> None:
    back = LawFit.from_summary(small_fit.summary())
    assert back.profile_ is not None and back.profile_["params"] == ["N0"]
    a = small_fit.predict([3e9, 6e9], [1e18, 1e19])
    b = back.predict([3e9, 6e9], [1e18, 1e19])
    assert np.allclose(a[["L", "lo", "hi"]], b[["L", "lo", "hi"]], rtol=1e-9)


def test_the_report_makes_the_held_out_forecast_from_the_profile(
    unsaturated: pd.DataFrame,
) -> None:
    table = unsaturated[["run", "N", "C", "L"]]
    held = analysis.holdout_forecast(table)
    assert held["ok"] and "profile likelihood" in held["profile"]
    assert held["coverage95"] >= 0.8


def test_an_identified_fit_is_not_profiled() -> None:
    cfg = SimulationConfig(
        law="paper_e_sat",
        params={"Kmax": 0.2, "N0": 1e9, "Emax": 1.5, "N1": 1e9},
        per_N={N: {} for N in (1e8, 3e8, 1e9, 3e9, 1e10)},
        steps=60,
        noise=0.005,
    )
    fit = LawFit(law="paper_e_sat").fit(simulate(cfg))
    assert fit.converged_ and fit.profile_ is None


def test_plausible_is_a_likelihood_ratio_test_scaled_by_the_design_effect() -> None:
    # 2ΔF/σ² against χ²₁(0.95) = 3.84: ΔF = 1.9 passes, 2.0 does not (σ² = 1)
    assert plausible([0.0, 1.9, 2.0], 1.0, 1.0, 1, 0.95).tolist() == [True, True, False]
    # correlated points carry less information: a design effect of 2 halves the deviance
    assert plausible([0.0, 3.8], 1.0, 2.0, 1, 0.95).tolist() == [True, True]
    noise = Noise("correlated", 1.0, 0.0, 0.5, 100.0, 0.0)
    assert design_effect(noise, 30) == pytest.approx(3.0)
    offsets = Noise("correlated", 1.0, 1.0, 0.0, 100.0, 10.0)
    assert design_effect(offsets, 30) == pytest.approx(15.5)


def test_grid_and_open_ends() -> None:
    spec = ParamSpec("N0", 1e6, 1e3, 1e9, log_scale=True)
    points = grid([spec])
    assert len(points) == 15 and points[0]["N0"] == pytest.approx(1e3)
    assert len(grid([spec, ParamSpec("N1", 1e6, 1e3, 1e9, log_scale=True)])) == 100
    kept = [{"N0": 1e5}, {"N0": 1e6}]
    assert open_ends([spec], kept, [*kept, {"N0": 1e4}]) == {"N0": "above"}
    assert open_ends([spec], kept, [*kept, {"N0": 1e4}, {"N0": 1e7}]) == {}


def test_k_still_growing_past_the_sizes_is_not_called_saturation(
    unsaturated: pd.DataFrame,
) -> None:
    fits = analysis.fit_study(unsaturated, fits=(("loglinear", "C"), ("paper", "C")))
    found = k_rises_and_saturates(fits)
    assert found.numbers["trend"] == "rises"
    assert found.verdict != "holds" and not found.numbers["saturates"], found.measured
