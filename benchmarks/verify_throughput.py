"""Answers per second: rlscale's isolated verifier pool against math-verify called directly.

Both grade the same 500 model-style responses (each holdout gold boxed at the end of a short
worked answer) and 500 wrong ones (the gold's last integer plus one). rlscale runs its pool with 2
worker processes, isolation on (kill on timeout, memory cap); math-verify runs in this process with
its defaults, `verify(parse(gold), parse(response))`, golds parsed once as rlscale caches them.
Pool start-up is timed separately. Printed: answers/s of each and the ratio, medians of 3 rounds.

Run: python benchmarks/verify_throughput.py [--data ../shared/data/math]
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import time
from pathlib import Path

import math_verify
import pandas as pd

from rlscale.verify import VerifierPool
from rlscale.verify.answer import normalize_gold

logging.getLogger("math_verify").setLevel(logging.ERROR)


def responses(golds: list[str]) -> tuple[list[str], list[str]]:
    right, wrong = [], []
    for g in golds:
        right.append(f"Working through the problem step by step.\nThus \\boxed{{{g}}}")
        digits = list(re.finditer(r"\d+", g))
        bad = (
            g + "+1"
            if not digits
            else (
                g[: digits[-1].start()] + str(int(digits[-1].group()) + 1) + g[digits[-1].end() :]
            )
        )
        wrong.append(f"Working through the problem step by step.\nThus \\boxed{{{bad}}}")
    return right, wrong


def direct(golds: list[str], texts: list[str]) -> float:
    parsed = {g: math_verify.parse(f"${g}$") for g in set(golds)}
    start = time.perf_counter()
    for g, text in zip(golds, texts, strict=True):
        math_verify.verify(parsed[g], math_verify.parse(text))
    return len(texts) / (time.perf_counter() - start)


def pooled(pool: VerifierPool, golds: list[str], texts: list[str]) -> float:
    start = time.perf_counter()
    pool.verify(zip(texts, golds, strict=True))
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "math")
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    df = pd.read_parquet(Path(args.data) / "math__full_difficulty_ordered_test_500.parquet")
    golds = [normalize_gold(str(r["ground_truth"])) for r in df["reward_model"]]
    right, wrong = responses(golds)
    start = time.perf_counter()
    with VerifierPool(workers=2, timeout=5.0) as pool:
        pool.verify([(r"\boxed{1}", "1")] * 2)
        print(f"pool start (2 workers + spare): {time.perf_counter() - start:.2f} s")
        for name, texts in (("correct", right), ("wrong", wrong)):
            ours, theirs = [], []
            for _ in range(args.rounds):  # interleaved, so both see the same machine
                theirs.append(direct(golds, texts))
                ours.append(pooled(pool, golds, texts))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(
                f"500 {name} answers: rlscale pool {a:.0f}/s, math-verify direct {b:.0f}/s, "
                f"ratio {a / b:.1f}x"
            )


if __name__ == "__main__":
    main()
