from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

from rlscale.data import Problem
from rlscale.simulate import preset, simulate

WARM_STEPS = 300


@pytest.fixture(scope="session")
def paper_base() -> pd.DataFrame:
    """The paper's all-size Base fit on C, simulated with noise 0.01 (seed 0)."""
    return simulate(preset("paper-base"))


def paper_base_seed(seed: int) -> pd.DataFrame:
    return simulate(replace(preset("paper-base"), seed=seed))


SHARED_MATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math"


@pytest.fixture(scope="session")
def math_data() -> Path:
    """The real problem sets beside the checkout (see its README)."""
    if not (SHARED_MATH / "math__full_difficulty_ordered_test_500.parquet").exists():
        message = f"the shared math data is not at {SHARED_MATH}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI lays shared/ beside the checkout)")
        pytest.skip(message)
    return SHARED_MATH


def digit_sums(pairs: list[tuple[int, int]]) -> list[Problem]:
    return [
        Problem(
            f"sum-{a}-{b}",
            f"Compute {a}+{b}.",
            str(a + b),
            None,
            "test:sums",
            f"{a}+{b}={a + b}. \\boxed{{{a + b}}}",
        )
        for a, b in pairs
    ]


@dataclass(frozen=True)
class WarmModel:
    """A model directory and the JSONL problem files it was warm-started for."""

    path: Path
    train: Path
    holdout: Path


@pytest.fixture(scope="session")
def warm_model(tmp_path_factory: pytest.TempPathFactory) -> WarmModel:
    """A 33k-parameter Qwen2 after a few seconds of SFT on sums of two digits: right some of
    the time, so sampled groups carry reward differences (the real ladder takes minutes)."""
    root = tmp_path_factory.mktemp("warm")
    rng = random.Random(0)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    train, holdout = digit_sums(pairs[:80]), digit_sums(pairs[80:])
    import torch
    from transformers import Qwen2ForCausalLM

    from rlscale.models.build import encode, train_phase
    from rlscale.models.ladder import Rung
    from rlscale.models.tokenizer import char_tokenizer

    torch.manual_seed(0)
    tok = char_tokenizer()
    rung = Rung("warm", hidden=32, layers=2, heads=4, intermediate=128)
    model = Qwen2ForCausalLM(
        rung.config(len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    )
    batches = []
    for _ in range(WARM_STEPS):
        chunk = rng.choices(train, k=32)
        batches.append(encode(tok, chunk, [str(p.solution) for p in chunk]))
    train_phase(model, batches, lr=3e-3, warmup=10, phase="warm", progress=None)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    for name, problems in (("train", train), ("holdout", holdout)):
        rows = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in problems]
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return WarmModel(root / "model", root / "train.jsonl", root / "holdout.jsonl")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_ray_head(dashboard: bool) -> Iterator[tuple[str, str]]:
    """A real Ray head on 127.0.0.1 with 2 CPUs: (GCS address, dashboard URL or ""); stopped
    and its temp dir removed after. The dashboard serves Ray's job submission API."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    port, web = free_port(), free_port()
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}
    start = [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
    start += ["--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp}", "--disable-usage-stats"]
    if dashboard:
        start += ["--include-dashboard=true", "--dashboard-host=127.0.0.1"]
        start += [f"--dashboard-port={web}"]
    else:
        start += ["--include-dashboard=false"]
    subprocess.run(start, check=True, env=env, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{web}" if dashboard else ""
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
