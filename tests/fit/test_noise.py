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


def _seeded_sizes(rng: np.random.Generator, size_sd: float):
    """Six sizes × three seeds × 20 points: an offset per size that its seeds share (SD
    `size_sd`, as a law's misfit at a size is), an offset per run (0.01), point noise (0.01);
    the residuals of one line in ln X shared by all, with its Jacobian, runs, X and sizes."""
    sizes, seeds, points = 6, 3, 20
    runs = sizes * seeds
    curve = np.repeat(np.arange(runs), points)
    size = curve // seeds
    X = np.tile(np.arange(1.0, points + 1), runs)
    eps = rng.normal(0, size_sd, sizes)[size] + rng.normal(0, 0.01, runs)[curve]
    eps += rng.normal(0, 0.01, curve.size)
    J = np.column_stack([np.ones(curve.size), np.log(X)])
    return _residuals(eps, J), J, curve, X, size


@pytest.mark.parametrize("size_sd", [0.0, 0.03])
def test_an_offset_shared_by_the_seeds_of_a_size_is_told_from_each_runs_own(
    size_sd: float,
) -> None:
    rng = np.random.default_rng(6)
    est = []
    for _ in range(40):
        e, J, curve, X, size = _seeded_sizes(rng, size_sd)
        est.append(estimate_noise("correlated", e, J, curve, X, group=size)[0])
    assert np.median([n.sigma_run for n in est]) == pytest.approx(0.01, rel=0.3)
    assert np.median([n.sigma_point for n in est]) == pytest.approx(0.01, rel=0.1)
    if size_sd:
        assert np.median([n.sigma_size for n in est]) == pytest.approx(size_sd, rel=0.35)
        assert np.median([n.df_size for n in est]) == pytest.approx(5.0, abs=0.5)
    else:  # variances are not negative: about half the studies find none, the rest a little
        assert np.median([n.sigma_size for n in est]) < 0.005
        assert all(n.sigma_size >= 0 for n in est)


def test_one_run_a_size_has_no_size_offset_and_the_same_fit_as_without_sizes() -> None:
    rng = np.random.default_rng(7)
    eps, curve, X = _runs(rng, 0.5, 0.02)
    shared = np.column_stack([np.ones(eps.size), np.log(X)])
    e = _residuals(eps, shared)
    with_sizes = estimate_noise("correlated", e, shared, curve, X, group=curve * 10)
    without = estimate_noise("correlated", e, shared, curve, X)
    assert with_sizes[0] == without[0] and with_sizes[0].sigma_size == 0
    for a, b in zip(with_sizes[1:], without[1:], strict=True):
        assert np.array_equal(a, b)


def _three_seeds(seed: int):
    """The published law's seven sizes, three seeds each: the published E per size is off
    paper_e_sat's E(N), the same for every seed of a size."""
    import pandas as pd

    frames = []
    for s in range(3):
        data = simulate(
            replace(preset("paper-base"), steps=40, noise=0.01, run_noise=0.005, seed=10 * seed + s)
        )
        frames.append(data.assign(run=data["run"] + f"-seed{s}"))
    return pd.concat(frames, ignore_index=True)


def test_held_out_sizes_of_a_seeded_study_are_covered_with_the_size_offset() -> None:
    from rlscale.fit.validate import holdout_sizes

    config = FitConfig(law="paper_e_sat", x="C")
    covered, n = 0.0, 0
    for seed in range(2):
        data = _three_seeds(seed)
        sizes = sorted(set(data["N"]))
        for size in sizes:
            score = holdout_sizes(data, config, [size])
            covered += score["coverage95"] * score["n_test"]
            n += score["n_test"]
        fit = LawFit(config).fit(data[data["N"] < max(sizes)])
        assert fit.noise_.sigma_size > fit.noise_.sigma_run  # the misfit, not the seeds' spread
        back = LawFit.from_summary(fit.summary())
        assert back.noise_ == fit.noise_
        a, b = fit.predict(72e9, [1e20, 1e21]), back.predict(72e9, [1e20, 1e21])
        assert np.allclose(a[["L", "lo", "hi"]], b[["L", "lo", "hi"]], rtol=1e-9)
    # without the size offset the same bands miss more than 4% (the benchmark prints both)
    assert covered / n >= 0.96
