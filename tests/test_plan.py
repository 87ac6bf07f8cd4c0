from __future__ import annotations

import pandas as pd
import pytest

from rlscale.fit.estimator import LawFit
from rlscale.plan import plan
from rlscale.simulate import SimulationConfig, simulate

TRUTH = SimulationConfig(
    law="paper_e_sat",
    params={"Kmax": 0.14, "N0": 10e9, "Emax": 2.5, "N1": 20e9},
    per_N={n: {} for n in (0.5e9, 1.5e9, 3e9, 7e9, 14e9, 32e9, 72e9)},
    noise=0.005,
)


def test_plan_ranks_sizes_and_counts_steps() -> None:
    fit = LawFit(law="paper_e_sat").fit(simulate(TRUTH))
    result = plan(fit, 1e21, [7e9, 14e9, 72e9])
    by_N = {c.N: c for c in result.candidates}
    # The fit's C per step is measured in the data: 6·N·tokens per step.
    assert by_N[7e9].steps == pytest.approx(1e21 / (6 * 7e9 * TRUTH.tokens_per_step), rel=1e-9)
    assert result.best_N == min(by_N.values(), key=lambda c: c.L).N
    assert result.k50_N == pytest.approx(fit.params_["N0"])
    assert result.k90_N == pytest.approx(9 * fit.params_["N0"])
    d = result.doubling
    assert d.L_double_N is not None and d.L_double_steps < d.L
    assert all(c.lo < c.L < c.hi for c in result.candidates)


def test_plan_with_the_paper_law_stays_on_fitted_sizes(paper_base: pd.DataFrame) -> None:
    fit = LawFit(law="paper").fit(paper_base)
    result = plan(fit, 1e20)
    assert [c.N for c in result.candidates] == list(fit.sizes_)
    assert result.doubling.L_double_N is None
    assert "cannot forecast" in result.doubling.note


def test_plan_with_given_tokens_per_step_for_an_unseen_size() -> None:
    fit = LawFit(law="paper_e_sat").fit(simulate(TRUTH))
    result = plan(fit, 1e21, [144e9], tokens_or_prompts_per_step=1e6)
    assert result.candidates[0].steps == pytest.approx(1e21 / (6 * 144e9 * 1e6))
