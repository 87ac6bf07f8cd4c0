"""The native engine on a CUDA GPU: exactness of the sampler's log-probs, and GRPO step throughput.

1. A micro-ladder model (fp32) on the GPU: the sampler's log-probs against a teacher-forced pass.
2. A Qwen2.5-0.5B-shaped Qwen2 (24 layers, hidden 896, 14 heads, 2 KV heads; random weights,
   the 100-token character vocabulary) in bf16: a few GRPO steps of 64 prompts × 8 rollouts × up
   to 256 new tokens through `GRPOTrainer` (random weights never stop early, so every rollout is
   256 tokens), printing the sampler's tokens/s and the training pass's achieved FLOP/s against a
   bf16 matmul peak measured in the same run.

Run (GPU machine): python benchmarks/gpu_check.py --micro DIR
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rlscale.data import generate
from rlscale.models.load import count_params, load_model
from rlscale.models.tokenizer import char_tokenizer
from rlscale.rl.config import GRPOConfig
from rlscale.rl.evaluate import encode_prompt
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import SamplingParams
from rlscale.rl.scoring import scatter_logprobs, sequence_logprobs
from rlscale.rl.trainer import GRPOTrainer, RunData


def logprob_agreement(micro: str) -> None:
    model, tok = load_model(micro)
    model.to("cuda")
    problems = generate("addsub", "holdout", 32, seed=1)
    prompts = [encode_prompt(tok, p.prompt) for p in problems]
    out = TorchSampler(model, tok).sample(prompts, SamplingParams(8, 1.0, 1.0, 80), seed=0)
    with torch.no_grad():
        logp, mask = sequence_logprobs(model, out, 1.0, tok.pad_token_id)
    diff = ((logp - scatter_logprobs(out, logp)) * mask).abs().max().item()
    tokens = sum(len(c.response_ids) for c in out)
    print(f"micro model on cuda: {len(out)} rollouts, {tokens} tokens, max |Δ log-prob| {diff:.2e}")


def bf16_peak(size: int = 8192, reps: int = 10) -> float:
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * reps / (time.perf_counter() - start)


def qwen05b_shape() -> tuple[torch.nn.Module, object]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = char_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to("cuda", dtype=torch.bfloat16)
    model.config._attn_implementation = "sdpa"
    return model, tok


def sampler_attention(model: torch.nn.Module, tok: object) -> None:
    """One batch of 512 rollouts × 256 tokens with each attention implementation."""
    prompts = [encode_prompt(tok, p.prompt) for p in generate("addsub", "train", 64, seed=5)]
    params = SamplingParams(8, 1.0, 1.0, 256)
    for attention in ("sdpa", "eager", "sdpa", "eager"):
        sampler = TorchSampler(model, tok, attention=attention)
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = sampler.sample(prompts, params, seed=0)
        torch.cuda.synchronize()
        tokens = sum(len(c.response_ids) for c in out)
        print(
            f"sampler, {attention} attention: {tokens / (time.perf_counter() - start):,.0f} tok/s"
        )


def grpo_throughput(steps: int) -> None:
    model, tok = qwen05b_shape()
    sampler_attention(model, tok)
    N, N_total = count_params(model)
    cfg = GRPOConfig(
        steps=steps,
        prompts_per_step=64,
        group_size=8,
        max_new_tokens=256,
        updates_per_batch=1,
        drop_uniform_groups=False,
        micro_batch_tokens=16_384,
        eval_problems=8,
        eval_samples=1,
        eval_greedy=False,
        eval_every=10_000,
        checkpoint_every=10_000,
        curriculum=False,
    )
    problems = generate("addsub", "train", 64 * steps, seed=0)
    data = RunData(problems, generate("addsub", "holdout", 8, 0), "synth", "synth")
    with tempfile.TemporaryDirectory() as tmp:
        records = GRPOTrainer(cfg, model, tok, data, Path(tmp) / "run", model_name="0.5B").run()
    peak = bf16_peak()
    timed = records[2:]  # step 0 evaluates, step 1 warms up
    sample_tps = statistics.median(r["tokens_response"] / r["sample_s"] for r in timed)
    train = statistics.median(6 * N_total * r["tokens_trained"] / r["update_s"] for r in timed)
    step_s = statistics.median(r["sample_s"] + r["verify_s"] + r["update_s"] for r in timed)
    print(f"0.5B-shaped Qwen2 bf16: N {N:,}, N_total {N_total:,}; {len(timed)} steps timed")
    sample_s = statistics.median(r["sample_s"] for r in timed)
    update_s = statistics.median(r["update_s"] for r in timed)
    print(f"step {step_s:.2f} s (median): sample {sample_s:.2f} s, update {update_s:.2f} s")
    print(f"sampler {sample_tps:,.0f} new tokens/s")
    print(f"bf16 matmul peak {peak / 1e12:.0f} TFLOP/s; training pass {train / 1e12:.1f} TFLOP/s "
          f"= {train / peak:.0%} of peak")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--micro", required=True, help="a built micro-ladder model directory")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__)
    logprob_agreement(args.micro)
    grpo_throughput(args.steps)


if __name__ == "__main__":
    main()
