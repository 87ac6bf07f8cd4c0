"""The sampler with and without the lean Llama-family decode step, on the same batch.

micro-l (its shipped or built weights) samples 16 prompts × 8 rollouts of at most 32 tokens at
temperature 1, seeded; interleaved in this one process, the sampler runs with transformers'
forward for every step (`lean=False`) and with `rl.decode.LlamaDecoder` after the prefill.
Printed: the median seconds of each and their ratio, new tokens/s, and how the two agree on the
first round (rows with the same tokens; the largest log-prob difference on those rows).

Run: python benchmarks/lean_decode.py [--threads 2] [--rounds 10]
"""

from __future__ import annotations

import statistics
import time

from micro_batch import GROUP, MAX_NEW, PARAMS, PROMPTS, set_up
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import Completion


def agreement(lean: list[Completion], plain: list[Completion]) -> tuple[int, float]:
    same = [(a, b) for a, b in zip(lean, plain, strict=True) if a.response_ids == b.response_ids]
    diff = max(
        (abs(x - y) for a, b in same for x, y in zip(a.logprobs, b.logprobs, strict=True)),
        default=0.0,
    )
    return len(same), diff


def main() -> None:
    args, model, tok, prompts = set_up(rounds=10)
    samplers = {
        "lean": TorchSampler(model, tok),
        "transformers": TorchSampler(model, tok, lean=False),
    }
    first = {name: s.sample(prompts, PARAMS, 0) for name, s in samplers.items()}  # warm-up
    same, diff = agreement(first["lean"], first["transformers"])
    times: dict[str, list[float]] = {name: [] for name in samplers}
    tokens: list[int] = []
    for r in range(1, args.rounds + 1):
        for name, sampler in samplers.items():
            start = time.perf_counter()
            out = sampler.sample(prompts, PARAMS, r)
            times[name].append(time.perf_counter() - start)
        tokens.append(sum(len(c.response_ids) for c in out))
    med = {name: statistics.median(t) for name, t in times.items()}
    new = statistics.median(tokens)
    print(
        f"micro-l, {PROMPTS} × {GROUP} × ≤{MAX_NEW} tokens, {args.threads} threads, "
        f"{args.rounds} rounds"
    )
    for name, seconds in med.items():
        print(f"  {name:12s} {seconds:.3f} s a batch  {new / seconds:,.0f} new tokens/s")
    print(f"  ratio transformers / lean = {med['transformers'] / med['lean']:.2f}x")
    print(
        f"  round 0: {same} of {len(first['lean'])} rows the same tokens; largest log-prob "
        f"difference on them {diff:.1e}"
    )


if __name__ == "__main__":
    main()
