"""The verifier on the real 500-problem holdout, on hostile inputs, and as a concurrent service."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rlscale.verify import VerifierPool
from rlscale.verify.answer import exact_number, normalize_gold


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    with VerifierPool(workers=2, timeout=5.0) as p:
        yield p


@pytest.fixture(scope="module")
def golds(math_data: Path) -> list[str]:
    df = pd.read_parquet(math_data / "math__full_difficulty_ordered_test_500.parquet")
    return [str(r["ground_truth"]) for r in df["reward_model"]]


def model_style(answer: str) -> str:
    return f"Let me work through it step by step.\nSo the result follows.\n\\boxed{{{answer}}}"


def alternative_forms(gold: str) -> list[str]:
    """Other writings of the gold that the documented policy must accept."""
    g = normalize_gold(gold)
    value = exact_number(g)
    forms = []
    if value is not None and value.denominator == 1:
        n = int(value)
        forms.append(f"x = {n}")
        if abs(n) >= 1000:
            forms.append(f"{n:,}".replace(",", "{,}"))
    elif value is not None and re.fullmatch(r"-?\d+\.\d+", g):
        forms.append(g + "0")
    if re.fullmatch(r"-?\\frac\{\d+\}\{\d+\}", g):
        num, den = re.findall(r"\d+", g)
        forms.append(f"{'-' if g.startswith('-') else ''}{num}/{den}")
    if "\\frac" in g and "\\dfrac" not in g:
        forms.append(g.replace("\\frac", "\\dfrac"))
    if re.fullmatch(r"[A-E]", g):
        forms.append(f"({g})")
    if g.endswith("\\%") or g.endswith("^\\circ"):
        forms.append(g.removesuffix("\\%").removesuffix("^\\circ"))
    return forms


def wrong_answers(gold: str) -> list[str]:
    """Perturbations that change the value: last integer ±1, sign flips of numbers."""
    g = normalize_gold(gold)
    out = []
    digits = list(re.finditer(r"\d+", g))
    if digits:
        last = digits[-1]
        for delta in (1, -1):
            new = int(last.group()) + delta
            if new >= 0:
                out.append(g[: last.start()] + str(new) + g[last.end() :])
    value = exact_number(g)
    if value is not None and value != 0:
        out.append(str(-value))
    return out


def test_every_gold_in_its_own_box_is_correct(pool: VerifierPool, golds: list[str]) -> None:
    verdicts = pool.verify((model_style(normalize_gold(g)), g) for g in golds)
    wrong = [(g, v.kind) for g, v in zip(golds, verdicts, strict=True) if v.kind != "correct"]
    assert len(golds) == 500
    assert wrong == []


def test_equivalent_forms_are_correct(pool: VerifierPool, golds: list[str]) -> None:
    pairs = [(model_style(form), g) for g in golds for form in alternative_forms(g)]
    assert len(pairs) >= 400
    verdicts = pool.verify(pairs)
    missed = [
        (p[0][-60:], p[1]) for p, v in zip(pairs, verdicts, strict=True) if v.kind != "correct"
    ]
    assert missed == []


def test_perturbed_answers_are_never_accepted(pool: VerifierPool, golds: list[str]) -> None:
    pairs = [(model_style(w), g) for g in golds for w in wrong_answers(g)]
    big = [p for p in pairs if (v := exact_number(p[1])) is not None and abs(v) >= 10_000]
    assert len(big) >= 40  # 21 golds ≥ 10⁴, each ±1 and sign-flipped
    verdicts = pool.verify(pairs)
    accepted = [p for p, v in zip(pairs, verdicts, strict=True) if v.kind == "correct"]
    assert len(pairs) > 900
    assert accepted == []


ADVERSARIAL = [
    r"\boxed{9^{9^{9^{9}}}}",
    r"\boxed{(10^{7})!}",
    "1+" * 50_000 + "1",
    r"\boxed{" + r"\frac{1}{" * 500 + "2" + "}" * 1000,
    r"The answer is \boxed{",
    "".join(chr(0x2600 + (i * 7919) % 3000) for i in range(20_000)),
    "9^9^9^9",
]


def test_hostile_inputs_end_within_the_timeout_and_are_not_correct() -> None:
    timeout = 2.0
    with VerifierPool(workers=2, timeout=timeout) as pool:
        pool.verify([(r"\boxed{1}", "1")] * 2)  # started: the clock below is the items' own
        for text in ADVERSARIAL:
            start = time.perf_counter()
            (verdict,) = pool.verify([(text, "3")])
            assert time.perf_counter() - start <= timeout + 1.0, text[:40]
            assert verdict.kind != "correct"
        assert [v.kind for v in pool.verify([(r"\boxed{3}", "3"), (r"\boxed{4}", "3")])] == [
            "correct",
            "wrong",
        ]


def test_workers_run_under_the_memory_cap() -> None:
    with VerifierPool(workers=1, memory_bytes=300 << 20) as pool:
        assert pool.verify([(r"\boxed{3}", "3")])[0].kind == "correct"
        limits = Path(f"/proc/{pool.pids[0]}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3:5] == [str(300 << 20), str(300 << 20)]


def test_a_worker_that_dies_on_an_item_costs_only_that_item() -> None:
    with VerifierPool(workers=1, timeout=30.0) as pool:
        pool.verify([(r"\boxed{1}", "1")])
        victim = pool.pids[0]
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
        start = time.perf_counter()
        verdicts = pool.verify([(r"\boxed{9^{9^{9^{9}}}}", "3"), (r"\boxed{3}", "3")])
        assert time.perf_counter() - start < 5.0
        assert [v.kind for v in verdicts] == ["unparsable", "correct"]
        assert pool.pids[0] != victim


def test_usable_from_threads_with_results_in_input_order(pool: VerifierPool) -> None:
    results: dict[int, list[str]] = {}

    def work(k: int) -> None:
        pairs = [(rf"\boxed{{{k * 100 + i}}}", str(k * 100 + i + (i % 2))) for i in range(20)]
        results[k] = [v.kind for v in pool.verify(pairs)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = ["correct" if i % 2 == 0 else "wrong" for i in range(20)]
    assert results == {0: expected, 1: expected, 2: expected}
