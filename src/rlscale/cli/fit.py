"""`rlscale fit DATA`: fit a law, print a table, optionally write the FitResult JSON."""

from __future__ import annotations

from typing import Any, cast

import typer

from rlscale.cli._common import fmt, handles_errors, parse_number, parse_numbers, stdout, write_json

EXIT_NOT_CONVERGED = 3

# The options that decide a fit, shared by every command that fits (fit, backtest).
LAW = typer.Option(
    "paper", help="Law name: paper, loglinear, paper_e_sat, powerlaw_floor, sigmoid."
)
X = typer.Option("C", "--x", help="Resource column: C (compute), D (data) or step.")
BY = typer.Option(
    "N",
    help="Column holding the model size; 'family': fit each model family (a 'family' column, "
    "sizes in N) and compare their k(N).",
)
SPACE = typer.Option("log", help="Residuals in ln L ('log') or in L ('linear').")
LOSS = typer.Option("l2", help="l2 or huber.")
DELTA = typer.Option(1e-3, help="Huber threshold on the residuals.")
WEIGHTING = typer.Option("point", help="Equal weight per 'point' or per 'curve'.")
NOISE = typer.Option(
    "correlated", help="Error model of the bands: correlated (runs) or independent."
)
PROFILE = typer.Option(
    "auto", help="Profile unidentified parameters: auto (up to 20,000 points), on, off."
)
FIX = typer.Option([], "--fix", help="Fix a global parameter: NAME=VALUE.")


@handles_errors
def fit_command(
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
    bootstrap: int = typer.Option(0, help="Bootstrap replicates (0: Jacobian uncertainty)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    fix: list[str] = FIX,
    holdout_n: list[str] = typer.Option(
        [], "--holdout-N", help="Validate: fit without these sizes and forecast them."
    ),
    holdout: bool = typer.Option(False, "--holdout", help="Validate on the largest size."),
    prefix: float = typer.Option(
        0.0, help="Validate: fit this fraction of each curve, forecast the rest."
    ),
    json_out: str = typer.Option("", "--json", help="Write the FitResult JSON here ('-': stdout)."),
    dedupe: bool = typer.Option(
        False, help="Drop rows that repeat another (default: they are an error)."
    ),
) -> None:
    """Fit a scaling law to learning curves (L against C, D or step, per model size N).

    With --by family: one fit per model family (FitResults named <family>/<law>-<x>) and, on
    the sizes the families share, whether one k(N) serves them all (the JSON's 'joint')."""
    from rlscale.fit.estimator import LawFit
    from rlscale.fit.families import FAMILY_COLUMN

    per_family = by == FAMILY_COLUMN
    config = build_config(
        law, x, "N" if per_family else by, space, loss, delta, weighting, noise, fix, bootstrap,
        seed, profile,
    )  # fmt: skip
    sizes = parse_numbers(holdout_n, "--holdout-N")
    validation = (sizes or None, holdout, prefix)
    if per_family:
        _fit_families(data, config, dedupe, validation, json_out)
        return
    fd = read_fit_data(data, config, dedupe)
    fitter = LawFit(config).fit(fd, progress=_progress(bootstrap))
    _validate(fitter, fd, config, validation)
    result = fitter.summary()
    if json_out:
        write_json(result, json_out)
    if json_out != "-":
        render_fit(result)
    if not result["converged"]:
        raise typer.Exit(EXIT_NOT_CONVERGED)


def _validate(fitter: Any, fd: Any, config: Any, validation: tuple[Any, bool, float]) -> None:
    """The asked out-of-sample checks (--holdout, --holdout-N, --prefix), kept in the fit."""
    from rlscale.fit import validate

    sizes, holdout, prefix = validation
    if sizes or holdout:
        fitter.validation_.append(validate.holdout_sizes(fd, config, sizes))
    if prefix:
        fitter.validation_.append(validate.prefix(fd, config, prefix))


def _fit_families(
    data: str, config: Any, dedupe: bool, validation: tuple[Any, bool, float], json_out: str
) -> None:
    """`--by family`: a fit per family, the joint comparison, one JSON of them all."""
    from rlscale.fit.families import FamilyFits

    source = "<stdin>" if data == "-" else data
    fits = FamilyFits(config).fit(read_fit_table(data), source=source, dedupe=dedupe)
    for family, fitter in fits.fits_.items():
        _validate(fitter, fits.data_[family], config, validation)
    result = fits.summary()
    if json_out:
        write_json(result, json_out)
    if json_out != "-":
        for key, fit in result.items():
            if key != "joint":
                stdout().print(f"\n[bold]{key}[/bold]")
                render_fit(fit)
        render_joint(result["joint"])
    if not all(fit.converged_ for fit in fits.fits_.values()):
        raise typer.Exit(EXIT_NOT_CONVERGED)


def build_config(
    law: str,
    x: str,
    by: str,
    space: str,
    loss: str,
    delta: float,
    weighting: str,
    noise: str,
    fix: list[str],
    bootstrap: int = 0,
    seed: int = 0,
    profile: str = "auto",
) -> Any:
    """The FitConfig of a command's options (validated there)."""
    from rlscale.fit.estimator import FitConfig

    return FitConfig(
        law=law,
        x=cast(Any, x),
        by=by,
        space=cast(Any, space),
        loss=cast(Any, loss),
        delta=delta,
        weighting=cast(Any, weighting),
        bootstrap=bootstrap,
        seed=seed,
        fixed=tuple(_parse_fix(item) for item in fix),
        noise=noise,
        profile=cast(Any, profile),
    )


def read_fit_data(data: str, config: Any, dedupe: bool) -> Any:
    """The command's DATA argument as validated fit input: a table ('-': stdin), or a study
    folder (its scaling table: every τ = 1 run's evaluated steps, as its fits use)."""
    from rlscale.fit.data import load_fit_data

    source = "<stdin>" if data == "-" else data
    return load_fit_data(
        read_fit_table(data), config.x, by=config.by, space=config.space, source=source,
        dedupe=dedupe,
    )  # fmt: skip


def read_fit_table(data: str) -> Any:
    """The command's DATA argument as a table, unvalidated: a file ('-': stdin) or a study
    folder's scaling table."""
    from pathlib import Path

    from rlscale.errors import InputError
    from rlscale.table import read_table

    if data != "-" and Path(data).is_dir():
        from rlscale.analysis import scaling_table
        from rlscale.store import load_study_records

        if not (Path(data) / "runs").is_dir():
            raise InputError(f"{data}: a folder, but not a study folder (no runs/)")
        return scaling_table(load_study_records(Path(data)), _scaling_runs(Path(data)))
    return read_table(data)


def _scaling_runs(folder: Any) -> list[str] | None:
    """A study folder's scaling runs, from its study file (None for a folder without one)."""
    import json

    from rlscale.study import parse_study

    path = folder / "study.json"
    if not path.is_file():
        return None
    return [r.name for r in parse_study(json.loads(path.read_text())["study"]).scaling_runs()]


def _parse_fix(item: str) -> tuple[str, float]:
    from rlscale.errors import InputError

    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--fix expects NAME=VALUE, not {item!r}")
    return name.strip(), parse_number(value, f"--fix {name}")


def _progress(replicates: int) -> Any:
    """A rich progress bar on stderr for the bootstrap; None when there is nothing to show."""
    if replicates <= 0:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from rlscale.cli._common import stderr

    bar = Progress(
        TextColumn("bootstrap"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=stderr(),
        transient=True,
    )
    task = bar.add_task("bootstrap", total=replicates)
    bar.start()

    def advance(done: int) -> None:
        bar.update(task, completed=done)
        if done >= replicates:
            bar.stop()

    return advance


def render_fit(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout()
    status = "[green]converged[/green]" if result["converged"] else "[bold red]NOT CONVERGED[/]"
    console.print(
        f"law [bold]{result['law']}[/bold] on {result['x']} ({result['space']} space, "
        f"{result['loss']}): {result['n_points']} points, {result['n_sizes']} sizes — {status}"
    )
    if result["message"] != "converged":
        console.print(f"  {result['message']}")
    if not result["converged"]:
        console.print("  [red]The numbers below are where the optimiser stopped, not a fit.[/red]")
    if result.get("profile"):
        console.print(
            "  Intervals and forecasts (`predict`, `--holdout`, `--prefix`) come from the fits "
            "the data does not reject (profile likelihood); the JSON keeps them under 'profile'."
        )
    if result["params"]:
        table = Table("parameter", "value", "stderr", "95% interval", title=None)
        for name, value in result["params"].items():
            lo, hi = result["ci95"].get(name) or [None, None]
            table.add_row(
                name, fmt(value, 5), fmt(result["stderr"].get(name), 3), f"[{fmt(lo)}, {fmt(hi)}]"
            )
        console.print(table)
    _render_per_n(result)
    console.print(
        f"R² {_r2_text(result['r2'])}   RMSE ln L {result['rmse_log']:.4g}   "
        f"RMSE L {result['rmse']:.4g}"
        f"   uncertainty {result['uncertainty']}   {1000 * result['seconds']:.0f} ms"
    )
    noise = result.get("noise") or {}
    if noise.get("model") == "correlated":
        console.print(
            f"errors: run offset SD {noise['sigma_run']:.3g}, point SD {noise['sigma_point']:.3g}, "
            f"correlation of successive points {noise['rho']:.2f} ± {noise.get('rho_se', 0):.2f}, "
            f"SD ∝ L^{noise['power']:.2f} "
            f"(bands and intervals use them)"
        )
    for v in result["validation"]:
        console.print(
            f"validation {v['kind']}: MAE {v['mae']:.4f}, max error {v['max_error']:.4f}, "
            f"band coverage 50% {v['coverage50']:.0%}, 80% {v['coverage80']:.0%}, "
            f"95% {v['coverage95']:.0%} over {v['n_test']} points"
        )
        if v.get("profile"):
            console.print(f"  the law fitted for it: {v['profile']}")


def _r2_text(r2: float | None) -> str:
    return "— (undefined: L never varies)" if r2 is None else f"{r2:.5f}"


def _render_per_n(result: dict[str, Any]) -> None:
    from rich.table import Table

    per_N = result["per_N"]
    names = list(dict.fromkeys(k for row in per_N.values() for k in row))
    if not names:
        return
    table = Table("N", *names)
    for key, row in per_N.items():
        cis = result["per_N_ci95"].get(key, {})
        cells = []
        for name in names:
            lo, hi = cis.get(name) or [None, None]
            band = f" [{fmt(lo, 3)}, {fmt(hi, 3)}]" if lo is not None else ""
            cells.append(f"{fmt(row.get(name))}{band}")
        table.add_row(f"{float(key):.4g}", *cells)
    stdout().print(table)


def render_joint(joint: dict[str, Any]) -> None:
    """The families' comparison: both models' (Kmax, N0), the criteria and the verdict."""
    from rich.table import Table

    console = stdout()
    families = ", ".join(joint["families"])
    console.print(f"\n[bold]joint[/bold] ({families}; {joint['law']} on {joint['x']})")
    if joint["verdict"] is None:
        console.print(f"  no comparison: {joint['reason']}")
        return
    sizes = ", ".join(f"{s:.4g}" for s in joint["sizes"])
    console.print(f"  on the shared sizes {sizes}: {joint['n_points']} points")
    table = Table("model", "Kmax [95%]", "N0 [95%]")
    rows = [("one k(N)", joint["shared"])]
    rows += [(f, fit) for f, fit in joint["separate"]["per_family"].items()]
    for name, fit in rows:
        cells = []
        for p in ("Kmax", "N0"):
            lo, hi = fit["ci95"].get(p) or [None, None]
            cells.append(f"{fmt(fit['params'].get(p), 4)} [{fmt(lo, 3)}, {fmt(hi, 3)}]")
        table.add_row(name, *cells)
    console.print(table)
    lr, held = joint["lr"], joint["held_out"] or {}
    console.print(
        f"  likelihood ratio {lr['statistic']:.3g} on {lr['df']} df (p = {lr['p_value']:.3g}; "
        f"design effect {joint['design_effect']:.2f}, effective n {joint['n_eff']:.0f}); "
        f"AIC {joint['aic']['shared']:.1f} vs {joint['aic']['separate']:.1f}, "
        f"BIC {joint['bic']['shared']:.1f} vs {joint['bic']['separate']:.1f} (one k(N) vs per "
        f"family)"
    )
    if held:
        console.print(
            f"  held out (prefix {', '.join(f'{f:g}' for f in held['fractions'])}): run error "
            f"{held['run_error_shared']:.4g} vs {held['run_error_separate']:.4g}, MAE "
            f"{held['mae_shared']:.4g} vs {held['mae_separate']:.4g}"
        )
    colour = {"shared": "green", "differ": "yellow"}.get(joint["verdict"], "red")
    console.print(f"verdict [bold {colour}]{joint['verdict']}[/]: {joint['reason']}")
