"""TRL's GRPOTrainer on a micro rung with rlscale's ScalingLawCallback, its StepRecords printed
next to TRL's own log lines for the same steps: C against 6·N·num_tokens, D against the prompts
TRL drew, reward and response length against TRL's, and the held-out L rlscale measured. Then
`rlscale fit` on the run folder.

Run: pip install -e '.[train,trl]'; python benchmarks/trl_callback_run.py [--model micro-xs]
     [--steps 8] [--prompts 8] [--group 4] [--eval-every 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from rlscale.data import load_problems
from rlscale.integrations.trl import ScalingLawCallback, VerifierReward, problems_dataset
from rlscale.models.load import count_params, load_model
from rlscale.store import read_records

HOLDOUT = "synth:chains?split=holdout&n=512&seed=10000"


def train(args: argparse.Namespace, out: Path) -> tuple[int, list[dict[str, Any]]]:
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = load_model(args.model)
    N, _ = count_params(model)
    train = load_problems(f"synth:chains?split=train&n={args.prompts * args.steps}&seed=1000")
    config = GRPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=args.prompts * args.group,
        num_generations=args.group,
        max_completion_length=96,
        beta=0.0,
        learning_rate=5e-5,
        max_steps=args.steps,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_dropout=True,
        shuffle_dataset=False,
        bf16=False,  # TRL's GPU defaults (bf16, checkpointing) are slow on a CPU
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        seed=0,
    )
    callback = ScalingLawCallback(
        out / "run", HOLDOUT, eval_every=args.eval_every, eval_samples=4, eval_problems=128,
        model=args.model,
    )  # fmt: skip
    reward = VerifierReward()
    try:
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=config,
            train_dataset=problems_dataset(train, tokenizer),
            processing_class=tokenizer,
            callbacks=[callback],
        )
        trainer.train()
    finally:
        reward.close()
    return N, list(trainer.state.log_history)


def side_by_side(N: int, records: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    logged = {e["step"]: e for e in history if "num_tokens" in e}
    print(f"N = {N:,} (non-embedding, counted from the model)")
    head = f"{'step':>4} | {'TRL num_tokens':>14} {'6·N·num_tokens':>15} {'reward':>7} {'len':>6}"
    head += f" | {'C (StepRecord)':>15} {'C/(6·N·tok)':>11} {'D':>4} {'reward':>7} {'len':>6}"
    print(head + f" {'L':>6}")
    for r in records:
        trl = logged.get(r["step"], {})
        tokens = trl.get("num_tokens")
        expected = 6 * N * tokens if tokens is not None else None
        ratio = r["flops_paper_cum"] / expected if expected else None
        print(
            f"{r['step']:>4} | {_f(tokens, '14,.0f')} {_f(expected, '15.4e')} "
            f"{_f(trl.get('reward'), '7.4f')} {_f(trl.get('completions/mean_length'), '6.2f')}"
            f" | {r['flops_paper_cum']:>15.4e} {_f(ratio, '11.9f')} {r['prompts_seen']:>4} "
            f"{_f(r.get('reward_mean'), '7.4f')} {_f(r.get('response_len_mean'), '6.2f')} "
            f"{_f(r.get('eval_L'), '6.3f')}"
        )


def _f(value: float | None, spec: str) -> str:
    """`value` in format `spec` (width first), or a dash as wide."""
    width = int(re.match(r"\d+", spec).group())  # type: ignore[union-attr]
    return f"{value:{spec}}" if value is not None else f"{'—':>{width}}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="micro-xs")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        N, history = train(args, out)
        records = read_records(out / "run" / "steps.jsonl")
        print()
        side_by_side(N, records, history)
        exact = all(
            r["flops_paper_cum"] == 6 * N * e["num_tokens"]
            for r in records
            for e in history
            if e.get("step") == r["step"] and "num_tokens" in e
        )
        print(f"C == 6·N·num_tokens at every logged step: {exact}")
        fit = subprocess.run(
            [sys.executable, "-m", "rlscale", "fit", str(out / "run" / "steps.jsonl"), "--law",
             "loglinear", "--x", "C", "--json", "-"],
            capture_output=True, text=True,
        )  # fmt: skip
        if fit.returncode in (0, 3):
            result = json.loads(fit.stdout)
            print(f"rlscale fit (loglinear on C): per size {result['per_N']}, "
                  f"R² {result['r2']}, {result['n_points']} points")  # fmt: skip
        else:
            print(f"rlscale fit: {fit.stderr.strip()}")


if __name__ == "__main__":
    main()
