"""`rlscale predict FIT.json --N … --x …`: L with its 95% band on a grid of sizes and resources."""

from __future__ import annotations

import typer

from rlscale.cli._common import fmt, handles_errors, parse_numbers, read_fit, stdout, write_json


@handles_errors
def predict_command(
    fit_json: str = typer.Argument(..., help="A FitResult JSON written by `rlscale fit --json`."),
    n: list[str] = typer.Option(..., "--N", help="Model sizes (repeat or comma-separate; 7B ok)."),
    x: list[str] = typer.Option(..., "--x", help="Resource values in the fit's x (C, D or step)."),
    interval: str = typer.Option(
        "prediction", help="'prediction' (a new point) or 'confidence' (the curve)."
    ),
    json_out: str = typer.Option("", "--json", help="Write predictions as JSON ('-': stdout)."),
) -> None:
    """Predict L at every (N, x) combination from a saved fit."""
    import numpy as np

    from rlscale.errors import InputError

    if interval not in ("prediction", "confidence"):
        raise InputError(f"--interval must be prediction or confidence, not {interval!r}")
    fit = read_fit(fit_json)
    sizes, xs = parse_numbers(n, "--N"), parse_numbers(x, "--x")
    grid_N, grid_X = (a.ravel() for a in np.meshgrid(sizes, xs, indexing="ij"))
    table = fit.predict(grid_N, grid_X, interval)  # type: ignore[arg-type]
    if json_out:
        write_json(
            {
                "x": fit.config.x,
                "interval": interval,
                "predictions": table.to_dict(orient="records"),
            },
            json_out,
        )
    if json_out == "-":
        return
    from rich.table import Table

    out = Table("N", fit.config.x, "L", "95% band")
    for row in table.to_dict(orient="records"):
        out.add_row(
            f"{row['N']:.4g}",
            f"{row['X']:.4g}",
            fmt(row["L"]),
            f"[{fmt(row['lo'])}, {fmt(row['hi'])}]",
        )
    stdout().print(out)
    if not fit.converged_:
        stdout().print("[bold red]warning: this fit did not converge[/]")
