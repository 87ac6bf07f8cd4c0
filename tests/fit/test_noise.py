"""The correlated error model: its estimates, its bands' coverage, and the independent one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rlscale.fit.estimator import FitConfig, LawFit
from rlscale.fit.noise import estimate_noise, variance_power
from rlscale.fit.validate import prefix
from rlscale.simulate import ar1_noise, preset, simulate


def _runs(rng: np.random.Generator, rho: float, run_sd: float):
    """Seven runs of 30 points: AR(1) noise (SD 0.01) plus an offset per run."""
    runs, m = 7, 30
    curve = np.repeat(np.arange(runs), m)
    X = np.tile(np.arange(1.0, m + 1), runs)
    eps = np.concatenate(
        [ar1_noise(rng, 0.01, rho, m) + rng.normal(0, run_sd) for _ in range(runs)]
    )
    return eps, curve, X


def _residuals(eps: np.ndarray, J: np.ndarray) -> np.ndarray:
    return eps - J @ np.linalg.lstsq(J, eps, rcond=None)[0]


def _per_run_line_residuals(rng: np.random.Generator, rho: float, run_sd: float):
    """Residuals of a straight line in ln X per run (a level and a slope per run, as a
    per-size law fits), with the Jacobian, runs and X."""
    eps, curve, X = _runs(rng, rho, run_sd)
    runs, n = int(curve.max()) + 1, eps.size
    J = np.zeros((n, 2 * runs))
    J[np.arange(n), curve] = 1.0
    J[np.arange(n), runs + curve] = np.log(X)
    return _residuals(eps, J), J, curve, X


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_rho_and_sigma_are_recovered_after_the_fit_absorbed_a_level_and_slope_per_run(
    rho: float,
) -> None:
    rng = np.random.default_rng(1)
    est = [
        estimate_noise("correlated", *_per_run_line_residuals(rng, rho, 0.0))[0] for _ in range(40)
    ]
    # a naive lag-1 autocorrelation of these residuals is biased low by ~(1 + 3ρ)/30 and more
    assert np.median([e.rho for e in est]) == pytest.approx(rho, abs=0.05)
    assert np.median([e.sigma_point for e in est]) == pytest.approx(0.01, rel=0.1)
    # every run has its own level: a run offset cannot be told from it, so none is estimated
    assert all(e.sigma_run == 0 and e.df_run == 0 for e in est)


def test_run_offsets_are_estimated_when_runs_share_the_law() -> None:
    rng = np.random.default_rng(2)
    est = []
    for _ in range(40):
        eps, curve, X = _runs(rng, 0.0, 0.02)
        shared = np.column_stack([np.ones(eps.size), np.log(X)])  # one line for every run
        est.append(estimate_noise("correlated", _residuals(eps, shared), shared, curve, X)[0])
    assert np.median([n.sigma_run for n in est]) == pytest.approx(0.02, rel=0.35)
    assert np.median([n.df_run for n in est]) == pytest.approx(6.0, abs=0.5)


def test_independent_model_is_the_textbook_least_squares_covariance() -> None:
    data = simulate(replace(preset("paper-base"), steps=40))
    fit = LawFit(law="paper", noise="independent").fit(data)
    assert fit.noise_.rho == 0 and fit.noise_.sigma_run == 0
    assert fit.noise_.sigma_point == pytest.approx(fit.sigma_)


def test_correlated_bands_cover_an_ar1_prefix_forecast_where_independent_ones_do_not() -> None:
    """Prefix-25% forecasts of the paper law under AR(1) noise with ρ = 0.8, pooled over seeds."""
    cover = {"independent": [], "correlated": []}
    for seed in range(8):
        data = simulate(replace(preset("paper-base"), rho=0.8, seed=seed))
        for model in cover:
            cover[model].append(
                prefix(data, FitConfig(law="paper", noise=model), 0.25)["coverage95"]
            )
    assert np.mean(cover["correlated"]) >= 0.9
    assert np.mean(cover["independent"]) < np.mean(cover["correlated"]) - 0.05


def test_a_fit_json_written_before_error_models_reads_as_independent() -> None:
    data = simulate(replace(preset("paper-base"), steps=30))
    fit = LawFit(law="paper", noise="independent").fit(data)
    old = fit.summary()
    del old["noise"]
    back = LawFit.from_summary(old)
    assert back.noise_.model == "independent"
    a, b = fit.predict(7e9, 1e20), back.predict(7e9, 1e20)
    assert np.allclose(a[["L", "lo", "hi"]], b[["L", "lo", "hi"]], rtol=1e-9)


def test_correlated_fit_round_trips_through_json() -> None:
    data = simulate(replace(preset("paper-base"), steps=30, rho=0.5))
    fit = LawFit(law="paper").fit(data)
    back = LawFit.from_summary(fit.summary())
    assert back.noise_ == fit.noise_
    a, b = fit.predict([7e9, 72e9], [1e20, 1e21]), back.predict([7e9, 72e9], [1e20, 1e21])
    assert np.allclose(a[["L", "lo", "hi"]], b[["L", "lo", "hi"]], rtol=1e-9)


def test_variance_power_finds_how_the_scatter_grows_as_L_falls() -> None:
    rng = np.random.default_rng(4)
    L = np.exp(rng.uniform(np.log(0.05), np.log(0.9), 2000))
    e = rng.normal(0, 0.01, L.size) / L  # noise additive in L, seen in ln L: SD ∝ 1/L
    power, level = variance_power(e, L)
    assert power == pytest.approx(-1.0, abs=0.1)
    assert level == pytest.approx(np.exp(np.mean(np.log(L))))
    assert variance_power(e, np.full(L.size, 0.3))[0] == 0.0  # L constant: nothing to learn


def test_variance_power_is_not_moved_by_offsets_that_are_constant_along_a_run() -> None:
    rng = np.random.default_rng(5)
    runs, points = 8, 60
    run = np.repeat(np.arange(runs), points)
    level_of_run = np.linspace(np.log(0.9), np.log(0.1), runs)  # one run per size, lower L
    L = np.exp(level_of_run[run] + np.tile(np.linspace(0, -0.5, points), runs))
    misfit = 0.2 * np.exp(level_of_run)[run]  # largest where L is high: a slope of +1 in ln|e|
    e = misfit + rng.normal(0, 0.01, L.size) / L  # point noise additive in L: power −1
    from_raw = np.polyfit(np.log(L), np.log(np.abs(e)), 1)[0]
    assert from_raw > -0.5  # the raw residuals' slope is pulled away by the offsets…
    assert variance_power(e, L, run)[0] == pytest.approx(-1.0, abs=0.15)  # …the differences not
    singletons = variance_power(e, L, np.arange(L.size))[0]  # no run with two points: raw
    assert singletons == pytest.approx(from_raw)


def test_a_log_fit_of_noise_additive_in_L_widens_its_bands_where_L_is_low() -> None:
    data = simulate(replace(preset("paper-base"), noise=0.01))
    fit = LawFit(law="paper").fit(data)
    assert fit.noise_.power == pytest.approx(-1.0, abs=0.25)
    pred = fit.predict([0.5e9, 72e9], [1e18, 1e22])  # high L for the smallest, low for the largest
    width = np.log(pred["hi"] / pred["lo"]).to_numpy()
    assert pred["L"].iloc[0] > pred["L"].iloc[1] and width[1] > 1.5 * width[0]


def test_rho_se_is_the_spread_of_rho_estimates_across_repeated_studies() -> None:
    estimates, spreads = [], []
    for seed in range(30):
        data = simulate(replace(preset("paper-base"), steps=12, rho=0.6, seed=seed))
        noise = LawFit(law="paper").fit(data).noise_
        estimates.append(noise.rho)
        spreads.append(noise.rho_se)
    assert np.mean(estimates) == pytest.approx(0.6, abs=0.08)
    assert 0.7 < np.median(spreads) / np.std(estimates) < 1.4
    long_runs = LawFit(law="paper").fit(simulate(replace(preset("paper-base"), rho=0.6)))
    assert 0 < long_runs.noise_.rho_se < 0.6 * np.median(spreads)  # more points, surer ρ
