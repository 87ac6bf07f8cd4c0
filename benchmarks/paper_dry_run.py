"""A paper-scale dry run: two GRPO steps of the `paper` preset on a Qwen2.5-0.5B-shaped model.

No download: the model is Qwen2.5-0.5B's architecture (896 wide, 24 layers, 14 query and 2
key/value heads, MLP 4864, vocabulary 151,936, tied embeddings) with random weights, and the
tokenizer is the micro ladder's character tokenizer padded with placeholder tokens to the same
vocabulary. The `paper` preset runs with a reduced batch (`--prompts` × `--rollouts` ×
`--new-tokens`) on synthetic problems; a random model answers nothing right, so rewards are 0 and
its updates carry zero advantages — but every pass (sampling, reference scoring, the training
pass over the mini-batches, the checkpoint) runs at the real model's size, which is what this
measures. Printed: peak memory, each step's time by stage, the checkpoint's size, and the
StepRecords.

Run: python benchmarks/paper_dry_run.py [--device cpu|cuda] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rlscale.data import load_problems
from rlscale.models.load import load_model
from rlscale.models.params import count_params
from rlscale.rl.config import PRESETS
from rlscale.rl.trainer import GRPOTrainer, RunData

QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151_936,
    "max_position_embeddings": 32_768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
MICRO = Path(__file__).parents[1] / "src/rlscale/models/weights/micro-xs"
RECORD_COLUMNS = (
    "step", "N", "N_total", "prompts_seen", "tokens_prompt", "tokens_response", "tokens_trained",
    "flops_paper_cum", "flops_total_cum", "reward_mean", "eval_L", "sample_s", "verify_s",
    "update_s", "wall_s",
)  # fmt: skip


def build(folder: Path, dtype: torch.dtype) -> Path:
    """Qwen2.5-0.5B's shape with random weights, and a padded character tokenizer, on disk."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B)).to(dtype)
    model.save_pretrained(folder)
    tokenizer = json.loads((MICRO / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    for i in range(len(vocab), QWEN25_05B["vocab_size"]):
        vocab[f"<unused{i}>"] = i
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    for name in ("tokenizer_config.json", "generation_config.json"):
        (folder / name).write_text((MICRO / name).read_text())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    cfg = PRESETS["paper"].replace(
        steps=2, prompts_per_step=args.prompts, group_size=args.rollouts,
        max_new_tokens=args.new_tokens, mini_batches=min(4, args.prompts), eval_problems=4,
        eval_every=2, checkpoint_every=1, verify_workers=1,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = build(Path(tmp) / "qwen2.5-0.5b-shape", dtype)
        model, tokenizer = load_model(str(path), dtype=dtype)
        model.to(args.device)
        N, N_total = count_params(model)
        built = time.perf_counter() - started
        train = "synth:chains?split=train&n=64&seed=0"
        holdout = "synth:chains?split=holdout&n=16&seed=0"
        data = RunData(load_problems(train), load_problems(holdout), train, holdout)
        out = Path(tmp) / "run"
        records = GRPOTrainer(cfg, model, tokenizer, data, out, model_name="qwen2.5-0.5b").run()
        ckpt = sum(p.stat().st_size for p in (out / "ckpt").glob("*.pt"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB
        print(f"model: N {N:,} non-embedding, N_total {N_total:,}; built in {built:.0f} s")
        print(f"device {args.device}, {args.dtype}; batch {args.prompts} prompts × "
              f"{args.rollouts} rollouts × {args.new_tokens} new tokens")  # fmt: skip
        print(f"peak resident memory {peak:.1f} GiB", end="")
        if args.device.startswith("cuda"):
            print(f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", end="")
        print(f"; checkpoints on disk {ckpt / 2**30:.2f} GiB (keep {cfg.keep_checkpoints})")
        for r in records[1:]:
            print(
                f"step {r['step']}: sample {r['sample_s']:.1f} s, verify {r['verify_s']:.2f} s, "
                f"update {r['update_s']:.1f} s"
            )
        for r in records:
            print(json.dumps(_columns(r)))


def _columns(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in RECORD_COLUMNS if k in record}


if __name__ == "__main__":
    main()
