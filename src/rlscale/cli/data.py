"""`rlscale data inspect PATH|synth:…`: what a problem set holds, and every bad row."""

from __future__ import annotations

import typer

from rlscale.cli._common import handles_errors, stdout, write_json

data_app = typer.Typer(help="Inspect problem sets.", no_args_is_help=True)


@data_app.command("inspect")
@handles_errors
def inspect_command(
    source: str = typer.Argument(..., help="verl .parquet, .jsonl, HF dataset dir, or synth:…"),
    show: int = typer.Option(3, help="How many problems to print."),
    json_out: str = typer.Option("", "--json", help="Write the summary as JSON ('-': stdout)."),
) -> None:
    """Rows, sources, answer types, difficulty histogram, a few problems, and all bad rows."""
    from rlscale.data import read_problems
    from rlscale.data.inspect import summarize

    problems, errors = read_problems(source)
    summary = {**summarize(problems), "bad_rows": errors}
    if json_out and not errors:  # exit 2 writes nothing: a summary of bad data is not a result
        write_json(summary, json_out)
    if json_out == "-" and not errors:
        return
    console = stdout()
    console.print(
        f"[bold]{source}[/bold]: {summary['rows']} problems, "
        f"{len(errors)} bad rows, {summary['with_solution']} with worked solutions"
    )
    for key in ("sources", "answer_types", "difficulty_histogram"):
        items = ", ".join(f"{k} {v}" for k, v in summary[key].items())
        console.print(f"{key.replace('_', ' ')}: {items}", markup=False)
    for p in problems[:show]:
        console.print(
            f"- [{p.id}] difficulty {p.difficulty}: {p.prompt[:160]!r} → {p.answer!r}", markup=False
        )
    for error in errors:
        console.print(f"bad row: {error}", markup=False, style="red")
    if errors:
        if json_out:
            console.print(f"no summary written to {json_out}: fix the bad rows first", markup=False)
        raise typer.Exit(2)
