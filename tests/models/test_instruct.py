"""Instruct rungs: names, the instruction template, a tiny build, the shipped rungs, the CLI."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.data import Problem, generate
from rlscale.data.synthetic import CHAIN_LEVELS
from rlscale.errors import InputError
from rlscale.models import build, count_params, load_model, model_info
from rlscale.models.build import BuildConfig, built_path, encode
from rlscale.models.instruct import (
    TEMPLATE,
    InstructConfig,
    build_instruct,
    instruct_built_path,
    instruct_dir,
    instruct_key,
)
from rlscale.models.ladder import (
    FAMILIES,
    LADDER,
    LADDER_NAMES,
    MAX_POSITIONS,
    RUNGS,
    family_of,
    ladder_name,
)
from rlscale.models.load import resolve
from rlscale.models.tokenizer import CHARS, char_tokenizer
from rlscale.rl.config import GRPOConfig
from rlscale.rl.evaluate import encode_prompt

TINY_BASE = BuildConfig(
    clean_steps=6, noisy_steps=2, batch=8, eval_problems=16, eval_samples=4, max_new_tokens=40
)
TINY = InstructConfig(
    base=TINY_BASE, steps=4, batch=8, warmup_steps=1, eval_problems=16, eval_samples=4,
    max_new_tokens=40,
)  # fmt: skip


def instruct_tokenizer() -> object:
    tok = char_tokenizer()
    tok.chat_template = TEMPLATE
    return tok


def test_every_rung_has_an_instruct_name_with_its_family_and_base() -> None:
    assert FAMILIES == ("base", "instruct") and len(LADDER_NAMES) == 2 * len(LADDER)
    for rung in LADDER:
        assert family_of(rung.name) == ("base", rung)
        assert family_of(f"{rung.name}-instruct") == ("instruct", rung)
        assert ladder_name(rung.name, "instruct") == f"{rung.name}-instruct"
    for other in ("micro-xxl-instruct", "micro-xs-Instruct", "runs/micro-xs", "-instruct"):
        assert family_of(other) is None


def test_template_uses_only_tokenizer_characters_and_fits_the_positions() -> None:
    tok = instruct_tokenizer()
    text = "Compute 12-7+30."
    ids = encode_prompt(tok, text)
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    rendered = tok.decode(ids)
    assert rendered == f"<s>{text} Solve step by step.\n"
    assert set(rendered.removeprefix("<s>")) <= set(CHARS)
    # The longest chains prompt: the most numbers of the most digits, joined by operators.
    longest = max(count * len(str(top)) + count - 1 for count, top in CHAIN_LEVELS)
    worst = encode_prompt(tok, "Compute " + "9" * longest + ".")
    assert len(worst) + GRPOConfig().max_new_tokens <= MAX_POSITIONS


def test_sft_rows_are_encode_prompts_ids_then_the_solution() -> None:
    """The SFT trains on the exact prompt ids GRPO and evaluation will feed the model, and on
    what the template renders for a whole conversation."""
    tok = instruct_tokenizer()
    problems = generate("chains", "train", 12, seed=4)
    ids, labels = encode(tok, problems, [str(p.solution) for p in problems])
    for row, label, p in zip(ids.tolist(), labels.tolist(), problems, strict=True):
        head = encode_prompt(tok, p.prompt)
        assert row[: len(head)] == head and set(label[: len(head)]) == {-100}
        chat = [{"role": "user", "content": p.prompt}, {"role": "assistant", "content": p.solution}]
        whole = tok.apply_chat_template(chat, tokenize=False)
        assert tok.decode([i for i in row if i != tok.pad_token_id]) == whole
        assert whole.endswith(f"{p.solution}</s>")


def test_config_is_validated_and_keyed_by_its_base_build() -> None:
    with pytest.raises(InputError, match="instruct steps must be >= 1"):
        InstructConfig(steps=0)
    with pytest.raises(InputError, match="lr_ratio must be positive"):
        InstructConfig(lr_ratio=0.0)
    rung = RUNGS["micro-s"]
    key = instruct_key(rung, InstructConfig())
    assert instruct_key(rung, replace(InstructConfig(), steps=7)) != key
    assert instruct_key(rung, InstructConfig(base=TINY_BASE)) != key
    assert InstructConfig.from_dict(TINY.to_dict()) == TINY
    assert TINY.lr(rung) == pytest.approx(TINY_BASE.lr(rung) * TINY.lr_ratio)


def test_tiny_build_makes_its_base_first_then_is_reused(cache: Path) -> None:
    rung = RUNGS["micro-xs"]
    assert built_path(rung, TINY_BASE) is None
    partial = instruct_dir(rung, TINY)  # a killed build's leftovers are not used
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    assert instruct_built_path(rung, TINY) is None
    shutil.rmtree(partial)
    first = build_instruct(rung, TINY)
    base = json.loads((build.build_dir(rung, TINY_BASE) / "build.json").read_text())
    assert first["reused"] is False and first["name"] == "micro-xs-instruct"
    assert (first["family"], first["N"], first["key"]) == ("instruct", base["N"], first["key"])
    for name in ("key", "pass1_error", "pass1_error_se", "pass4_error", "greedy_error"):
        assert first["base"][name] == base[name]
    assert sum(v["problems"] for v in first["by_difficulty"].values()) == TINY.eval_problems
    again = build_instruct(rung, TINY)
    assert again["reused"] is True and again["key"] == first["key"]
    path = instruct_built_path(rung, TINY)
    assert path == instruct_dir(rung, TINY)
    model, tok = load_model(str(path))
    assert tok.chat_template == TEMPLATE and count_params(model)[0] == base["N"]
    assert encode_prompt(tok, "Compute 1+2.") == encode_prompt(instruct_tokenizer(), "Compute 1+2.")


def test_instruct_names_resolve_to_the_shipped_builds(cache: Path) -> None:
    for rung in LADDER:
        name = f"{rung.name}-instruct"
        assert resolve(name) == build.SHIPPED / name
    info = model_info("micro-m-instruct")
    assert (info["N"], info["weights"]) == (model_info("micro-m")["N"], True)
    _, tok = load_model("micro-xs-instruct")
    assert tok.chat_template == TEMPLATE
    assert tok.padding_side == "left"
    assert encode_prompt(tok, "Compute 1+2.") == encode_prompt(instruct_tokenizer(), "Compute 1+2.")


def shipped(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((build.SHIPPED / name / "build.json").read_text())
    return data


def test_shipped_instruct_rungs_start_better_than_their_base_with_room_to_learn() -> None:
    """Both figures come from the same 512 held-out problems; the difference must exceed twice
    its standard error taken as unpaired (conservative: pairing only shrinks it)."""
    for rung in LADDER:
        inst, base = shipped(f"{rung.name}-instruct"), shipped(rung.name)
        assert inst["key"] == instruct_key(rung, InstructConfig())
        assert inst["config"] == InstructConfig().to_dict()
        assert inst["base"]["key"] == base["key"]  # type: ignore[index]
        assert inst["base"]["pass1_error"] == base["pass1_error"]  # type: ignore[index]
        gap = float(base["pass1_error"]) - float(inst["pass1_error"])  # type: ignore[arg-type]
        se = math.hypot(float(base["pass1_error_se"]), float(inst["pass1_error_se"]))  # type: ignore[arg-type]
        assert gap > 2 * se, rung.name
        # not saturated: sampling still fails where some sample succeeds (GRPO's signal)
        assert float(inst["pass1_error"]) > float(inst["pass8_error"]) + 0.1  # type: ignore[arg-type]


def test_models_list_shows_both_families(cache: Path) -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json", "-"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == list(LADDER_NAMES)
    assert {r["family"] for r in rows} == set(FAMILIES)
    by_name = {r["name"]: r for r in rows}
    for rung in LADDER:
        inst, base = by_name[f"{rung.name}-instruct"], by_name[rung.name]
        assert (inst["base"], inst["N"], inst["built"]) == (rung.name, base["N"], True)
    text = CliRunner().invoke(app, ["models", "list"]).output
    assert "micro-xl-instruct   instruct" in text


def test_bad_family_is_a_one_line_error_listing_the_families() -> None:
    result = CliRunner().invoke(app, ["models", "build-micro", "--family", "chat"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --family 'chat': unknown family; the families are base, instruct"
    )


def test_build_micro_family_instruct_runs_workers_and_reports(cache: Path) -> None:
    args = ["models", "build-micro", "--family", "instruct", "--sizes", "micro-xs"]
    tiny = ["--clean-steps", "4", "--noisy-steps", "1", "--instruct-steps", "3", "--batch", "8",
            "--eval-problems", "8", "--json", str(cache / "ladder.json")]  # fmt: skip
    result = CliRunner().invoke(app, args + tiny)
    assert result.exit_code == 0, result.output
    assert "building the base rung first: micro-xs" in result.output
    (row,) = json.loads((cache / "ladder.json").read_text())
    assert (row["name"], row["family"], row["reused"]) == ("micro-xs-instruct", "instruct", False)
    assert "base pass@1 err" in result.output
    again = CliRunner().invoke(app, args + tiny)
    assert again.exit_code == 0 and "reused" in again.output
    assert "building the base rung first" not in again.output


def test_grpo_trains_an_instruct_rung_on_templated_prompts(cache: Path) -> None:
    out = cache / "run"
    settings = ["prompts_per_step=4", "group_size=4", "eval_problems=8", "eval_samples=2"]
    args = ["train", "--model", "micro-xs-instruct", "--out", str(out), "--steps", "2",
            "--threads", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args + [a for s in settings for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2] and records[0]["model"] == "micro-xs-instruct"
    # Rollout prompts carry the template: longer than the bare format's <s> + prompt + ' '.
    longest_bare = 2 + max(len(p.prompt) for p in generate("chains", "train", 200, seed=1))
    assert records[1]["tokens_prompt"] / (4 * 4) > longest_bare


def pass_fractions(name: str, problems: list[Problem], samples: int) -> list[float]:
    """Each problem's fraction of correct samples at temperature 1, through GRPO's own sampler
    and prompt encoding (the template for an instruct rung)."""
    from rlscale.rl.evaluate import rewards_for
    from rlscale.rl.rollout import TorchSampler
    from rlscale.rl.sampling import SamplingParams
    from rlscale.verify import VerifierPool

    model, tok = load_model(name)
    prompts = [encode_prompt(tok, p.prompt) for p in problems]
    sampled = TorchSampler(model, tok).sample(prompts, SamplingParams(samples, 1.0, 1.0, 96), 5)
    golds = [p.answer for p in problems for _ in range(samples)]
    with VerifierPool(workers=1) as pool:
        rewards = rewards_for(pool, [c.text for c in sampled], golds)
    return [sum(rewards[i * samples : (i + 1) * samples]) / samples for i in range(len(problems))]


@pytest.mark.slow
def test_live_evaluation_confirms_the_instruct_rung_starts_better(cache: Path) -> None:
    """A fresh measurement, not build.json's: micro-m and micro-m-instruct sampled on the same
    128 held-out problems; the paired per-problem difference must exceed three standard errors."""
    problems = generate("chains", "holdout", 128, seed=10_000)
    base = pass_fractions("micro-m", problems, 8)
    inst = pass_fractions("micro-m-instruct", problems, 8)
    diffs = [i - b for i, b in zip(inst, base, strict=True)]
    mean = sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    assert mean > 3 * se, (mean, se)
