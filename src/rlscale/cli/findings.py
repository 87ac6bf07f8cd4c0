"""`rlscale findings DATA …`: the paper's findings judged on any runs' curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rlscale.cli._common import handles_errors, stdout, write_json


@handles_errors
def findings_command(
    data: list[str] = typer.Argument(
        ...,
        help="Long tables (CSV, Parquet, JSONL: run, N, step, C, D, L or pass1, optional L_se, "
        "seed, tau), runs' steps.jsonl files, or a study folder.",
    ),
    json_out: str = typer.Option("", "--json", help="Write the findings as JSON ('-': stdout)."),
) -> None:
    """Judge the paper's findings (a)–(d) on your runs: each verdict (holds, departs, not
    identifiable), the rule that gave it and the numbers it was given."""
    from rlscale.analysis import findings_table, table_findings

    studies = [d for d in data if d != "-" and (Path(d) / "study.json").is_file()]
    if studies and len(data) > 1:
        from rlscale.errors import InputError

        raise InputError(f"{studies[0]}: a study folder is judged on its own; give it alone")
    if studies:
        from rlscale.cli.study import _read_study
        from rlscale.sweep import study_findings

        result = study_findings(_read_study(Path(studies[0])), Path(studies[0]))
    else:
        result = table_findings(findings_table(_read(data), source=", ".join(data)))
    if json_out:
        write_json(result, json_out)
    if json_out != "-":
        render_findings(result)


def _read(sources: list[str]) -> Any:
    import pandas as pd

    from rlscale.errors import InputError
    from rlscale.store import load_study_records
    from rlscale.table import read_table

    frames = []
    for source in sources:
        if source != "-" and Path(source).is_dir():
            if not (Path(source) / "runs").is_dir():
                raise InputError(f"{source}: a folder, but not a study folder (no runs/)")
            frames.append(load_study_records(Path(source)))
        else:
            frames.append(read_table(source))
    return pd.concat(frames, ignore_index=True)


def render_findings(result: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table("finding", "verdict", "measured", title="The paper's findings", show_lines=True)
    for f in result["findings"]:
        table.add_row(Text(f"({f['key']}) {f['claim']}"), f["verdict"], Text(f["measured"]))
    console = stdout()
    console.print(table)
    for f in result["findings"]:
        console.print(Text(f"({f['key']}) rule: {f['rule']}"))
