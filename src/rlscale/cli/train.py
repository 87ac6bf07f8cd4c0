"""`rlscale train` (a GRPO run, resumable) and `rlscale eval` (a one-off pass@1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rlscale.cli._common import fmt, handles_errors, stdout, step_progress, write_json
from rlscale.cli._plain import RunLines, is_terminal
from rlscale.data.synthetic import WORKING_HOLDOUT
from rlscale.errors import InputError

# the rungs' builds are evaluated on this holdout too
DEFAULT_HOLDOUT_PROBLEMS, HOLDOUT_SEED = WORKING_HOLDOUT


def micro_task(model: str) -> str | None:
    """The synthetic task a micro-ladder rung (either family) was built on (None for other
    models)."""
    from rlscale.models.build import BuildConfig
    from rlscale.models.ladder import family_of

    return BuildConfig().task if family_of(model) is not None else None


def default_sources(model: str, total: int, seed: int) -> tuple[str | None, str | None]:
    task = micro_task(model)
    if task is None:
        return None, None
    return (
        f"synth:{task}?split=train&n={total}&seed={1000 + seed}",  # not the SFT stream (seed 0)
        # one holdout for every seed: the measuring instrument stays fixed, so seed bands show
        # training noise and evaluation sampling, not a new draw of problems
        f"synth:{task}?split=holdout&n={DEFAULT_HOLDOUT_PROBLEMS}&seed={HOLDOUT_SEED}",
    )


def parse_sets(items: list[str]) -> dict[str, str]:
    """`name=DATA` or `DATA` (named after the file) → {name: spec}."""
    out = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or "?" in name or ":" in name:
            spec = item
            name = Path(item.split("?")[0]).stem.replace("synth:", "")
        if name in out:
            raise InputError(f"--eval: two sets named {name!r}; use name=DATA")
        out[name] = spec
    return out


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def setup_torch(threads: int, device: str) -> str:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@handles_errors
def train_command(
    model: str = typer.Option(..., help="A micro-ladder name (micro-s …) or a model directory."),
    train: str = typer.Option("", help="Training problems (default for micro: its task)."),
    holdout: str = typer.Option("", help="Held-out problems for L (default for micro)."),
    eval_sets: list[str] = typer.Option([], "--eval", help="Extra eval set: name=DATA, or DATA."),
    out: Path = typer.Option(..., help="Run folder; an existing one is resumed."),
    steps: int = typer.Option(0, help="Training steps (default: the config's)."),
    config: str = typer.Option("", help="GRPO settings, YAML or JSON."),
    preset: str = typer.Option("micro", help="GRPO preset: micro or paper."),
    overrides: list[str] = typer.Option([], "--set", help="key=value over the config."),
    threads: int = typer.Option(0, help="Torch threads (default: torch's, one per core)."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    sampler: str = typer.Option("torch", help="torch, or vllm (GPU; the vllm extra)."),
    report_to: str = typer.Option(
        "", help="Experiment trackers, comma-separated: wandb, mlflow, tensorboard."
    ),
    report_group: str = typer.Option(
        "", help="The trackers' group: W&B group, MLflow experiment (a study's name)."
    ),
    report_dir: Path | None = typer.Option(
        None, help="Where trackers keep local files unless their settings say (default: OUT)."
    ),
    family: str = typer.Option("", help="The model family, written into every StepRecord."),
) -> None:
    """GRPO post-training: one StepRecord a step in OUT/steps.jsonl; an existing OUT resumes."""
    from rlscale.integrations.trackers import TrackingConfig, require_packages
    from rlscale.rl.config import load_config

    changes: dict[str, Any] = dict(parse_overrides(overrides))
    if steps:
        changes["steps"] = steps
    cfg = load_config(config or None, preset, **changes)
    tracking = TrackingConfig.parse(report_to, report_group or None, report_dir or out)
    require_packages(tracking)
    run_training(
        model,
        cfg,
        train,
        holdout,
        parse_sets(eval_sets),
        out,
        threads,
        device,
        sampler,
        family=family or None,
        tracking=tracking,
    )


def run_training(
    model: str,
    cfg: Any,
    train: str,
    holdout: str,
    extra: dict[str, str],
    out: Path,
    threads: int,
    device: str,
    sampler: str = "torch",
    *,
    family: str | None = None,
    tracking: Any = None,
) -> list[dict[str, Any]]:
    from rlscale.data import load_problems
    from rlscale.integrations.trackers import TrackingConfig, tracker_sink
    from rlscale.models.load import load_model
    from rlscale.rl.samplers import SAMPLERS, make_sampler
    from rlscale.rl.trainer import GRPOTrainer, RunData
    from rlscale.store import exclusive

    with exclusive(out):  # refuse a busy folder before seconds of loading (the trainer locks it)
        pass
    if sampler not in SAMPLERS:
        raise InputError(f"--sampler {sampler!r}: choose {', '.join(SAMPLERS)}")
    default_train, default_holdout = default_sources(model, cfg.total_prompts, cfg.seed)
    train, holdout = train or default_train or "", holdout or default_holdout or ""
    if not train or not holdout:
        raise InputError("--train and --holdout are required for models outside the micro ladder")
    data = RunData(
        load_problems(train),
        load_problems(holdout),
        train,
        holdout,
        {name: load_problems(spec) for name, spec in extra.items()},
    )
    where = setup_torch(threads, device)
    net, tokenizer = load_model(model)
    net.to(where)
    tracking = tracking or TrackingConfig(directory=out)
    progress = _StepBar(cfg.steps) if is_terminal() else _StepLines(out.name, cfg.steps)
    with progress, tracker_sink(tracking, out, out.name) as sink:

        def on_step(record: dict[str, Any]) -> None:
            progress.update(record)
            sink.on_step(record)

        trainer = GRPOTrainer(
            cfg,
            net,
            tokenizer,
            data,
            out,
            model_name=model,
            family=family,
            sampler=make_sampler(sampler, net, tokenizer, cfg.rollout_batch),
            on_step=on_step,
            on_note=progress.note,
        )
        sink.set_config(trainer.spec())
        sink.catch_up()
        records = trainer.run()
        sink.finish(json.loads((out / "summary.json").read_text()))
    _print_summary(out)
    return records


class _StepLines:
    """Plain lines instead of the bar when stdout is not a terminal (a log file)."""

    def __init__(self, run: str, steps: int) -> None:
        self.lines = RunLines(run, steps)

    def __enter__(self) -> _StepLines:
        self.lines.start()
        return self

    def __exit__(self, kind: Any, exc: Any, trace: Any) -> None:
        if exc is not None:
            self.lines.say(f"{self.lines.run} failed: {exc}")

    def note(self, text: str) -> None:
        self.lines.say(f"note: {text}")

    def update(self, record: dict[str, Any]) -> None:
        self.lines.update(record)


class _StepBar:
    """A rich progress bar over steps: reward, last holdout L, tokens/s, ETA."""

    def __init__(self, steps: int) -> None:
        self.progress = step_progress("step")
        self.task = self.progress.add_task("train", total=steps, info="")
        self.last_L: float | None = None

    def __enter__(self) -> _StepBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def note(self, text: str) -> None:
        self.progress.console.print(f"note: {text}", markup=False)

    def update(self, record: dict[str, Any]) -> None:
        if record.get("eval_L") is not None:
            self.last_L = record["eval_L"]
        step_s = sum(record.get(k, 0.0) for k in ("sample_s", "verify_s", "update_s"))
        tokens = record["tokens_prompt"] + record["tokens_response"]
        info = f"reward {fmt(record.get('reward_mean'), 3)}  L {fmt(self.last_L, 3)}"
        if step_s > 0:
            info += f"  {tokens / step_s:,.0f} tok/s"
        self.progress.update(self.task, completed=record["step"], info=info)


def _print_summary(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    stdout().print(
        f"{summary['run']}: {summary['steps']} steps, L {fmt(summary['L_start'], 3)} → "
        f"{fmt(summary['L_final'], 3)} ± {fmt(summary['L_final_se'], 2)} "
        f"(greedy {fmt(summary['L_greedy_start'], 3)} → {fmt(summary['L_greedy_final'], 3)}), "
        f"C {summary['flops_paper']:.3g} FLOPs, {summary['wall_s']:.0f} s → {out}",
        markup=False,
    )


@handles_errors
def eval_command(
    model: str = typer.Option(..., help="A micro-ladder name or a model directory."),
    data: str = typer.Option("", help="Problems (default for micro: its holdout)."),
    samples: int = typer.Option(4, help="Samples a problem for pass@1."),
    temperature: float = typer.Option(1.0, help="Sampling temperature."),
    max_new_tokens: int = typer.Option(80, help="Response length limit."),
    problems: int = typer.Option(0, help="Evaluate at most this many problems (0: all)."),
    greedy: bool = typer.Option(True, help="Also report greedy L."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0, help="Torch threads."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    json_out: str = typer.Option("", "--json", help="Write as JSON ('-': stdout)."),
) -> None:
    """One-off held-out L = 1 − pass@1 (n samples a problem) and greedy L."""
    from dataclasses import asdict

    from rlscale.data import eval_subset, load_problems
    from rlscale.models.load import load_model
    from rlscale.rl.evaluate import evaluate
    from rlscale.rl.rollout import TorchSampler
    from rlscale.verify import VerifierPool

    spec = data or default_sources(model, 1, seed)[1] or ""
    if not spec:
        raise InputError("--data is required for models outside the micro ladder")
    chosen = eval_subset(load_problems(spec), problems, seed)
    where = setup_torch(threads, device)
    net, tokenizer = load_model(model)
    net.to(where)
    with VerifierPool(workers=1) as pool:
        result = evaluate(
            TorchSampler(net, tokenizer),
            tokenizer,
            chosen,
            pool,
            samples=samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            greedy=greedy,
            seed=seed,
        )
    if json_out:
        write_json(asdict(result) | {"model": model, "data": spec}, json_out)
    if json_out != "-":
        stdout().print(
            f"{model} on {spec}: L {result.L:.4f} ± {result.L_se:.4f} "
            f"({result.problems} problems × {result.samples} at T={result.temperature:g}), "
            f"greedy L {fmt(result.L_greedy, 4)}",
            markup=False,
        )
