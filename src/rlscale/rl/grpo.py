"""GRPO as pure tensor functions (tensors in, tensors out; no I/O, no state).

Shapes: B prompts, G rollouts per prompt, T response tokens. Rewards and advantages are flat
(B·G,) with the G rollouts of a prompt adjacent; per-token tensors are (B·G, T) with a {0, 1}
response mask. Names follow verl's core_algos where they exist (`low_var_kl` is k3).
"""

from __future__ import annotations

from typing import Literal

import torch

Aggregation = Literal["token-mean", "seq-mean"]
KLEstimator = Literal["k1", "k3"]


def group_advantages(
    rewards: torch.Tensor, group_size: int, std_normalize: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """(B·G,) → (B·G,): reward minus its group's mean, divided by the group's std (unbiased,
    as verl) when `std_normalize`. A group whose rewards are all equal gets zero advantages."""
    grouped = rewards.reshape(-1, group_size).to(torch.float32)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if std_normalize:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred)
        centred = centred / (std + eps)
    return centred.reshape(-1)


def informative_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B·G,) → (B,) bool: groups whose rewards are not all equal (they carry a gradient)."""
    grouped = rewards.reshape(-1, group_size)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) > 0


def clipped_surrogate(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
) -> torch.Tensor:
    """Per-token PPO loss −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A), r = exp(logp − logp_old);
    logp (B·G, T), advantages (B·G,) broadcast over tokens."""
    ratio = torch.exp(logp - logp_old)
    adv = advantages.unsqueeze(-1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * adv
    return -torch.minimum(unclipped, clipped)


def kl_penalty(logp: torch.Tensor, logp_ref: torch.Tensor, estimator: KLEstimator) -> torch.Tensor:
    """Per-token KL(π‖π_ref) estimates from samples of π: k1 = log π − log π_ref; k3 (verl's
    low_var_kl, Schulman 2020) = e^(log π_ref − log π) − (log π_ref − log π) − 1, clamped to
    [−10, 10] as verl does."""
    if estimator == "k1":
        return logp - logp_ref
    if estimator == "k3":
        log_ratio = logp_ref - logp
        return torch.clamp(torch.exp(log_ratio) - log_ratio - 1.0, min=-10.0, max=10.0)
    raise ValueError(f"unknown KL estimator {estimator!r}; choose k1 or k3")


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: Aggregation) -> torch.Tensor:
    """Scalar loss: `token-mean` averages over every response token of the batch (the paper's);
    `seq-mean` averages tokens within each sequence, then sequences."""
    mask = mask.to(per_token.dtype)
    if mode == "token-mean":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "seq-mean":
        per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return per_seq.mean()
    raise ValueError(f"unknown aggregation {mode!r}; choose token-mean or seq-mean")


def grpo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    logp_ref: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    kl_coef: float = 0.0,
    kl_estimator: KLEstimator = "k3",
    aggregation: Aggregation = "token-mean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total loss, policy-gradient loss, KL), each aggregated the same way."""
    pg = aggregate(
        clipped_surrogate(logp, logp_old, advantages, clip_low, clip_high), mask, aggregation
    )
    if logp_ref is None or kl_coef == 0.0:
        kl = torch.zeros((), dtype=pg.dtype)
    else:
        kl = aggregate(kl_penalty(logp, logp_ref, kl_estimator), mask, aggregation)
    return pg + kl_coef * kl, pg, kl
