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
    family: str = typer.Option(
        "", help="Model family of these curves: written as a 'family' column (fit --by family)."
    ),
    shift_e: float = typer.Option(
        0.0, "--shift-E", help="Add this to log10 L everywhere (E(N) + DELTA: same k(N))."
    ),
    set_params: list[str] = typer.Option(
        [], "--set", help="Set a global parameter of the law: NAME=VALUE (e.g. Kmax=0.16)."
    ),
    out: str = typer.Option("-", help="Output file (.csv, .parquet, .jsonl) or '-' for stdout."),
) -> None:
    """Write simulated curves (run, seed, N, step, D, C, L) in the fit's long format.

    Two families that share k(N) but not E(N): the same law with `--family base` and with
    `--family instruct --shift-E -0.05`; families that do not: `--set Kmax=0.16` on one."""
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
    changes: dict[str, object] = {"seed": seed, "rho": rho, "shift_E": shift_e}
    if family:
        changes["family"] = family
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
    if set_params:
        cfg = cfg.with_params(dict(_parse_set(item) for item in set_params))
    if sizes:
        cfg = cfg.with_sizes(parse_numbers(sizes, "--sizes"))
    write_table(simulate(cfg), out)


def _parse_set(item: str) -> tuple[str, float]:
    from rlscale.errors import InputError

    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--set expects NAME=VALUE, not {item!r}")
    return name.strip(), parse_number(value, f"--set {name.strip()}")
