from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rlscale.errors import InputError
from rlscale.fit.estimator import LawFit
from rlscale.simulate import PAPER_BASE_E, from_fit, preset, simulate

# arXiv:2509.25300, final test loss of the Base models.
PUBLISHED_FINAL_L = {
    0.5e9: 0.9419,
    1.5e9: 0.9129,
    3e9: 0.8582,
    7e9: 0.7148,
    14e9: 0.6051,
    32e9: 0.4937,
    72e9: 0.4359,
}


def test_paper_base_preset_shape_and_published_end_points() -> None:
    df = simulate(preset("paper-base"))
    assert len(df) == 7 * 105
    assert set(df.columns) >= {"run", "seed", "N", "step", "D", "C", "L"}
    final = df[df["step"] == 105].set_index("N")["L_true"]
    for N, published in PUBLISHED_FINAL_L.items():
        assert final[N] == pytest.approx(published, abs=0.02)
    assert sorted(PAPER_BASE_E) == sorted(final.index)


def test_noise_has_the_asked_spread() -> None:
    df = simulate(replace(preset("paper-base"), noise=0.02, seed=1))
    resid = (df["L"] - df["L_true"])[df["L"] < 1]
    assert resid.std() == pytest.approx(0.02, rel=0.1)
    assert abs(resid.mean()) < 0.003


def test_seeds_and_run_noise_make_distinct_runs() -> None:
    df = simulate(replace(preset("paper-base"), seeds=2, run_noise=0.05, noise=0.0, steps=5))
    assert df["run"].nunique() == 14
    df = df[df["N"] >= 7e9]  # away from the clip at L = 1
    offsets = (df["L"] - df["L_true"]).groupby(df["run"]).std()
    assert np.allclose(offsets, 0, atol=1e-12)  # one offset per run


def test_simulate_from_a_fit_reproduces_it(paper_base) -> None:  # type: ignore[no-untyped-def]
    fit = LawFit(law="paper").fit(paper_base)
    cfg = replace(from_fit(fit), noise=0.0)
    again = LawFit(law="paper").fit(simulate(cfg))
    assert again.params_["Kmax"] == pytest.approx(fit.params_["Kmax"], rel=1e-6)
    with pytest.raises(InputError, match="sizes must be among"):
        cfg.with_sizes([144e9])


def test_bad_simulation_settings_are_refused() -> None:
    with pytest.raises(InputError, match="needs parameter 'N0'"):
        replace(preset("paper-base"), params={"Kmax": 0.1})
    with pytest.raises(InputError, match="unknown preset"):
        preset("nope")
