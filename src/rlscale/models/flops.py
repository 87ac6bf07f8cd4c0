"""FLOPs accounting as pure functions (counts in, FLOPs out).

Conventions (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1):
- a forward pass costs 2 FLOPs per parameter per token (one multiply-add per weight); a backward
  pass twice that, so training costs 6·N per trained token;
- N counts non-embedding parameters for training (embedding lookups are not matrix multiplies);
  forward passes that end in the output projection (generation, scoring) use N_total, which
  includes the vocabulary projection;
- attention adds 2·n_layer·n_ctx·d_attn forward FLOPs per token, n_ctx being the number of
  positions the token attends to; for a causal sequence of T tokens that sums to
  n_layer·d_attn·T·(T + 1). (verl's counter before early 2026 used T² — twice the causal cost.)
- the paper's compute (arXiv:2509.25300) is C = 6·N·(prompt + response tokens).
"""

from __future__ import annotations

from collections.abc import Iterable


def train_flops(n_params: float, tokens: float) -> float:
    """6·N per trained token (forward + backward)."""
    return 6.0 * n_params * tokens


def forward_flops(n_total: float, tokens: float) -> float:
    """2·N_total per generated or scored token."""
    return 2.0 * n_total * tokens


def attention_flops(n_layer: int, d_attn: int, seq_len: int, causal: bool = True) -> float:
    """Forward attention FLOPs of one sequence: 2·n_layer·d_attn per attended position."""
    positions = seq_len * (seq_len + 1) / 2 if causal else seq_len * seq_len
    return 2.0 * n_layer * d_attn * positions


def paper_compute(n_params: float, prompt_tokens: float, response_tokens: float) -> float:
    """The paper's C for one step: 6·N·(prompt + response tokens)."""
    return 6.0 * n_params * (prompt_tokens + response_tokens)


def sequences_attention_flops(n_layer: int, d_attn: int, lengths: Iterable[int]) -> float:
    """Forward attention FLOPs of one pass over sequences of these lengths (causal)."""
    return sum(attention_flops(n_layer, d_attn, int(T)) for T in lengths)


def grpo_step_flops(
    n_params: float,
    n_total: float,
    generated: float,
    scored: float,
    trained: float,
    attention: float = 0.0,
) -> float:
    """The real cost of a GRPO step: sampling, scoring (old/reference log-probs), training.

    `attention` is the forward attention FLOPs of one pass over the sampled sequences; the
    scoring and training passes repeat it in proportion to the tokens they compute (a backward
    pass costs twice a forward one), so a pass over fewer tokens (a shared prompt counted once)
    costs proportionally less."""
    passes = 1.0 + (scored + 3.0 * trained) / generated if generated > 0 else 0.0
    return (
        forward_flops(n_total, generated)
        + forward_flops(n_total, scored)
        + train_flops(n_params, trained)
        + attention * passes
    )
