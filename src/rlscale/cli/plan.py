"""`rlscale plan FIT.json --budget …`: best model size and steps for a budget."""

from __future__ import annotations

import typer

from rlscale.cli._common import (
    fmt,
    handles_errors,
    parse_number,
    parse_numbers,
    read_fit,
    stdout,
    write_json,
)


@handles_errors
def plan_command(
    fit_json: str = typer.Argument(..., help="A FitResult JSON written by `rlscale fit --json`."),
    budget: str = typer.Option(..., help="Budget in the fit's x: FLOPs (C), prompts (D) or steps."),
    sizes: list[str] = typer.Option([], help="Candidate sizes (default: the fitted sizes)."),
    per_step: str = typer.Option(
        "", help="Tokens per step (x=C) or prompts per step (x=D); default: measured in the data."
    ),
    json_out: str = typer.Option("", "--json", help="Write the plan as JSON ('-': stdout)."),
) -> None:
    """Rank model sizes for a budget; where k(N) saturates; doubling N against doubling steps."""
    from rlscale.errors import InputError
    from rlscale.plan import plan

    fit = read_fit(fit_json)
    result = plan(
        fit,
        parse_number(budget, "--budget"),
        parse_numbers(sizes, "--sizes") or None,
        parse_number(per_step, "--per-step") if per_step else None,
    )
    if result.most_steps is not None and result.most_steps < 1:
        raise InputError(
            f"--budget {result.budget:g} buys {result.most_steps:.3g} steps at most: less than "
            "one step of any candidate size"
        )
    if json_out:
        write_json(result.to_dict(), json_out)
    if json_out == "-":
        return
    from rich.table import Table

    console = stdout()
    table = Table(
        "N", "predicted L", "95% band", "steps", title=f"budget {result.budget:.3g} ({result.x})"
    )
    for c in result.candidates:
        mark = " ★" if result.best_N == c.N else ""
        table.add_row(f"{c.N:.4g}{mark}", fmt(c.L), f"[{fmt(c.lo)}, {fmt(c.hi)}]", fmt(c.steps, 5))
    console.print(table)
    if result.k50_N is not None:
        console.print(
            f"k(N) reaches 50% of Kmax at N = {result.k50_N:.3g}, 90% at {result.k90_N:.3g}"
        )
    d = result.doubling
    console.print(
        f"at N = {d.N:.4g}: L {fmt(d.L)}; doubling steps → {fmt(d.L_double_steps)}; "
        f"doubling N → {fmt(d.L_double_N)} ({d.note})"
    )
    if not fit.converged_:
        console.print("[bold red]warning: this fit did not converge[/]")
