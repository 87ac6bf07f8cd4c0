"""The training pass with and without shared prompts: forward + backward of one GRPO batch.

micro-l (its shipped or built weights) samples 16 prompts × 8 rollouts of
at most 32 tokens; then, interleaved in this one process, the full pass (every row's prompt +
response, SDPA's causal path) and the shared-prompt pass (each group's prompt once, its responses
from the prompt's keys and values) each run forward + backward over the batch in micro-batches of
64 rows. Printed: the share of prompt tokens, the largest log-prob difference between the two,
the median seconds of each and their ratio.

Run: python benchmarks/shared_prompt_pass.py [--threads 2] [--rounds 8]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from micro_batch import GROUP, PARAMS, set_up
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import Completion
from rlscale.rl.scoring import grouped_logprobs_entropy, sequence_logprobs

ROWS = 64  # a micro-batch


def full_pass(model: object, batch: list[Completion]) -> tuple[torch.Tensor, torch.Tensor]:
    return sequence_logprobs(model, batch, 1.0, 0)


def shared_pass(model: object, batch: list[Completion]) -> tuple[torch.Tensor, torch.Tensor]:
    logp, mask, _ = grouped_logprobs_entropy(model, batch, GROUP, 1.0, 0, entropy=False)
    return logp, mask


Score = Callable[[object, list[Completion]], tuple[torch.Tensor, torch.Tensor]]


def forward_backward(model: object, rows: list[Completion], score: Score) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), ROWS):
        logp, mask = score(model, rows[i : i + ROWS])
        (logp * mask).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    args, model, tok, prompts = set_up(rounds=8)
    rows = TorchSampler(model, tok).sample(prompts, PARAMS, 5)
    model.train()
    model.config._attn_implementation = "sdpa"
    prompt_tokens = sum(len(c.prompt_ids) for c in rows)
    response_tokens = sum(len(c.response_ids) for c in rows)
    with torch.no_grad():
        full, full_mask = full_pass(model, rows)
        shared, mask = shared_pass(model, rows)
    full_placed = [full[b][full_mask[b] > 0] for b in range(len(rows))]
    diff = max(float((f - shared[b][mask[b] > 0]).abs().max()) for b, f in enumerate(full_placed))
    times: dict[str, list[float]] = {"full": [], "shared": []}
    for score in (full_pass, shared_pass):  # warm-up
        forward_backward(model, rows, score)
    for _ in range(args.rounds):
        for name, score in (("full", full_pass), ("shared", shared_pass)):
            times[name].append(forward_backward(model, rows, score))
    full_s, shared_s = (statistics.median(times[k]) for k in ("full", "shared"))
    print(f"model: micro-l; {args.threads} threads; {len(rows)} rows")
    share = prompt_tokens / (prompt_tokens + response_tokens)
    print(f"prompt tokens {prompt_tokens:,} of {prompt_tokens + response_tokens:,} ({share:.0%})")
    print(f"largest log-prob difference shared vs full: {diff:.2e}")
    print(
        f"forward+backward (median of {args.rounds}): full {full_s:.3f} s, shared {shared_s:.3f} s"
    )
    print(f"ratio full / shared = {full_s / shared_s:.2f}x")


if __name__ == "__main__":
    main()
