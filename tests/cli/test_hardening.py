"""The adversarial probe's cases (issue 20): each one a command that once crashed, hung, lied or
executed what it should not; now a clear one-line error, an honest result, or a refusal."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rlscale.cli import app

runner = CliRunner()


def flat_curves(path: Path) -> Path:
    rows = ["N,C,L,run"] + [
        f"{N:g},{step * 1e10 * N / 1e6:g},1.0,r{N:g}" for N in (1e6, 4e6) for step in range(1, 11)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("law", "code"), [("loglinear", 0), ("expdecay", 0), ("paper", 3)])
def test_a_flat_curve_fits_with_an_undefined_r2_and_never_crashes(
    tmp_path: Path, law: str, code: int
) -> None:
    out = tmp_path / "fit.json"
    result = runner.invoke(
        app, ["fit", str(flat_curves(tmp_path / "flat.csv")), "--law", law, "--json", str(out)]
    )
    assert result.exit_code == code, result.output
    assert "R² — (undefined: L never varies)" in result.output
    assert json.loads(out.read_text())["r2"] is None


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_busy_verifier_workers_die_with_their_parent(tmp_path: Path, sig: int) -> None:
    slow = tmp_path / "slow.jsonl"
    item = {"response": "so \\boxed{(x+1)^{100000}}", "answer": "(x+1)^{99999}"}
    slow.write_text((json.dumps(item) + "\n") * 2)
    cmd = [
        sys.executable,
        "-m",
        "rlscale",
        "verify",
        str(slow),
        "--timeout",
        "60",
        "--workers",
        "2",
    ]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 3:  # two busy, one spare
            workers = children(parent.pid)
            time.sleep(0.2)
        assert len(workers) >= 3, "the verifier's workers did not start"
        time.sleep(5)  # judging: past the workers' start-up, busy on the slow items
        os.kill(parent.pid, sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(alive, workers)):
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        parent.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-1"])
def test_verify_refuses_a_timeout_that_would_never_kill(tmp_path: Path, timeout: str) -> None:
    pairs = tmp_path / "p.jsonl"
    pairs.write_text('{"response": "\\\\boxed{1}", "answer": "1"}\n')
    result = runner.invoke(app, ["verify", str(pairs), "--timeout", timeout])
    assert result.exit_code == 2 and "--timeout" in result.output
    result = runner.invoke(app, ["verify", str(pairs), "--workers", "100000"])
    assert result.exit_code == 2 and "--workers 100000" in result.output


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated curves and their paper-law fit, as the probe started from."""
    folder = tmp_path_factory.mktemp("probe")
    result = runner.invoke(
        app, ["simulate", "--preset", "paper-base", "--out", str(folder / "curves.csv")]
    )
    assert result.exit_code == 0, result.output
    fit = ["fit", str(folder / "curves.csv"), "--law", "paper", "--json", str(folder / "fit.json")]
    assert runner.invoke(app, fit).exit_code == 0
    return folder


def one_line_error(result: Any, code: int, *parts: str) -> None:
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "unexpected" not in errors[0], result.output
    assert all(part in errors[0] for part in parts), errors[0]


def test_invalid_utf8_is_one_line_naming_the_file_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"response": "1", "answer": "1"}\n\xff\xfe bad\n')
    one_line_error(runner.invoke(app, ["verify", str(bad)]), 2, str(bad), "row 1", "UTF-8")
    summary = tmp_path / "summary.json"
    result = runner.invoke(app, ["data", "inspect", str(bad), "--json", str(summary)])
    assert result.exit_code == 2 and "UTF-8" in result.output and not summary.exists()
    csv = tmp_path / "bad.csv"
    csv.write_bytes(b"N,C,L\n\xff,1,0.5\n")
    one_line_error(runner.invoke(app, ["fit", str(csv)]), 2, str(csv))


def test_a_jsonl_line_that_is_not_an_object_names_its_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"N": 1e9, "C": 1e18, "L": 0.5}\n[1, 2, 3]\n')
    one_line_error(runner.invoke(app, ["fit", str(rows)]), 2, f"{rows}: line 2", "JSON list")


def damaged_fits(folder: Path) -> dict[str, Path]:
    good = json.loads((folder / "fit.json").read_text())
    cases: dict[str, Any] = {
        "Kmax missing": good | {"params": {"N0": good["params"]["N0"]}},
        "law swapped": good | {"law": "loglinear"},
        "not an object": [1, 2],
        "NaN": good | {"params": good["params"] | {"Kmax": math.nan}},
        "Kmax negative": good | {"params": good["params"] | {"Kmax": -1.0}},
        "unknown law": good | {"law": "chinchilla"},
        "k edited": good | {"per_N": {k: v | {"k": 2 * v["k"]} for k, v in good["per_N"].items()}},
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = folder / f"{name.replace(' ', '-')}.json"
        paths[name].write_text(json.dumps(content))
    return paths


def test_a_damaged_fit_json_is_refused_by_predict_and_plan_naming_the_file(probe: Path) -> None:
    for name, path in damaged_fits(probe).items():
        for command in (["predict", str(path), "--N", "7B", "--x", "1e21"],
                        ["plan", str(path), "--budget", "1e22"]):  # fmt: skip
            result = runner.invoke(app, command)
            one_line_error(result, 2, f"{path}:")
            assert "L " not in result.output.split("error:")[0], name  # nothing predicted


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (["--budget", "1e22", "--per-step", "0"], "--per-step must be a positive number"),
        (["--budget", "1e22", "--per-step", "-5"], "--per-step must be a positive number"),
        (["--budget", "1e22", "--per-step", "nan"], "--per-step must be a positive number"),
        (["--budget", "1"], "less than one step"),
    ],
)
def test_plan_refuses_budgets_and_step_costs_that_make_no_plan(
    probe: Path, args: list[str], part: str
) -> None:
    one_line_error(runner.invoke(app, ["plan", str(probe / "fit.json"), *args]), 2, part)


def test_repeated_rows_are_an_error_unless_dropped_with_dedupe(probe: Path, tmp_path: Path) -> None:
    lines = (probe / "curves.csv").read_text().splitlines()
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join(lines + lines[1:]) + "\n")
    n = len(lines) - 1
    one_line_error(
        runner.invoke(app, ["fit", str(twice)]), 2, f"row {n + 1} repeats row 1", "--dedupe"
    )
    out = tmp_path / "fit.json"
    result = runner.invoke(app, ["fit", str(twice), "--dedupe", "--json", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["n_points"] == n


def test_a_torn_last_line_is_dropped_as_the_run_store_does(probe: Path, tmp_path: Path) -> None:
    import pandas as pd

    records = pd.read_csv(probe / "curves.csv").to_dict(orient="records")
    steps = tmp_path / "steps.jsonl"
    steps.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"run": "N5e+08-s0", "N')
    out = tmp_path / "fit.json"
    result = runner.invoke(app, ["fit", str(steps), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n_points"] == len(records)


def test_sizes_written_with_suffixes_are_read_and_values_shown_as_written(
    probe: Path, tmp_path: Path
) -> None:
    lines = (probe / "curves.csv").read_text().splitlines()
    column = lines[0].split(",").index("N")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[column] = f"{float(row[column]) / 1e9:g}B"
    sized = tmp_path / "sized.csv"
    sized.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    assert runner.invoke(app, ["fit", str(sized)]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("N,C,L\n7B,1e18,0.9\n7B,2e18,\n")
    result = runner.invoke(app, ["fit", str(bad)])
    one_line_error(result, 2, "column 'L' row 2: non-finite value nan")
    assert "np." not in result.output
    missing = runner.invoke(app, ["fit", str(bad), "--x", "D"])
    one_line_error(missing, 2, "missing column 'D' (have: N, C, L)")


def test_a_column_missing_from_every_row_is_one_error_line(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "no-answers.parquet"
    pq.write_table(pa.table({"prompt": [f"what is {i} + 1?" for i in range(50)]}), path)
    result = runner.invoke(app, ["data", "inspect", str(path)])
    bad = [line for line in result.output.splitlines() if line.startswith("bad row")]
    assert result.exit_code == 2 and len(bad) == 1 and "(50 rows)" in bad[0]


def test_written_json_files_follow_the_umask(probe: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    previous = os.umask(0o022)
    try:
        assert (
            runner.invoke(app, ["fit", str(probe / "curves.csv"), "--json", str(out)]).exit_code
            == 0
        )
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_busy_run_folder_is_refused_before_the_model_is_loaded(tmp_path: Path) -> None:
    from rlscale.store import exclusive

    out = tmp_path / "run"
    with exclusive(out):  # a nonexistent model: refused for the lock, not for the model
        result = runner.invoke(app, ["train", "--model", str(tmp_path / "none"), "--out", str(out)])
    one_line_error(result, 2, "another process is using this run")
