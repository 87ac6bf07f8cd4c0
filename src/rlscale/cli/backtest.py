"""`rlscale backtest DATA`: how well a law forecasts this data, as the numbers a user acts on."""

from __future__ import annotations

from typing import Any

import typer

from rlscale.cli._common import fmt, handles_errors, parse_numbers, stdout, write_json
from rlscale.cli.fit import (
    BY,
    DELTA,
    FIX,
    LAW,
    LOSS,
    NOISE,
    PROFILE,
    SPACE,
    WEIGHTING,
    X,
    build_config,
    read_fit_data,
)


@handles_errors
def backtest_command(
    data: str = typer.Argument(
        ..., help="CSV, Parquet or JSONL long table, '-' for stdin, or a study folder."
    ),
    law: str = LAW,
    x: str = X,
    by: str = BY,
    space: str = SPACE,
    loss: str = LOSS,
    delta: float = DELTA,
    weighting: str = WEIGHTING,
    noise: str = NOISE,
    profile: str = PROFILE,
    fix: list[str] = FIX,
    fractions: list[str] = typer.Option(
        ["0.1,0.25,0.5"], "--fractions", help="Forecast origins: fractions of each run fitted."
    ),
    json_out: str = typer.Option("", "--json", help="Write the backtest as JSON ('-': stdout)."),
    dedupe: bool = typer.Option(False, help="Drop rows that repeat another."),
) -> None:
    """Backtest a law: forecast the rest of every run from its first 10/25/50%, and every size
    from the others; MAE, max error and the coverage of the 50/80/95% bands."""
    from rlscale.errors import InputError
    from rlscale.fit.validate import backtest

    config = build_config(law, x, by, space, loss, delta, weighting, noise, fix, profile=profile)
    origins = [float(f) for f in parse_numbers(fractions, "--fractions")]
    for f in origins:
        if not 0 < f < 1:
            raise InputError(f"--fractions must lie in (0, 1), not {f:g}")
    result = backtest(read_fit_data(data, config, dedupe), config, origins)
    if json_out:
        write_json(result, json_out)
    if json_out != "-":
        render_backtest(result)


def render_backtest(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout()
    console.print(
        f"backtest of law [bold]{result['law']}[/bold] on {result['x']} "
        f"({result['noise']} errors); L's error and the share of points in each band:"
    )
    table = Table("forecast", "N", "points", "MAE", "max error", "50%", "80%", "95%")
    for r in result["prefix"]:
        _rows(table, f"first {r['fraction']:.0%}", "all", r)
    for r in result["leave_one_size_out"]:
        _rows(table, "size left out", f"{r['held_out'][0]:.4g}", r, per_size=False)
    for kind, label in (("prefix", "all prefixes"), ("leave_one_size_out", "all left out")):
        pooled = result["pooled"].get(kind)
        if pooled:
            _rows(table, label, "all", pooled, per_size=False, bold=True)
    console.print(table)
    console.print(
        "first f%: each run's first f% of points fitted, the rest forecast; size left out: "
        "fitted on the other sizes, that size's curves forecast."
    )
    if result.get("leave_one_size_out_skipped"):
        console.print(f"leave-one-size-out: not made — {result['leave_one_size_out_skipped']}")
    console.print("Goal: each band covers its share of points (50%, 80%, 95%).")


def _rows(
    table: Any,
    name: str,
    size: str,
    r: dict[str, Any],
    per_size: bool = True,
    bold: bool = False,
) -> None:
    if "skipped" in r:
        table.add_row(name, size, "", f"not made: {r['skipped']}", "", "", "", "")
        return
    style = "bold" if bold else None
    table.add_row(name, size, *_cells(r, r["n_test"]), style=style)
    for key, s in (r.get("per_N") or {}).items() if per_size else ():
        table.add_row("", f"{float(key):.4g}", *_cells(s, s["n"]))


def _cells(s: dict[str, Any], n: int) -> list[str]:
    cov = [f"{s[f'coverage{p}']:.0%}" for p in (50, 80, 95)]
    return [str(n), fmt(s["mae"]), fmt(s["max_error"]), *cov]
