"""A study as data: its runs (`RunSpec`) and the study (`StudySpec`), as `rlscale.study` reads
them from a study file and the engines and the run store consume them.

A run's key is a hash of everything that changes its result — model, data sources, every GRPO
setting (seed, τ and steps included) and the engine — and of nothing else (not the executor, not
the study's name or file order), so a rerun or an extended study finds its finished runs again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlscale.rl.config import GRPOConfig


@dataclass(frozen=True)
class RunSpec:
    study: str
    model: str
    seed: int
    tau: int
    train: str | None  # None: the micro rung's own task
    holdout: str | None
    evals: dict[str, str]
    grpo: GRPOConfig
    engine: str = "native"
    family: str | None = None  # the model family of a study with `families:` (None: `models:`)

    @property
    def key(self) -> str:
        blob: dict[str, Any] = {
            "model": self.model,
            "train": self.train,
            "holdout": self.holdout,
            "evals": self.evals,
            "grpo": self.grpo.result_settings(),
            "engine": self.engine,
        }
        if self.family is not None:  # only then: a study file without families keeps its keys
            blob["family"] = self.family
        text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        short = Path(self.model).name or self.model
        if self.family is not None:
            short = f"{self.family}-{short}"
        return f"{short}-seed{self.seed}-tau{self.tau}-{self.key[:8]}"


@dataclass(frozen=True)
class StudySpec:
    name: str
    models: tuple[str, ...]
    grpo: GRPOConfig
    steps: int
    compute: float = 0.0  # per-run budget in the paper's C (FLOPs); 0: train `steps` steps
    seeds: tuple[int, ...] = (0,)
    taus: tuple[int, ...] = (1,)
    reuse_model: str | None = None
    train: str | None = None
    holdout: str | None = None
    evals: dict[str, str] = field(default_factory=dict)
    engine: str = "native"
    executor: str = "local"
    device: str = "cpu"
    threads: int = 1  # torch threads per run: the local executor runs cores // threads at once
    reuse_steps: int = 0  # steps of the reuse runs when they differ from budget.steps (0: same)
    engine_settings: Any = None  # the engine's own settings, parsed and checked by the engine
    sizes: dict[str, float] = field(default_factory=dict)  # N of models not on this disk
    # Experiment trackers each run reports to (not part of a run's key: they change no result)
    report_to: tuple[str, ...] = ()
    # `families:` of the study file, in its order: (family, its models); `models` is then every
    # family's models in that order. Empty for a study of one unnamed family (`models:`).
    families: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def family_of(self, model: str) -> str | None:
        """The family a model belongs to (None in a study without families)."""
        return next((name for name, models in self.families if model in models), None)

    def runs(self) -> list[RunSpec]:
        """Every model × seed at τ = 1, plus the reuse model at each other τ (and at τ = 1 too
        when the reuse runs have their own step count), per seed."""
        out = []
        for seed in self.seeds:
            for model in self.models:
                out.append(self._run(model, seed, 1, self.steps))
            if self.reuse_model is not None:
                steps = self.reuse_steps or self.steps
                taus = [t for t in self.taus if t != 1 or steps != self.steps]
                out += [self._run(self.reuse_model, seed, tau, steps) for tau in taus]
        return out

    def _run(self, model: str, seed: int, tau: int, steps: int) -> RunSpec:
        grpo = self.grpo.replace(seed=seed, tau=tau, steps=steps, max_flops=self.compute)
        return RunSpec(
            self.name,
            model,
            seed,
            tau,
            self.train,
            self.holdout,
            dict(self.evals),
            grpo,
            self.engine,
            self.family_of(model),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
