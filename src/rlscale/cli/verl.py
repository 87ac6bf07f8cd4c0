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
    from rlscale.engines.verl import command, run_env
    from rlscale.engines.verl_launch import printed_command, write_run_inputs
    from rlscale.errors import InputError
    from rlscale.store import exclusive, write_json_file
    from rlscale.study import parse_study

    mapping = study_mapping(spec, preset, train, holdout)
    study = parse_study(mapping)
    if study.engine != "verl":
        raise InputError("this study's engine is native; set engine: verl for verl commands")
    with exclusive(out, "study"):
        write_json_file(out / STUDY_FILE, {"study": mapping})
        runs = write_run_inputs(study, out)
    if json_out:
        rows = [
            {
                "run": run.name,
                "folder": str(files.folder),
                "argv": command(run, study.verl.for_model(run.model), files),
                "env": run_env(
                    study.verl.for_model(run.model), str(files.logs / "<attempt>.jsonl")
                ),
            }
            for run, files in runs
        ]
        write_json(rows, json_out)
        return
    console = stdout()
    for run, files in runs:
        console.print(
            f"# {run.name}  (model {run.model}, seed {run.seed}, τ {run.tau})", markup=False
        )
        console.print(printed_command(study, run, files), markup=False, soft_wrap=True)
