"""Models for the RL tests: a random tiny Qwen2 (for exactness checks) and a briefly warm-started
micro-xs with its problem files (sampled answers sometimes right: GRPO has something to learn)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Qwen2ForCausalLM

from rlscale.data import Problem
from rlscale.models.build import encode, train_phase
from rlscale.models.ladder import RUNGS, Rung
from rlscale.models.tokenizer import char_tokenizer

WARM_STEPS = 300


@pytest.fixture()
def tiny_lm() -> tuple[Any, Any]:
    """A random 2-layer Qwen2 with the char tokenizer (fp32, CPU)."""
    torch.manual_seed(0)
    tok = char_tokenizer()
    rung = Rung("test", hidden=32, layers=2, heads=4, intermediate=64)
    config = rung.config(len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    config.initializer_range = 0.5  # spread-out logits: varied text, even when greedy
    model = Qwen2ForCausalLM(config)
    model.config._attn_implementation = "sdpa"
    return model, tok


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
    """micro-xs after a few seconds of SFT on sums of two digits: right some of the time, so
    sampled groups carry reward differences (the real ladder takes minutes to build)."""
    root = tmp_path_factory.mktemp("warm")
    rng = random.Random(0)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    train, holdout = digit_sums(pairs[:80]), digit_sums(pairs[80:])
    torch.manual_seed(0)
    tok = char_tokenizer()
    rung = RUNGS["micro-xs"]
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
