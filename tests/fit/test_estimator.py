from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.errors import InputError
from rlscale.fit.data import load_fit_data
from rlscale.fit.estimator import FitConfig, LawFit
from rlscale.fit.laws import get_law
from rlscale.fit.solver import Objective, Problem, check_solution
from rlscale.simulate import SimulationConfig, preset, simulate
from tests.conftest import paper_base_seed

PLANTED = preset("paper-base").params


@pytest.mark.parametrize("seed", range(5))
def test_paper_fit_recovers_planted_kmax_and_n0(seed: int) -> None:
    fit = LawFit(law="paper", x="C").fit(paper_base_seed(seed))
    assert fit.converged_, fit.message_
    assert fit.params_["Kmax"] == pytest.approx(PLANTED["Kmax"], rel=0.05)
    assert fit.params_["N0"] == pytest.approx(PLANTED["N0"], rel=0.20)
    assert fit.r2_ > 0.99


def test_bootstrap_interval_covers_the_planted_values_in_most_seeds() -> None:
    covered = {"Kmax": 0, "N0": 0}
    seeds = range(6)
    for seed in seeds:
        fit = LawFit(law="paper", x="C", bootstrap=150, seed=seed).fit(paper_base_seed(seed))
        assert fit.uncertainty_ == "bootstrap"
        assert fit.bootstrap_ is not None and fit.bootstrap_["unit"] == "run"
        for name in covered:
            lo, hi = fit.ci95_[name]
            covered[name] += lo <= PLANTED[name] <= hi
    assert covered["Kmax"] >= 4 and covered["N0"] >= 4, covered


def test_two_fits_give_identical_json_parameters(paper_base: pd.DataFrame) -> None:
    a = LawFit(law="paper", x="C", bootstrap=20).fit(paper_base).summary()
    b = LawFit(law="paper", x="C", bootstrap=20).fit(paper_base).summary()
    for key in ("params", "stderr", "ci95", "per_N", "per_N_ci95", "r2"):
        assert json.dumps(a[key]) == json.dumps(b[key]), key


def test_summary_is_json_with_the_fitresult_fields(paper_base: pd.DataFrame) -> None:
    result = LawFit(law="paper").fit(paper_base).summary()
    text = json.dumps(result, allow_nan=False)
    for field in (
        "law",
        "x",
        "params",
        "stderr",
        "ci95",
        "per_N",
        "r2",
        "rmse_log",
        "n_points",
        "converged",
        "message",
        "seconds",
    ):
        assert field in result
    assert json.loads(text)["per_N"]["7000000000"]["k"] > 0
    # The paper convention: E is log10 L at X = 1.
    assert result["per_N"]["7000000000"]["E"] == pytest.approx(0.704, abs=0.05)


def _chinchilla_like_data() -> pd.DataFrame:
    cfg = SimulationConfig(
        law="powerlaw_floor",
        params={"E": 0.2, "A": 3e6, "B": 2e13, "alpha": 0.35, "beta": 0.3},
        per_N={1e8: {}, 3e8: {}, 1e9: {}, 3e9: {}},
        x="C",
        steps=30,
        noise=0.004,
        seed=3,
    )
    df = simulate(cfg)
    df.loc[[7, 40, 95], "L"] -= 0.08  # a few outliers, where Huber matters
    return df


# Random-start box of the brute force, over (ln E, ln A, ln B, alpha, beta).
StartBox = tuple[tuple[float, float], ...]
CHINCHILLA_BOX: StartBox = ((-4, 0), (5, 25), (25, 45), (0.05, 1.5), (0.05, 1.5))


def _reference_huber_optimum(
    df: pd.DataFrame, delta: float, x: str = "C", box: StartBox = CHINCHILLA_BOX
) -> tuple[float, np.ndarray]:
    """Brute force, written independently: many random L-BFGS-B starts on the LSE objective,
    over (ln E, ln A, ln B, alpha, beta); ln E is not bounded above (a loss in nats has E > 1)."""
    lnN, lnX, y = np.log(df["N"].to_numpy()), np.log(df[x].to_numpy()), np.log(df["L"].to_numpy())

    def objective(q: np.ndarray) -> float:
        e, a, b, alpha, beta = q
        pred = np.logaddexp.reduce([np.full_like(y, e), alpha * (a - lnN), beta * (b - lnX)])
        r = np.abs(pred - y)
        return float(np.sum(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))))

    rng = np.random.default_rng(0)
    lo, hi = np.array(box).T
    best_value, best = np.inf, np.zeros(5)
    for _ in range(150):
        res = minimize(
            objective,
            rng.uniform(lo, hi),
            method="L-BFGS-B",
            bounds=[(-18, None), (None, None), (None, None), (0.01, 3), (0.01, 3)],
            options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12},
        )
        if res.fun < best_value:
            best_value, best = res.fun, res.x
    return best_value, best


def _assert_reaches_reference(
    fit: LawFit, df: pd.DataFrame, delta: float, x: str = "C", box: StartBox = CHINCHILLA_BOX
) -> None:
    """The fit converged, is at least as good as the brute force, and at the same parameters."""
    ref_value, ref = _reference_huber_optimum(df, delta, x, box)
    assert fit.converged_, fit.message_
    assert fit.objective_ <= ref_value * (1 + 1e-6)
    p = fit.params_
    ours = np.array([np.log(p["E"]), np.log(p["A"]), np.log(p["B"]), p["alpha"], p["beta"]])
    np.testing.assert_allclose(ours[3:], ref[3:], rtol=2e-3)
    np.testing.assert_allclose(ours[:3], ref[:3], atol=2e-2)


def test_powerlaw_floor_huber_reaches_the_brute_force_optimum() -> None:
    df = _chinchilla_like_data()
    fit = LawFit(law="powerlaw_floor", x="C", space="log", loss="huber", delta=1e-3).fit(df)
    _assert_reaches_reference(fit, df, 1e-3)


CROSS_ENTROPY_TRUTH = {"E": 1.3, "A": 1e6, "B": 4e3, "alpha": 0.3, "beta": 0.35}
CROSS_ENTROPY_BOX: StartBox = ((-1, 1.5), (5, 25), (0, 20), (0.05, 1.5), (0.05, 1.5))


def _cross_entropy_like_data() -> pd.DataFrame:
    """A pretraining-style loss in nats (1.5 < L < 4, floor E = 1.3 > 1) against data D, drawn
    from powerlaw_floor's own formula: 5 sizes 1e6…1e8, 30 D per size 1e3…1e6, 0.4% noise and a
    few low outliers, where Huber matters."""
    sizes, D = np.geomspace(1e6, 1e8, 5), np.geomspace(1e3, 1e6, 30)
    N, X = (a.ravel() for a in np.meshgrid(sizes, D, indexing="ij"))
    ln_L = get_law("powerlaw_floor").ln_L_unseen(CROSS_ENTROPY_TRUTH, N, X)
    rng = np.random.default_rng(7)
    L = np.exp(ln_L + rng.normal(0.0, 0.004, N.size))
    L[[7, 40, 95, 130]] -= 0.15
    return pd.DataFrame({"N": N, "D": X, "L": L})


def test_powerlaw_floor_huber_fits_a_cross_entropy_above_1_to_the_brute_force_optimum() -> None:
    df = _cross_entropy_like_data()
    assert df["L"].min() > 1.4 and df["L"].max() < 4.1  # a loss in nats, not an error rate
    fit = LawFit(law="powerlaw_floor", x="D", loss="huber", delta=1e-3).fit(df)
    assert fit.message_ == "converged"  # no parameter on a bound (E = 1.3 > 1 is a floor)
    _assert_reaches_reference(fit, df, 1e-3, "D", CROSS_ENTROPY_BOX)
    for name, value in CROSS_ENTROPY_TRUTH.items():
        assert fit.params_[name] == pytest.approx(value, rel=0.1), name


def test_cli_fits_a_cross_entropy_above_1_with_powerlaw_floor(tmp_path: Path) -> None:
    path, out = tmp_path / "ce.csv", tmp_path / "fit.json"
    df = _cross_entropy_like_data()
    df.to_csv(path, index=False)
    args = ["fit", str(path), "--law", "powerlaw_floor", "--x", "D", "--loss", "huber"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "converged" in result.output and "NOT CONVERGED" not in result.output
    summary = json.loads(out.read_text())
    assert summary["converged"] is True and summary["message"] == "converged"
    direct = LawFit(law="powerlaw_floor", x="D", loss="huber").fit(df)
    for name, value in direct.params_.items():
        assert summary["params"][name] == pytest.approx(value, rel=1e-6), name


def test_check_solution_flags_a_fit_stopped_early(paper_base: pd.DataFrame) -> None:
    fit = LawFit(law="paper").fit(paper_base)
    fd = load_fit_data(paper_base, "C")
    law = get_law("paper")
    problem = Problem(law, fd.curves, np.log(fd.L), np.ones(fd.n), Objective(), {})
    assert check_solution(problem, fit.all_params_).converged
    early = {**fit.all_params_, "Kmax": fit.all_params_["Kmax"] * 1.003}
    result = check_solution(problem, early)
    assert not result.converged
    assert any("not at a minimum" in note for note in result.notes)


def test_parameter_on_a_bound_is_flagged(paper_base: pd.DataFrame) -> None:
    # Every size with the same slope: k(N) is flat, so N0 runs to its lower bound.
    df = paper_base.copy()
    df["L"] = np.exp(-0.05 * np.log(df["C"] / 1e17)) * 0.8
    fit = LawFit(law="paper").fit(df)
    assert "N0 at its lower bound" in fit.message_


def test_out_of_bounds_fit_is_reported_not_converged(paper_base: pd.DataFrame) -> None:
    # The sigmoid's floor R0 is a pass rate; a log-linear curve drives it below 0.
    fit = LawFit(law="sigmoid", space="linear").fit(paper_base)
    assert not fit.converged_
    assert "outside its bounds" in fit.message_
    assert fit.summary()["converged"] is False


def test_fixed_parameter_is_kept_and_not_estimated(paper_base: pd.DataFrame) -> None:
    fit = LawFit(law="paper", fixed=(("Kmax", 0.13304),)).fit(paper_base)
    assert fit.params_["Kmax"] == 0.13304
    assert "Kmax" not in fit.cov_names_
    assert fit.params_["N0"] == pytest.approx(PLANTED["N0"], rel=0.2)
    with pytest.raises(InputError, match="cannot fix 'E'"):
        FitConfig(law="paper", fixed=(("E", 1.0),))


def test_linear_space_and_huber_agree_with_the_default_on_clean_data(
    paper_base: pd.DataFrame,
) -> None:
    base = LawFit(law="paper").fit(paper_base).params_
    for kwargs in ({"space": "linear"}, {"loss": "huber", "delta": 0.02}):
        other = LawFit(law="paper", **kwargs).fit(paper_base)
        assert other.converged_, (kwargs, other.message_)
        assert other.params_["Kmax"] == pytest.approx(base["Kmax"], rel=0.03)


def test_curve_weighting_balances_curves_of_unequal_length(paper_base: pd.DataFrame) -> None:
    df = paper_base[(paper_base["N"] != 72e9) | (paper_base["step"] <= 20)]
    point = LawFit(law="paper", weighting="point").fit(df)
    curve = LawFit(law="paper", weighting="curve").fit(df)
    assert curve.converged_ and point.converged_
    assert curve.params_["Kmax"] != pytest.approx(point.params_["Kmax"], rel=1e-6)
    full = LawFit(law="paper", weighting="curve").fit(paper_base)
    same = LawFit(law="paper", weighting="point").fit(paper_base)
    assert full.params_["Kmax"] == pytest.approx(same.params_["Kmax"], rel=1e-9)


def test_predict_band_and_roundtrip_through_json(paper_base: pd.DataFrame) -> None:
    fit = LawFit(law="paper").fit(paper_base)
    pred = fit.predict([7e9, 72e9], [1e19, 1e20])
    assert (pred["lo"] < pred["L"]).all() and (pred["L"] < pred["hi"]).all()
    conf = fit.predict([7e9, 72e9], [1e19, 1e20], interval="confidence")
    assert ((conf["hi"] - conf["lo"]) < (pred["hi"] - pred["lo"])).all()
    again = LawFit.from_summary(json.loads(json.dumps(fit.summary())))
    pd.testing.assert_frame_equal(again.predict([7e9, 72e9], [1e19, 1e20]), pred)
    with pytest.raises(InputError, match="paper_e_sat"):
        fit.predict(144e9, 1e20)


def test_paper_e_sat_forecasts_unseen_sizes() -> None:
    truth = SimulationConfig(
        law="paper_e_sat",
        params={"Kmax": 0.14, "N0": 10e9, "Emax": 2.5, "N1": 20e9},
        per_N={n: {} for n in (0.5e9, 1.5e9, 3e9, 7e9, 14e9, 32e9, 72e9)},
        noise=0.005,
    )
    df = simulate(truth)
    fit = LawFit(law="paper_e_sat").fit(df[df["N"] < 72e9])
    assert fit.converged_, fit.message_
    row = df[(df["N"] == 72e9) & (df["step"] == 105)].iloc[0]
    pred = fit.predict(72e9, row["C"])
    assert pred["L"].iloc[0] == pytest.approx(row["L_true"], abs=0.03)


def test_bootstrap_resamples_runs_within_size_when_there_are_seeds() -> None:
    df = simulate(replace(preset("paper-base"), seeds=3, run_noise=0.01, steps=30))
    fit = LawFit(law="paper", bootstrap=40).fit(df)
    assert fit.bootstrap_ is not None and fit.bootstrap_["unit"] == "run within size"
    lo, hi = fit.ci95_["Kmax"]
    assert lo < fit.params_["Kmax"] < hi


def test_unidentified_scale_parameter_gets_an_unbounded_interval_not_an_overflow() -> None:
    """Two sizes, one of them flat (measured on the micro-quick study): N0 runs to its bound and
    its Jacobian interval is wider than floats hold; the fit still reports, saying why."""
    df = pd.DataFrame(
        {
            "N": [33120.0] * 4 + [197632.0] * 4,
            "C": [2.34e8, 5.53e8, 9.44e8, 1.41e9, 1.41e9, 3.29e9, 5.66e9, 8.49e9],
            "L": [0.984375] * 4 + [0.921875, 0.84375, 0.90625, 0.90625],
        }
    )
    fit = LawFit(law="paper", x="C", profile="off").fit(df)
    assert "not identified" in fit.message_
    lo, hi = fit.ci95_["N0"]
    assert 0 <= lo < fit.params_["N0"] and hi == math.inf
    assert json.loads(json.dumps(fit.summary()))["ci95"]["N0"][1] is None
    # profiled (the default), N0's interval is every value the data cannot reject: here the
    # whole range the law allows, said to be open both ways rather than passed off as found
    profiled = LawFit(law="paper", x="C").fit(df)
    assert profiled.profile_ is not None and profiled.profile_["open"] == {"N0": "both"}
    assert "open both ways" in profiled.message_


@pytest.mark.parametrize("law", ["paper", "powerlaw_floor"])
def test_large_data_screened_on_a_subsample_reaches_the_whole_datas_optimum(
    law: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SCREEN_POINTS the starts come from a subsample; the optimum must not move."""
    from rlscale.fit import solver

    config = replace(preset("paper-base"), seeds=8, noise=0.02, run_noise=0.01)
    fd = load_fit_data(simulate(config), "C")
    monkeypatch.setattr(solver, "SCREEN_POINTS", 1_000)  # the data: 5,880 points
    screened = LawFit(law=law).fit(fd)
    monkeypatch.setattr(solver, "SCREEN_POINTS", fd.n + 1)
    whole = LawFit(law=law).fit(fd)
    assert screened.converged_ and whole.converged_
    assert screened.objective_ == pytest.approx(whole.objective_, rel=1e-9)
    for name, value in whole.params_.items():
        assert screened.params_[name] == pytest.approx(value, rel=1e-4), name
