"""A stand-in for `python3 -m verl.trainer.main_ppo` (verl needs GPUs): it reads the same Hydra
overrides and data files and writes a verl file-logger log to $VERL_FILE_LOGGER_PATH, as verl
does — validation at step 0, every test_freq steps and at the last step; token counts from the
training file's rows; a checkpoint every save_freq steps that a restart resumes from.

FAKE_VERL_CRASH_AT=K makes the first attempt die after step K (a marker in the checkpoint
folder remembers the crash), so the next attempt resumes from the last checkpoint and logs the
steps after it again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd


def overrides(argv: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in argv if "=" in arg)


def first(value: str) -> str:
    return value.strip("[]").split(",")[0].strip("'")


def main() -> None:
    o = overrides(sys.argv[1:])
    batch, n = int(o["data.train_batch_size"]), int(o["actor_rollout_ref.rollout.n"])
    steps, test_freq = int(o["trainer.total_training_steps"]), int(o["trainer.test_freq"])
    save_freq = int(o["trainer.save_freq"])
    train = pd.read_parquet(first(o["data.train_files"]))
    if len(train) < steps * batch:
        sys.exit(f"train file has {len(train)} rows, fewer than {steps} × {batch}")
    sources = [pd.read_parquet(p.strip("'"))["data_source"].iloc[0]
               for p in o["data.val_files"].strip("[]").split(",")]  # fmt: skip
    ckpt = Path(o["trainer.default_local_dir"])
    ckpt.mkdir(parents=True, exist_ok=True)
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    start = int(tracker.read_text()) if tracker.exists() else 0
    crash_at = int(os.environ.get("FAKE_VERL_CRASH_AT", "-1"))
    crashed = ckpt / "crashed-once"
    # verl opens its log with "wb" too: a restart truncates it
    log = open(os.environ["VERL_FILE_LOGGER_PATH"], "wb", buffering=0)  # noqa: SIM115

    def write(step: int, data: dict[str, float]) -> None:
        log.write(json.dumps({"step": step, "data": data}).encode() + b"\n")

    def validation(step: int) -> dict[str, float]:
        score = 0.2 + 0.5 * (1 - (1 + step) ** -0.3)  # rises with training
        return {f"val-core/{s}/acc/mean@1": score - 0.05 * i for i, s in enumerate(sources)}

    if start == 0:
        write(0, validation(0))
    for step in range(start + 1, steps + 1):
        rows = train.iloc[(step - 1) * batch : step * batch]
        prompt_tokens = sum(len(p[0]["content"]) // 4 + 1 for p in rows["prompt"])
        response = 40.0 + step
        data = {"perf/total_num_tokens": float(n * prompt_tokens + n * batch * response)}
        data |= {"critic/score/mean": 0.3, "response_length/mean": response, "actor/lr": 1e-6}
        if step % test_freq == 0 or step == steps:
            data |= validation(step)
        write(step, data)
        if step % save_freq == 0:
            tracker.write_text(str(step))
        if step == crash_at and not crashed.exists():
            crashed.touch()
            os._exit(1)
    log.close()


if __name__ == "__main__":
    main()
