"""Choosing the next token: `torch.multinomial` on the softmax against Gumbel-max (`gumbel_max`).

First the choice alone on (128, V) logits of micro-l's vocabulary, then whole sampling calls of
the GRPO batch (micro-l, 16 prompts × 8 rollouts, at most 32 new tokens) with each way of
choosing, interleaved in this one process. Printed: median times and their ratios.

Run: python benchmarks/token_choice.py [--threads 2] [--rounds 10]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

import rlscale.rl.rollout as rollout
from micro_batch import PARAMS, set_up
from rlscale.rl.rollout import TorchSampler, top_p_filter
from rlscale.rl.sampling import SamplingParams

Choice = tuple[torch.Tensor, torch.Tensor]
Choose = Callable[[torch.Tensor, SamplingParams, torch.Generator], Choice]


def multinomial_choice(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator
) -> Choice:
    """The sampler's choice before Gumbel-max (temperature > 0)."""
    scaled = logits.float() / params.temperature
    logp = torch.log_softmax(scaled, dim=-1)
    probs = torch.softmax(top_p_filter(scaled, params.top_p), dim=-1)
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    args, model, tok, prompts = set_up(rounds=10)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(prompts) * PARAMS.n, model.config.vocab_size) * 3
    ways: dict[str, Choose] = {
        "multinomial": multinomial_choice,
        "gumbel-max": rollout.choose_tokens,  # the sampler's own
    }
    alone: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(100 * args.rounds):
        for name, choose in ways.items():
            alone[name].append(timed(partial(choose, logits, PARAMS, generator)))
    report("one choice (128 rows)", alone, scale=1e6, unit="us")

    sampler = TorchSampler(model, tok)
    sampling: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(args.rounds + 1):
        for name, choose in ways.items():
            rollout.choose_tokens = choose
            seconds = timed(partial(sampler.sample, prompts, PARAMS, round_))
            if round_:  # round 0 warms up
                sampling[name].append(seconds)
    report("a sampling call (16 x 8 rows, <= 32 tokens)", sampling, scale=1.0, unit="s")


def report(what: str, times: dict[str, list[float]], scale: float, unit: str) -> None:
    medians = {name: statistics.median(t) for name, t in times.items()}
    figures = ", ".join(f"{name} {m * scale:.3g} {unit}" for name, m in medians.items())
    ratio = medians["multinomial"] / medians["gumbel-max"]
    print(f"{what}: {figures}; multinomial / gumbel-max = {ratio:.2f}x")


if __name__ == "__main__":
    main()
