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


@ingest_app.command("trl")
@handles_errors
def trl_command(
    folder: Path = typer.Argument(..., help="A TRL output dir or checkpoint-N/ folder."),
    batch: int = typer.Option(
        ..., help="Prompts per step (generation_batch_size / num_generations): D = step × batch."
    ),
    out: Path = typer.Option(..., help="steps.parquet, .jsonl or .csv"),
    n: str = typer.Option(
        "", "--N", help="Non-embedding parameters (default: counted from FOLDER's config.json)."
    ),
    run: str = typer.Option("", help="Run name (default: the folder's name)."),
    l_from: str = typer.Option(
        "",
        "--L-from",
        help="A logged eval metric that is a 0/1 accuracy (e.g. eval_rewards/verifier/mean): "
        "L = 1 − it. Without it: C, D and TRL's metrics only.",
    ),
) -> None:
    """C = 6·N·TRL's num_tokens, D = step × batch, TRL's metrics; from trainer_state.json."""
    import pandas as pd

    from rlscale.integrations.trl_logs import find_trainer_state, read_log_history, to_records
    from rlscale.table import write_table

    state = find_trainer_state(folder)
    N = parse_number(n, "--N") if n else _count_N(folder, state.parent)
    records = to_records(read_log_history(state), N, batch, run or folder.name, l_from or None)
    write_table(pd.DataFrame(records), out)
    evaluated = sum(r.get("eval_L") is not None for r in records)
    stdout().print(
        f"{len(records)} steps from {state} ({evaluated} with L from {l_from or 'none'}), "
        f"N {N:.4g} → {out}",
        markup=False,
    )


def _count_N(*folders: Path) -> float:
    """N from the first folder with a model config (counted on the meta device: no weights)."""
    from rlscale.errors import InputError
    from rlscale.models.load import model_info

    for folder in folders:
        if (folder / "config.json").exists():
            return float(model_info(str(folder))["N"])
    raise InputError(f"{folders[0]}: no config.json to count N from; give --N (e.g. 0.36B)")
