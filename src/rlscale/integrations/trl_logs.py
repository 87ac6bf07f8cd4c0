"""TRL GRPOTrainer logs → StepRecords: what TRL measures, mapped column by column (pure).

TRL counts every prompt and completion token it samples (`num_tokens` in its logs, cumulative:
each completion with its prompt), so the paper's C is exactly 6·N·num_tokens. D is the prompts
drawn: one generation round serves `steps_per_generation × num_iterations` micro-batches and draws
`generation_batch_size / num_generations` prompts. A finished run's `trainer_state.json` keeps
TRL's logs (`log_history`); its evaluation metrics become L only when the user names one that is
a 0/1 accuracy (L = 1 − its mean), since a reward's mean is not an error rate in general.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlscale.errors import InputError
from rlscale.steprecord import check_step_record

STATE_FILE = "trainer_state.json"
TOKENS = "num_tokens"  # TRL's cumulative prompt + completion tokens
TRL_COLUMNS = {  # StepRecord column ← TRL GRPO log key
    "reward_mean": "reward",
    "response_len_mean": "completions/mean_length",
    "truncated_frac": "completions/clipped_ratio",
    "kl": "kl",
    "entropy": "entropy",
    "grad_norm": "grad_norm",
    "lr": "learning_rate",
    "loss_pg": "loss",  # TRL's loss: the policy loss, plus β·KL when β > 0
}


def paper_compute(N: float, num_tokens: float) -> float:
    """C = 6·N·num_tokens (the paper's compute from TRL's token count)."""
    return 6.0 * N * num_tokens


def prompts_per_round(generation_batch_size: int, num_generations: int) -> int:
    return generation_batch_size // num_generations


def prompts_seen(
    step: int,
    per_round: int,
    gradient_accumulation_steps: int,
    steps_per_generation: int,
    num_iterations: int,
) -> int:
    """D after `step` optimizer steps: generation rounds begun × prompts a round (a round serves
    `steps_per_generation × num_iterations` micro-batches, an optimizer step takes
    `gradient_accumulation_steps` of them)."""
    micro = step * gradient_accumulation_steps
    rounds = -(-micro // (steps_per_generation * num_iterations))
    return rounds * per_round


def trl_columns(logs: Mapping[str, Any]) -> dict[str, float]:
    """The StepRecord columns a TRL training log line gives."""
    return {
        column: float(logs[key]) for column, key in TRL_COLUMNS.items() if _finite(logs.get(key))
    }


def _accuracy(value: float, key: str, step: int) -> float:
    if not 0.0 <= value <= 1.0:
        raise InputError(
            f"--L-from {key}: {value} at step {step} is not a 0/1 accuracy's mean (outside [0, 1])"
        )
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- finished runs --------------------------------------------------------------------------


def find_trainer_state(folder: Path) -> Path:
    """`trainer_state.json` of a TRL output dir or checkpoint (the newest checkpoint's when the
    dir has none of its own)."""
    if (folder / STATE_FILE).exists():
        return folder / STATE_FILE
    checkpoints = sorted(folder.glob(f"checkpoint-*/{STATE_FILE}"), key=_checkpoint_step)
    if not checkpoints:
        raise InputError(
            f"{folder}: no {STATE_FILE} here or in a checkpoint-*/ folder (a TRL output dir "
            "keeps it once saved: trainer.save_state(), or save_strategy other than 'no')"
        )
    return checkpoints[-1]


def _checkpoint_step(path: Path) -> int:
    number = path.parent.name.removeprefix("checkpoint-")
    return int(number) if number.isdigit() else -1


def read_log_history(path: Path) -> list[dict[str, Any]]:
    try:
        state = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{path}: no log_history list (not a transformers trainer state)")
    return [entry for entry in history if isinstance(entry, dict) and "step" in entry]


def to_records(
    history: Sequence[Mapping[str, Any]],
    N: float,
    batch: int,
    run: str,
    L_from: str | None = None,
) -> list[dict[str, Any]]:
    """StepRecords from TRL's `log_history`: one per step with TRL's token count (C), D =
    step × `batch` prompts, TRL's metrics, and L = 1 − `L_from` where it was logged."""
    if N <= 0 or batch < 1:
        raise InputError("--N must be > 0 and --batch >= 1")
    steps: dict[int, dict[str, Any]] = {}
    for entry in history:
        steps.setdefault(int(entry["step"]), {}).update(entry)  # training and eval lines merge
    logged = {s: e for s, e in steps.items() if TOKENS in e or (L_from and L_from in e)}
    if not any(TOKENS in e for e in logged.values()):
        raise InputError(f"no TRL GRPO training logs ({TOKENS}) in the log history")
    if L_from and not any(L_from in e for e in logged.values()):
        have = sorted({k for e in steps.values() for k in e if k.startswith("eval_")})
        raise InputError(f"--L-from {L_from!r}: not in the log history (have {have or 'none'})")
    records, tokens = [], 0.0
    for step in sorted(logged):
        entry = logged[step]
        tokens = float(entry.get(TOKENS, tokens))
        record: dict[str, Any] = {"run": run, "step": step, "N": N, "tau": 1, "seed": 0}
        record |= {"prompts_seen": step * batch, "tokens_cum": tokens}
        record |= {"flops_paper_cum": paper_compute(N, tokens)}
        record |= trl_columns(entry) if TOKENS in entry else {}
        if L_from and _finite(entry.get(L_from)):
            record["eval_L"] = 1.0 - _accuracy(float(entry[L_from]), L_from, step)
        check_step_record(record)
        records.append(record)
    return records
