"""What each tracker shows for a micro run: `rlscale train --report-to wandb,mlflow,tensorboard`
on micro-xs for a few steps, offline (W&B offline mode, an MLflow file store, TensorBoard event
files, all in a temp folder), read back with each tracker's own reader (tests/integrations/
readers.py), printing per tracker the series it holds, their steps, the config and the summary.

Run: pip install -e '.[test]'; python benchmarks/tracker_series.py [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' readers

from tests.integrations.readers import (
    mlflow_client,
    read_wandb_runs,
    tensorboard_scalars,
    tensorboard_text,
)


def train(out: Path, steps: int, trackers: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    env |= {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env |= {f"WANDB_{d}_DIR": str(out.parent / f"wandb-{d}") for d in ("CONFIG", "CACHE", "DATA")}
    cmd = [sys.executable, "-m", "rlscale", "train", "--model", "micro-xs", "--out", str(out)]
    cmd += ["--steps", str(steps), "--threads", "1", "--set", "prompts_per_step=8"]
    cmd += ["--set", "eval_every=2", "--set", "eval_problems=64"]
    if trackers:
        cmd += ["--report-to", trackers]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = train(Path(tmp) / "bare", args.steps, "")
        out = Path(tmp) / "run"
        tracked = train(out, args.steps, "wandb,mlflow,tensorboard")
        print(f"rlscale train, {args.steps} steps: {bare:.1f} s alone, {tracked:.1f} s reporting")
        print("to all three trackers (process start to end, model loading included)\n")

        run = read_wandb_runs(out / "wandb")["run"]
        series = sorted({k for row in run.history for k in row if not k.startswith("_")})
        steps = sorted({int(row["_step"]) for row in run.history})
        print(f"W&B (offline run {run.id}, project {run.project}): steps {steps}")
        print(f"  {len(series)} series: {', '.join(series)}")
        print(f"  config: {', '.join(sorted(k for k in run.config if k != '_wandb'))}")
        summary = sorted(k for k in run.summary if k.startswith("summary/"))
        print(f"  summary: {', '.join(summary)}\n")

        client = mlflow_client((out / "mlruns").resolve().as_uri())
        experiment = client.get_experiment_by_name("rlscale")
        (found,) = client.search_runs([experiment.experiment_id])
        metrics = sorted(k for k in found.data.metrics if not k.startswith("summary/"))
        print(f"MLflow (experiment rlscale, run {found.info.run_name}, {found.info.status}):")
        print(f"  {len(metrics)} metrics: {', '.join(metrics)}")
        print(f"  {len(found.data.params)} params, e.g. {', '.join(sorted(found.data.params)[:8])}")
        print(f"  summary metrics: {', '.join(sorted(set(found.data.metrics) - set(metrics)))}")
        artifacts = [a.path for a in client.list_artifacts(found.info.run_id)]
        print(f"  artifacts: {', '.join(artifacts)}\n")

        scalars = tensorboard_scalars(out / "tensorboard")
        tags = sorted(t for t in set(scalars["tag"]) if not t.startswith("summary/"))
        print(f"TensorBoard (tensorboard/{sorted(set(scalars['dir_name']))[0]}/):")
        print(f"  {len(tags)} scalars: {', '.join(tags)}")
        print(f"  text: {', '.join(sorted(set(tensorboard_text(out / 'tensorboard')['tag'])))}")


if __name__ == "__main__":
    main()
