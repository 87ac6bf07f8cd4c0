"""The GRPO policy update as one unit: given a step's rollouts and their rewards, the advantages,
`updates_per_batch` passes of `mini_batches` optimizer steps each over the kept groups (π_old and
π_ref computed once, on the first pass), gradients accumulated over length-sorted micro-batches
of at most `micro_batch_tokens` padded tokens; and what it did (losses, KL, grad norm, entropy,
the tokens it scored and trained, which the compute columns count)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rlscale.errors import RlscaleError
from rlscale.rl.config import GRPOConfig
from rlscale.rl.grpo import group_advantages, grpo_loss, informative_groups
from rlscale.rl.sampling import Completion
from rlscale.rl.scoring import (
    grouped_logprobs_entropy,
    response_logprobs,
    scatter_logprobs,
    sequence_logprobs_entropy,
)


class PolicyUpdate:
    """Updates `model` with `optimizer` (and a frozen `reference` for the KL term, if any)."""

    def __init__(
        self,
        cfg: GRPOConfig,
        model: Any,
        optimizer: torch.optim.Optimizer,
        reference: Any | None,
        pad_id: int,
    ) -> None:
        self.cfg, self.model, self.optimizer = cfg, model, optimizer
        self.reference, self.pad_id = reference, pad_id

    def apply(
        self, completions: list[Completion], rewards: torch.Tensor, lr: float
    ) -> dict[str, Any]:
        """`updates_per_batch` passes over the kept groups, `mini_batches` optimizer steps each."""
        cfg, G = self.cfg, self.cfg.group_size
        advantages = group_advantages(rewards, G, cfg.std_normalize)
        if cfg.drop_uniform_groups:
            keep = informative_groups(rewards, G)
        else:
            keep = torch.ones(len(rewards) // G, dtype=torch.bool)
        groups = keep.nonzero().squeeze(-1).tolist()
        stats: dict[str, Any] = {
            "groups_kept": len(groups),
            "tokens_scored": 0,
            "tokens_trained": 0,
        }
        if not groups:
            return stats | {"loss_pg": 0.0, "kl": 0.0, "grad_norm": 0.0, "entropy": None}
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        minis = []
        for chunk in (c for c in _split(groups, cfg.mini_batches) if c):
            rows = [g * G + j for g in chunk for j in range(G)]
            minis.append((rows, [completions[r] for r in rows]))
            scored = self._computed_tokens(minis[-1][1]) if self.reference is not None else 0
            stats["tokens_scored"] += scored
        fixed: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor | None]] = {}
        sums = [0.0, 0.0, 0.0, 0.0]
        self.model.train()
        for _ in range(cfg.updates_per_batch):
            for rows, mini in minis:
                figures = self.optimizer_step(mini, advantages[rows], fixed, tuple(rows))
                sums = [a + b for a, b in zip(sums, figures, strict=True)]
                stats["tokens_trained"] += self._computed_tokens(mini)
        count = cfg.updates_per_batch * len(minis)
        names = ("loss_pg", "kl", "grad_norm")
        means = {k: v / count for k, v in zip(names, sums[:3], strict=True)}
        return stats | means | {"entropy": sums[3] / len(minis)}  # measured on the first pass

    def optimizer_step(
        self,
        mini: list[Completion],
        adv: torch.Tensor,
        fixed: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor | None]],
        key: tuple[int, ...],
    ) -> tuple[float, float, float, float]:
        """One optimizer step on a mini-batch, its gradient accumulated over length-sorted
        micro-batches of at most `micro_batch_tokens` padded tokens; each micro-batch's loss is
        weighted by its share of the mini-batch's tokens (token-mean) or sequences (seq-mean),
        so the result equals one pass over the whole mini-batch."""
        cfg = self.cfg
        if cfg.aggregation == "token-mean":
            weights = [float(len(c.response_ids)) for c in mini]
        else:
            weights = [1.0] * len(mini)
        total = sum(weights)
        self.optimizer.zero_grad(set_to_none=True)
        pg_sum = kl_sum = ent_sum = 0.0
        for part in self.micro_batches(mini):
            batch = [mini[i] for i in part]
            share = sum(weights[i] for i in part) / total
            fixed_key = (*key, *part)
            first_pass = fixed_key not in fixed
            logp, mask, entropy = self._score(self.model, batch, entropy=first_pass)
            if first_pass:  # π_old and π_ref do not change between passes: build them once
                old = self._place(batch, logp)
                fixed[fixed_key] = (old, self._reference_logprobs(batch))
            if entropy is not None:  # the sampling policy's entropy, from the first pass
                ent_sum += float((entropy * mask).sum() / mask.sum().clamp(min=1.0)) * share
            old, ref = fixed[fixed_key]
            loss, pg, kl = grpo_loss(
                logp,
                old,
                ref,
                adv[part].to(logp.device),
                mask,
                clip_low=cfg.clip_low,
                clip_high=cfg.clip_high,
                kl_coef=cfg.kl_coef,
                kl_estimator=cfg.kl_estimator,
                aggregation=cfg.aggregation,
            )
            if not torch.isfinite(loss):
                raise RlscaleError(
                    f"non-finite GRPO loss ({loss.item()}); lower lr or check the model"
                )
            (loss * share).backward()  # type: ignore[no-untyped-call]
            pg_sum, kl_sum = pg_sum + pg.item() * share, kl_sum + kl.item() * share
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        return pg_sum, kl_sum, norm.item(), ent_sum

    def _reference_logprobs(self, batch: list[Completion]) -> torch.Tensor | None:
        if self.reference is None:
            return None
        with torch.no_grad():
            logp, _, _ = self._score(self.reference, batch, entropy=False)
        return logp

    @property
    def _shared_prompts(self) -> bool:
        """Score each group's prompt once for its G responses (the same log-probs, less work:
        benchmarks/shared_prompt_pass.py); rows are then whole groups.
        CPU only: the shared pass uses eager attention, whose (T × T) scores would replace
        SDPA's fused kernels on a GPU with long responses — not measured there yet."""
        return self.cfg.group_size > 1 and next(self.model.parameters()).device.type == "cpu"

    def _score(
        self, model: Any, batch: list[Completion], entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(log-probs, response mask, entropy) of a micro-batch, in `_place`'s layout."""
        cfg = self.cfg
        if self._shared_prompts:
            return grouped_logprobs_entropy(
                model, batch, cfg.group_size, cfg.temperature, self.pad_id, entropy
            )
        return sequence_logprobs_entropy(model, batch, cfg.temperature, self.pad_id, entropy)

    def _place(self, batch: list[Completion], like: torch.Tensor) -> torch.Tensor:
        """The sampled log-probs (π_old) in the layout of `_score`."""
        if self._shared_prompts:
            return response_logprobs(batch, like)
        return scatter_logprobs(batch, like)

    def _computed_tokens(self, rows: Sequence[Completion]) -> int:
        """Tokens a scoring pass runs through the model: a shared prompt counts once."""
        if not self._shared_prompts:
            return _tokens(rows)
        prompts = sum(len(c.prompt_ids) for c in rows[:: self.cfg.group_size])
        return prompts + sum(len(c.response_ids) for c in rows)

    def micro_batches(self, mini: list[Completion]) -> list[list[int]]:
        """Row indices of each micro-batch: whole groups when prompts are shared."""
        lengths = [len(c.prompt_ids) + len(c.response_ids) for c in mini]
        budget = self.cfg.micro_batch_tokens
        if not self._shared_prompts:
            return micro_batches(lengths, budget)
        G = self.cfg.group_size
        longest = [max(lengths[g : g + G]) for g in range(0, len(mini), G)]
        return [
            [g * G + j for g in part for j in range(G)]
            for part in micro_batches(longest, max(1, budget // G))
        ]


def _split(items: list[int], parts: int) -> list[list[int]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (1 if k < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def micro_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Row indices sorted by length (longest first), cut so that rows × longest row ≤ budget
    in each part (a row longer than the budget is a part of its own): little padding, bounded
    memory."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    parts: list[list[int]] = []
    for i in order:
        if parts and (len(parts[-1]) + 1) * lengths[parts[-1][0]] <= budget:
            parts[-1].append(i)
        else:
            parts.append([i])
    return parts


def _tokens(batch: Sequence[Completion]) -> int:
    return sum(len(c.prompt_ids) + len(c.response_ids) for c in batch)
