"""GRPOConfig: validation with fixes in the message, presets, YAML and --set overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlscale.errors import InputError
from rlscale.rl.config import PRESETS, GRPOConfig, load_config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group_size": 0}, "group_size must be an integer >= 1"),
        ({"prompts_per_step": 30, "mini_batches": 4}, "multiple of mini_batches"),
        ({"lr": 0.0}, "lr and grad_clip must be > 0"),
        ({"betas": (0.9, 1.0)}, "betas must lie in [0, 1)"),
        ({"kl_estimator": "k2"}, "kl_estimator must be one of k1, k3"),
        ({"aggregation": "sum"}, "aggregation must be one of token-mean, seq-mean"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"steps": 2.5}, "steps must be an integer"),
    ],
)
def test_invalid_settings_say_what_to_fix(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        GRPOConfig(**change)  # type: ignore[arg-type]


def test_paper_preset_is_the_published_protocol() -> None:
    paper = PRESETS["paper"]
    assert (paper.prompts_per_step, paper.group_size, paper.lr) == (512, 8, 1e-6)
    assert (paper.kl_coef, paper.kl_estimator, paper.clip_low, paper.clip_high) == (
        0.001,
        "k3",
        0.2,
        0.2,
    )
    assert paper.prompts_per_step // paper.mini_batches == 128
    assert (paper.temperature, paper.eval_temperature, paper.max_new_tokens) == (1.0, 0.7, 4096)
    assert paper.aggregation == "token-mean" and paper.steps == 105


def test_yaml_then_overrides_with_types(tmp_path: Path) -> None:
    path = tmp_path / "grpo.yaml"
    path.write_text("grpo:\n  lr: 1.0e-5\n  group_size: 4\n  betas: [0.9, 0.95]\n")
    cfg = load_config(str(path), "micro", steps="20", drop_uniform_groups="false", stop="</s>,\\n")
    assert (cfg.lr, cfg.group_size, cfg.betas, cfg.steps) == (1e-5, 4, (0.9, 0.95), 20)
    assert cfg.drop_uniform_groups is False and cfg.stop == ("</s>", "\\n")
    assert cfg.prompts_per_step == PRESETS["micro"].prompts_per_step  # the preset's value kept


def test_unknown_keys_and_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown GRPO setting 'learning_rate'"):
        load_config(None, "micro", learning_rate="1e-5")
    with pytest.raises(InputError, match=r"steps: cannot use '1\.5'"):
        load_config(None, "micro", steps="1.5")
    with pytest.raises(InputError, match="unknown GRPO preset"):
        load_config(None, "huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_config(str(bad))


def test_verifier_workers_default_to_the_spare_cores() -> None:
    cfg = GRPOConfig()
    assert cfg.verifier_workers(cores=16, torch_threads=1) == 15  # a GPU trainer: one core
    assert cfg.verifier_workers(cores=2, torch_threads=2) == 1  # none spare: still one
    assert GRPOConfig(verify_workers=3).verifier_workers(cores=2, torch_threads=2) == 3
    with pytest.raises(InputError, match="verify_workers must be an integer >= 0"):
        GRPOConfig(verify_workers=-1)
