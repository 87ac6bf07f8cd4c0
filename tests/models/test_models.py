"""The micro ladder, the tokenizer, loading and counting, and a tiny warm-start build."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.data import generate
from rlscale.errors import InputError
from rlscale.models import LADDER, build, count_params, load_model, model_info
from rlscale.models.build import BuildConfig, build_dir, build_rung, built_path, corrupt
from rlscale.models.ladder import LADDER_NAMES, RUNGS
from rlscale.models.tokenizer import char_tokenizer
from rlscale.verify.judge import judge
from tests.models.test_flops import N_TOTAL as QWEN_N_TOTAL
from tests.models.test_flops import N as QWEN_N

TINY = BuildConfig(
    clean_steps=6,
    noisy_steps=2,
    batch=8,
    eval_problems=16,
    eval_samples=4,
    max_new_tokens=40,
)


def test_char_tokenizer_round_trips_through_save_and_load(tmp_path: Path) -> None:
    tok = char_tokenizer()
    text = "Compute 12-7+30. 12-7=5. 5+30=35. \\boxed{35}"
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.encode(text) == ids and again.decode(ids) == text
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id) == (0, 1, 2)


def test_ladder_is_qwen2_with_five_sizes_over_more_than_100x() -> None:
    tok = char_tokenizer()
    sizes = []
    for rung in LADDER:
        with torch.device("meta"):
            model = Qwen2ForCausalLM(rung.config(len(tok), 1, 2, 0))
        assert type(model).__name__ == "Qwen2ForCausalLM"
        sizes.append(count_params(model)[0])
    assert sizes == sorted(sizes) and len(sizes) >= 5
    assert sizes[-1] / sizes[0] >= 100


def test_count_params_by_hand_on_a_qwen25_05b_config(tmp_path: Path) -> None:
    config = Qwen2Config(
        hidden_size=896,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        intermediate_size=4864,
        vocab_size=151_936,
        tie_word_embeddings=True,
    )
    config.save_pretrained(tmp_path)  # a config only: no weights
    info = model_info(str(tmp_path))
    assert (info["N"], info["N_total"]) == (QWEN_N, QWEN_N_TOTAL)
    assert (info["layers"], info["hidden"], info["heads"], info["kv_heads"], info["vocab"]) == (
        24,
        896,
        14,
        2,
        151_936,
    )
    assert info["weights"] is False
    result = CliRunner().invoke(app, ["models", "info", str(tmp_path), "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["N"] == QWEN_N


def test_untied_output_projection_counts_as_embedding() -> None:
    config = Qwen2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=64,
        vocab_size=100,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        n, n_total = count_params(Qwen2ForCausalLM(config))
    assert n_total - n == 2 * 100 * 32


def test_corrupted_solutions_have_one_off_by_one_step_and_stay_consistent() -> None:
    rng = random.Random(0)
    for p in generate("chains", "train", 50, seed=3):
        wrong = corrupt(p, rng)
        assert judge(wrong, p.answer) == "wrong"
        steps = [s for s in wrong.split(". ") if "=" in s]
        bad = 0
        for step in steps:
            left, value = step.rstrip(".").split("=")
            bad += int(eval_step(left)) != int(value)
        assert bad == 1


def eval_step(expr: str) -> int:
    """a+b or a-b with a possibly negative a (the test's own tiny parser, no eval)."""
    for i in range(len(expr) - 1, 0, -1):
        if expr[i] in "+-" and expr[i - 1].isdigit():
            a, b = int(expr[:i]), int(expr[i + 1 :])
            return a + b if expr[i] == "+" else a - b
    raise ValueError(expr)


def test_build_reuses_the_cache_and_never_a_half_written_entry(cache: Path) -> None:
    rung = RUNGS["micro-xs"]
    # A half-written entry (no build.json) from a killed build is not used...
    partial = build_dir(rung, TINY)
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    assert built_path(rung, TINY) is None
    shutil.rmtree(partial)
    first = build_rung(rung, TINY)
    assert first["reused"] is False and first["N"] == 33_120
    assert first["lr"] == pytest.approx(TINY.lr_width / rung.hidden)
    levels = first["by_difficulty"]  # the holdout's levels, each with its own errors
    assert sum(v["problems"] for v in levels.values()) == TINY.eval_problems
    for key in ("greedy_error", "pass1_error", "pass4_error", "pass1_error_se"):
        assert 0.0 <= first[key] <= 1.0
    again = build_rung(rung, TINY)
    assert again["reused"] is True and again["key"] == first["key"]
    model, tok = load_model(str(built_path(rung, TINY)))
    assert count_params(model) == (first["N"], first["N_total"])
    info = model_info(str(built_path(rung, TINY)))
    assert (info["N"], info["layers"], info["hidden"], info["weights"]) == (33_120, 2, 32, True)
    text = "Compute 12-7+30. 12-7=5. 5+30=35. \\boxed{35}"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_build_micro_cli_runs_workers_and_reports(cache: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "models",
            "build-micro",
            "--sizes",
            "micro-xs",
            "--clean-steps",
            "4",
            "--noisy-steps",
            "1",
            "--batch",
            "8",
            "--eval-problems",
            "8",
            "--json",
            str(cache / "ladder.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((cache / "ladder.json").read_text())
    assert [r["name"] for r in rows] == ["micro-xs"] and "pass8_error" in rows[0]
    assert "micro-xs" in result.output and "pass@8 err" in result.output


def test_unknown_rung_and_unbuilt_name_are_clear_errors(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(app, ["models", "build-micro", "--sizes", "micro-xxl"])
    assert result.exit_code == 2 and "unknown rung(s) micro-xxl" in result.output
    monkeypatch.setattr(build, "SHIPPED", cache / "nothing-shipped")
    with pytest.raises(InputError, match="not built yet"):
        load_model("micro-l")
    with pytest.raises(InputError, match="build-micro --family instruct --sizes micro-l"):
        load_model("micro-l-instruct")
    result = CliRunner().invoke(app, ["models", "list", "--json", "-"])
    assert [r["built"] for r in json.loads(result.output)] == [False] * len(LADDER_NAMES)


def test_shipped_weights_are_the_default_build_of_every_rung(cache: Path) -> None:
    """With an empty cache each rung loads from the package, and only while the shipped build
    is the one today's default settings would make (same key)."""
    result = CliRunner().invoke(app, ["models", "list", "--json", "-"])
    rows = json.loads(result.output)
    assert all(r["built"] and Path(r["path"]).parent == build.SHIPPED for r in rows)
    for rung in LADDER:
        shipped = json.loads((build.SHIPPED / rung.name / "build.json").read_text())
        assert shipped["key"] == build.build_key(rung, BuildConfig())
        assert shipped["config"] == asdict(BuildConfig())
    model, _ = load_model("micro-m")
    assert (
        count_params(model)[0]
        == json.loads((build.SHIPPED / "micro-m" / "build.json").read_text())["N"]
    )
    assert build.shipped_path(RUNGS["micro-m"], TINY) is None  # other settings: not shipped
