"""The GRPO batch the micro-l benchmarks share (16 seeded addsub prompts × 8 rollouts of at most
32 new tokens) and their command line (--threads, --rounds). Imported by the scripts beside it."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from rlscale.data import generate
from rlscale.models.load import load_model
from rlscale.rl.evaluate import encode_prompt
from rlscale.rl.sampling import SamplingParams

PROMPTS, GROUP, MAX_NEW = 16, 8, 32
PARAMS = SamplingParams(GROUP, 1.0, 1.0, MAX_NEW)  # temperature 1, no top-p


def set_up(rounds: int) -> tuple[argparse.Namespace, Any, Any, list[list[int]]]:
    """(arguments, micro-l, its tokenizer, the batch's prompts), torch's threads set."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_model("micro-l")
    problems = generate("addsub", "train", PROMPTS, seed=3)
    return args, model, tok, [encode_prompt(tok, p.prompt) for p in problems]
