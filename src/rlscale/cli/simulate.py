"""`rlscale simulate`: learning curves from a law (a preset or a saved fit) plus noise."""

from __future__ import annotations

import typer

from rlscale.cli._common import handles_errors, parse_number, parse_numbers, read_json


@handles_errors
def simulate_command(
    preset: str = typer.Option("", help="A built-in simulation: paper-base."),
    fit_json: str = typer.Option("", "--fit", help="Use a saved fit as the truth instead."),
    sizes: list[str] = typer.Option([], help="Model sizes (default: the preset's or fit's)."),
    steps: int = typer.Option(0, help="Steps per run (default: the preset's, 105)."),
    seeds: int = typer.Option(0, help="Runs per size."),
    noise: float = typer.Option(-1.0, help="Std of L per point."),
    run_noise: float = typer.Option(-1.0, help="Std of a per-run offset of L."),
    rho: float = typer.Option(0.0, help="AR(1) correlation of successive points of a run."),
    tokens_per_step: str = typer.Option("", help="Prompt+response tokens per step (sets C)."),
    prompts_per_step: int = typer.Option(0, help="Prompts per step (sets D)."),
    seed: int = typer.Option(0, help="Random seed."),
    out: str = typer.Option("-", help="Output file (.csv, .parquet, .jsonl) or '-' for stdout."),
) -> None:
    """Write simulated curves (run, seed, N, step, D, C, L) in the fit's long format."""
    from dataclasses import replace

    from rlscale.errors import InputError
    from rlscale.simulate import SimulationConfig, from_fit, simulate
    from rlscale.simulate import preset as get_preset
    from rlscale.table import write_table

    if preset and fit_json:
        raise InputError("give --preset or --fit, not both")
    if fit_json:
        from rlscale.fit.estimator import LawFit

        cfg: SimulationConfig = from_fit(LawFit.from_summary(read_json(fit_json)))
    else:
        cfg = get_preset(preset or "paper-base")
    changes: dict[str, object] = {"seed": seed, "rho": rho}
    for name, value, unset in (
        ("steps", steps, 0),
        ("seeds", seeds, 0),
        ("noise", noise, -1.0),
        ("run_noise", run_noise, -1.0),
        ("prompts_per_step", prompts_per_step, 0),
    ):
        if value != unset:
            changes[name] = value
    if tokens_per_step:
        changes["tokens_per_step"] = parse_number(tokens_per_step, "--tokens-per-step")
    cfg = replace(cfg, **changes)  # type: ignore[arg-type]
    if sizes:
        cfg = cfg.with_sizes(parse_numbers(sizes, "--sizes"))
    write_table(simulate(cfg), out)
