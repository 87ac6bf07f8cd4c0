from __future__ import annotations

import pandas as pd
import pytest

from rlscale.errors import InputError
from rlscale.fit import validate
from rlscale.fit.estimator import FitConfig
from rlscale.simulate import SimulationConfig, simulate


def test_prefix_forecast_of_the_paper_law(paper_base: pd.DataFrame) -> None:
    report = validate.prefix(paper_base, FitConfig(law="paper"), 0.3)
    assert report["kind"] == "prefix"
    assert set(report) >= {"kind", "mae", "max_error", "coverage95", "per_N"}
    assert report["mae"] < 0.015  # noise is 0.01 per point
    assert report["coverage95"] > 0.8
    assert report["n_test"] == len(paper_base) - report["n_train"]


def test_holdout_needs_a_law_that_defines_unseen_sizes(paper_base: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="paper_e_sat or powerlaw_floor"):
        validate.holdout_sizes(paper_base, FitConfig(law="paper"))
    with pytest.raises(InputError, match="not a size in the data"):
        validate.holdout_sizes(paper_base, FitConfig(law="paper_e_sat"), [5e9])


def test_holdout_of_the_largest_size_when_the_law_is_right() -> None:
    truth = SimulationConfig(
        law="paper_e_sat",
        params={"Kmax": 0.14, "N0": 10e9, "Emax": 2.5, "N1": 20e9},
        per_N={n: {} for n in (0.5e9, 1.5e9, 3e9, 7e9, 14e9, 32e9, 72e9)},
        noise=0.01,
    )
    report = validate.holdout_sizes(simulate(truth), FitConfig(law="paper_e_sat"))
    assert report["held_out"] == [72e9]
    assert list(report["per_N"]) == ["72000000000"]
    assert report["mae"] < 0.03
    assert report["coverage95"] > 0.6
