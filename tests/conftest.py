from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from rlscale.simulate import preset, simulate


@pytest.fixture(scope="session")
def paper_base() -> pd.DataFrame:
    """The paper's all-size Base fit on C, simulated with noise 0.01 (seed 0)."""
    return simulate(preset("paper-base"))


def paper_base_seed(seed: int) -> pd.DataFrame:
    return simulate(replace(preset("paper-base"), seed=seed))
