"""One `paper` step's verification load at 1, 2 and all verifier workers.

The paper preset samples 512 prompts × 8 rollouts = 4,096 answers a step. Here: 4,096 model-style
responses to the MATH-500 golds (or synthetic sums without the shared data), a mix like a mid-run
batch — half right (the gold boxed after some working), a third wrong (the gold's last number
changed), the rest unparsable (cut off before any box, as a truncated response is). The worker
counts are measured interleaved, medians of `--rounds`; pool start-up is excluded (the trainer
starts its pool once). Printed: seconds per step's worth of answers, answers/s, and the speed-up
over one worker — what `verify_workers` (GRPOConfig; default the cores torch leaves spare)
buys.

Run: python benchmarks/verify_paper_load.py [--data ../shared/data/math] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from rlscale.verify import VerifierPool
from verify_throughput import responses  # beside this script

ANSWERS = 512 * 8


def golds(data: Path) -> list[str]:
    path = data / "math__math_500.parquet"
    if path.exists():
        import pandas as pd

        from rlscale.verify.answer import normalize_gold

        frame = pd.read_parquet(path)
        column = "answer" if "answer" in frame else frame.columns[-1]
        return [normalize_gold(str(a)) for a in frame[column]]
    return [str(a + b) for a in range(40) for b in range(13)]


def batch(pool_golds: list[str]) -> tuple[list[str], list[str]]:
    """4,096 (response, gold) pairs: 50% right, 33% wrong, 17% cut off before the answer."""
    texts, answers = [], []
    right, wrong = responses(pool_golds)
    for i in range(ANSWERS):
        g = i % len(pool_golds)
        kind = i % 6
        if kind < 3:
            texts.append(right[g])
        elif kind < 5:
            texts.append(wrong[g])
        else:
            texts.append("Working through the problem step by step.\nFirst we expand the")
        answers.append(pool_golds[g])
    return texts, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/math"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts, answers = batch(golds(args.data))
    counts = sorted({1, 2, os.cpu_count() or 1})
    pools = {w: VerifierPool(workers=w) for w in counts}
    seconds: dict[int, list[float]] = {w: [] for w in counts}
    try:
        for _ in range(args.rounds):
            for w, pool in pools.items():
                start = time.perf_counter()
                verdicts = pool.verify(zip(texts, answers, strict=True))
                seconds[w].append(time.perf_counter() - start)
        right = sum(v.kind == "correct" for v in verdicts)
    finally:
        for pool in pools.values():
            pool.close()
    print(f"{ANSWERS} answers a step ({right} judged correct); {os.cpu_count()} cores")
    base = statistics.median(seconds[1])
    for w in counts:
        s = statistics.median(seconds[w])
        print(f"{w} worker(s): {s:6.2f} s a step, {ANSWERS / s:7.0f} answers/s, {base / s:.2f}×")
    per_kind(texts, answers)


def per_kind(texts: list[str], answers: list[str], count: int = 300) -> None:
    """Answers/s of one worker on each kind alone: where a step's verification time goes."""
    kinds = {"right": (0, 1, 2), "wrong": (3, 4), "cut off": (5,)}
    with VerifierPool(workers=1) as pool:
        for name, members in kinds.items():
            chosen = [i for i in range(len(texts)) if i % 6 in members][:count]
            start = time.perf_counter()
            pool.verify([(texts[i], answers[i]) for i in chosen])
            rate = len(chosen) / (time.perf_counter() - start)
            print(f"1 worker, {name} answers alone: {rate:6.0f} answers/s")


if __name__ == "__main__":
    main()
