"""FLOPs against hand calculations for a Qwen2.5-0.5B-shaped model."""

from __future__ import annotations

import pytest

from rlscale.models.flops import (
    attention_flops,
    forward_flops,
    grpo_step_flops,
    paper_compute,
    sequences_attention_flops,
    train_flops,
)
from rlscale.models.params import attention_dims

# Qwen2.5-0.5B: hidden 896, 24 layers, 14 heads of 64, 2 KV heads, MLP 4864, vocab 151936, tied.
D, LAYERS, KV, MLP, VOCAB = 896, 24, 2 * 64, 4864, 151_936
PER_LAYER = (D * D + D) + 2 * (D * KV + KV) + D * D + 3 * D * MLP + 2 * D
N = LAYERS * PER_LAYER + D  # + the final norm
N_TOTAL = N + VOCAB * D  # tied: the embedding is also the output projection


def test_parameter_counts_by_hand() -> None:
    assert N == 357_898_112  # the "0.36B non-embedding" of the Qwen2.5 report
    assert N_TOTAL == 494_032_768  # the "0.49B" total


def test_training_and_forward_flops() -> None:
    assert train_flops(N, 1000) == 6 * 357_898_112 * 1000
    assert forward_flops(N_TOTAL, 10) == 2 * 494_032_768 * 10


def test_attention_term_causal_and_full() -> None:
    # Token t attends to t positions: Σ_{t=1..4} t = 10 positions, 2·layers·d each.
    assert attention_flops(LAYERS, D, 4) == 2 * LAYERS * D * 10
    assert attention_flops(LAYERS, D, 4, causal=False) == 2 * LAYERS * D * 16


def test_paper_compute_and_grpo_step() -> None:
    # One paper step: 512 prompts × 8 rollouts × (200 prompt + 500 response) tokens.
    c = paper_compute(N, 512 * 8 * 200, 512 * 8 * 500)
    assert c == pytest.approx(6 * N * 512 * 8 * 700)
    step = grpo_step_flops(N, N_TOTAL, generated=2e6, scored=2.8e6, trained=2.8e6)
    assert step == 2 * N_TOTAL * 2e6 + 2 * N_TOTAL * 2.8e6 + 6 * N * 2.8e6


def test_attention_of_one_sequence_by_hand() -> None:
    # 2 layers, d_attn 8, one sequence of 3 tokens: token t attends to t positions, 1 + 2 + 3 = 6,
    # each costing 2·d_attn multiply-adds per layer: 2 · 2 · 8 · 6 = 192 forward FLOPs.
    assert sequences_attention_flops(2, 8, [3]) == 192
    assert sequences_attention_flops(2, 8, [3, 1]) == 192 + 2 * 2 * 8 * 1


def test_grpo_step_counts_attention_in_every_pass() -> None:
    # 3 tokens sampled (one pass), scored once (3 tokens), trained twice (6 tokens, backward ×2):
    # attention 192 per forward pass → 192 · (1 + 1 + 3 · 2) = 1536 on top of the linear terms.
    linear = grpo_step_flops(10, 20, generated=3, scored=3, trained=6)
    assert grpo_step_flops(10, 20, 3, 3, 6, attention=192) == linear + 1536
    assert linear == 2 * 20 * 3 + 2 * 20 * 3 + 6 * 10 * 6


def test_attention_dims_of_qwen2_configs() -> None:
    from transformers import Qwen2Config

    config = Qwen2Config(hidden_size=896, num_hidden_layers=24, num_attention_heads=14)
    assert attention_dims(config) == (24, 896)  # 14 query heads × 64, whatever the KV heads
    wide = Qwen2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, head_dim=32)
    assert attention_dims(wide) == (2, 128)
