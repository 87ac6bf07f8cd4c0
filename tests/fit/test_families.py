"""Fits per model family and the joint comparison: does one k(N) serve every family?"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rlscale.errors import InputError
from rlscale.fit.estimator import FitConfig, LawFit
from rlscale.fit.families import FamilyConfig, FamilyFits, family_key, stack_families
from rlscale.fit.laws import Curves
from rlscale.simulate import SimulationConfig, preset, simulate

# The paper's Table 6 (intra, on C): Base and Instruct fitted separately.
BASE = {"Kmax": 0.1349, "N0": 13.09e9}
INSTRUCT = {"Kmax": 0.1276, "N0": 17.27e9}


def two_families(
    k_instruct: dict[str, float], seed: int, rho: float = 0.0, sizes: tuple[float, ...] = ()
) -> pd.DataFrame:
    """Base and instruct curves (noise 0.01 in L, AR(1) ρ along a run); instruct sits 0.05
    decades lower in L (E(N) − 0.05) and has the k(N) of `k_instruct`."""
    base: SimulationConfig = replace(preset("paper-base"), rho=rho)
    if sizes:
        base = base.with_sizes(sizes)
    a = replace(base.with_params(BASE), family="base", seed=seed)
    b = replace(base.with_params(k_instruct), family="instruct", shift_E=-0.05, seed=seed + 100)
    return pd.concat([simulate(a), simulate(b)], ignore_index=True)


@pytest.fixture(scope="module")
def shared() -> FamilyFits:
    return FamilyFits(FitConfig()).fit(two_families(BASE, seed=0))


def test_families_that_share_k_but_not_E_are_recognised_as_sharing(shared: FamilyFits) -> None:
    joint = shared.joint_
    assert joint["verdict"] == "shared", joint["reason"]
    assert joint["votes"]["in_sample"] == "shared"
    assert joint["lr"]["df"] == 2 and joint["lr"]["p_value"] > 0.05
    # the shared fit finds the common k(N) and the families' different E(N)
    assert joint["shared"]["params"]["Kmax"] == pytest.approx(BASE["Kmax"], rel=0.05)
    assert joint["shared"]["params"]["N0"] == pytest.approx(BASE["N0"], rel=0.15)
    E = joint["shared"]["per_family"]
    gaps = [E["instruct"][k]["E"] - E["base"][k]["E"] for k in E["base"]]
    assert np.median(gaps) == pytest.approx(-0.05, abs=0.02)
    lo, hi = joint["shared"]["ci95"]["Kmax"]
    assert lo < BASE["Kmax"] < hi


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_families_whose_k_differs_as_in_the_paper_are_recognised(seed: int, rho: float) -> None:
    joint = FamilyFits(FitConfig()).fit(two_families(INSTRUCT, seed, rho)).joint_
    assert joint["verdict"] == "differ", joint["reason"]
    assert joint["lr"]["p_value"] < 1e-3
    sep = joint["separate"]["per_family"]
    assert sep["instruct"]["params"]["N0"] > sep["base"]["params"]["N0"]


def test_correlated_errors_do_not_raise_false_alarms() -> None:
    """AR(1) noise (ρ = 0.5) along every run: the statistic is divided by the design effect
    the separate fits' residuals show, so shared k(N) is not called different."""
    for seed in range(4):
        joint = FamilyFits(FitConfig()).fit(two_families(BASE, seed, rho=0.5)).joint_
        assert joint["verdict"] != "differ", joint["reason"]
        assert joint["design_effect"] > 1.5
        assert joint["noise"]["rho"] > 0.25
        naive = FamilyFits(FitConfig(noise="independent")).fit(two_families(BASE, seed, 0.5))
        scaled = naive.joint_["lr"]["statistic"] / joint["design_effect"]
        assert joint["lr"]["statistic"] == pytest.approx(scaled, rel=0.05)


def test_the_json_names_every_family_fit_and_the_joint_comparison(shared: FamilyFits) -> None:
    result = json.loads(json.dumps(shared.summary(), allow_nan=False))
    assert list(result) == ["base/paper-C", "instruct/paper-C", "joint"]
    for key in ("base/paper-C", "instruct/paper-C"):
        again = LawFit.from_summary(result[key])
        assert again.params_ == pytest.approx(result[key]["params"])
        assert result[key]["n_sizes"] == 7
    joint = result["joint"]
    for key in ("shared", "separate", "lr", "aic", "bic", "held_out", "verdict", "reason"):
        assert key in joint
    assert joint["held_out"]["kind"] == "prefix"
    assert joint["aic"]["shared"] < joint["aic"]["separate"]
    assert family_key("base", FitConfig(law="paper", x="D")) == "base/paper-D"


def test_identical_families_give_the_single_fit_and_no_difference() -> None:
    """A certified case: the same curves under two names. The shared model is then the one
    family's fit, the likelihood ratio zero."""
    one = simulate(replace(preset("paper-base"), seed=3))
    data = pd.concat([one.assign(family="a"), one.assign(family="b")], ignore_index=True)
    fits = FamilyFits(FitConfig()).fit(data)
    single = LawFit().fit(one)
    joint = fits.joint_
    for name in ("Kmax", "N0"):
        assert joint["shared"]["params"][name] == pytest.approx(single.params_[name], rel=1e-5)
    assert joint["lr"]["statistic"] == pytest.approx(0.0, abs=1e-6)
    assert joint["verdict"] == "shared"


def test_the_fits_are_deterministic() -> None:
    data = two_families(INSTRUCT, seed=5, sizes=(1.5e9, 7e9, 14e9, 32e9))
    a = FamilyFits(FitConfig()).fit(data).summary()
    b = FamilyFits(FitConfig()).fit(data).summary()
    for result in (a, b):
        for fit in result.values():
            fit.pop("seconds", None)
    assert a == b


def test_only_the_shared_sizes_enter_the_joint_fit() -> None:
    data = two_families(BASE, seed=0, sizes=(1.5e9, 7e9, 14e9, 32e9))
    data = data[~((data["family"] == "instruct") & (data["N"] == 32e9))]
    fits = FamilyFits(FitConfig()).fit(data)
    assert fits.fits_["base"].sizes_.size == 4 and fits.fits_["instruct"].sizes_.size == 3
    assert fits.joint_["sizes"] == [1.5e9, 7e9, 14e9]
    assert fits.joint_["n_points"] == 6 * 105
    assert fits.joint_["verdict"] in ("shared", "undecided")


def test_what_cannot_be_compared_says_why() -> None:
    data = two_families(BASE, seed=0, sizes=(7e9, 14e9))
    only_base = FamilyFits(FitConfig()).fit(data[data["family"] == "base"]).joint_
    assert only_base["verdict"] is None and "one family" in only_base["reason"]
    loglinear = FamilyFits(FitConfig(law="loglinear")).fit(data).joint_
    assert loglinear["verdict"] is None and "--law paper" in loglinear["reason"]
    apart = data[~((data["family"] == "instruct") & (data["N"] == 7e9))]
    apart = pd.concat([apart, simulate(replace(preset("paper-base"), family="instruct"))])
    apart = apart[~((apart["family"] == "instruct") & (apart["N"] == 7e9))]
    one_size = FamilyFits(FitConfig()).fit(apart).joint_
    assert one_size["verdict"] is None and "share 1 model size" in one_size["reason"]
    fixed = FamilyFits(FitConfig(fixed=(("Kmax", 0.13), ("N0", 1.3e10)))).fit(data).joint_
    assert fixed["verdict"] is None and "fixed" in fixed["reason"]


def test_bad_input_is_a_one_line_error() -> None:
    data = two_families(BASE, seed=0, sizes=(7e9, 14e9))
    with pytest.raises(InputError, match="no column 'family'"):
        FamilyFits(FitConfig()).fit(data.drop(columns="family"), source="two.csv")
    unnamed = data.astype({"family": object})
    unnamed.loc[3, "family"] = None
    with pytest.raises(InputError, match="row 4: no family named"):
        FamilyFits(FitConfig()).fit(unnamed)
    with pytest.raises(InputError, match="criterion must be one of lr, aic, bic"):
        FamilyConfig(criterion="dic")
    with pytest.raises(InputError, match="fractions"):
        FamilyConfig(fractions=(1.5,))


def test_grouped_curves_keep_families_apart() -> None:
    N = np.array([1.0, 2.0, 1.0, 2.0, 1.0])
    curves = Curves.grouped(N, np.ones(5), np.array([0, 1, 2, 3, 0]))
    assert curves.G == 4 and curves.sizes.tolist() == [1.0, 2.0, 1.0, 2.0]
    sub = curves.take(np.array([1, 2, 3]))
    assert sub.sizes.tolist() == [2.0, 1.0, 2.0] and sub.g.tolist() == [0, 1, 2]
    plain = Curves.from_arrays(N, np.ones(5))
    assert plain.take(np.array([1, 3])).sizes.tolist() == [2.0]
    with pytest.raises(ValueError, match="one model size"):
        Curves.grouped(N, np.ones(5), np.zeros(5))


def test_stacked_families_number_groups_family_by_family() -> None:
    data = two_families(BASE, seed=0, sizes=(7e9, 14e9))
    fits = FamilyFits(FitConfig()).fit(data)
    joint = stack_families(fits.data_, np.array([7e9, 14e9]))
    assert joint.curves.sizes.tolist() == [7e9, 14e9, 7e9, 14e9]
    assert np.unique(joint.curve_id).size == 4  # same run names in two families stay apart
