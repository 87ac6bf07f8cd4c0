"""The report: figures for a simulated study, edge cases, and the page in a real headless
Chromium (no failed requests; every figure present and not blank)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlscale import analysis
from rlscale.cli import app
from rlscale.report.build import ReportInput, make_figures, render_html
from tests.test_analysis import records

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def simulated(recs: pd.DataFrame | None = None) -> ReportInput:
    recs = records(noise=0.02, seed=1) if recs is None else recs
    recs = recs.assign(reward_mean=1 - recs["eval_L"], kl=0.0, response_len_mean=30.0)
    table = analysis.scaling_table(recs)
    fits = analysis.fit_study(table)
    summary = analysis.study_summary(table, recs, fits, "m600000")
    return ReportInput("simulated study", table, fits, recs, summary, [])


def test_figures_of_a_simulated_study() -> None:
    figures = make_figures(simulated())
    titles = [f.title for f in figures]
    assert titles[:3] == [
        "L against C per size",
        "L against D per size",
        "k(N): the learning-efficiency slope per size",
    ]
    assert "Data reuse: L against step per τ" in titles
    assert all(f.svg.lstrip().startswith("<?xml") and "<path" in f.svg for f in figures)
    assert "did not converge" not in " ".join(f.caption for f in figures)


def test_one_size_missing_steps_and_an_unconverged_fit_are_drawn_honestly() -> None:
    recs = records()
    one = recs[(recs["N"] == recs["N"].max()) & (recs["step"] % 3 != 1)]  # one size, gaps
    figures = make_figures(simulated(one))
    assert [f.title for f in figures][:2] == ["L against C per size", "L against D per size"]
    assert "did not converge" in figures[0].caption  # the paper law needs two sizes
    inp = simulated()
    broken = dict(inp.fits["paper-C"], converged=False, message="N0 at its bound")
    unconverged = ReportInput(
        inp.title, inp.table, {**inp.fits, "paper-C": broken}, inp.records, inp.summary
    )
    first = make_figures(unconverged)[0]
    assert "did not converge (N0 at its bound)" in first.caption


def test_seeds_are_drawn_as_a_mean_with_a_band() -> None:
    """Three seeds per size: the L curves and the reuse curves show the mean and a ± 1 SD band
    (a filled path per size), and say so."""
    runs = [records(noise=0.02, seed=s).assign(seed=s) for s in range(3)]
    recs = pd.concat(
        [r.assign(run=r["run"] + f"-s{s}") for s, r in enumerate(runs)], ignore_index=True
    )
    one, three = make_figures(simulated(runs[0])), make_figures(simulated(recs))
    assert "± 1 SD across seeds" in three[0].caption and "seeds" not in one[0].caption
    reuse = next(f for f in three if f.title.startswith("Data reuse"))
    assert "Mean of 3 seeds" in reuse.caption
    assert three[0].svg.count("<path") > one[0].svg.count("<path")  # the bands


@pytest.mark.slow
def test_page_opens_in_headless_chromium_with_every_figure_drawn(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(simulated()))
    failed: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 480, "height": 900})  # a narrow window
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(page_path.as_uri(), wait_until="load")
        svgs = page.locator("figure svg")
        count = svgs.count()
        shots = [svgs.nth(i).screenshot() for i in range(count)]
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert failed == []
    assert count == len(make_figures(simulated())) >= 7
    for shot in shots:  # drawn: many colours, not a blank box
        image = Image.open(io.BytesIO(shot)).convert("RGB")
        assert image.width > 200 and image.height > 100
        assert len(image.getcolors(maxcolors=1 << 20) or []) > 20
    assert width <= 480 + 1  # figures shrink to the window; wide tables scroll inside themselves


def test_report_command_from_a_data_file_and_fits(tmp_path: Path) -> None:
    table = analysis.scaling_table(records())
    data = tmp_path / "curves.csv"
    table.to_csv(data, index=False)
    runner = CliRunner()
    fit = tmp_path / "paper-C.json"
    result = runner.invoke(
        app, ["fit", str(data), "--law", "paper", "--x", "C", "--json", str(fit)]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "report.md"
    result = runner.invoke(
        app, ["report", str(data), "--fit", str(fit), "--out", str(out), "--format", "md"]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## L against C per size" in text and "paper-C" in text
    assert (tmp_path / "out" / "report_files" / "figure-1.svg").exists()
    result = runner.invoke(app, ["report", str(tmp_path / "nothing"), "--out", str(out)])
    assert result.exit_code == 2 and "no such study folder or data file" in result.output
