from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from rlscale.simulate import preset, simulate


@pytest.fixture(scope="session")
def paper_base() -> pd.DataFrame:
    """The paper's all-size Base fit on C, simulated with noise 0.01 (seed 0)."""
    return simulate(preset("paper-base"))


def paper_base_seed(seed: int) -> pd.DataFrame:
    return simulate(replace(preset("paper-base"), seed=seed))


SHARED_MATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math"


@pytest.fixture(scope="session")
def math_data() -> Path:
    """The real problem sets beside the checkout (see its README)."""
    if not (SHARED_MATH / "math__full_difficulty_ordered_test_500.parquet").exists():
        message = f"the shared math data is not at {SHARED_MATH}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI lays shared/ beside the checkout)")
        pytest.skip(message)
    return SHARED_MATH
