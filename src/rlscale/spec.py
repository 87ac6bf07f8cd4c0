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
    # The reuse grid's data order: "curriculum" (the paper's: each pass easy → hard, so a pool
    # repeated τ times cycles through the difficulties τ times while τ = 1 meets the hard ones
    # only at its end) or "shuffled" (every τ, τ = 1 included, in a run of its own without the
    # curriculum: the same difficulty mix at every step, so the cost is reuse's alone).
    reuse_order: str = "curriculum"
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
        """Every model × seed at τ = 1, plus the reuse grid's runs of that seed that are not
        among them."""
        out = []
        for seed in self.seeds:
            scaling = [self._run(model, seed, 1, self.steps) for model in self.models]
            out += scaling + [r for r in self._reuse_grid(seed) if r not in scaling]
        return out

    def scaling_runs(self) -> list[RunSpec]:
        """Every model × seed at τ = 1: the runs the scaling laws are fitted on."""
        return [self._run(m, seed, 1, self.steps) for seed in self.seeds for m in self.models]

    def reuse_grid(self) -> list[RunSpec]:
        """The runs of the data-reuse grid, its τ = 1 run included: the study's own τ = 1 run of
        the reuse model, unless the grid has a step count or a data order of its own."""
        return [r for seed in self.seeds for r in self._reuse_grid(seed)]

    def _reuse_grid(self, seed: int) -> list[RunSpec]:
        if self.reuse_model is None:
            return []
        steps = self.reuse_steps or self.steps
        curriculum = self.reuse_order == "curriculum" and self.grpo.curriculum
        own = steps != self.steps or curriculum != self.grpo.curriculum
        taus = [1, *self.taus] if own and 1 not in self.taus else list(self.taus)
        return [
            self._run(self.reuse_model, seed, tau, steps, curriculum)
            if own or tau != 1
            else self._run(self.reuse_model, seed, 1, self.steps)
            for tau in taus
        ]

    def _run(
        self, model: str, seed: int, tau: int, steps: int, curriculum: bool | None = None
    ) -> RunSpec:
        grpo = self.grpo.replace(seed=seed, tau=tau, steps=steps, max_flops=self.compute)
        if curriculum is not None and curriculum != grpo.curriculum:
            grpo = grpo.replace(curriculum=curriculum)
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
