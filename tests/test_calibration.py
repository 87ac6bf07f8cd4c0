"""A few cells of the verdicts' known-truth calibration (benchmarks/verdict_calibration.py runs
them all), pinned with fixed seeds: a false claim is rarely called "holds", a true one is found."""

from __future__ import annotations

import numpy as np
import pytest

from rlscale.calibration import MICRO, PAPER, calibrate_cell, k_forms, simulate_study

STUDIES = 40


@pytest.mark.parametrize(
    ("finding", "truth"), [("c", "loglinear"), ("c", "power"), ("a", "none"), ("d", 0.45)]
)
def test_false_claims_are_rarely_called_holds(finding: str, truth: str | float) -> None:
    cell = calibrate_cell(finding, MICRO, truth, seeds=1, studies=STUDIES, seed=1)
    assert cell["rates"]["holds"] <= 0.05, cell


def test_true_claims_are_found_where_the_study_has_the_power() -> None:
    saturating = calibrate_cell("c", PAPER, "saturating", seeds=1, studies=STUDIES, seed=1)
    assert saturating["rates"]["holds"] >= 0.3, saturating
    free_reuse = calibrate_cell("d", MICRO, 0.0, seeds=3, studies=STUDIES, seed=1)
    assert free_reuse["rates"]["holds"] >= 0.5, free_reuse


def test_simulated_studies_have_the_shape_and_noise_asked_for() -> None:
    rng = np.random.default_rng(0)
    table = simulate_study(MICRO, k_forms(MICRO)["none"], seeds=3, rng=rng)
    assert table["N"].nunique() == 5 and table["run"].nunique() == 15
    assert sorted(table["step"].unique()) == [*range(0, 100, 8), 100]
    final = table[table["step"] == 100].groupby("N")["L"].std()
    assert 0.003 < float(final.mean()) < 0.025  # run-to-run 0.01 and sampling 0.006
