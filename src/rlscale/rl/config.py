"""`GRPOConfig`: every setting of a GRPO run, frozen and validated when built; YAML in and out.

Presets: `micro` (the default; settings that improved the micro ladder in prototypes) and `paper`
(arXiv:2509.25300's protocol: 512 prompts × 8 rollouts, lr 1e-6, KL 0.001 low_var_kl, mini-batch
128, temperature 1.0 / 0.7, 4096 response tokens).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from rlscale.errors import InputError

Aggregation = Literal["token-mean", "seq-mean"]
KLEstimator = Literal["k1", "k3"]


# Settings that do not change a run's records: a run keeps its key and may resume with another.
RESULT_FREE = ("verify_workers",)


@dataclass(frozen=True)
class GRPOConfig:
    steps: int = 100
    # A compute budget: stop after the step where Σ 6·N·tokens (the paper's C) reaches it; 0 = none,
    # `steps` stays the cap (and sizes the data order).
    max_flops: float = 0.0
    prompts_per_step: int = 32
    group_size: int = 8
    # One rate for every rung, as in the paper: the largest tried at which no micro rung's held-out
    # L rose from one evaluation to the next beyond its noise (issue 16's closing note).
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 0
    kl_coef: float = 0.0
    kl_estimator: KLEstimator = "k3"
    clip_low: float = 0.2
    clip_high: float = 0.2
    updates_per_batch: int = 2  # passes over each sampled batch (PPO epochs)
    mini_batches: int = 1  # optimizer steps per pass (the paper: 512 / 128 = 4)
    micro_batch_tokens: int = 4096  # padded tokens per forward/backward (gradient accumulation)
    aggregation: Aggregation = "token-mean"
    std_normalize: bool = True
    drop_uniform_groups: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 96
    stop: tuple[str, ...] = ()
    eval_temperature: float = 1.0
    eval_samples: int = 4
    eval_problems: int = 256  # 0: the whole holdout
    eval_greedy: bool = True
    eval_every: int = 10
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    tau: int = 1  # data reuse: steps × prompts_per_step prompts drawn from a pool of that / τ
    curriculum: bool = True
    rollout_batch: int = 512
    seed: int = 0
    # Verifier worker processes: 0 = the cores torch leaves spare (at least one). Verdicts do not
    # depend on it, so a run may resume with another value.
    verify_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "group_size", "updates_per_batch"):
            _at_least(self, name, 1)
        for name in ("mini_batches", "max_new_tokens", "eval_samples", "eval_every"):
            _at_least(self, name, 1)
        for name in ("checkpoint_every", "keep_checkpoints", "tau", "rollout_batch"):
            _at_least(self, name, 1)
        for name in ("micro_batch_tokens",):
            _at_least(self, name, 1)
        _at_least(self, "warmup_steps", 0)
        _at_least(self, "verify_workers", 0)
        _at_least(self, "eval_problems", 0)
        if self.prompts_per_step % self.mini_batches:
            raise InputError(
                f"prompts_per_step ({self.prompts_per_step}) must be a multiple of mini_batches "
                f"({self.mini_batches}): a mini-batch holds whole groups"
            )
        if not self.max_flops >= 0:
            raise InputError(f"max_flops must be >= 0 (0: no compute budget), not {self.max_flops}")
        if self.lr <= 0 or self.grad_clip <= 0 or self.weight_decay < 0 or self.kl_coef < 0:
            raise InputError("lr and grad_clip must be > 0; weight_decay and kl_coef >= 0")
        if not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must lie in [0, 1), not {self.betas}")
        if not (0 <= self.clip_low < 1 and self.clip_high >= 0):
            raise InputError("clip_low must be in [0, 1) and clip_high >= 0")
        if self.temperature <= 0 or self.eval_temperature < 0 or not 0 < self.top_p <= 1:
            raise InputError("temperature must be > 0, eval_temperature >= 0, top_p in (0, 1]")
        _choice(self, "kl_estimator", ("k1", "k3"))
        _choice(self, "aggregation", ("token-mean", "seq-mean"))

    @property
    def total_prompts(self) -> int:
        return self.steps * self.prompts_per_step

    def verifier_workers(self, cores: int, torch_threads: int) -> int:
        """How many verifier processes to run beside a trainer using `torch_threads` of
        `cores`: the setting, or else the spare cores, at least one."""
        return self.verify_workers or max(1, cores - torch_threads)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_settings(self) -> dict[str, Any]:
        """The settings a run's result depends on: all but RESULT_FREE (a run's identity, and
        what a resumed run must repeat)."""
        return {k: v for k, v in asdict(self).items() if k not in RESULT_FREE}

    def replace(self, **changes: Any) -> GRPOConfig:
        return dataclasses.replace(self, **coerce(changes))


def _at_least(cfg: GRPOConfig, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, not {value!r}")


def _choice(cfg: GRPOConfig, name: str, options: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in options:
        raise InputError(f"{name} must be one of {', '.join(options)}, not {getattr(cfg, name)!r}")


PRESETS: dict[str, GRPOConfig] = {
    "micro": GRPOConfig(),
    "paper": GRPOConfig(
        steps=105,
        prompts_per_step=512,
        group_size=8,
        lr=1e-6,
        kl_coef=0.001,
        kl_estimator="k3",
        updates_per_batch=1,
        mini_batches=4,
        temperature=1.0,
        eval_temperature=0.7,
        eval_samples=1,
        eval_problems=0,
        eval_greedy=False,
        max_new_tokens=4096,
        drop_uniform_groups=False,
        eval_every=5,
        checkpoint_every=5,
    ),
}


def coerce(changes: dict[str, Any]) -> dict[str, Any]:
    """Values from YAML or `--set key=value` to the field types; unknown keys are errors."""
    hints = typing.get_type_hints(GRPOConfig)
    known = {f.name for f in fields(GRPOConfig)}
    out = {}
    for key, value in changes.items():
        if key not in known:
            raise InputError(f"unknown GRPO setting {key!r}; known: {', '.join(sorted(known))}")
        out[key] = _coerce_value(key, value, hints[key])
    return out


def _coerce_value(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            kinds = typing.get_args(hint)
            kind = kinds[0]
            return tuple(kind(v) for v in items if not (kind is str and v == ""))
        if hint is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if hint in (int, float, bool, str):
            converted = (
                hint(float(value)) if hint is int and isinstance(value, str) else hint(value)
            )
            if hint is int and converted != float(value):
                raise ValueError(value)
            return converted
        return value  # Literal: validated by the config itself
    except (TypeError, ValueError):
        raise InputError(f"{key}: cannot use {value!r} (expected {hint})") from None


def load_config(path: str | None, preset: str = "micro", **overrides: Any) -> GRPOConfig:
    """A preset, then a YAML/JSON file's keys, then overrides (e.g. from the command line)."""
    if preset not in PRESETS:
        raise InputError(f"unknown GRPO preset {preset!r}; choose {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    if path:
        cfg = cfg.replace(**_read_mapping(Path(path)))
    return cfg.replace(**overrides) if overrides else cfg


def _read_mapping(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not valid YAML/JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of GRPO settings, got {type(data).__name__}")
    section = data.get("grpo", data)
    return dict(section) if isinstance(section, dict) else data
