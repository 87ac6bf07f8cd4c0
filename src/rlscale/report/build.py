"""A report from a study folder or from a data file plus FitResults: figures and tables in one
self-contained HTML page (inline SVG and style, no scripts, fonts or links) or in Markdown with
the figures written beside it."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlscale import analysis
from rlscale.errors import InputError
from rlscale.report import figures as fig
from rlscale.report.plain import (
    FINDINGS_TITLE,
    STYLE,
    Table,
    fit_table,
    fmt,
    html_table,
    study_tables,
    to_markdown,
)
from rlscale.steprecord import is_step_records


@dataclass(frozen=True)
class ReportInput:
    title: str
    table: pd.DataFrame  # fit input: N, C and/or D, L, run
    fits: dict[str, dict[str, Any]]
    records: pd.DataFrame = field(default_factory=pd.DataFrame)  # StepRecords, when known
    summary: dict[str, Any] | None = None  # a study's analysis (analysis.study_summary)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # a study of several families: each family's fits ({family: {"<law>-<x>": FitResult}});
    # `table` and `fits` are then the first family's
    family_fits: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @cached_property
    def forecasts(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The held-out-size and prefix forecasts, made once for the figures and the table."""
        if "C" not in self.table or self.table.empty:
            return {}, []
        return analysis.holdout_forecast(self.table), analysis.prefix_forecasts(self.table)

    @cached_property
    def backtests(self) -> list[dict[str, Any]]:
        """The study's backtests, for the forecast-error table."""
        if "C" not in self.table or self.table.empty:
            return []
        return analysis.forecast_backtests(self.table)


def from_study(folder: Path) -> ReportInput:
    """A study folder: its runs' records, its fits/ and its analysis.json."""
    from rlscale.store import load_study_records

    if not (folder / "runs").is_dir():
        raise InputError(f"{folder}: not a study folder (no runs/); run `rlscale study run`")
    records = load_study_records(folder)
    saved = folder / "analysis.json"
    summary = json.loads(saved.read_text()) if saved.exists() else None
    runs = list(summary.get("runs", [])) if summary else []
    name = summary.get("study", folder.name) if summary else folder.name
    table = analysis.scaling_table(records, (summary or {}).get("scaling_runs"))
    families = ((summary or {}).get("families") or {}).get("names") or []
    family_fits = {f: _read_fits(folder / "fits" / f) for f in families}
    if families:
        table, fits = table[table["family"] == families[0]], family_fits[families[0]]
    else:
        fits = _read_fits(folder / "fits")
    return ReportInput(f"rlscale study: {name}", table, fits, records, summary, runs, family_fits)


def _read_fits(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def from_data(path: Path, fit_paths: list[Path]) -> ReportInput:
    """A long table (or steps.jsonl records) and the FitResult JSONs made from it."""
    from rlscale.table import read_table

    df = read_table(path)
    records = df if is_step_records(df) else pd.DataFrame()
    if not records.empty:
        table = analysis.scaling_table(records.assign(tau=records.get("tau", 1)))
    else:
        table = df.rename(columns={"pass1": "L"})
        if "pass1" in df.columns:
            table["L"] = 1.0 - table["L"]
        if "run" not in table:
            table["run"] = table["N"].astype(str)
    if not {"N", "L"} <= set(table.columns):
        raise InputError(f"{path}: needs columns N and L (or pass1), or StepRecords")
    fits = {}
    for p in fit_paths:
        try:
            fits[p.stem] = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{p}: not a FitResult JSON ({exc})") from None
    return ReportInput(f"rlscale report: {path.name}", table, fits, records)


def make_figures(inp: ReportInput) -> list[fig.Figure]:
    by_x: dict[str, dict[str, Any] | None] = {"C": None, "D": None}
    for x in by_x:
        by_x[x] = inp.fits.get(f"paper-{x}") or next(
            (f for f in inp.fits.values() if f.get("x") == x), None
        )
    per_size = inp.fits.get("loglinear-C") or _free_slopes(inp.table)
    paper_c = inp.fits.get("paper-C") or next(
        (f for f in inp.fits.values() if f.get("law") == "paper"), None
    )
    reuse = (inp.summary or {}).get("reuse") or {}
    planning = paper_c if paper_c and paper_c.get("converged") else inp.fits.get("loglinear-C")
    out = [
        fig.loss_curves(inp.table, "C", by_x["C"], inp.fits.get("loglinear-C")),
        fig.loss_curves(inp.table, "D", by_x["D"], inp.fits.get("loglinear-D")),
        fig.k_of_size(per_size, paper_c),
        fig.holdout_forecast(inp.forecasts[0]),
        fig.prefix_forecasts(inp.forecasts[1]),
        fig.best_size(planning, _budgets(inp.table)) if "C" in inp.table else None,
        fig.reuse_curves(reuse),
        *family_figures(inp),
        fig.run_metrics(inp.records),
    ]
    return [f for f in out if f is not None]


def family_figures(inp: ReportInput) -> list[fig.Figure | None]:
    """k(N) of every family on one figure, and L against C of each family."""
    if len(inp.family_fits) < 2:
        return []
    table = analysis.scaling_table(inp.records, (inp.summary or {}).get("scaling_runs"))
    joint = ((inp.summary or {}).get("families") or {}).get("joint") or {}
    out = [fig.family_k_of_size(inp.family_fits, joint.get("shared"))]
    for family, fits in inp.family_fits.items():
        rows = table[table["family"] == family]
        curves = fig.loss_curves(rows, "C", fits.get("paper-C"), fits.get("loglinear-C"))
        if curves is not None:
            curves = replace(curves, title=f"{family}: L against C per size")
        out.append(curves)
    return out


def _budgets(table: pd.DataFrame) -> np.ndarray:
    """Compute budgets from the smallest measured C to ten times the largest."""
    return np.geomspace(float(table["C"].min()), 10 * float(table["C"].max()), 40)


def _free_slopes(table: pd.DataFrame) -> dict[str, Any] | None:
    """k per size from a loglinear fit on C, when no such fit was given."""
    if "C" not in table or table.empty:
        return None
    fits = analysis.fit_study(table, fits=(("loglinear", "C"),))
    result = fits["loglinear-C"]
    return result if result.get("converged") else None


def tables(inp: ReportInput) -> list[Table]:
    out = study_tables(inp.summary, inp.runs, inp.fits) if inp.summary is not None else []
    if inp.summary is None and inp.fits:
        out.append(fit_table(inp.fits, {}))
    if "C" in inp.table and not inp.table.empty:
        out.append(forecast_table(inp.backtests))
    return out


def forecast_table(backtests: list[dict[str, Any]]) -> Table:
    """The study's backtests: each origin's prefix forecasts and each size left out, with MAE,
    max error and the coverage of the 50/80/95% prediction bands."""
    rows: list[tuple[str, ...]] = []
    for bt in backtests:
        law = bt["law"]
        if "failed" in bt:
            rows.append((f"{law}", "—", "—", "—", "—", "—", "—", f"not made: {bt['failed']}"))
            continue
        for r in bt["prefix"]:
            rows.append(_backtest_row(f"{law}: first {r['fraction']:.0%} of each run", r))
        for r in bt["leave_one_size_out"]:
            name = f"{law}: N={fig.size_label(r['held_out'][0])} from the other sizes"
            rows.append(_backtest_row(name, r))
        for kind, what in (("prefix", "all prefixes"), ("leave_one_size_out", "all sizes")):
            if bt["pooled"].get(kind):
                rows.append(_backtest_row(f"{law}: {what}", bt["pooled"][kind]))
    return Table(
        "Forecast errors (backtest)",
        ("forecast", "points", "MAE in L", "max error", "50% band", "80% band", "95% band", "note"),
        rows,
        "Each forecast refits the law on part of the data and forecasts the rest: a run's first "
        "10/25/50% of points its remainder, or the other sizes a size's curve. A band's coverage "
        "is the share of forecast points inside it; calibrated bands cover about 50%, 80% and "
        "95%. Bands come from the fit's error model (correlated: run offsets and AR(1) noise "
        "along a run); `rlscale backtest` prints the same per size.",
    )


def _backtest_row(name: str, r: dict[str, Any]) -> tuple[str, ...]:
    if "skipped" in r:
        return (name, "—", "—", "—", "—", "—", "—", f"not made: {r['skipped']}")
    cover = tuple(f"{r[f'coverage{p}']:.0%}" for p in (50, 80, 95))
    note = _worst_size(r.get("per_N") or {})
    if r.get("fit_converged") is False:
        note = "; ".join(filter(None, ("the fit did not converge", note)))
    return (name, str(r["n_test"]), fmt(r["mae"]), fmt(r["max_error"]), *cover, note)


def _worst_size(per_N: dict[str, dict[str, Any]]) -> str:
    """The size whose 95% band covers least, when several were forecast and one fell short."""
    if len(per_N) < 2:
        return ""
    key, s = min(per_N.items(), key=lambda kv: kv[1]["coverage95"])
    if s["coverage95"] >= 0.95:
        return ""
    return f"lowest 95% coverage: N={fig.size_label(float(key))} ({s['coverage95']:.0%})"


def render_html(inp: ReportInput) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>{esc(inp.title)}</title><style>{STYLE}\n{FIGURE_STYLE}</style></head><body>",
        f"<h1>{esc(inp.title)}</h1>",
    ]
    findings, rest = _findings_first(tables(inp))
    parts += [html_table(t) for t in findings]
    for f in make_figures(inp):
        parts.append(f"<figure><h2>{esc(f.title)}</h2>{_inline(f.svg)}")
        parts.append(
            f"<figcaption>{esc(f.caption)}</figcaption></figure>" if f.caption else "</figure>"
        )
    for t in rest:
        parts.append(html_table(t))
    parts.append("</body></html>")
    return "\n".join(parts)


def _findings_first(all_tables: list[Table]) -> tuple[list[Table], list[Table]]:
    """The findings table (which opens a report) and the other tables."""
    first = [t for t in all_tables if t.title == FINDINGS_TITLE]
    return first, [t for t in all_tables if t.title != FINDINGS_TITLE]


FIGURE_STYLE = """figure{margin:0 0 1.5rem}figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:.9rem}"""


def _inline(svg: str) -> str:
    """The SVG element alone (no XML prolog or doctype), to sit inside the HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def render_markdown(inp: ReportInput, assets: Path) -> str:
    """Markdown with the figures written as SVG files into `assets` (linked relatively)."""
    assets.mkdir(parents=True, exist_ok=True)
    findings, rest = _findings_first(tables(inp))
    lines = [f"# {inp.title}", ""]
    if findings:
        lines += [to_markdown("", findings).split("\n", 2)[-1]]
    for i, f in enumerate(make_figures(inp), start=1):
        name = f"figure-{i}.svg"
        (assets / name).write_text(f.svg)
        lines += [f"## {f.title}", "", f"![{f.title}]({assets.name}/{name})", ""]
        lines += [f.caption, ""] if f.caption else []
    body = to_markdown("", rest).split("\n", 2)[-1]
    return "\n".join(lines) + "\n" + body
