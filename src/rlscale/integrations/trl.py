"""TRL's GRPOTrainer in: `ScalingLawCallback` writes a run folder from a user's own TRL script
that `rlscale fit`, `report` and a study's tools read like a native run.

Each optimizer step becomes a StepRecord: N counted from the model (non-embedding, as rlscale
counts it), C = 6·N·TRL's own `num_tokens`, D = the prompts TRL drew, TRL's logged metrics
(reward, response length, KL, entropy, loss, grad norm, lr), and — at step 0 and every
`eval_every` steps — held-out L = 1 − pass@1 from rlscale's evaluation and verifier
(`eval_samples` samples a problem). Only the main process writes (evaluation runs there).

    trainer = GRPOTrainer(model, reward_funcs=VerifierReward(), args=args, train_dataset=…,
                          callbacks=[ScalingLawCallback("runs/mine", holdout="test.parquet")])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rlscale.data import Problem, eval_subset, load_problems
from rlscale.errors import InputError, RlscaleError
from rlscale.integrations.trl_logs import (
    TOKENS,
    paper_compute,
    prompts_per_round,
    prompts_seen,
    trl_columns,
)
from rlscale.models.load import count_params
from rlscale.rl.evaluate import evaluate, rewards_for
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.trainer import derived_seed, eval_columns
from rlscale.steprecord import check_step_record
from rlscale.store import (
    STEPS_FILE,
    append_record,
    run_summary,
    truncate_records,
    write_json_file,
)
from rlscale.verify import VerifierPool


@dataclass(frozen=True)
class ScalingLawConfig:
    """Where the run folder goes, the holdout and how L is measured."""

    out: Path
    holdout: str  # any source rlscale.data reads (parquet, JSONL, synth:…)
    eval_every: int = 10
    eval_samples: int = 4
    eval_problems: int = 256  # 0: the whole holdout
    eval_temperature: float = 1.0
    max_new_tokens: int = 0  # 0: TRL's max_completion_length
    run: str = ""  # default: the folder's name
    model: str = ""  # default: the model's name_or_path
    seed: int = 0
    tau: int = 1
    verify_workers: int = 1
    rollout_batch: int = 512

    def __post_init__(self) -> None:
        for name in ("eval_every", "eval_samples", "verify_workers", "rollout_batch", "tau"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be an integer >= 1, not {getattr(self, name)!r}")
        if self.eval_problems < 0 or self.max_new_tokens < 0 or self.eval_temperature < 0:
            raise InputError("eval_problems, max_new_tokens and eval_temperature must be >= 0")


@dataclass
class _Session:
    """What a training session holds between callback events."""

    model: Any
    tokenizer: Any
    N: int
    N_total: int
    holdout: list[Problem]
    pool: VerifierPool
    started: float
    wall_before: float
    per_round: int
    max_new_tokens: int
    records: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None


class ScalingLawCallback(TrainerCallback):  # type: ignore[misc]
    """A transformers/TRL callback that writes `out/steps.jsonl` (StepRecords), `spec.json` and,
    at the end, `summary.json`. Resuming TRL from a checkpoint cuts the records back to it."""

    def __init__(self, out: str | Path, holdout: str, **settings: Any) -> None:
        self.config = ScalingLawConfig(Path(out), holdout, **settings)
        self.session: _Session | None = None

    @property
    def steps_path(self) -> Path:
        return self.config.out / STEPS_FILE

    # --- transformers' events -----------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if getattr(args, "include_num_input_tokens_seen", "no") not in ("no", False):
            raise InputError(
                "include_num_input_tokens_seen counts TRL's tokens a second time: leave it 'no' "
                "(TRL's GRPOTrainer counts num_tokens itself)"
            )
        model, tokenizer = kwargs["model"], kwargs["processing_class"]
        self.session = self._open(args, state, model, tokenizer)
        if state.global_step == 0:
            self._write(self._evaluated(self._base(args, state, 0), 0))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is None:
            return
        self._flush()
        step = state.global_step
        record = self._base(args, state, step)
        if step % self.config.eval_every == 0 or step == state.max_steps:
            record = self._evaluated(record, step)
        self.session.pending = record

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        pending = self.session.pending if self.session is not None else None
        if pending is None or not logs or TOKENS not in logs:
            return  # not a training log line (an evaluation's, or the final summary)
        if pending["step"] == state.global_step:
            pending |= trl_columns(logs)
            self._flush()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is None:
            return
        self._flush()
        if any(r.get("eval_L") is not None for r in self.session.records):
            write_json_file(self.config.out / "summary.json", run_summary(self.session.records))
        self.session.pool.close()
        self.session = None

    # --- records --------------------------------------------------------------------------

    def _open(self, args: Any, state: Any, model: Any, tokenizer: Any) -> _Session:
        cfg = self.config
        cfg.out.mkdir(parents=True, exist_ok=True)
        records = self._records_before(state.global_step)
        N, N_total = count_params(model)
        name = cfg.model or str(getattr(model.config, "_name_or_path", "") or "model")
        spec = {"run": cfg.run or cfg.out.name, "model": name, "N": N, "N_total": N_total}
        spec |= {"engine": "trl", "holdout": cfg.holdout, "config": _jsonable(asdict(cfg))}
        spec |= {"trl": _trl_settings(args)}
        write_json_file(cfg.out / "spec.json", spec)
        holdout = eval_subset(load_problems(cfg.holdout), cfg.eval_problems, cfg.seed)
        pool = VerifierPool(workers=cfg.verify_workers)
        per_round = prompts_per_round(args.generation_batch_size, args.num_generations)
        wall = float(records[-1].get("wall_s") or 0.0) if records else 0.0
        longest = cfg.max_new_tokens or int(getattr(args, "max_completion_length", 0) or 256)
        return _Session(
            model=model,
            tokenizer=tokenizer,
            N=N,
            N_total=N_total,
            holdout=holdout,
            pool=pool,
            started=time.perf_counter(),
            wall_before=wall,
            per_round=per_round,
            max_new_tokens=longest,
            records=records,
        )

    def _records_before(self, step: int) -> list[dict[str, Any]]:
        """A fresh run needs an empty folder; a resumed one keeps its records up to `step`."""
        if step == 0:
            if self.steps_path.exists() and self.steps_path.stat().st_size > 0:
                raise InputError(
                    f"{self.config.out} holds another run's records; choose another folder, "
                    "or resume TRL from its checkpoint (trainer.train(resume_from_checkpoint=…))"
                )
            return []
        return truncate_records(self.steps_path, step)

    def _base(self, args: Any, state: Any, step: int) -> dict[str, Any]:
        session, cfg = self._session(), self.config
        tokens = int(state.num_input_tokens_seen)
        seen = prompts_seen(
            step,
            session.per_round,
            args.gradient_accumulation_steps,
            args.steps_per_generation,
            args.num_iterations,
        )
        return {
            "run": cfg.run or cfg.out.name,
            "step": step,
            "N": session.N,
            "N_total": session.N_total,
            "model": str(cfg.model or getattr(session.model.config, "_name_or_path", "")),
            "tau": cfg.tau,
            "seed": cfg.seed,
            "prompts_seen": seen,
            "tokens_cum": tokens,
            "flops_paper_cum": paper_compute(session.N, tokens),
        }

    def _evaluated(self, record: dict[str, Any], step: int) -> dict[str, Any]:
        session, cfg = self._session(), self.config
        started = time.perf_counter()
        result = evaluate(
            TorchSampler(session.model, session.tokenizer, cfg.rollout_batch),
            session.tokenizer,
            session.holdout,
            session.pool,
            samples=cfg.eval_samples,
            temperature=cfg.eval_temperature,
            max_new_tokens=session.max_new_tokens,
            greedy=False,
            seed=derived_seed(cfg.seed, step, "eval"),
        )
        return record | eval_columns(result, "") | {"eval_s": time.perf_counter() - started}

    def _flush(self) -> None:
        session = self._session()
        if session.pending is None:
            return
        self._write(session.pending)
        session.pending = None

    def _write(self, record: dict[str, Any]) -> None:
        session = self._session()
        record["wall_s"] = session.wall_before + time.perf_counter() - session.started
        check_step_record(record)
        append_record(self.steps_path, record)
        session.records.append(record)

    def _session(self) -> _Session:
        if self.session is None:
            raise RlscaleError("ScalingLawCallback: an event before on_train_begin")
        return self.session


def _trl_settings(args: Any) -> dict[str, Any]:
    """The TRL settings that shape a run's C and D (kept in spec.json)."""
    names = ["learning_rate", "beta", "num_generations", "generation_batch_size"]
    names += ["per_device_train_batch_size", "gradient_accumulation_steps"]
    names += ["steps_per_generation", "num_iterations", "max_completion_length", "temperature"]
    names += ["max_steps", "seed", "loss_type"]
    settings: dict[str, Any] = _jsonable({name: getattr(args, name, None) for name in names})
    return settings


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


# --- helpers for a user's TRL script ----------------------------------------------------------


class VerifierReward:
    """A TRL reward function: 1.0 when rlscale's verifier judges a completion right against the
    dataset's `answer` column, else 0.0 (the reward of a native run). Close it after training."""

    __name__ = "verifier"

    def __init__(self, workers: int = 1) -> None:
        self.pool = VerifierPool(workers=workers)

    def __call__(self, completions: Sequence[Any], answer: Sequence[str], **_: Any) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return rewards_for(self.pool, texts, answer)

    def close(self) -> None:
        self.pool.close()


def problems_dataset(problems: Sequence[Problem], tokenizer: Any) -> Any:
    """Problems as a TRL dataset (`prompt`, `answer`) whose prompts TRL tokenizes to exactly the
    ids rlscale's own trainer and evaluation use: chat messages for a tokenizer with a chat
    template, else beginning-of-sequence + text + ' ' (the micro models' format)."""
    from datasets import Dataset

    chat = bool(getattr(tokenizer, "chat_template", None))
    bos = tokenizer.bos_token if tokenizer.bos_token_id is not None else ""
    rows = [
        {
            "prompt": [{"role": "user", "content": p.prompt}] if chat else f"{bos}{p.prompt} ",
            "answer": p.answer,
        }
        for p in problems
    ]
    return Dataset.from_list(rows)


__all__ = ["ScalingLawCallback", "ScalingLawConfig", "VerifierReward", "problems_dataset"]
