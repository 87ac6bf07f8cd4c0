"""The `rlscale` command line: thin commands over the library, heavy imports inside commands."""

from __future__ import annotations

import typer

from rlscale import __version__

app = typer.Typer(
    name="rlscale",
    help="Scaling laws for RL post-training: train, fit, predict, plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    from rlscale.cli._common import Session

    Session.debug = debug


def _register() -> None:
    from rlscale.cli import (
        backtest,
        data,
        findings,
        fit,
        ingest,
        models,
        plan,
        predict,
        report,
        simulate,
        study,
        train,
        verify,
        verl,
    )

    app.command("fit")(fit.fit_command)
    app.command("backtest")(backtest.backtest_command)
    app.command("findings")(findings.findings_command)
    app.command("predict")(predict.predict_command)
    app.command("plan")(plan.plan_command)
    app.command("simulate")(simulate.simulate_command)
    app.command("verify")(verify.verify_command)
    app.command("train")(train.train_command)
    app.command("eval")(train.eval_command)
    app.command("report")(report.report_command)
    app.add_typer(data.data_app, name="data")
    app.add_typer(models.models_app, name="models")
    app.add_typer(study.study_app, name="study")
    app.add_typer(ingest.ingest_app, name="ingest")
    app.add_typer(verl.verl_app, name="verl")


_register()


def main() -> None:
    app()
