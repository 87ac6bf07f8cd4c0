"""Instruct rungs: a base rung plus a supervised round in an instruction format.

The paper post-trains both Qwen2.5 Base and Instruct models; Instruct models start from better
pass@1. An instruct rung is its base rung (same shape, same N) trained a little further on clean
worked solutions of new problems, each prompt wrapped in a fixed instruction template. The
template is the tokenizer's chat template, saved with the model, so GRPO rollouts and evaluation
(`encode_prompt`) wrap every prompt the same way with no change to the trainer.

Builds are cached like base builds (models.build): keyed by the base build's key and this round's
settings, written to a temporary directory and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rlscale.data import generate
from rlscale.errors import InputError
from rlscale.models import build
from rlscale.models.build import (
    BuildConfig,
    Progress,
    _batches,
    _publish,
    build_key,
    build_rung,
    built_path,
    evaluate,
    train_phase,
)
from rlscale.models.ladder import Rung, cache_root, ladder_name

INSTRUCT_VERSION = "1"

# Only characters of the micro tokenizer (printable ASCII, newline, <s>, </s>). Kept short: the
# longest chains prompt inside it plus the GRPO preset's 96 new tokens must fit in MAX_POSITIONS,
# and every template character is a prompt token paid for in every rollout. The instruction
# follows the problem: a template that moved the problem away from the sequence's start (a role
# prefix before it) cost the smallest rung more of the round to relearn.
TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ message['content'] }} Solve step by step.\n"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}"
    "{% else %}{{ raise_exception('only user and assistant messages') }}"
    "{% endif %}"
    "{% endfor %}"
)
# The round's problems: a draw of their own, apart from the base SFT's (seed), the GRPO train
# streams' (1000 + seed) and the holdout's (10_000 + seed).
DATA_SEED = 50_000


# The default round: as many steps of the same batch as the base build's noisy phase, on clean
# solutions in the template, at a fifth of the base rung's clean-phase rate. A lower rate or a
# smaller batch left the smallest rung no better than its base (it must learn the template before
# it gains from the clean solutions); a higher one widened the gap between sizes, since larger
# rungs gain more from the same round.
@dataclass(frozen=True)
class InstructConfig:
    base: BuildConfig = field(default_factory=BuildConfig)
    steps: int = 300
    batch: int = 64
    lr_ratio: float = 0.2  # peak rate relative to the base rung's clean-phase rate
    warmup_steps: int = 20
    seed: int = 0
    eval_problems: int = 512
    eval_samples: int = 8
    max_new_tokens: int = 96

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "eval_problems", "eval_samples", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise InputError(f"instruct {name} must be >= 1, not {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise InputError(f"instruct warmup_steps must be >= 0, not {self.warmup_steps}")
        if self.lr_ratio <= 0:
            raise InputError(f"instruct lr_ratio must be positive, not {self.lr_ratio}")

    def lr(self, rung: Rung) -> float:
        return self.base.lr(rung) * self.lr_ratio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructConfig:
        own = {f.name for f in fields(cls)} - {"base"}
        return cls(BuildConfig(**data["base"]), **{k: v for k, v in data.items() if k in own})


def instruct_key(rung: Rung, cfg: InstructConfig) -> str:
    own = {k: v for k, v in asdict(cfg).items() if k != "base"}
    blob = json.dumps(
        {
            "base": build_key(rung, cfg.base),
            "instruct": own,
            "template": TEMPLATE,
            "v": INSTRUCT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def instruct_dir(rung: Rung, cfg: InstructConfig) -> Path:
    name = ladder_name(rung.name, "instruct")
    return cache_root() / "models" / f"{name}-{instruct_key(rung, cfg)}"


def instruct_built_path(rung: Rung, cfg: InstructConfig | None = None) -> Path | None:
    """The finished instruct build of `rung`: the local cache's, else the shipped copy when it
    was built with the same settings (the same key); or None."""
    cfg = cfg or InstructConfig()
    path = instruct_dir(rung, cfg)
    if (path / "build.json").exists():
        return path
    shipped = build.SHIPPED / ladder_name(rung.name, "instruct")
    if not (shipped / "build.json").exists():
        return None
    key = json.loads((shipped / "build.json").read_text()).get("key")
    return shipped if key == instruct_key(rung, cfg) else None


def build_instruct(
    rung: Rung, cfg: InstructConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Build (or reuse) the instruct rung of `rung`, building its base rung first when missing;
    returns its build.json figures, with the base rung's beside them (`base`)."""
    final = instruct_dir(rung, cfg)
    if (final / "build.json").exists():
        return {**json.loads((final / "build.json").read_text()), "reused": True}
    base_path = built_path(rung, cfg.base)
    if base_path is None:
        build_rung(rung, cfg.base, progress)
        base_path = built_path(rung, cfg.base)
        assert base_path is not None
    start = time.perf_counter()
    model, tokenizer = _load_base(base_path)
    tokenizer.chat_template = TEMPLATE
    tokens, losses = _train_round(model, tokenizer, rung, cfg, progress)
    train_s = time.perf_counter() - start
    model.config._attn_implementation = "eager"  # faster for small-batch decoding on CPU
    holdout = generate(cfg.base.task, "holdout", cfg.eval_problems, seed=10_000 + cfg.base.seed)
    figures = evaluate(model, tokenizer, holdout, cfg.eval_samples, cfg.max_new_tokens)
    base = json.loads((base_path / "build.json").read_text())
    result = {
        "name": ladder_name(rung.name, "instruct"),
        "family": "instruct",
        "key": instruct_key(rung, cfg),
        "N": base["N"],
        "N_total": base["N_total"],
        **figures,
        "base": _base_figures(base),
        "train_tokens": tokens,
        "lr": cfg.lr(rung),
        "final_loss": losses[-1],
        "train_seconds": train_s,
        "seconds": time.perf_counter() - start,
        "template": TEMPLATE,
        "config": cfg.to_dict(),
        "rung": asdict(rung),
    }
    _publish(final, model, tokenizer, result)
    return {**result, "reused": False}


def _train_round(
    model: Any, tokenizer: Any, rung: Rung, cfg: InstructConfig, progress: Progress | None
) -> tuple[int, list[float]]:
    """The supervised round on clean worked solutions in the template: (tokens, losses)."""
    import torch

    torch.manual_seed(cfg.seed)
    problems = generate(
        cfg.base.task, "train", cfg.steps * cfg.batch, DATA_SEED + cfg.seed, distinct=False
    )
    batches = _batches(tokenizer, problems, cfg.batch, 0.0, random.Random(cfg.seed))
    tokens = sum(int((ids != tokenizer.pad_token_id).sum()) for ids, _ in batches)
    model.config._attn_implementation = "sdpa"
    losses = train_phase(model, batches, cfg.lr(rung), cfg.warmup_steps, "instruct", progress)
    return tokens, losses


def _base_figures(base: dict[str, Any]) -> dict[str, Any]:
    """The base rung's own build figures, so build.json holds the comparison."""
    k = base["eval_samples"]
    names = ("greedy_error", "pass1_error", f"pass{k}_error")
    return {
        "name": base["name"],
        "key": base["key"],
        **{n: base[n] for n in names},
        **{f"{n}_se": base[f"{n}_se"] for n in names},
        "eval_problems": base["eval_problems"],
        "eval_samples": k,
    }


def _load_base(path: Path) -> tuple[Any, Any]:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(path, dtype="float32")
    return model, PreTrainedTokenizerFast.from_pretrained(path)
