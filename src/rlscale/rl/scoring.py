"""Teacher-forced scoring: the log-probs (and entropy) a model gives a batch of completions'
response tokens — per row, or once per group's shared prompt — and the sampled log-probs placed
in the same layout (π_old)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rlscale.rl.batching import attention, cache_kwarg, left_pad, model_device
from rlscale.rl.sampling import Completion


def sequence_logprobs(
    model: Any, completions: Sequence[Completion], temperature: float = 1.0, pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced log-probs of each completion's response tokens.

    Rows are prompt + response, right-padded, so causal attention needs no mask (SDPA's fused
    causal path); returns (logp (B, W − 1), response mask (B, W − 1)) aligned with the targets
    ids[:, 1:]. Gradients flow when called outside no_grad.
    """
    logp, mask, _ = sequence_logprobs_entropy(model, completions, temperature, pad_id, False)
    return logp, mask


def sequence_logprobs_entropy(
    model: Any,
    completions: Sequence[Completion],
    temperature: float = 1.0,
    pad_id: int = 0,
    entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """As `sequence_logprobs`, plus the policy's entropy at each position (B, W − 1), detached
    (a diagnostic: its fall is the policy sharpening)."""
    ids, mask = right_padded(completions, pad_id, model_device(model))
    logits = model(input_ids=ids).logits[:, :-1, :].float()
    return _token_logprobs(logits, ids[:, 1:], mask, temperature, entropy)


def grouped_logprobs_entropy(
    model: Any,
    completions: Sequence[Completion],
    group_size: int,
    temperature: float = 1.0,
    pad_id: int = 0,
    entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """As `sequence_logprobs_entropy` for rows in consecutive groups of `group_size` that share
    their prompt (GRPO's rollouts): each prompt runs once and its keys and values serve all the
    group's responses, so (G − 1)/G of the prompt tokens are not computed again — the same
    log-probs, and gradients reach the prompt positions once, summed over the group. Layout
    (B, R), R the longest response: logp[b, j] of response token j, mask marking real tokens.
    Attention is eager here: prompts are left-padded, responses right-padded."""
    rows = len(completions)
    if rows % group_size:
        raise ValueError(f"{rows} rows are not whole groups of {group_size}")
    prompts = [completions[i].prompt_ids for i in range(0, rows, group_size)]
    if any(c.prompt_ids != prompts[i // group_size] for i, c in enumerate(completions)):
        raise ValueError("every row of a group must have the group's prompt")
    device = model_device(model)
    ids, prompt_mask = (t.to(device) for t in left_pad(prompts, pad_id))
    responses, mask = right_padded_responses(completions, pad_id, device)
    prompt_mask = prompt_mask.repeat_interleave(group_size, dim=0)
    lengths = prompt_mask.sum(dim=1, keepdim=True)
    positions = lengths + torch.arange(responses.shape[1], device=device)
    from transformers import DynamicCache

    with attention(model, "eager"):
        cache = DynamicCache()
        kwarg = {cache_kwarg(model): cache}
        first = model(
            input_ids=ids,
            attention_mask=prompt_mask[::group_size],
            position_ids=(prompt_mask[::group_size].cumsum(dim=1) - 1).clamp(min=0),
            use_cache=True,
            **kwarg,
        ).logits[:, -1:, :]
        logits = first.repeat_interleave(group_size, dim=0)
        if responses.shape[1] > 1:  # the tokens after the first, predicted from the cache on
            cache.batch_repeat_interleave(group_size)
            rest = model(
                input_ids=responses[:, :-1],
                attention_mask=torch.cat([prompt_mask, torch.ones_like(responses[:, :-1])], 1),
                position_ids=positions[:, :-1],
                use_cache=True,
                **kwarg,
            ).logits
            logits = torch.cat([logits, rest], dim=1)
    logits = logits.float()
    return _token_logprobs(logits, responses, mask, temperature, entropy)


def _token_logprobs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if not entropy:
        return logp, mask, None
    with torch.no_grad():
        ent = -(log_probs.exp() * log_probs).sum(dim=-1)
    return logp, mask, ent


def right_padded_responses(
    completions: Sequence[Completion], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(response ids (B, R), mask (B, R)), right-padded."""
    width = max(1, max(len(c.response_ids) for c in completions))
    ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(completions), width), dtype=torch.float32)
    for b, c in enumerate(completions):
        ids[b, : len(c.response_ids)] = torch.tensor(c.response_ids, dtype=torch.long)
        mask[b, : len(c.response_ids)] = 1.0
    return ids.to(device), mask.to(device)


def response_logprobs(completions: Sequence[Completion], like: torch.Tensor) -> torch.Tensor:
    """The completions' sampled log-probs in `grouped_logprobs_entropy`'s (B, R) layout."""
    return _placed(completions, like, [0] * len(completions))


def _placed(
    completions: Sequence[Completion], like: torch.Tensor, starts: list[int]
) -> torch.Tensor:
    out = torch.zeros_like(like)
    for b, (c, start) in enumerate(zip(completions, starts, strict=True)):
        out[b, start : start + len(c.logprobs)] = torch.tensor(c.logprobs, dtype=out.dtype)
    return out


def right_padded(
    completions: Sequence[Completion], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, W), response-target mask (B, W − 1)): mask[b, t] marks ids[b, t + 1] as a
    response token."""
    width = max(len(c.prompt_ids) + len(c.response_ids) for c in completions)
    ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(completions), width - 1), dtype=torch.float32)
    for b, c in enumerate(completions):
        row = c.prompt_ids + c.response_ids
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, len(c.prompt_ids) - 1 : len(row) - 1] = 1.0
    return ids.to(device), mask.to(device)


def scatter_logprobs(completions: Sequence[Completion], like: torch.Tensor) -> torch.Tensor:
    """The completions' sampled log-probs placed in `sequence_logprobs`'s (B, W − 1) layout."""
    return _placed(completions, like, [len(c.prompt_ids) - 1 for c in completions])
