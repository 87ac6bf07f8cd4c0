"""Evaluation's standard errors: the between-problem one and the sampling one."""

from __future__ import annotations

import numpy as np
import pytest

from rlscale.rl.evaluate import pass1_error, sampling_se


def test_sampling_se_by_hand_and_none_for_one_sample() -> None:
    rewards = [1, 1, 0, 0, 1, 1, 1, 1]  # two problems, four samples: fractions 0.5 and 1
    # Σ p̂(1 − p̂)/(s − 1) = 0.25/3, square root over 2 problems
    assert sampling_se(rewards, 4) == pytest.approx(np.sqrt(0.25 / 3) / 2)
    assert sampling_se([1, 0, 1], 1) is None


def test_sampling_se_matches_the_spread_of_repeated_evaluations_of_one_holdout() -> None:
    """A fixed holdout of problems with pass rates from 0 to 1, evaluated 4,000 times: the
    spread of L from one evaluation to the next is the sampling SE (between-problem variance
    does not enter, the problems being the same), far below the between-problem SE."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, size=256) ** 2
    samples = 8
    Ls, ses, between = [], [], []
    for _ in range(4000):
        rewards = (rng.random((256, samples)) < p[:, None]).astype(float).ravel().tolist()
        L, se_between = pass1_error(rewards, samples)
        Ls.append(L)
        ses.append(sampling_se(rewards, samples))
        between.append(se_between)
    assert np.mean(ses) == pytest.approx(np.std(Ls), rel=0.05)
    assert np.mean(between) > 2 * np.mean(ses)
