"""GRPO math against straightforward loop versions."""

from __future__ import annotations

import math

import pytest
import torch

from rlscale.rl.grpo import (
    aggregate,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    informative_groups,
    kl_penalty,
)

G = 4


def rewards() -> torch.Tensor:
    return torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])


def test_group_advantages_match_a_loop() -> None:
    r = rewards().tolist()
    expected = []
    for start in range(0, len(r), G):
        g = r[start : start + G]
        mean = sum(g) / G
        std = math.sqrt(sum((x - mean) ** 2 for x in g) / (G - 1))
        expected += [(x - mean) / (std + 1e-6) for x in g]
    torch.testing.assert_close(group_advantages(rewards(), G), torch.tensor(expected))
    mean_only = group_advantages(rewards(), G, std_normalize=False)
    assert mean_only[:4].tolist() == [0.5, -0.5, -0.5, 0.5]
    assert group_advantages(rewards(), G)[4:8].abs().max() == 0  # all equal: no signal


def test_informative_groups() -> None:
    assert informative_groups(rewards(), G).tolist() == [True, False, True]


def test_clipped_surrogate_matches_a_loop() -> None:
    torch.manual_seed(0)
    logp, old = torch.randn(3, 5) * 0.3, torch.randn(3, 5) * 0.3
    adv = torch.tensor([1.0, -2.0, 0.5])
    got = clipped_surrogate(logp, old, adv, clip_low=0.2, clip_high=0.28)
    for i in range(3):
        for t in range(5):
            ratio = math.exp(logp[i, t] - old[i, t])
            clipped = min(max(ratio, 0.8), 1.28)
            want = -min(ratio * adv[i].item(), clipped * adv[i].item())
            assert got[i, t].item() == pytest.approx(want, rel=1e-5)


def test_kl_estimators() -> None:
    logp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    assert kl_penalty(logp, ref, "k1")[0].tolist() == pytest.approx([0.5, -1.0])
    k3 = [math.exp(r - p) - (r - p) - 1 for p, r in ((-1.0, -1.5), (-2.0, -1.0))]
    assert kl_penalty(logp, ref, "k3")[0].tolist() == pytest.approx(k3)
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    with pytest.raises(ValueError, match="k1 or k3"):
        kl_penalty(logp, ref, "k2")  # type: ignore[arg-type]


def test_aggregations_match_loops() -> None:
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert aggregate(loss, mask, "token-mean").item() == pytest.approx((1 + 2 + 4 + 5 + 6) / 5)
    assert aggregate(loss, mask, "seq-mean").item() == pytest.approx((1.5 + 5.0) / 2)


def test_grpo_loss_combines_and_backpropagates() -> None:
    torch.manual_seed(1)
    logp = (torch.randn(4, 3) * 0.1).requires_grad_()
    old, ref = logp.detach().clone(), logp.detach() - 0.1
    adv = group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0]), 2)
    mask = torch.ones(4, 3)
    total, pg, kl = grpo_loss(logp, old, ref, adv, mask, kl_coef=0.001)
    assert total.item() == pytest.approx(pg.item() + 0.001 * kl.item())
    assert pg.item() == pytest.approx(0.0, abs=1e-6)  # on-policy, advantages sum to zero
    total.backward()
    assert logp.grad is not None and logp.grad.abs().sum() > 0
