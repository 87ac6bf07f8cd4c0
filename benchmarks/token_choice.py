"""Choosing the next token: `torch.multinomial` on the softmax against Gumbel-max (`gumbel_max`).

First the choice alone on (128, V) logits of micro-l's vocabulary, then whole sampling calls of
the GRPO batch (micro-l, 16 prompts × 8 rollouts, at most 32 new tokens) with each way of
choosing, interleaved in this one process. Printed: median times and their ratios.

Run: python benchmarks/token_choice.py [--threads 2] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import rlscale.rl.rollout as rollout
from rlscale.data import generate
from rlscale.models.load import load_model
from rlscale.rl.evaluate import encode_prompt
from rlscale.rl.rollout import SamplingParams, TorchSampler, gumbel_max, top_p_filter

PROMPTS, GROUP, MAX_NEW = 16, 8, 32
Choice = tuple[torch.Tensor, torch.Tensor]
Choose = Callable[[torch.Tensor, SamplingParams, torch.Generator], Choice]


def multinomial_choice(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampler's choice before Gumbel-max (temperature > 0)."""
    scaled = logits.float() / params.temperature
    logp = torch.log_softmax(scaled, dim=-1)
    probs = torch.softmax(top_p_filter(scaled, params.top_p), dim=-1)
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def gumbel_choice(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    logp = torch.log_softmax(logits.float() / params.temperature, dim=-1)
    tokens = gumbel_max(top_p_filter(logp, params.top_p), generator)
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_model("micro-l")
    params = SamplingParams(GROUP, 1.0, 1.0, MAX_NEW)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(PROMPTS * GROUP, model.config.vocab_size) * 3
    ways: dict[str, Choose] = {"multinomial": multinomial_choice, "gumbel-max": gumbel_choice}
    alone: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(100 * args.rounds):
        for name, choose in ways.items():
            alone[name].append(timed(lambda c=choose: c(logits, params, generator)))
    report("one choice (128 rows)", alone, scale=1e6, unit="us")

    prompts = [encode_prompt(tok, p.prompt) for p in generate("addsub", "train", PROMPTS, seed=3)]
    sampler = TorchSampler(model, tok)
    sampling: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(args.rounds + 1):
        for name, choose in ways.items():
            rollout.choose_tokens = choose  # type: ignore[assignment]
            seconds = timed(lambda seed=round_: sampler.sample(prompts, params, seed))
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
