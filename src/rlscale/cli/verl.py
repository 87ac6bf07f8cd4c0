"""`rlscale verl commands`: a verl study's runs as `verl.trainer.main_ppo` command lines."""

from __future__ import annotations

from pathlib import Path

import typer

from rlscale.cli._common import handles_errors, stdout, write_json

verl_app = typer.Typer(help="verl runs of a study.", no_args_is_help=True)


@verl_app.command("commands")
@handles_errors
def commands_command(
    spec: Path | None = typer.Argument(None, help="A study file with engine: verl."),
    out: Path = typer.Option(..., help="The study folder: each run's data files go there."),
    preset: str = typer.Option("", help="A built-in study instead of a file: paper."),
    train: str = typer.Option("", help="Training data (replaces the study's train:)."),
    holdout: str = typer.Option("", help="Held-out data (replaces the study's holdout:)."),
    json_out: str = typer.Option("", "--json", help="Write runs, argv and env as JSON."),
) -> None:
    """Write each run's τ-subset parquet, holdout and reward shim; print its command."""
    from rlscale.cli.study import STUDY_FILE, study_mapping
    from rlscale.engines.base import LaunchedByHand
    from rlscale.engines.registry import get_engine
    from rlscale.errors import InputError
    from rlscale.store import exclusive, write_json_file
    from rlscale.study import parse_study

    mapping = study_mapping(spec, preset, train, holdout)
    study = parse_study(mapping)
    engine = get_engine(study.engine)
    if not isinstance(engine, LaunchedByHand):
        raise InputError(
            f"this study's engine {engine.name} starts its runs itself; set engine: verl for "
            "verl commands"
        )
    with exclusive(out, "study"):
        write_json_file(out / STUDY_FILE, {"study": mapping})
        launches = engine.launches(study, out)
    if json_out:
        rows = [
            {"run": la.run.name, "folder": str(la.folder), "argv": la.argv, "env": la.env}
            for la in launches
        ]
        write_json(rows, json_out)
        return
    console = stdout()
    for la in launches:
        run = la.run
        console.print(
            f"# {run.name}  (model {run.model}, seed {run.seed}, τ {run.tau})", markup=False
        )
        console.print(la.line, markup=False, soft_wrap=True)
