"""The GRPO trainer: exact compute columns, data order, and resume after
SIGKILL with no step lost or logged twice and the same numbers as an uninterrupted run."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.data import generate, load_problems
from rlscale.errors import InputError
from rlscale.models.load import load_model
from rlscale.models.params import attention_dims
from rlscale.rl.config import GRPOConfig
from rlscale.rl.trainer import GRPOTrainer, RunData, training_sequence
from rlscale.store import read_records
from tests.conftest import WarmModel

TIMING = {"wall_s", "sample_s", "verify_s", "update_s", "eval_s"}
SMALL = GRPOConfig(
    steps=6,
    prompts_per_step=8,
    group_size=4,
    lr=1e-3,
    eval_every=2,
    checkpoint_every=2,
    eval_problems=8,
    eval_samples=2,
    max_new_tokens=20,
)


def small_run(
    warm: WarmModel, out: Path, cfg: GRPOConfig = SMALL, **options: Any
) -> list[dict[str, Any]]:
    model, tok = load_model(str(warm.path))
    data = RunData(
        load_problems(warm.train),
        load_problems(warm.holdout),
        str(warm.train),
        str(warm.holdout),
        {"again": load_problems(warm.holdout)},
    )
    return GRPOTrainer(cfg, model, tok, data, out, model_name="warm", **options).run()


def test_compute_columns_are_exact_sums_of_the_logged_tokens(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    cfg = SMALL.replace(kl_coef=0.01, mini_batches=2, steps=4)
    records = small_run(warm_model, tmp_path / "run", cfg)
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    N, N_total = records[0]["N"], records[0]["N_total"]
    layers, d_attn = attention_dims(AutoConfig.from_pretrained(warm_model.path))
    sequences = cfg.prompts_per_step * cfg.group_size
    paper = linear = 0.0
    previous = records[0]["flops_total_cum"]
    for r in records[1:]:
        tokens = r["tokens_prompt"] + r["tokens_response"]
        paper += 6 * N * tokens
        step_linear = (
            2 * N_total * tokens + 2 * N_total * r["tokens_scored"] + 6 * N * r["tokens_trained"]
        )
        linear += step_linear
        assert r["flops_paper_cum"] == pytest.approx(paper, rel=1e-12)
        # attention on top: one forward pass costs 2·layers·d_attn·Σ T(T+1)/2 over the sequences,
        # at least as if all had the mean length T̄ (convexity), at most as if all had the longest
        passes = 1 + (r["tokens_scored"] + 3 * r["tokens_trained"]) / tokens
        mean = tokens / sequences
        longest = tokens - (sequences - 1)  # one sequence could hold all but one token each
        low = 2 * layers * d_attn * sequences * mean * (mean + 1) / 2 * passes
        high = 2 * layers * d_attn * tokens * (longest + 1) / 2 * passes
        attention = r["flops_total_cum"] - previous - step_linear
        assert low * (1 - 1e-9) <= attention <= high
        previous = r["flops_total_cum"]
        assert (
            r["tokens_trained"] == cfg.updates_per_batch * r["tokens_scored"]
        )  # KL on: scored once
        assert r["prompts_seen"] == r["step"] * cfg.prompts_per_step
    assert records[-1]["flops_total_cum"] > linear  # attention counted
    assert sum(r["groups_kept"] for r in records[1:]) > 0  # the warm model earns some reward
    trained = [r for r in records[1:] if r["groups_kept"]]
    assert all(0.0 < r["entropy"] < math.log(100) for r in trained)  # 100-token vocabulary
    assert {"eval_L", "eval_L_se", "eval_L_greedy", "eval_L@again"} <= records[2].keys()
    se_sampling = records[2]["eval_L_se_sampling"]  # p(1 − p) ≤ 1/4 bounds it
    bound = 0.5 / math.sqrt(cfg.eval_problems * (cfg.eval_samples - 1))
    assert se_sampling is not None and 0.0 <= se_sampling <= bound
    assert 0.0 <= records[2]["eval_L@again"] <= 1.0 and records[2]["eval_L_se@again"] >= 0.0
    assert "eval_L" not in records[1]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["flops_paper"] == records[-1]["flops_paper_cum"]


def test_compute_budget_stops_at_the_step_that_reaches_it(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    first = small_run(warm_model, tmp_path / "probe", SMALL.replace(steps=1), family="instruct")
    assert [r["family"] for r in first] == ["instruct", "instruct"]  # a study family's run
    per_step = first[-1]["flops_paper_cum"]
    cfg = SMALL.replace(max_flops=2.5 * per_step, eval_every=5)
    records = small_run(warm_model, tmp_path / "run", cfg)
    assert not any("family" in r for r in records)  # none given: no column, as before families
    spent = [r["flops_paper_cum"] for r in records[1:]]
    assert spent[-1] >= cfg.max_flops > spent[-2]  # stopped at the step that crossed it
    assert len(records) - 1 < cfg.steps
    assert records[-1].get("eval_L") is not None  # the last step is evaluated
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == records[-1]["step"]
    again = small_run(warm_model, tmp_path / "run", cfg)  # finished: nothing retrained
    assert [r["step"] for r in again] == [r["step"] for r in records]


def test_training_sequence_curriculum_epochs_and_reuse() -> None:
    problems = generate("addsub", "train", 40, seed=0)
    cfg = GRPOConfig(steps=10, prompts_per_step=8)  # 80 prompts from 40 problems: two passes
    seq = training_sequence(problems, cfg)
    assert len(seq) == 80 and seq[:40] == seq[40:]
    assert [p.difficulty for p in seq[:40]] == sorted(p.difficulty or 0 for p in problems)
    reuse = training_sequence(problems, cfg.replace(steps=5, tau=4))  # 40 prompts, pool 10
    assert len(reuse) == 40 and len({p.id for p in reuse}) == 10
    assert reuse[:10] == reuse[10:20] == reuse[30:]
    once = training_sequence(problems, cfg.replace(steps=2))  # 16 of 40, spread over the order
    assert len({p.id for p in once}) == 16
    assert once[0].difficulty != once[-1].difficulty
    shuffled = training_sequence(problems, cfg.replace(curriculum=False))
    assert sorted(p.id for p in shuffled[:40]) == sorted(p.id for p in problems)
    assert shuffled[:40] != seq[:40]


def test_finished_run_is_not_retrained_and_changed_settings_are_refused(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = small_run(warm_model, out, SMALL.replace(steps=2))
    stamp = (out / "steps.jsonl").stat().st_mtime_ns
    again = small_run(warm_model, out, SMALL.replace(steps=2))
    assert again == first and (out / "steps.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match=r"different settings \(config.lr\)"):
        small_run(warm_model, out, SMALL.replace(steps=2, lr=5e-4))


def train_cli(warm: WarmModel, out: Path, steps: int) -> list[str]:
    return [
        sys.executable, "-m", "rlscale", "train",
        "--model", str(warm.path), "--train", str(warm.train), "--holdout", str(warm.holdout),
        "--out", str(out), "--steps", str(steps), "--threads", "1",
        "--set", "prompts_per_step=8", "--set", "group_size=4", "--set", "lr=1e-3",
        "--set", "eval_every=3", "--set", "checkpoint_every=2", "--set", "eval_problems=8",
        "--set", "eval_samples=2", "--set", "max_new_tokens=20",
    ]  # fmt: skip


def kill_at_step(cmd: list[str], steps_file: Path, step: int) -> None:
    """Start the run, SIGKILL it once `step` is logged (mid-way through the next one)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["step"] >= step for r in read_records(steps_file)):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_result(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    steps = 9
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(train_cli(warm_model, straight, steps), check=True, capture_output=True)
    rng = random.Random(7)
    kills = sorted(rng.sample(range(1, steps), 3))
    for step in kills:
        kill_at_step(train_cli(warm_model, killed, steps), killed / "steps.jsonl", step)
    done = subprocess.run(train_cli(warm_model, killed, steps), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = read_records(straight / "steps.jsonl"), read_records(killed / "steps.jsonl")
    assert [r["step"] for r in b] == list(range(steps + 1))  # each step exactly once
    strip = [{k: v for k, v in r.items() if k not in TIMING and k != "run"} for r in a]
    assert strip == [{k: v for k, v in r.items() if k not in TIMING and k != "run"} for r in b]
    assert any(r["grad_norm"] > 0 for r in a[1:])  # the model did change along the way
    final_a = load_file(straight / "final" / "model.safetensors")
    final_b = load_file(killed / "final" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    ckpt_a = torch.load(straight / "ckpt" / f"step-{steps:06d}.pt", weights_only=True)
    ckpt_b = torch.load(killed / "ckpt" / f"step-{steps:06d}.pt", weights_only=True)
    moments = [
        (s["exp_avg"], t["exp_avg"])
        for s, t in zip(
            ckpt_a["optimizer"]["state"].values(),
            ckpt_b["optimizer"]["state"].values(),
            strict=True,
        )
    ]
    assert all(torch.equal(x, y) for x, y in moments)
    assert ckpt_a["counters"]["flops_paper_cum"] == ckpt_b["counters"]["flops_paper_cum"]


def test_eval_command_reports_pass1(warm_model: WarmModel, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        ["eval", "--model", str(warm_model.path), "--data", str(warm_model.holdout),
         "--samples", "2", "--max-new-tokens", "20", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["problems"] == 20 and report["samples"] == 2 and 0.0 <= report["L"] <= 1.0
    assert "L " in result.output and "greedy L" in result.output


def test_train_without_data_for_an_outside_model_is_a_clear_error(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["train", "--model", str(warm_model.path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "--train and --holdout are required" in result.output
