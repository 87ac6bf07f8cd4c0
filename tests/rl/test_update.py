"""The policy update as a unit: its direction, micro-batching, and gradient accumulation that
equals one pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from rlscale.data import load_problems
from rlscale.models.load import load_model
from rlscale.rl.config import GRPOConfig
from rlscale.rl.evaluate import encode_prompt
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import Completion, SamplingParams
from rlscale.rl.scoring import sequence_logprobs
from rlscale.rl.update import PolicyUpdate, micro_batches
from tests.conftest import WarmModel
from tests.rl.test_trainer import SMALL


def policy_update(cfg: GRPOConfig, model: Any, tok: Any) -> PolicyUpdate:
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    reference = None
    if cfg.kl_coef > 0:
        reference = copy.deepcopy(model).eval()
        reference.requires_grad_(False)
    return PolicyUpdate(cfg, model, optimizer, reference, tok.pad_token_id)


def test_one_update_moves_probability_from_the_wrong_to_the_right_completion(
    warm_model: WarmModel,
) -> None:
    model, tok = load_model(str(warm_model.path))
    cfg = SMALL.replace(updates_per_batch=1, group_size=2)
    update = policy_update(cfg, model, tok)
    prompt = [tok.bos_token_id, *tok.encode("Compute 2+3. ")]
    good, bad = "2+3=5. \\boxed{5}", "2+3=6. \\boxed{6}"
    batch = [
        Completion(tuple(prompt), (*tok.encode(text), tok.eos_token_id), (), text, "stop")
        for text in (good, bad)
    ]
    with torch.no_grad():
        before, mask = sequence_logprobs(model, batch, 1.0, tok.pad_token_id)
    batch = [  # the sampling log-probs are the current policy's
        Completion(
            c.prompt_ids,
            c.response_ids,
            tuple(before[i][mask[i] > 0].tolist()),
            c.text,
            c.finish_reason,
        )
        for i, c in enumerate(batch)
    ]
    stats = update.apply(batch, torch.tensor([1.0, 0.0]), lr=1e-4)
    with torch.no_grad():
        after, _ = sequence_logprobs(model, batch, 1.0, tok.pad_token_id)
    change = ((after - before) * mask).sum(dim=1)
    assert stats["groups_kept"] == 1 and stats["grad_norm"] > 0
    assert change[0] - change[1] > 0, change.tolist()  # the rewarded one gains on the other


def test_micro_batches_bound_padded_tokens_and_cover_every_row() -> None:
    lengths = [10, 50, 20, 50, 30, 5, 200]
    parts = micro_batches(lengths, budget=100)
    assert sorted(i for part in parts for i in part) == list(range(len(lengths)))
    assert parts[0] == [6]  # longer than the budget: alone
    for part in parts[1:]:
        assert len(part) * max(lengths[i] for i in part) <= 100
    assert [lengths[p[0]] for p in parts] == sorted((lengths[p[0]] for p in parts), reverse=True)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean"])
def test_gradient_accumulated_over_micro_batches_equals_one_pass(
    warm_model: WarmModel, aggregation: str
) -> None:
    grads = []
    for budget in (10**6, 64):  # one forward for the batch; many small ones
        model, tok = load_model(str(warm_model.path))
        cfg = SMALL.replace(micro_batch_tokens=budget, aggregation=aggregation, kl_coef=0.1)
        update = policy_update(cfg, model, tok)
        problems = load_problems(warm_model.train)[:4]
        prompts = [encode_prompt(tok, p.prompt) for p in problems]
        batch = TorchSampler(model, tok).sample(
            prompts, SamplingParams(n=4, max_new_tokens=20), seed=3
        )
        adv = torch.linspace(-1.5, 1.5, len(batch))
        parts = update.micro_batches(batch)  # whole groups: their prompt is scored once
        assert sorted(i for p in parts for i in p) == list(range(len(batch)))
        assert all(set(p) == {g + j for g in p[::4] for j in range(4)} for p in parts)
        assert len(parts) == (1 if budget > 64 else 4)
        pg, kl, _, _ = update.optimizer_step(batch, adv, {}, (0,))
        grads.append(([p.grad.clone() for p in model.parameters()], pg, kl))
    (one, pg1, kl1), (many, pg2, kl2) = grads
    assert pg1 == pytest.approx(pg2, rel=1e-4, abs=1e-6) and kl1 == pytest.approx(
        kl2, rel=1e-4, abs=1e-9
    )
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(one, many, strict=True))
