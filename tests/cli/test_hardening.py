"""The adversarial probe's cases (issue 20): each one a command that once crashed, hung, lied or
executed what it should not; now a clear one-line error, an honest result, or a refusal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
