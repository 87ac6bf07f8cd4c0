"""The StepRecord contract: columns every engine may write, and the one mapping to the fit table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rlscale.errors import RlscaleError
from rlscale.steprecord import FIT_TABLE, check_step_record, to_fit_table


def test_documented_and_per_eval_set_columns_pass_and_others_are_refused() -> None:
    check_step_record(
        {"run": "r", "step": 3, "eval_L": 0.4, "eval_L@gsm": 0.5, "eval_L_se@gsm": 0.01}
    )
    with pytest.raises(RlscaleError, match=r"step 3: eval_loss, flops not StepRecord column"):
        check_step_record({"step": 3, "flops": 1.0, "eval_loss": 0.2})


def test_to_fit_table_keeps_evaluated_steps_after_zero_renamed_with_their_rows() -> None:
    records = pd.DataFrame(
        {
            "run": ["a"] * 4,
            "N": [1e6] * 4,
            "seed": [0] * 4,
            "tau": [1] * 4,
            "step": [0, 1, 2, 3],
            "flops_paper_cum": [0.0, 1e12, 2e12, 3e12],
            "prompts_seen": [0, 32, 64, 96],
            "eval_L": [0.6, math.nan, 0.5, 0.45],
            "eval_L_se": [0.02, math.nan, 0.02, 0.02],
            "model": ["m"] * 4,
        }
    )
    table = to_fit_table(records)
    assert list(table.index) == [2, 3]  # step 0 (X = 0) and the unevaluated step 1 left out
    assert set(FIT_TABLE) <= set(table.columns) and "model" in table.columns
    assert table["C"].tolist() == [2e12, 3e12] and table["D"].tolist() == [64, 96]
    assert table["L_se_sampling"].isna().all()  # not logged by this engine: present, empty
