"""Study files and presets, read into a `StudySpec` (`rlscale.spec`) with errors that name the
field path; each engine's own settings block is parsed and checked by that engine's functions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlscale.engines.verl import check_study, parse_settings
from rlscale.errors import InputError
from rlscale.rl.config import PRESETS as GRPO_PRESETS
from rlscale.rl.config import GRPOConfig, load_config
from rlscale.spec import StudySpec
from rlscale.units import parse_number

EXECUTORS = ("local", "ray")
KNOWN = {"name", "models", "families", "train", "holdout", "evals", "grpo", "preset", "budget"}
KNOWN |= {"reuse", "seeds", "engine", "executor", "device", "threads", "verl", "sizes"}
KNOWN |= {"report_to"}
DEVICES = ("cpu", "cuda")


QWEN25_N = {"0.5B": 0.36e9, "1.5B": 1.31e9, "3B": 2.77e9, "7B": 6.53e9}
QWEN25_N |= {"14B": 13.07e9, "32B": 31.0e9, "72B": 70.21e9}

# Built-in studies on the micro ladder, as the mappings a study file would hold. `micro`: the
# paper's study in miniature — five sizes over 107× (C- and D-fits), 100 steps each, the
# data-reuse grid τ ∈ {1, 5, 25} on the middle size, every run's holdout L evaluated 14 times from
# 8 samples a problem (sampling SE under 0.01); sized so both cores stay busy (one one-thread run
# per core) within 20 minutes. `micro-seeds`: the same grid with three seeds, for seed bands.
# `micro-quick`: the same shape at the two smallest sizes and a few steps, for CI.
MICRO_GRPO: dict[str, Any] = {
    "eval_every": 8,
    "eval_problems": 0,  # the whole holdout (512)
    "eval_samples": 8,
    "eval_greedy": False,
    "checkpoint_every": 10,
}
# The micro studies are judged on a sealed holdout (data.synthetic: the same distribution as the
# working holdout, none of its problems), and their reuse grid runs shuffled with a τ = 1 run of
# its own, so its cost is reuse's and not a change of the difficulty schedule.
SEALED_HOLDOUT = "synth:chains?split=sealed&n=512&seed=0"
MICRO: dict[str, Any] = {
    "name": "micro",
    "models": ["micro-xs", "micro-s", "micro-m", "micro-l", "micro-xl"],
    "holdout": SEALED_HOLDOUT,
    "budget": {"steps": 100},
    "grpo": MICRO_GRPO,
    "reuse": {"taus": [1, 5, 25], "model": "micro-m", "order": "shuffled"},
    "seeds": [0],
}
PRESETS: dict[str, dict[str, Any]] = {
    "micro": MICRO,
    "micro-seeds": MICRO | {"name": "micro-seeds", "seeds": [0, 1, 2]},
    "micro-quick": {
        "name": "micro-quick",
        "models": ["micro-xs", "micro-s"],
        "budget": {"steps": 4},
        "grpo": {
            "prompts_per_step": 8,
            "group_size": 4,
            "eval_every": 1,
            "eval_problems": 32,
            "eval_samples": 2,
            "eval_greedy": False,
            "checkpoint_every": 1,
        },
        "reuse": {"taus": [1, 2], "model": "micro-s"},
        "seeds": [0],
    },
    # Both micro families (each rung and its instruct rung), τ = 1, one seed: the paper's
    # finding that the law holds for base and instruction-tuned models alike.
    "micro-families": {
        "name": "micro-families",
        "families": {
            "base": MICRO["models"],
            "instruct": [f"{m}-instruct" for m in MICRO["models"]],
        },
        "holdout": SEALED_HOLDOUT,
        "budget": {"steps": 100},
        "grpo": MICRO_GRPO,
        "seeds": [0],
    },
    # arXiv:2509.25300 on verl: Qwen2.5 Base and Instruct 0.5B–72B, one epoch of the
    # curriculum-ordered 53,904-problem set (105 steps × 512 prompts), evaluated every step on
    # the 500-problem holdout; data reuse on 7B Base for 100 steps. Give the data with --train
    # and --holdout.
    "paper": {
        "name": "paper",
        "engine": "verl",
        "preset": "paper",
        "families": {
            "base": [f"Qwen/Qwen2.5-{size}" for size in QWEN25_N],
            "instruct": [f"Qwen/Qwen2.5-{size}-Instruct" for size in QWEN25_N],
        },
        # N: non-embedding parameters from the Qwen2.5 technical report (Table 1); an Instruct
        # model has its Base model's shape
        "sizes": {
            f"Qwen/Qwen2.5-{size}{suffix}": n
            for size, n in QWEN25_N.items()
            for suffix in ("", "-Instruct")
        },
        "budget": {"steps": 105},
        "grpo": {"eval_every": 1, "checkpoint_every": 10},
        "reuse": {
            "taus": [1, 2, 5, 20, 25, 50, 100],
            "family": "base",
            "model": "Qwen/Qwen2.5-7B",
            "steps": 100,
        },
        "seeds": [0],
    },
}


# GRPO settings that define the paper's protocol, with how to show a value.
PROTOCOL = (
    ("prompts_per_step", "{:d}"),
    ("group_size", "{:d}"),
    ("lr", "{:g}"),
    ("kl_coef", "{:g}"),
    ("updates_per_batch", "{:d}"),
    ("mini_batches", "{:d}"),
    ("temperature", "{:g}"),
    ("eval_temperature", "{:g}"),
    ("eval_samples", "{:d}"),
    ("max_new_tokens", "{:d}"),
    ("drop_uniform_groups", "{}"),
)


def paper_departures(spec: StudySpec) -> list[str]:
    """Where a study's protocol differs from arXiv:2509.25300's, setting by setting."""
    paper = GRPO_PRESETS["paper"]
    out = [
        f"{name} {form.format(getattr(spec.grpo, name))} "
        f"(paper {form.format(getattr(paper, name))})"
        for name, form in PROTOCOL
        if getattr(spec.grpo, name) != getattr(paper, name)
    ]
    if spec.steps != paper.steps:
        out.append(f"steps {spec.steps} (paper {paper.steps})")
    if spec.reuse_model is not None:
        out.append(f"reuse τ {', '.join(map(str, spec.taus))} (paper 1, 2, 5, 20, 25, 50, 100)")
        if spec.reuse_order == "shuffled":
            out.append("reuse runs shuffled, with a τ = 1 run of their own (paper: curriculum)")
    if spec.holdout and "split=sealed" in spec.holdout:
        out.append(f"holdout {spec.holdout}: sealed, no design choice has seen its problems")
    elif not spec.holdout:
        out.append("holdout: each rung's working holdout, on which the ladder was designed")
    data = spec.train or "each rung's synthetic task"
    out.append(f"data {data} (paper: 53,904 curriculum-ordered math problems)")
    return out


def preset_study(name: str) -> dict[str, Any]:
    """A built-in study's mapping (a copy: parse it with `parse_study`)."""
    if name not in PRESETS:
        raise InputError(f"unknown study preset {name!r}; choose one of: {', '.join(PRESETS)}")
    copy: dict[str, Any] = json.loads(json.dumps(PRESETS[name]))
    return copy


def read_study_file(path: str | Path) -> dict[str, Any]:
    """A study file's mapping (YAML or JSON), validated; its `name` defaults to the file's stem."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    try:
        parse_study(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    mapping: dict[str, Any] = {"name": path.stem} | data
    return mapping


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file; every error names the file and the field path."""
    return parse_study(read_study_file(path))


def parse_study(data: Any, default_name: str = "study") -> StudySpec:
    if not isinstance(data, dict):
        raise InputError("a study is a mapping of fields (name, models, budget, …)")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN))}"
        )
    families = _families(data)
    models = [m for _, members in families for m in members] or _models(data.get("models"))
    steps, compute = _budget(data.get("budget"))
    grpo = _grpo(data.get("grpo") or {}, str(data.get("preset", "micro")))
    seeds = tuple(_int(s, f"seeds[{i}]") for i, s in enumerate(_as_list(data.get("seeds", [0]))))
    taus, reuse_model, reuse_steps, reuse_order = _reuse(data.get("reuse"), models, families)
    evals = data.get("evals") or {}
    if not isinstance(evals, dict) or not all(isinstance(v, str) for v in evals.values()):
        raise InputError("evals: a mapping of name: data source")
    engine = _choice(data.get("engine", "native"), "engine", tuple(ENGINE_SETTINGS))
    for other in set(ENGINE_SETTINGS) - {engine}:
        if other in data:
            raise InputError(
                f"{other}: settings for engine {other}; this study's engine is {engine}"
            )
    spec = StudySpec(
        name=str(data.get("name", default_name)),
        models=tuple(models),
        grpo=grpo,
        steps=steps,
        compute=compute,
        seeds=seeds or (0,),
        taus=taus,
        reuse_model=reuse_model,
        train=_optional_str(data.get("train"), "train"),
        holdout=_optional_str(data.get("holdout"), "holdout"),
        evals={str(k): v for k, v in evals.items()},
        engine=engine,
        executor=_choice(data.get("executor", "local"), "executor", EXECUTORS),
        device=_choice(data.get("device", "cpu"), "device", DEVICES),
        threads=_positive_int(data.get("threads", 1), "threads"),
        reuse_steps=reuse_steps,
        reuse_order=reuse_order,
        engine_settings=ENGINE_SETTINGS[engine](data.get(engine)),
        sizes=_sizes(data.get("sizes")),
        report_to=_report_to(data.get("report_to"), engine),
        families=families,
    )
    ENGINE_CHECKS[engine](spec)
    if len({r.key for r in spec.runs()}) != len(spec.runs()):
        raise InputError("seeds and reuse.taus give the same run twice; list each value once")
    return spec


def _models(value: Any) -> list[str]:
    models = _string_list(value, "models")
    if not models:
        raise InputError(
            "models: list at least one ladder name or model directory (or give `families:`)"
        )
    return models


FAMILY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _families(data: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`families: {base: [...], instruct: [...]}`: each a path-safe name (it is part of run
    folder names and fit names) with at least one model, no model in two families."""
    section = data.get("families")
    if section is None:
        return ()
    usage = "families: a mapping of family name: [models], e.g. {base: [micro-s], instruct: [...]}"
    if "models" in data:
        raise InputError("give either models: or families:, not both")
    if not isinstance(section, dict) or not section:
        raise InputError(usage)
    seen: dict[str, str] = {}
    out = []
    for name, value in section.items():
        if not isinstance(name, str) or not FAMILY_NAME.fullmatch(name):
            raise InputError(
                f"families: {name!r} is not a path-safe word (letters, digits, _ and -, "
                "starting with a letter or digit)"
            )
        members = _string_list(value, f"families.{name}")
        if not members:
            raise InputError(f"families.{name}: list at least one ladder name or model directory")
        for i, model in enumerate(members):
            if model in seen:
                raise InputError(
                    f"families.{name}[{i}]: {model!r} is already in family {seen[model]!r}; "
                    "a model belongs to one family"
                )
            seen[model] = name
        out.append((name, tuple(members)))
    return tuple(out)


def _budget(section: Any) -> tuple[int, float]:
    """(steps, compute): `{steps: N}`, or `{compute: C, steps: cap}` for a FLOPs budget."""
    usage = "budget: give `{steps: N}` or `{compute: 1e13, steps: MAX}` (C in FLOPs, 6·N·tokens)"
    if not isinstance(section, dict) or not section or set(section) - {"steps", "compute"}:
        raise InputError(usage)
    if "steps" not in section:
        raise InputError(
            "budget.steps: with a compute budget, give the most steps a run may take "
            "(it sizes the data order)"
        )
    steps = _positive_int(section["steps"], "budget.steps")
    compute = section.get("compute", 0.0)
    bad = InputError(f"budget.compute: expected FLOPs >= 0 such as 1e13, got {compute!r}")
    if isinstance(compute, str):  # YAML reads 1e13 without a dot as a string
        try:
            compute = float(compute)
        except ValueError:
            raise bad from None
    if isinstance(compute, bool) or not isinstance(compute, int | float) or not compute >= 0:
        raise bad
    return steps, float(compute)


def _grpo(section: Any, preset: str) -> GRPOConfig:
    if not isinstance(section, dict):
        raise InputError("grpo: a mapping of GRPO settings")
    for key in ("steps", "seed", "tau", "max_flops"):
        if key in section:
            raise InputError(f"grpo.{key}: set it with budget, seeds or reuse.taus")
    try:
        return load_config(None, preset, **section)
    except InputError as exc:
        raise InputError(f"grpo: {exc}") from None


REUSE_ORDERS = ("curriculum", "shuffled")
REUSE_KEYS = {"taus", "model", "family", "steps", "order"}


def _reuse(
    section: Any, models: list[str], families: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[tuple[int, ...], str | None, int, str]:
    if section is None:
        return (1,), None, 0, "curriculum"
    if not isinstance(section, dict) or set(section) - REUSE_KEYS:
        raise InputError(
            "reuse: give `reuse: {taus: [1, 5, 25], model: NAME[, family: NAME][, steps: S]"
            "[, order: curriculum|shuffled]}`"
        )
    taus = tuple(
        _positive_int(t, f"reuse.taus[{i}]") for i, t in enumerate(_as_list(section.get("taus")))
    )
    family = section.get("family")
    if family is not None:
        members = dict(families).get(family)
        if members is None:
            known = ", ".join(name for name, _ in families) or "none: the study has no families"
            raise InputError(f"reuse.family: {family!r} is not one of the families ({known})")
        models = list(members)
    model = section.get("model", models[-1])
    if model not in models:
        where = f"family {family!r}'s" if family is not None else "the study's"
        raise InputError(f"reuse.model: {model!r} is not one of {where} models")
    steps = _positive_int(section["steps"], "reuse.steps") if "steps" in section else 0
    order = _choice(section.get("order", "curriculum"), "reuse.order", REUSE_ORDERS)
    return taus or (1,), str(model), steps, order


def _sizes(section: Any) -> dict[str, float]:
    """`sizes: {model: N}`: non-embedding parameters (7B, 6.53e9) of models not on this disk."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InputError("sizes: a mapping of model: N, e.g. {Qwen/Qwen2.5-7B: 6.53e9}")
    out = {}
    for model, value in section.items():
        where = f"sizes.{model}"
        number = parse_number(value, where) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float) or not number > 0:
            raise InputError(f"{where}: expected a parameter count > 0 such as 6.53e9")
        out[str(model)] = float(number)
    return out


def _report_to(value: Any, engine: str) -> tuple[str, ...]:
    """`report_to: [wandb, mlflow]` (or one name); the names are checked against the trackers
    when the study runs (`rlscale.integrations.trackers`)."""
    if value is None:
        return ()
    names = tuple(_string_list(value, "report_to"))
    if names and engine != "native":
        raise InputError(
            f"report_to: engine {engine} logs to trackers itself; add e.g. "
            "trainer.logger=[console,file,wandb] to verl.overrides instead"
        )
    return names


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _string_list(value: Any, where: str) -> list[str]:
    items = _as_list(value) if value is not None else []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise InputError(f"{where}[{i}]: expected a name or path, got {item!r}")
    return items


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: expected an integer, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    number = _int(value, where)
    if number < 1:
        raise InputError(f"{where}: must be >= 1, got {number}")
    return number


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: expected a data source (path or synth:…), got {value!r}")
    return value


def _choice(value: Any, where: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InputError(f"{where}: {value!r} is not one of {', '.join(options)}")
    return str(value)


# Each engine's own settings block (the study file's key of the engine's name) and its checks.
ENGINE_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "native": lambda section: None,
    "verl": parse_settings,
}
ENGINE_CHECKS: dict[str, Callable[[StudySpec], None]] = {
    "native": lambda spec: None,  # runs whatever a study file can say
    "verl": check_study,
}
