"""Held-out evaluation: L = 1 − pass@1 from n samples a problem (and greedy), with standard errors.

pass@1 is the mean over problems of each problem's fraction of correct samples. Two standard
errors: the between-problem one (the standard deviation of that fraction over √problems: how far
L on this holdout may sit from L on the population of such problems) and the sampling one (how
far L may move if the same model is evaluated again on the same holdout: the noise from one
evaluated step to the next, since the holdout is fixed). With one sample a problem the two
cannot be told apart and the sampling SE is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlscale.data import Problem
from rlscale.models.prompts import encode_prompt as encode_prompt  # re-exported
from rlscale.rl.sampling import Sampler, SamplingParams


@dataclass(frozen=True)
class EvalResult:
    L: float
    L_se: float
    problems: int
    samples: int
    temperature: float
    L_greedy: float | None = None
    L_greedy_se: float | None = None
    response_len_mean: float = 0.0
    L_se_sampling: float | None = None


def rewards_for(pool: Any, texts: Sequence[str], golds: Sequence[str]) -> list[float]:
    return [v.reward for v in pool.verify(zip(texts, golds, strict=True))]


def pass1_error(rewards: Sequence[float], samples: int) -> tuple[float, float]:
    """(1 − pass@1, its standard error) from prompt-major rewards, `samples` per problem."""
    n = len(rewards) // samples
    per_problem = [sum(rewards[i * samples : (i + 1) * samples]) / samples for i in range(n)]
    mean = sum(per_problem) / n
    var = sum((c - mean) ** 2 for c in per_problem) / max(n - 1, 1)
    return 1.0 - mean, math.sqrt(var / n)


def sampling_se(rewards: Sequence[float], samples: int) -> float | None:
    """Standard error of 1 − pass@1 over the sampling alone, the problems held fixed:
    √(Σᵢ pᵢ(1 − pᵢ)/samples)/problems, each pᵢ(1 − pᵢ) estimated without bias as
    p̂ᵢ(1 − p̂ᵢ)·samples/(samples − 1). None for one sample a problem."""
    if samples < 2:
        return None
    n = len(rewards) // samples
    fractions = [sum(rewards[i * samples : (i + 1) * samples]) / samples for i in range(n)]
    variance = sum(f * (1.0 - f) for f in fractions) / (samples - 1)
    return math.sqrt(max(variance, 0.0)) / n


def evaluate(
    sampler: Sampler,
    tokenizer: Any,
    problems: Sequence[Problem],
    pool: Any,
    *,
    samples: int,
    temperature: float,
    max_new_tokens: int,
    stop: tuple[str, ...] = (),
    greedy: bool = True,
    seed: int = 0,
) -> EvalResult:
    prompts = [encode_prompt(tokenizer, p.prompt) for p in problems]
    golds = [p.answer for p in problems]
    params = SamplingParams(samples, temperature, 1.0, max_new_tokens, stop)
    sampled = sampler.sample(prompts, params, seed)
    rewards = rewards_for(
        pool, [c.text for c in sampled], [g for g in golds for _ in range(samples)]
    )
    L, se = pass1_error(rewards, samples)
    se_sampling = sampling_se(rewards, samples)
    L_greedy = se_greedy = None
    if greedy:
        greedy_params = SamplingParams(1, 0.0, 1.0, max_new_tokens, stop)
        best = sampler.sample(prompts, greedy_params, seed)
        L_greedy, se_greedy = pass1_error(rewards_for(pool, [c.text for c in best], golds), 1)
    length = sum(len(c.response_ids) for c in sampled) / max(len(sampled), 1)
    return EvalResult(
        L, se, len(problems), samples, temperature, L_greedy, se_greedy, length, se_sampling
    )
