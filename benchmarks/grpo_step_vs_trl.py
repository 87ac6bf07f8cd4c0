"""Seconds per GRPO step: rlscale's trainer against TRL's GRPOTrainer, same model, same batch.

Both train the same ~1M-parameter Qwen2 (the built micro-l when it is in the cache, else the same
shape freshly initialised) on the same synthetic problems: 16 prompts × 8 rollouts, at most 32
new tokens, temperature 1, one optimizer step per sampled batch, no KL, every group trained
(rlscale's dropping of uniform groups is off so both do the same work; a third variant keeps
rlscale's default, dropping them). TRL runs in fp32 without gradient checkpointing (its GPU
defaults, bf16 autocast and checkpointing, were ~20x slower here) and gets its reward in-process
from rlscale's judge; rlscale verifies in its isolated worker pool. Rounds alternate (rlscale,
TRL, rlscale dropping) in this one process; each round's first step is a warm-up and is not
counted. Printed: median seconds per step of each and the ratios; rlscale's sampler tokens/s;
the achieved FLOP/s of a whole step and of the training pass against a torch fp32 matmul peak
measured here, at the same thread count; and per round, where rlscale and TRL ran back to back
with the peak read just before and after them (this machine's load drifts over minutes), the
ratio and the training pass's share of that round's peak, with their medians.

Run: pip install -e '.[bench]'; python benchmarks/grpo_step_vs_trl.py [--threads 2] [--rounds 4]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from rlscale.data import generate
from rlscale.models.build import built_path
from rlscale.models.ladder import RUNGS
from rlscale.models.load import count_params, load_model
from rlscale.models.tokenizer import char_tokenizer
from rlscale.rl.config import GRPOConfig
from rlscale.rl.trainer import GRPOTrainer, RunData
from rlscale.verify.judge import judge

PROMPTS, GROUP, MAX_NEW = 16, 8, 32


def micro_l(path: Path) -> tuple[Path, str]:
    """A saved copy of micro-l (built weights if available) both trainers load from."""
    built = built_path(RUNGS["micro-l"])
    if built is not None:
        model, tok = load_model(str(built))
        origin = f"built micro-l ({built.name})"
    else:
        from transformers import Qwen2ForCausalLM

        torch.manual_seed(0)
        tok = char_tokenizer()
        config = RUNGS["micro-l"].config(
            len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
        )
        model, origin = Qwen2ForCausalLM(config), "micro-l shape, random weights (not built)"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, origin


def matmul_peak(size: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def ours_round(
    model_dir: Path, steps: int, round_: int, work: Path, **changes: Any
) -> list[dict[str, Any]]:
    model, tok = load_model(str(model_dir))
    problems = generate("addsub", "train", PROMPTS * steps, seed=100 + round_)
    holdout = generate("addsub", "holdout", 1, seed=0)
    cfg = GRPOConfig(
        steps=steps,
        prompts_per_step=PROMPTS,
        group_size=GROUP,
        max_new_tokens=MAX_NEW,
        updates_per_batch=1,
        drop_uniform_groups=False,
        eval_problems=1,
        eval_samples=1,
        eval_greedy=False,
        eval_every=10_000,
        checkpoint_every=10_000,
        curriculum=False,
    ).replace(**changes)
    data = RunData(problems, holdout, "synth", "synth")
    records = GRPOTrainer(
        cfg, model, tok, data, work / f"ours-{round_}-{len(changes)}", model_name="micro-l"
    ).run()
    return records[2:]  # step 0 is the evaluation, step 1 the warm-up


def trl_round(model_dir: Path, steps: int, round_: int, work: Path) -> list[float]:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    problems = generate("addsub", "train", PROMPTS * steps, seed=100 + round_)
    dataset = Dataset.from_list([{"prompt": p.prompt + " ", "answer": p.answer} for p in problems])

    def reward(completions: list[str], answer: list[str], **_: Any) -> list[float]:
        return [
            1.0 if judge(c, a) == "correct" else 0.0
            for c, a in zip(completions, answer, strict=True)
        ]

    times: list[float] = []

    class StepTimer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            times.append(time.perf_counter() - self.start)

    args = TRLConfig(
        output_dir=str(work / f"trl-{round_}"),
        per_device_train_batch_size=PROMPTS * GROUP,
        num_generations=GROUP,
        max_completion_length=MAX_NEW,
        num_iterations=1,
        beta=0.0,
        learning_rate=3e-5,
        temperature=1.0,
        max_steps=steps,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_dropout=True,
        shuffle_dataset=False,
        # TRL's defaults are for GPUs (bf16 autocast, gradient checkpointing); on this CPU they
        # made a step ~20x slower, so TRL gets fp32 without checkpointing, as rlscale runs.
        bf16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )
    tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = TRLTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[StepTimer()],
    )
    trainer.train()
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="steps a round (first is warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir, origin = micro_l(work / "model")
        model, _ = load_model(str(model_dir))
        N, N_total = count_params(model)
        print(f"model: {origin}, N {N:,}, N_total {N_total:,}; {args.threads} threads")
        ours: list[dict[str, Any]] = []
        dropping: list[dict[str, Any]] = []
        theirs: list[float] = []
        peaks: list[float] = []
        rounds: list[tuple[float, float]] = []
        for r in range(args.rounds):
            peak_before = matmul_peak()
            mine = ours_round(model_dir, args.steps + 1, r, work)
            trl = trl_round(model_dir, args.steps, r, work)
            peaks += [peak_before, matmul_peak()]
            rounds.append(round_figures(mine, trl, statistics.mean(peaks[-2:]), N_total))
            ours, theirs = ours + mine, theirs + trl
            dropping += ours_round(model_dir, args.steps + 1, r, work, drop_uniform_groups=True)
        report(ours, theirs, statistics.median(peaks), N, N_total)
        ratios, shares = zip(*rounds, strict=True)
        print(
            "per round (rlscale and TRL back to back, the peak read around them): TRL / rlscale "
            f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}x); "
            f"training pass computed {', '.join(f'{x:.0%}' for x in shares)} of that round's peak "
            f"(median {statistics.median(shares):.0%})"
        )
        drop_med = statistics.median(_step_s(r) for r in dropping)
        kept = statistics.median(r["groups_kept"] for r in dropping)
        print(
            f"rlscale with its default of dropping all-equal groups (median {kept:.0f} of "
            f"{PROMPTS} trained): {drop_med:.3f} s/step, "
            f"ratio TRL / rlscale = {statistics.median(theirs) / drop_med:.2f}x"
        )


def round_figures(
    ours: list[dict[str, Any]], theirs: list[float], peak: float, N_total: int
) -> tuple[float, float]:
    """(TRL / rlscale median step time, the training pass's computed FLOP/s / peak) of a round."""
    ratio = statistics.median(theirs) / statistics.median(_step_s(r) for r in ours)
    train = statistics.median(6 * N_total * r["tokens_trained"] / r["update_s"] for r in ours)
    return ratio, train / peak


def _step_s(record: dict[str, Any]) -> float:
    return float(record["sample_s"] + record["verify_s"] + record["update_s"])


def report(
    ours: list[dict[str, Any]], theirs: list[float], peak: float, N: int, N_total: int
) -> None:
    step_s = [_step_s(r) for r in ours]
    ours_med, trl_med = statistics.median(step_s), statistics.median(theirs)
    print(f"steps counted: rlscale {len(step_s)}, TRL {len(theirs)}")
    print(f"rlscale  {ours_med:.3f} s/step (median)   TRL {trl_med:.3f} s/step (median)")
    print(f"ratio TRL / rlscale = {trl_med / ours_med:.2f}x (the same work: every group trained)")
    parts = {k: statistics.median(r[k] for r in ours) for k in ("sample_s", "verify_s", "update_s")}
    print("rlscale step parts (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    generated = statistics.median(r["tokens_response"] / r["sample_s"] for r in ours)
    processed = statistics.median(
        (r["tokens_prompt"] + r["tokens_response"]) / r["sample_s"] for r in ours
    )
    print(f"sampler: {generated:,.0f} new tokens/s ({processed:,.0f} incl. prompt tokens)")
    step_flops = statistics.median(
        (
            2 * N_total * (r["tokens_prompt"] + r["tokens_response"])
            + 6 * N_total * r["tokens_trained"]
        )
        / (r["sample_s"] + r["verify_s"] + r["update_s"])
        for r in ours
    )
    train_flops = statistics.median(6 * N_total * r["tokens_trained"] / r["update_s"] for r in ours)
    # What TRL computes for the same update: every row's prompt + response.
    full_rows = statistics.median(
        6 * N_total * (r["tokens_prompt"] + r["tokens_response"]) / r["update_s"] for r in ours
    )
    print(f"matmul peak (fp32, 1024^3): {peak / 1e9:.1f} GFLOP/s")
    print(f"whole step: {step_flops / 1e9:.1f} GFLOP/s = {step_flops / peak:.0%} of peak")
    print(
        f"training pass: {train_flops / 1e9:.1f} GFLOP/s computed = {train_flops / peak:.0%} of "
        f"peak; {full_rows / 1e9:.1f} GFLOP/s = {full_rows / peak:.0%} counting every row's "
        "prompt (the work it replaces)"
    )


if __name__ == "__main__":
    main()
