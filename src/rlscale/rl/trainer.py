"""The GRPO loop on one machine: sample → verify → advantages → update → evaluate → StepRecord.

A run folder holds `spec.json` (what was asked), `steps.jsonl` (one StepRecord a step, step 0 =
evaluation before training), `ckpt/` (atomic checkpoints) and, when finished, `final/` (the
trained model) and `summary.json`. Starting a run on a folder that has one resumes it from the
last complete checkpoint: `steps.jsonl` is cut back to that step, so no step is lost or logged
twice; every random draw is seeded from (seed, step), so a resumed run repeats the uninterrupted
one. A finished run is not retrained.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlscale.data import Problem, Progress, eval_subset, prompt_sequence
from rlscale.errors import InputError, RlscaleError
from rlscale.models.flops import grpo_step_flops, paper_compute, sequences_attention_flops
from rlscale.models.load import count_params
from rlscale.models.params import attention_dims
from rlscale.rl.checkpoint import load_latest, save_checkpoint
from rlscale.rl.config import RESULT_FREE, GRPOConfig
from rlscale.rl.evaluate import EvalResult, encode_prompt, evaluate, rewards_for
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import Sampler, SamplingParams
from rlscale.rl.update import PolicyUpdate
from rlscale.steprecord import check_step_record
from rlscale.store import (
    STEPS_FILE,
    append_record,
    exclusive,
    remove_stale_temps,
    run_summary,
    truncate_records,
    write_json_file,
)

OnStep = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunData:
    """The problems of a run and where they came from (recorded in spec.json)."""

    train: Sequence[Problem]
    holdout: Sequence[Problem]
    train_source: str
    holdout_source: str
    extra: dict[str, Sequence[Problem]] = field(default_factory=dict)


def training_sequence(problems: Sequence[Problem], cfg: GRPOConfig) -> list[Problem]:
    """The `steps × prompts_per_step` prompts of a run in the order they are used."""
    return prompt_sequence(problems, cfg.total_prompts, cfg.tau, cfg.curriculum, cfg.seed)


def derived_seed(seed: int, step: int, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Counters:
    """Cumulative quantities carried from step to step (and through checkpoints)."""

    tokens_cum: int = 0
    flops_paper_cum: float = 0.0
    flops_total_cum: float = 0.0
    wall_s: float = 0.0


class GRPOTrainer:
    def __init__(
        self,
        cfg: GRPOConfig,
        model: Any,
        tokenizer: Any,
        data: RunData,
        out: Path,
        *,
        model_name: str,
        family: str | None = None,
        run: str | None = None,
        sampler: Sampler | None = None,
        on_step: OnStep | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg, self.model, self.tokenizer, self.data = cfg, model, tokenizer, data
        self.out, self.model_name, self.family = Path(out), model_name, family
        self.run_name = run or self.out.name
        self.sampler = sampler or TorchSampler(model, tokenizer, cfg.rollout_batch)
        self.on_step = on_step
        self.on_note = on_note or _note_to_stderr
        self.N, self.N_total = count_params(model)
        self.attention_dims = attention_dims(model.config)
        self.sequence = training_sequence(data.train, cfg)
        self.progress = Progress([p.id for p in self.sequence])
        self.evals = {"": eval_subset(data.holdout, cfg.eval_problems, cfg.seed)} | {
            name: eval_subset(ps, cfg.eval_problems, cfg.seed) for name, ps in data.extra.items()
        }
        # fused: one kernel over all parameters instead of a dozen small ones per parameter
        self.optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=cfg.lr,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
            fused=_fusable(model),
        )
        reference = _frozen_copy(model) if cfg.kl_coef > 0 else None
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.update = PolicyUpdate(cfg, model, self.optimizer, reference, pad_id)
        self.counters = Counters()
        self.step = -1  # the last finished step

    # --- the run ------------------------------------------------------------------------

    @property
    def steps_path(self) -> Path:
        return self.out / STEPS_FILE

    def spec(self) -> dict[str, Any]:
        return {
            "run": self.run_name,
            "model": self.model_name,
            **self._family(),
            "N": self.N,
            "N_total": self.N_total,
            "train": self.data.train_source,
            "holdout": self.data.holdout_source,
            "evals": sorted(self.data.extra),
            "config": self.cfg.to_dict(),
        }

    def run(self) -> list[dict[str, Any]]:
        """Train to `cfg.steps` (resuming when the folder has a checkpoint); the records."""
        with exclusive(self.out):
            return self._run()

    def _run(self) -> list[dict[str, Any]]:
        from rlscale.verify import VerifierPool

        records = self._start_or_resume()
        if self._reached_end():
            self._finish(records)
            return records
        self.model.config._attn_implementation = "sdpa"
        on_gpu = next(self.model.parameters()).device.type == "cuda"
        trainer_threads = 1 if on_gpu else torch.get_num_threads()  # a GPU trainer needs one core
        workers = self.cfg.verifier_workers(os.cpu_count() or 1, trainer_threads)
        with VerifierPool(workers=workers) as pool:
            if self.step < 0:
                records.append(self._log(self._evaluation_record(pool)))
                self.step = 0
            while not self._reached_end():
                records.append(self._log(self._train_step(self.step + 1, pool)))
                self.step += 1
                if self.step % self.cfg.checkpoint_every == 0 or self._reached_end():
                    self._checkpoint()
        self._finish(records)
        return records

    def _reached_end(self) -> bool:
        """The step cap, or the compute budget when one is set."""
        budget = self.cfg.max_flops
        spent = budget > 0 and self.step >= 0 and self.counters.flops_paper_cum >= budget
        return self.step >= self.cfg.steps or spent

    def _start_or_resume(self) -> list[dict[str, Any]]:
        self.out.mkdir(parents=True, exist_ok=True)
        spec_path = self.out / "spec.json"
        if spec_path.exists():
            _check_same_spec(spec_path, self.spec())
        else:
            write_json_file(spec_path, self.spec())
        for folder in (self.out, self.out / "ckpt"):
            remove_stale_temps(folder)
        resumed = load_latest(self.out / "ckpt")
        if resumed is None:
            truncate_records(self.steps_path, -1)
            return []
        for skipped in resumed.skipped:
            self.on_note(f"passed over {skipped}")
        if resumed.skipped:
            self.on_note(f"resuming from {resumed.file}, the newest intact checkpoint")
        state = resumed.state
        if state.get("sequence_sha256", self.progress.digest) != self.progress.digest:
            raise RlscaleError(
                f"{resumed.file}: the run's prompts, or their order, differ from those it was "
                "trained on (the training data changed?); restore them or start again with "
                "another --out"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        self.counters = Counters(**state["counters"])
        self.step = int(state["step"])
        records = truncate_records(self.steps_path, self.step)
        if [int(r["step"]) for r in records] != list(range(self.step + 1)):
            raise RlscaleError(
                f"{self.steps_path}: its records do not cover steps 0..{self.step} of the last "
                "checkpoint (edited by hand?); restore it or start again with another --out"
            )
        return records

    def _checkpoint(self) -> None:
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "counters": asdict(self.counters),
            "sequence_sha256": self.progress.digest,
        }
        save_checkpoint(self.out / "ckpt", self.step, state, self.cfg.keep_checkpoints)

    def _finish(self, records: list[dict[str, Any]]) -> None:
        final = self.out / "final"
        if not final.exists():
            tmp = self.out / ".final.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            tmp.rename(final)
        write_json_file(self.out / "summary.json", run_summary(records))

    def _log(self, record: dict[str, Any]) -> dict[str, Any]:
        check_step_record(record)
        append_record(self.steps_path, record)
        if self.on_step is not None:
            self.on_step(record)
        return record

    # --- one step -------------------------------------------------------------------------

    def _train_step(self, step: int, pool: Any) -> dict[str, Any]:
        cfg, started = self.cfg, time.perf_counter()
        batch = self.sequence[(step - 1) * cfg.prompts_per_step : step * cfg.prompts_per_step]
        prompts = [encode_prompt(self.tokenizer, p.prompt) for p in batch]
        params = SamplingParams(
            cfg.group_size, cfg.temperature, cfg.top_p, cfg.max_new_tokens, cfg.stop
        )
        completions = self.sampler.sample(prompts, params, derived_seed(cfg.seed, step, "train"))
        sampled = time.perf_counter()
        golds = [p.answer for p in batch for _ in range(cfg.group_size)]
        rewards = rewards_for(pool, [c.text for c in completions], golds)
        verified = time.perf_counter()
        lr = cfg.lr * min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
        update = self.update.apply(completions, torch.tensor(rewards), lr)
        updated = time.perf_counter()
        tokens_prompt = sum(len(c.prompt_ids) for c in completions)
        tokens_response = sum(len(c.response_ids) for c in completions)
        lengths = [len(c.prompt_ids) + len(c.response_ids) for c in completions]
        attention = sequences_attention_flops(*self.attention_dims, lengths)
        self._account(tokens_prompt, tokens_response, update, attention)
        record = self._base_record(step) | {
            "tokens_prompt": tokens_prompt,
            "tokens_response": tokens_response,
            "tokens_scored": update["tokens_scored"],
            "tokens_trained": update["tokens_trained"],
            "reward_mean": sum(rewards) / len(rewards),
            "response_len_mean": tokens_response / len(completions),
            "truncated_frac": sum(c.finish_reason == "length" for c in completions)
            / len(completions),
            "groups_kept": update["groups_kept"],
            "loss_pg": update["loss_pg"],
            "kl": update["kl"],
            "grad_norm": update["grad_norm"],
            "entropy": update["entropy"],
            "lr": lr,
            "sample_s": sampled - started,
            "verify_s": verified - sampled,
            "update_s": updated - verified,
        }
        last = step == cfg.steps or 0 < cfg.max_flops <= self.counters.flops_paper_cum
        if step % cfg.eval_every == 0 or last:
            record |= self._evaluate(pool, step)
        self.counters.wall_s += time.perf_counter() - started
        return record | self._cumulative()

    def _account(
        self, tokens_prompt: int, tokens_response: int, update: dict[str, Any], attention: float
    ) -> None:
        tokens = tokens_prompt + tokens_response
        self.counters.tokens_cum += tokens
        self.counters.flops_paper_cum += paper_compute(self.N, tokens_prompt, tokens_response)
        self.counters.flops_total_cum += grpo_step_flops(
            self.N,
            self.N_total,
            tokens,
            update["tokens_scored"],
            update["tokens_trained"],
            attention,
        )

    # --- evaluation and records ---------------------------------------------------------

    def _evaluation_record(self, pool: Any) -> dict[str, Any]:
        started = time.perf_counter()
        record = self._base_record(0) | {
            "tokens_prompt": 0,
            "tokens_response": 0,
            "tokens_scored": 0,
            "tokens_trained": 0,
        }
        record |= self._evaluate(pool, 0)
        self.counters.wall_s += time.perf_counter() - started
        return record | self._cumulative()

    def _evaluate(self, pool: Any, step: int) -> dict[str, Any]:
        cfg, started = self.cfg, time.perf_counter()
        out: dict[str, Any] = {}
        for name, problems in self.evals.items():
            result = evaluate(
                self.sampler,
                self.tokenizer,
                problems,
                pool,
                samples=cfg.eval_samples,
                temperature=cfg.eval_temperature,
                max_new_tokens=cfg.max_new_tokens,
                stop=cfg.stop,
                greedy=cfg.eval_greedy,
                seed=derived_seed(cfg.seed, step, f"eval{name}"),
            )
            out |= eval_columns(result, name)
        return out | {"eval_s": time.perf_counter() - started}

    def _base_record(self, step: int) -> dict[str, Any]:
        seen = step * self.cfg.prompts_per_step
        return {
            "run": self.run_name,
            "step": step,
            "N": self.N,
            "N_total": self.N_total,
            "model": self.model_name,
            **self._family(),
            "tau": self.cfg.tau,
            "seed": self.cfg.seed,
            "prompts_seen": seen,
        } | self.progress.columns(seen)

    def _family(self) -> dict[str, str]:
        """The `family` column, left out for a run outside a study with families (as before)."""
        return {} if self.family is None else {"family": self.family}

    def _cumulative(self) -> dict[str, Any]:
        return asdict(self.counters)


def eval_columns(result: EvalResult, name: str) -> dict[str, Any]:
    if name:  # an extra eval set: its own L columns
        return {f"eval_L@{name}": result.L, f"eval_L_se@{name}": result.L_se}
    return {
        "eval_L": result.L,
        "eval_L_se": result.L_se,
        "eval_L_se_sampling": result.L_se_sampling,
        "eval_n": result.problems,
        "eval_samples": result.samples,
        "eval_temperature": result.temperature,
        "eval_L_greedy": result.L_greedy,
        "eval_response_len": result.response_len_mean,
    }


def _check_same_spec(path: Path, spec: dict[str, Any]) -> None:
    old = json.loads(path.read_text())
    changed = [k for k in spec if k != "config" and old.get(k) != spec[k]]
    changed += [
        f"config.{k}"
        for k, v in spec["config"].items()
        if k not in RESULT_FREE and old["config"].get(k, v) != _jsonish(v)
    ]
    if changed:
        raise InputError(
            f"{path.parent} holds a run with different settings ({', '.join(changed)}); "
            "resume it with the same settings or choose another --out"
        )


def _jsonish(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _fusable(model: Any) -> bool:
    """Whether torch's fused AdamW can update every parameter (floating point, CPU or CUDA)."""
    return all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters()
    )


def _frozen_copy(model: Any) -> Any:
    reference = copy.deepcopy(model)
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def _note_to_stderr(note: str) -> None:
    print(f"note: {note}", file=sys.stderr)
