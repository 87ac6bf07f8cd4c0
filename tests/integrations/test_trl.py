"""TRL's GRPOTrainer with rlscale's ScalingLawCallback: a micro rung trained for a few steps on
CPU writes a run folder whose StepRecords carry C = 6·N·TRL's num_tokens, and `rlscale fit` and
`rlscale ingest trl` read the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rlscale.errors import InputError
from rlscale.integrations.trl_logs import prompts_seen, to_records
from rlscale.store import read_records

PROMPTS, GROUP, STEPS = 4, 4, 6
HOLDOUT = "synth:chains?split=holdout&n=512&seed=10000"


def test_prompts_seen_counts_generation_rounds() -> None:
    assert [prompts_seen(s, 8, 1, 1, 1) for s in (0, 1, 3)] == [0, 8, 24]
    # a round of 2 micro-batches reused for 2 iterations, one micro-batch an optimizer step
    assert [prompts_seen(s, 8, 1, 2, 2) for s in (1, 4, 5)] == [8, 8, 16]
    # two micro-batches an optimizer step, each round serves 2 micro-batches: a round a step
    assert [prompts_seen(s, 8, 2, 2, 1) for s in (1, 2)] == [8, 16]


def test_log_history_to_records_and_its_errors() -> None:
    history = [
        {"step": 1, "num_tokens": 100.0, "reward": 0.25, "loss": 0.1, "learning_rate": 1e-5},
        {"step": 2, "num_tokens": 230.0, "reward": 0.5, "completions/mean_length": 7.0},
        {"step": 2, "eval_accuracy": 0.75, "eval_loss": 1.3},
    ]
    records = to_records(history, 1000.0, 8, "r", L_from="eval_accuracy")
    assert [r["flops_paper_cum"] for r in records] == [6.0 * 1000 * 100, 6.0 * 1000 * 230]
    assert [r["prompts_seen"] for r in records] == [8, 16]
    assert records[0]["reward_mean"] == 0.25 and records[0]["lr"] == 1e-5
    assert "eval_L" not in records[0] and records[1]["eval_L"] == 0.25
    assert "eval_L" not in to_records(history, 1000.0, 8, "r")[1]  # no L unless named
    with pytest.raises(InputError, match=r"--L-from 'eval_f1': not in .*eval_accuracy"):
        to_records(history, 1000.0, 8, "r", L_from="eval_f1")
    with pytest.raises(InputError, match="not a 0/1 accuracy"):
        to_records(history, 1000.0, 8, "r", L_from="eval_loss")


def trl_args(output_dir: Path) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=PROMPTS * GROUP,
        num_generations=GROUP,
        max_completion_length=48,
        num_iterations=1,
        beta=0.0,
        learning_rate=5e-5,
        max_steps=STEPS,
        use_cpu=True,
        report_to="none",
        save_strategy="steps",
        save_steps=STEPS // 2,
        logging_steps=1,
        disable_dropout=True,
        shuffle_dataset=False,
        bf16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        seed=0,
    )


@pytest.mark.slow
def test_trl_run_with_the_callback_gives_step_records_that_fit(tmp_path: Path) -> None:
    from trl import GRPOTrainer

    from rlscale.data import load_problems
    from rlscale.integrations.trl import ScalingLawCallback, VerifierReward, problems_dataset
    from rlscale.models.load import count_params, load_model

    train = load_problems(f"synth:chains?split=train&n={PROMPTS * STEPS}&seed=1000")
    run = tmp_path / "run"

    def trainer_with_callback() -> Any:
        model, tokenizer = load_model("micro-xs")
        callback = ScalingLawCallback(
            run, HOLDOUT, eval_every=2, eval_samples=2, eval_problems=32, model="micro-xs"
        )
        return GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=trl_args(tmp_path / "trl"),
            train_dataset=problems_dataset(train, tokenizer),
            processing_class=tokenizer,
            callbacks=[callback],
        )

    N, _ = count_params(load_model("micro-xs")[0])
    reward = VerifierReward()
    try:
        trainer = trainer_with_callback()
        trainer.train()
        first = read_records(run / "steps.jsonl")
        # TRL resumed from its mid-run checkpoint: the records are cut back to it and go on
        trainer = trainer_with_callback()
        trainer.train(resume_from_checkpoint=str(tmp_path / "trl" / f"checkpoint-{STEPS // 2}"))
        trainer.save_state()
        trainer.save_model()  # config.json beside trainer_state.json: ingest counts N from it
    finally:
        reward.close()

    records = read_records(run / "steps.jsonl")
    assert [r["step"] for r in first] == [r["step"] for r in records] == list(range(STEPS + 1))
    assert records[: STEPS // 2 + 1] == first[: STEPS // 2 + 1]  # kept, not rewritten
    assert [r["step"] for r in records if "eval_L" in r] == [0, 2, 4, 6]
    history = {e["step"]: e for e in trainer.state.log_history if "num_tokens" in e}
    assert sorted(history) == list(range(1, STEPS + 1))
    for record in records[1:]:
        logged = history[record["step"]]
        assert record["N"] == N and record["model"] == "micro-xs"
        assert record["tokens_cum"] == logged["num_tokens"]
        assert record["flops_paper_cum"] == 6 * N * logged["num_tokens"]  # exactly the paper's C
        assert record["prompts_seen"] == record["step"] * PROMPTS
        assert record["reward_mean"] == pytest.approx(logged["reward"])
        assert record["response_len_mean"] == pytest.approx(logged["completions/mean_length"])
    assert records[0]["flops_paper_cum"] == 0 and records[0]["prompts_seen"] == 0
    assert 0 <= records[-1]["eval_L"] <= 1 and records[-1]["eval_n"] == 32
    spec = json.loads((run / "spec.json").read_text())
    assert spec["engine"] == "trl" and spec["trl"]["num_generations"] == GROUP
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["L_final"] == records[-1]["eval_L"]

    env = os.environ | {"OMP_NUM_THREADS": "1"}
    rlscale = [sys.executable, "-m", "rlscale"]
    fit_args = ["--law", "loglinear", "--x", "C", "--json", str(tmp_path / "fit.json")]
    fit = subprocess.run(
        [*rlscale, "fit", str(run / "steps.jsonl"), *fit_args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert fit.returncode in (0, 3), fit.stderr  # 3: converged or not, the fit read the run
    result = json.loads((tmp_path / "fit.json").read_text())
    assert result["n_points"] == 3 and result["n_sizes"] == 1  # steps 2, 4, 6 (not 0)

    ingest_args = ["--batch", str(PROMPTS), "--out", str(tmp_path / "ingested.jsonl")]
    ingest = subprocess.run(
        [*rlscale, "ingest", "trl", str(tmp_path / "trl"), *ingest_args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ingest.returncode == 0, ingest.stderr
    ingested = read_records(tmp_path / "ingested.jsonl")
    assert {r["N"] for r in ingested} == {N}
    assert [r["flops_paper_cum"] for r in ingested] == [r["flops_paper_cum"] for r in records[1:]]
    assert [r["prompts_seen"] for r in ingested] == [r["prompts_seen"] for r in records[1:]]
