"""The error model's cost and estimates against an earlier revision's, on the same residuals.

The earlier `rlscale/fit/noise.py` is read from git (`--rev`, default 7b9dd83: before the size
offset) and imported beside today's. Each law is fitted once on a `paper-base` simulation (one
run a size, as in the README's main job); the residuals, Jacobian and runs of that fit are then
given to both `estimate_noise`s, interleaved in alternating order, `--repeats` times. Printed
per law: median milliseconds of each and their ratio, and the largest relative difference of
the noise estimates and unit covariances (with one run a size the two should agree to
rounding).

    python benchmarks/noise_vs_revision.py [--rev 7b9dd83] [--repeats 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import rlscale.fit.estimator as estimator_module
from rlscale.fit import noise
from rlscale.fit.estimator import LawFit
from rlscale.simulate import preset, simulate

CASES = {"paper": {"rho": 0.5}, "paper_e_sat": {"rho": 0.5, "run_noise": 0.02}}


def module_at(rev: str, folder: Path) -> ModuleType:
    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(
        ["git", "show", f"{rev}:src/rlscale/fit/noise.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "noise_then.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("noise_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["noise_then"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def arguments_of_a_fit(law: str, scenario: dict[str, float]) -> tuple[tuple, dict[str, Any]]:
    """What a fit of `law` passes to estimate_noise."""
    seen: dict[str, Any] = {}
    original = estimator_module.estimate_noise

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen["args"], seen["kwargs"] = args, kwargs
        return original(*args, **kwargs)

    estimator_module.estimate_noise = spy  # type: ignore[assignment]
    try:
        LawFit(law=law, x="C").fit(simulate(replace(preset("paper-base"), **scenario)))  # type: ignore[arg-type]
    finally:
        estimator_module.estimate_noise = original
    return seen["args"], seen["kwargs"]


def largest_difference(then: Any, now: Any) -> float:
    a = then[0].to_json()
    b = now[0].to_json()
    gaps = [abs(a[k] - b[k]) / max(abs(a[k]), 1e-300) for k in a if isinstance(a[k], float)]
    for x, y in zip(then[1:], now[1:3], strict=True):
        gaps.append(float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-300)))
    return max(gaps)


def timed(then_module: ModuleType, fit_args: tuple, kwargs: dict[str, Any], repeats: int) -> dict:
    """Seconds of each call and its last result, by "then" and "now"."""
    older = {k: v for k, v in kwargs.items() if k != "group"}
    calls = {
        "then": lambda: then_module.estimate_noise(*fit_args, **older),
        "now": lambda: noise.estimate_noise(*fit_args, **kwargs),
    }
    out: dict[str, Any] = {name: {"times": []} for name in calls}
    for repeat in range(repeats):
        # the order alternates: whichever ran second in a pair was measured slower here
        for name in ("then", "now") if repeat % 2 == 0 else ("now", "then"):
            start = time.perf_counter()
            out[name]["result"] = calls[name]()
            out[name]["times"].append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="7b9dd83")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        then_module = module_at(args.rev, Path(folder))
        print(f"estimate_noise at {args.rev} vs now, median of {args.repeats}, interleaved")
        for law, scenario in CASES.items():
            fit_args, kwargs = arguments_of_a_fit(law, scenario)
            got = timed(then_module, fit_args, kwargs, args.repeats)
            a, b = (1000 * float(np.median(got[k]["times"])) for k in ("then", "now"))
            gap = largest_difference(got["then"]["result"], got["now"]["result"])
            print(
                f"{law:<12} {fit_args[1].shape[0]} points: {a:.1f} ms then, {b:.1f} ms now "
                f"(x{b / a:.2f}); largest relative difference {gap:.1e}"
            )


if __name__ == "__main__":
    main()
