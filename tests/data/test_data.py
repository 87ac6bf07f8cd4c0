from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.data import (
    DataError,
    curriculum_order,
    find_overlap,
    generate,
    load_problems,
    prompt_sequence,
    read_problems,
    reuse_pool,
    reuse_subset,
)
from rlscale.data.inspect import answer_type
from rlscale.data.synthetic import WORKING_HOLDOUT, in_holdout
from rlscale.errors import InputError
from rlscale.verify.judge import judge

HOLDOUT = "math__full_difficulty_ordered_test_500.parquet"
TAU25 = "math__sampled_1_25_2048.parquet"


def test_verl_parquet_holdout(math_data: Path) -> None:
    problems = load_problems(math_data / HOLDOUT)
    assert len(problems) == 500
    first = problems[0]
    assert first.prompt.startswith("You are a knowledgeable math assistant.")
    assert first.answer == r"-\frac{1}{4} + \frac{\sqrt{3}}{2}"
    assert first.difficulty == pytest.approx(1 - 0.625)  # 1 − qwen2.5_7b_pass_rate
    assert first.source == "math__deepscaler_preview"
    assert len({p.id for p in problems}) == 500


def test_curriculum_order_is_easy_to_hard_and_stable(math_data: Path) -> None:
    problems = load_problems(math_data / TAU25)
    ordered = curriculum_order(problems)
    assert [p.difficulty for p in ordered] == sorted(p.difficulty or 0 for p in problems)
    # The shipped file is already in curriculum order: stable sorting keeps it as it is.
    assert ordered == problems


def test_no_overlap_between_the_training_subset_and_the_holdout(math_data: Path) -> None:
    train, holdout = load_problems(math_data / TAU25), load_problems(math_data / HOLDOUT)
    assert find_overlap(train, holdout) == []
    assert find_overlap(holdout[:3], holdout) == [(p.id, p.id) for p in holdout[:3]]


def test_reuse_pool_keeps_proportions_order_and_counts(math_data: Path) -> None:
    problems = load_problems(math_data / TAU25)
    sequence = reuse_subset(problems, total=1024, tau=8, seed=3)
    pool = reuse_pool(problems, total=1024, tau=8, seed=3)
    assert len(sequence) == 1024 and len(pool) == 128 and len({p.id for p in pool}) == 128
    assert all(sequence.count(p) == 8 for p in pool[:5])
    assert [p.difficulty for p in pool] == sorted(p.difficulty or 0 for p in pool)
    hard = sum((p.difficulty or 0) >= 0.9 for p in problems) / len(problems)
    assert sum((p.difficulty or 0) >= 0.9 for p in pool) / len(pool) == pytest.approx(
        hard, abs=0.05
    )
    assert reuse_pool(problems, 1024, 8, seed=3) == pool
    assert reuse_pool(problems, 1024, 8, seed=4) != pool


def test_nested_pools_contain_the_smaller_ones(math_data: Path) -> None:
    problems = load_problems(math_data / TAU25)
    pools = [{p.id for p in reuse_pool(problems, 2000, tau, nested=True)} for tau in (25, 10, 4)]
    assert pools[0] <= pools[1] <= pools[2]
    with pytest.raises(InputError, match="needs 1 to 2048"):
        reuse_pool(problems, 10_000, 2)


def test_malformed_rows_name_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    rows = [
        {"prompt": "1+1?", "answer": "2"},
        {"prompt": "2+2?"},
        {"prompt": 5, "answer": "3"},
        {"prompt": "3+3?", "answer": "6", "pass_rate": 1.5},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert f"{path}: row 1: no answer" in str(info.value)
    assert "and 2 more bad rows" in str(info.value)
    problems, errors = read_problems(path)
    assert [p.answer for p in problems] == ["2"]
    assert [e.split(":")[1].strip() for e in errors] == ["row 1", "row 2", "row 3"]
    assert "difficulty in [0, 1], got -0.5" in errors[2]


def test_hugging_face_dataset_directory(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the 'hf' extra is part of 'test'")
    rows = {
        "problem": ["What is 2+3?", "What is 7*6?"],
        "answer": ["5", "42"],
        "pass_rate": [0.75, 0.25],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    problems = load_problems(tmp_path / "ds")
    assert [(p.prompt, p.answer, p.difficulty) for p in problems] == [
        ("What is 2+3?", "5", 0.25),
        ("What is 7*6?", "42", 0.75),
    ]


def test_synthetic_tasks_are_seeded_disjoint_and_self_consistent() -> None:
    train = load_problems("synth:arith?split=train&n=400&seed=1")
    assert train == load_problems("synth:arith?split=train&n=400&seed=1")
    assert train != load_problems("synth:arith?split=train&n=400&seed=2")
    holdout = generate("arith", "holdout", 200, seed=1)
    assert find_overlap(train, holdout) == []
    assert find_overlap(generate("arith", "train", 400, seed=9), holdout) == []
    assert {p.difficulty for p in train} == {0.0, 1 / 3, 2 / 3, 1.0}
    for p in train[:50] + generate("linear", "train", 50, seed=0):
        assert p.solution is not None
        assert judge(p.solution, p.answer) == "correct"
    with pytest.raises(InputError, match="unknown synthetic task 'geometry'"):
        load_problems("synth:geometry?n=3")


def test_the_sealed_holdout_shares_no_problem_with_the_working_one_or_train() -> None:
    sealed = load_problems("synth:chains?split=sealed&n=512&seed=0")
    assert sealed == load_problems("synth:chains?split=sealed&n=512&seed=0")
    working = generate("chains", "holdout", *WORKING_HOLDOUT)
    assert len(sealed) == 512 and find_overlap(sealed, working) == []
    assert find_overlap(generate("chains", "train", 2000, seed=1000), sealed) == []
    assert all(in_holdout(p.prompt) for p in sealed)  # the holdout's distribution
    with pytest.raises(InputError, match="split must be one of train, holdout, sealed"):
        load_problems("synth:chains?split=test&n=3")


def test_shuffled_reuse_keeps_the_difficulty_mix_that_curriculum_reuse_cycles() -> None:
    problems = generate("chains", "train", 3200, seed=3)

    def late_minus_early(sequence: list) -> float:
        quarter = len(sequence) // 4
        mean = [
            sum(p.difficulty for p in part) / quarter
            for part in (sequence[:quarter], sequence[-quarter:])
        ]
        return mean[1] - mean[0]

    ordered = [late_minus_early(prompt_sequence(problems, 3200, t, True, 0)) for t in (1, 25)]
    assert ordered[0] > 0.5 and abs(ordered[1]) < 0.1  # τ = 1 ends hard, τ = 25 cycles
    shuffled = [late_minus_early(prompt_sequence(problems, 3200, t, False, 0)) for t in (1, 25)]
    assert all(abs(d) < 0.1 for d in shuffled)


def test_answer_types_of_the_holdout(math_data: Path) -> None:
    types = [answer_type(p.answer) for p in load_problems(math_data / HOLDOUT)]
    assert types.count("integer") >= 331 and types.count("letter") == 9
    assert answer_type(r"\\frac{7\\pi}{12}") == "closed form"
    assert answer_type("0.375") == "decimal" and answer_type(r"\frac{1}{24}") == "fraction"


def test_data_inspect_cli_lists_every_bad_row(tmp_path: Path, math_data: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "inspect", str(math_data / HOLDOUT), "--json", "-"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 500 and summary["bad_rows"] == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n{"answer": "b"}\n{"prompt": "c", "answer": "d"}\n')
    result = runner.invoke(app, ["data", "inspect", str(bad)])
    assert result.exit_code == 2
    assert "row 0: no answer" in result.output and "row 1: no prompt" in result.output
