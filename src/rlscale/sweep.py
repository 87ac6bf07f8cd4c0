"""A study's service layer: run it on its engine, follow it, analyse it.

The runs live in the run store (`rlscale.runstore`); the engine named by the study
(`rlscale.engines.registry`) trains them; this module dispatches to it, reports each run's state
with a forecast, and fits and reports the study from its StepRecords.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlscale.engines.base import Execution
from rlscale.engines.registry import get_engine
from rlscale.runstore import (
    OnChange,
    OnTick,
    Outcome,
    family_column,
    reuse_runs,
    run_dir,
    run_rows,
    run_state,
)
from rlscale.spec import StudySpec
from rlscale.store import STEPS_FILE, write_json_file
from rlscale.study import paper_departures


def execute(
    spec: StudySpec,
    root: Path,
    executor: str,
    *,
    jobs: int | None = None,
    address: str | None = None,
    on_change: OnChange | None = None,
    on_tick: OnTick | None = None,
) -> list[Outcome]:
    """Run the study's unfinished runs on its engine and the named executor."""
    engine = get_engine(spec.engine)
    engine.check(spec)
    return engine.execute(spec, root, Execution(executor, jobs, address, on_change, on_tick))


def sync_engine_logs(spec: StudySpec, root: Path) -> None:
    """Engines that keep their own logs turn them into the runs' StepRecords first."""
    get_engine(spec.engine).sync(spec, root)


def status_rows(spec: StudySpec, root: Path) -> list[dict[str, object]]:
    """Each run's state, last logged step, last evaluated L and — for a running run with
    enough evaluated steps — the forecast of its final L from a fit of its prefix."""
    import pandas as pd

    from rlscale.analysis import forecast_final
    from rlscale.store import read_records

    sync_engine_logs(spec, root)
    rows: list[dict[str, object]] = []
    for run in spec.runs():
        folder = run_dir(root, run)
        records = read_records(folder / STEPS_FILE)
        evaluated = [r for r in records if r.get("eval_L") is not None]
        state = run_state(folder)
        error = None
        if state == "failed":
            error = json.loads((folder / "error.json").read_text()).get("exit_code")
        forecast = None
        if state != "done" and evaluated:
            forecast = forecast_final(pd.DataFrame(evaluated), run.grpo.steps)
        rows.append(
            {
                "run": run.name,
                "model": run.model,
                **family_column(run),
                "seed": run.seed,
                "tau": run.tau,
                "state": state,
                "step": records[-1]["step"] if records else None,
                "steps": run.grpo.steps,
                "L": evaluated[-1]["eval_L"] if evaluated else None,
                "forecast": forecast,
                "exit_code": error,
            }
        )
    return rows


def analyse_study(spec: StudySpec, root: Path, bootstrap: int = 0) -> dict[str, object]:
    """Fit the study's laws and write `fits/<law>-<x>.json`, `analysis.json` and the report
    (`report.html`, self-contained; `report.md` with `report_files/`) into `root`; returns what
    `analysis.json` holds, with the fits."""
    from rlscale import analysis
    from rlscale.report.build import ReportInput, render_html, render_markdown
    from rlscale.store import load_study_records

    sync_engine_logs(spec, root)
    records = load_study_records(root, [r.name for r in spec.runs()])
    scaling = [r.name for r in spec.scaling_runs()]
    table = analysis.scaling_table(records, scaling)
    families = analysis.families_in(table)
    if len(families) > 1:
        family_fits = analysis.fit_families(table, bootstrap)
        for family, results in family_fits.items():
            _write_fits(root / "fits" / family, results)
        joint = analysis.family_comparison(table)
        by_family = analysis.family_summary(table, family_fits, joint)
        table = table[table["family"] == families[0]]  # findings (a)-(d): the first family's
        fits = family_fits[families[0]]
    else:
        fits, family_fits, by_family = analysis.fit_study(table, bootstrap=bootstrap), {}, None
        _write_fits(root / "fits", fits)
    summary = analysis.study_summary(
        table, records, fits, spec.reuse_model, reuse_runs(spec), paper_departures(spec), by_family
    )
    if spec.reuse_model is not None:
        summary["reuse_of"] = {
            "model": spec.reuse_model,
            "family": spec.family_of(spec.reuse_model),
        }
    summary["scaling_runs"] = scaling
    runs = run_rows(spec, root)
    write_json_file(root / "analysis.json", {"study": spec.name, "runs": runs} | summary)
    report = ReportInput(
        f"rlscale study: {spec.name}", table, fits, records, summary, runs, family_fits
    )
    (root / "report.md").write_text(render_markdown(report, root / "report_files"))
    (root / "report.html").write_text(render_html(report))
    return {"study": spec.name, "runs": runs, "fits": fits} | summary


def _write_fits(folder: Path, fits: dict[str, dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, result in fits.items():
        write_json_file(folder / f"{name}.json", result)


def study_findings(spec: StudySpec, root: Path) -> dict[str, Any]:
    """The paper's findings (a)–(d) of a study folder, judged as `analyse_study` judges them
    (its scaling runs, its reuse grid, its departures), without writing anything."""
    from rlscale import analysis
    from rlscale.store import load_study_records

    records = load_study_records(root, [r.name for r in spec.runs()])
    table = analysis.scaling_table(records, [r.name for r in spec.scaling_runs()])
    families = analysis.families_in(table)
    if len(families) > 1:
        table = table[table["family"] == families[0]]
    fits = analysis.fit_study(table, fits=analysis.FINDING_FITS)
    summary = analysis.study_summary(
        table, records, fits, spec.reuse_model, reuse_runs(spec), paper_departures(spec)
    )
    findings: dict[str, Any] = summary["paper_findings"]
    return findings
