"""`rlscale study run --preset micro-quick`, killed mid-way and run again: the study finishes
without redoing finished runs or losing steps, then fits and reports."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rlscale.runstore import run_dir
from rlscale.store import exclusive, read_records
from rlscale.study import parse_study, preset_study

ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def study_cmd(out: Path) -> list[str]:
    cli = [sys.executable, "-m", "rlscale", "study", "run"]
    return [*cli, "--preset", "micro-quick", "--out", str(out)]


def wait_for_one_done_and_one_partial(out: Path, folders: list[Path], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done = [f for f in folders if (f / "summary.json").exists()]
        partial = [
            f
            for f in folders
            if not (f / "summary.json").exists() and len(read_records(f / "steps.jsonl")) >= 2
        ]
        if done and partial:
            return
        time.sleep(0.05)
    pytest.fail(f"the study did not reach one done and one partial run in {limit} s")


@pytest.mark.slow
def test_killed_study_finishes_on_rerun_without_redoing_runs(tmp_path: Path) -> None:
    out = tmp_path / "study"
    spec = parse_study(preset_study("micro-quick"))
    folders = [run_dir(out, r) for r in spec.runs()]
    proc = subprocess.Popen(
        study_cmd(out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_one_done_and_one_partial(out, folders, limit=600)
    finally:
        proc.kill()
        proc.wait()
    done_before = {
        f: (f / "steps.jsonl").stat().st_mtime_ns for f in folders if (f / "summary.json").exists()
    }
    time.sleep(1.0)
    for folder in folders:  # the killed study's training children died with it
        with exclusive(folder):
            pass
    status = subprocess.run(
        [sys.executable, "-m", "rlscale", "study", "status", str(out), "--json", "-"],
        env=ENV, capture_output=True, text=True, check=True,
    )  # fmt: skip
    states = {row["run"]: row["state"] for row in json.loads(status.stdout)}
    assert "done" in states.values() and set(states.values()) - {"done"}

    stale = out / ".analysis.json.abc123.tmp"  # a write the kill cut short
    stale.write_text("{")
    result = subprocess.run(study_cmd(out), env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not stale.exists()
    for folder in folders:
        steps = [r["step"] for r in read_records(folder / "steps.jsonl")]
        assert steps == list(range(spec.steps + 1)), folder.name
    for folder, stamp in done_before.items():  # finished runs were not run again
        assert (folder / "steps.jsonl").stat().st_mtime_ns == stamp

    fits = {p.stem for p in (out / "fits").glob("*.json")}
    assert {"paper-C", "paper-D", "loglinear-C", "expdecay-C"} <= fits
    analysis = json.loads((out / "analysis.json").read_text())
    assert sorted(analysis["reuse"], key=int) == ["1", "2"]
    assert [row["N"] for row in analysis["per_size"]] == sorted(
        r["N"] for r in analysis["per_size"]
    )
    assert len(analysis["per_size"]) == 2 and all(r["state"] == "done" for r in analysis["runs"])
    page = (out / "report.html").read_text()
    assert "Data reuse" in page and "<script" not in page
    assert "Per size" in result.stdout and "paper-C" in result.stdout
    findings = analysis["paper_findings"]["findings"]
    assert [f["key"] for f in findings] == ["a", "b", "c", "d"]
    assert {f["verdict"] for f in findings} <= {"holds", "departs", "not identifiable"}
    judged = subprocess.run(
        [sys.executable, "-m", "rlscale", "findings", str(out), "--json", "-"],
        env=ENV, capture_output=True, text=True, check=True,
    )  # fmt: skip
    again = json.loads(judged.stdout)["findings"]  # the command judges as the study did
    assert [(f["key"], f["verdict"], f["measured"]) for f in again] == [
        (f["key"], f["verdict"], f["measured"]) for f in findings
    ]
    title = "The paper's findings in this study"  # first in the page, the Markdown and the print
    in_html = html.escape(title)
    assert page.index(in_html) < page.index("<svg") and page.index(in_html) < page.index("Runs")
    assert result.stdout.index(title) < result.stdout.index("Runs")
    markdown = (out / "report.md").read_text()
    assert markdown.index(title) < markdown.index("![")


def test_a_study_whose_runs_never_solve_anything_still_writes_its_report(tmp_path: Path) -> None:
    """Flat curves (L = 1 at every step): R² is undefined, shown as such, and nothing crashes."""
    from rlscale.store import append_record, write_json_file

    mapping = preset_study("micro-quick")
    study = parse_study(mapping)
    write_json_file(tmp_path / "study.json", {"study": mapping})
    for number, run in enumerate(study.runs()):
        folder = run_dir(tmp_path, run)
        folder.mkdir(parents=True)
        N = 1e5 * (number + 1)
        for step in range(run.grpo.steps + 1):
            record = {
                "run": run.name, "model": run.model, "N": N, "seed": run.seed, "tau": run.tau,
                "step": step, "flops_paper_cum": 6 * N * 500.0 * step, "tokens_cum": 500 * step,
                "prompts_seen": 8 * step, "unique_prompts": 8 * step,
                "eval_L": 1.0, "eval_L_se": 0.0, "eval_L_se_sampling": 0.0,
            }  # fmt: skip
            append_record(folder / "steps.jsonl", record)
    cli = [sys.executable, "-m", "rlscale", "study", "fit", str(tmp_path)]
    done = subprocess.run(cli, capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    assert all(row["r2_loglog"] is None for row in analysis["per_size"])
    assert {f["verdict"] for f in analysis["paper_findings"]["findings"]} == {"not identifiable"}
    assert "R² undefined" in done.stdout and "nan" not in done.stdout.lower()
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.md").exists()


def write_simulated_family(root: Path, spec: Any, family: str, shift_E: float) -> None:
    """The paper-base law's curves (E shifted by `shift_E` in log10 L) as the StepRecords of
    `family`'s runs, one run a size in the study's order."""
    from dataclasses import replace

    from rlscale.simulate import preset, simulate
    from rlscale.store import append_record

    truth = preset("paper-base")
    sizes = sorted(truth.per_N)[1:5]  # 1.5B-14B: the 0.5B curve is nearly flat in 30 steps
    per_N = {N: {"E": truth.per_N[N]["E"] + shift_E} for N in sizes}
    curves = simulate(replace(truth, per_N=per_N, steps=30, noise=0.002, seed=len(family)))
    runs = [r for r in spec.runs() if r.family == family]
    for run, N in zip(runs, sizes, strict=True):
        folder = run_dir(root, run)
        folder.mkdir(parents=True)
        for row in curves[curves["N"] == N].itertuples():
            record = {
                "run": run.name, "model": run.model, "family": family, "N": N, "seed": 0,
                "tau": 1, "step": int(row.step), "flops_paper_cum": float(row.C),
                "prompts_seen": int(row.D), "eval_L": float(row.L), "eval_L_se": 0.01,
            }  # fmt: skip
            append_record(folder / "steps.jsonl", record)


def test_a_study_of_two_families_fits_and_reports_each_family(tmp_path: Path) -> None:
    from rlscale.store import write_json_file

    mapping = preset_study("micro-quick") | {
        "families": {
            "base": ["micro-xs", "micro-s", "micro-m", "micro-l"],
            "instruct": ["xs-it", "s-it", "m-it", "l-it"],
        },
        "reuse": None,
    }
    del mapping["models"]
    spec = parse_study(mapping)
    write_json_file(tmp_path / "study.json", {"study": mapping})
    write_simulated_family(tmp_path, spec, "base", 0.0)
    write_simulated_family(tmp_path, spec, "instruct", -0.05)
    cli = [sys.executable, "-m", "rlscale", "study", "fit", str(tmp_path)]
    done = subprocess.run(cli, capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    for family in ("base", "instruct"):
        fit = json.loads((tmp_path / "fits" / family / "paper-C.json").read_text())
        low, high = fit["ci95"]["Kmax"]
        assert fit["converged"] and low < 0.133 < high, fit["ci95"]
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    families = analysis["families"]
    assert families["names"] == ["base", "instruct"]
    finding = analysis["paper_findings"]["findings"][-1]
    assert finding["key"] == "e" and finding["verdict"] == "holds", finding
    assert families["joint"]["verdict"] == "shared", families["joint"]["reason"]  # k(N) is shared
    equal = families["equal_compute"]
    assert equal and all(e["lower"] == "instruct" for e in equal)
    status = subprocess.run(
        [sys.executable, "-m", "rlscale", "study", "status", str(tmp_path), "--json", "-"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert {r["family"] for r in json.loads(status.stdout)} == {"base", "instruct"}
    page = (tmp_path / "report.html").read_text()
    titles = ("k(N) of each model family", "instruct: L against C per size", "one per family?")
    for title in titles:
        assert html.escape(title) in page
    assert (
        "Model families: the paper&#x27;s law on C" in page or "Model families: the paper" in page
    )
