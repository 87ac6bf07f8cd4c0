"""FLOPs against hand calculations for a Qwen2.5-0.5B-shaped model."""

from __future__ import annotations

import pytest

from rlscale.models.flops import (
    attention_flops,
    forward_flops,
    grpo_step_flops,
    paper_compute,
    train_flops,
)

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
