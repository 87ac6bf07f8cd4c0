"""`rlscale report`: a study folder, or a data file plus FitResults, as one HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from rlscale.cli._common import handles_errors, stdout
from rlscale.errors import InputError


@handles_errors
def report_command(
    source: Path = typer.Argument(..., help="A study folder, or a data file (with --fit)."),
    fit: list[Path] = typer.Option([], "--fit", help="A FitResult JSON (repeatable)."),
    out: Path = typer.Option(..., help="The report file to write (.html or .md)."),
    format_: str = typer.Option("html", "--format", help="html (self-contained) or md."),
) -> None:
    """Render the paper's figures and tables: L vs C and D with fitted lines, k(N) with its
    band, reuse curves, per-run reward/KL/length, fit and run tables."""
    from rlscale.report.build import from_data, from_study, render_html, render_markdown

    if format_ not in ("html", "md"):
        raise InputError(f"--format must be html or md, not {format_!r}")
    if source.is_dir():
        if fit:
            raise InputError("--fit goes with a data file; a study folder brings its own fits/")
        inp = from_study(source)
    elif source.exists():
        inp = from_data(source, fit)
    else:
        raise InputError(f"{source}: no such study folder or data file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if format_ == "html":
        text = render_html(inp)
    else:
        text = render_markdown(inp, out.parent / f"{out.stem}_files")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    stdout().print(f"report → {out}", markup=False)
