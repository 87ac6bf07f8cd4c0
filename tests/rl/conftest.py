"""A random tiny Qwen2 for the RL exactness tests (the warm-started model is in tests/conftest)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import Qwen2ForCausalLM

from rlscale.models.ladder import Rung
from rlscale.models.tokenizer import char_tokenizer


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
