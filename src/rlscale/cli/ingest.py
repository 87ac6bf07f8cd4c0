"""`rlscale ingest verl`: verl (or W&B) logs of one run → StepRecords that fit and report."""

from __future__ import annotations

from pathlib import Path

import typer

from rlscale.cli._common import handles_errors, parse_number, stderr, stdout

ingest_app = typer.Typer(help="Read other engines' logs as StepRecords.", no_args_is_help=True)


@ingest_app.command("verl")
@handles_errors
def verl_command(
    logs: list[Path] = typer.Argument(
        ..., help="verl JSONL / console logs or W&B CSV exports, in order."
    ),
    n: str = typer.Option(..., "--N", help="The model's non-embedding parameters (e.g. 7B)."),
    batch: int = typer.Option(..., help="Prompts per step (verl data.train_batch_size)."),
    out: Path = typer.Option(..., help="steps.parquet, .jsonl or .csv"),
    run: str = typer.Option("", help="Run name (default: the first log's stem)."),
    holdout: str = typer.Option("", help="Validation source for L, when the log has several."),
    train: Path | None = typer.Option(
        None,
        help="The run's training parquet, in the order used (data.shuffle=False): sets "
        "unique_prompts and epoch (left out without it).",
    ),
) -> None:
    """C = Σ 6·N·perf/total_num_tokens, D = step × batch, L = 1 − the holdout's mean@1."""
    import pandas as pd

    from rlscale.engines.verl_logs import read_log, to_records
    from rlscale.table import write_table

    result = to_records(
        [read_log(p) for p in logs],
        parse_number(n, "--N"),
        batch,
        run or logs[0].stem,
        holdout or None,
    )
    records = result.records
    if train is not None:
        from rlscale.engines.verl import train_file_progress

        progress = train_file_progress(train)
        records = [r | progress.columns(int(r["prompts_seen"])) for r in records]
    write_table(pd.DataFrame(records), out)
    if result.gaps:
        spans = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in result.gaps)
        stderr().print(f"warning: steps missing from the logs: {spans} (their tokens are not in C)")
    if result.duplicates:
        stderr().print(
            f"{result.duplicates} step(s) logged more than once (resumed): kept the last"
        )
    evaluated = sum(r["eval_L"] is not None for r in result.records)
    stdout().print(
        f"{len(result.records)} steps ({evaluated} evaluated on {result.holdout}) → {out}",
        markup=False,
    )
