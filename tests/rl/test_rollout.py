"""The KV-cached sampler: exact log-probs, HF-identical greedy decoding, seeds, stops, top-p."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rlscale.rl.rollout import TorchSampler, gumbel_max, top_p_filter
from rlscale.rl.sampling import SamplingParams
from rlscale.rl.scoring import (
    grouped_logprobs_entropy,
    response_logprobs,
    right_padded,
    scatter_logprobs,
    sequence_logprobs,
)

PROMPTS = ["Compute 1+2.", "Compute 12-7+30.", "Compute 3.", "Compute 25+25-10+4."]


def encode(tok: Any, texts: list[str]) -> list[list[int]]:
    return [[tok.bos_token_id, *tok.encode(t + " ")] for t in texts]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_logprobs_equal_a_teacher_forced_pass(tiny_lm: Any, temperature: float) -> None:
    model, tok = tiny_lm
    sampler = TorchSampler(model, tok)
    params = SamplingParams(n=3, temperature=temperature, max_new_tokens=24)
    out = sampler.sample(encode(tok, PROMPTS), params, seed=5)
    assert len(out) == 12 and [c.prompt_ids for c in out[:3]] == [out[0].prompt_ids] * 3
    with torch.no_grad():
        logp, mask = sequence_logprobs(model, out, temperature, tok.pad_token_id)
    sampled = scatter_logprobs(out, logp)
    assert int(mask.sum()) == sum(len(c.response_ids) for c in out) > 0
    assert torch.allclose(logp * mask, sampled, atol=2e-5, rtol=0)


def test_greedy_matches_hf_generate_with_rows_ending_at_different_times(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    # Two frequent characters also end a response, so rows stop at different steps and the
    # sampler drops finished rows from its cache mid-batch.
    enders = [tok.eos_token_id, *tok.encode("3"), *tok.encode("*")]
    model.generation_config.eos_token_id = enders
    prompts = encode(tok, PROMPTS * 4)
    out = TorchSampler(model, tok).sample(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=30), 0
    )
    lengths = {len(c.response_ids) for c in out}
    assert len(lengths) > 2, lengths  # the test needs rows that end at different steps
    enc = tok(
        [tok.bos_token + p + " " for p in PROMPTS * 4],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    )
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        ref = model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=30,
            eos_token_id=enders,
            pad_token_id=tok.pad_token_id,
        )
    for c, row in zip(out, ref[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
        expected = row[: next((i + 1 for i, t in enumerate(row) if t in enders), len(row))]
        assert list(c.response_ids) == expected
        assert c.finish_reason == ("stop" if expected[-1] in enders else "length")


def test_seeds_reproduce_and_differ(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    sampler, params = TorchSampler(model, tok), SamplingParams(n=4, max_new_tokens=16)
    a = sampler.sample(encode(tok, PROMPTS), params, seed=1)
    b = sampler.sample(encode(tok, PROMPTS), params, seed=1)
    c = sampler.sample(encode(tok, PROMPTS), params, seed=2)
    assert [x.response_ids for x in a] == [x.response_ids for x in b]
    assert [x.response_ids for x in a] != [x.response_ids for x in c]
    assert model.config._attn_implementation == "sdpa"  # eager only while sampling


def test_stop_strings_and_length_limit(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    sampler = TorchSampler(model, tok)
    free = sampler.sample(encode(tok, PROMPTS), SamplingParams(n=2, max_new_tokens=12), seed=3)
    assert all(len(c.response_ids) <= 12 for c in free)
    # a stop string made of the first two characters of a free completion: that row now stops
    # right there, with the stop string as the end of its text
    row = next(c for c in free if len(c.text) >= 4)
    stop = row.text[1:3]
    params = SamplingParams(n=2, max_new_tokens=12, stop=(stop,))
    stopped = sampler.sample(encode(tok, PROMPTS), params, seed=3)
    same = stopped[free.index(row)]
    assert same.finish_reason == "stop" and same.text.endswith(stop) and len(same.text) == 3
    assert all(c.finish_reason == "stop" or len(c.response_ids) == 12 for c in stopped)


def test_top_p_keeps_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.1)).tolist() == [[True, False, False, False]]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_gumbel_max_draws_follow_the_distribution_and_never_a_masked_token() -> None:
    p = torch.tensor([0.05, 0.15, 0.3, 0.5, 0.0])
    rows = 200_000
    logp = torch.log(p).expand(rows, -1)  # the last token at −inf
    draws = gumbel_max(logp, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).double() / rows
    assert freq[4] == 0.0
    # binomial standard error at p = 0.5 and 200k draws is 0.0011: 0.005 is > 4 of them
    assert torch.allclose(freq, p.double(), atol=0.005), freq.tolist()
    again = gumbel_max(logp, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_right_padded_marks_response_targets() -> None:
    from rlscale.rl.sampling import Completion

    c = [
        Completion((1, 5, 6), (7, 2), (-0.1, -0.2), "x", "stop"),
        Completion((1, 5), (9,), (-0.3,), "y", "length"),
    ]
    ids, mask = right_padded(c, pad_id=0)
    assert ids.tolist() == [[1, 5, 6, 7, 2], [1, 5, 9, 0, 0]]
    assert mask.tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]
    placed = scatter_logprobs(c, mask)
    expected = torch.tensor([[0, 0, -0.1, -0.2], [0, -0.3, 0, 0]])
    assert torch.allclose(placed, expected)


def test_shared_prompt_scoring_equals_the_full_pass_in_value_and_gradient(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    # prompts of different lengths (left-padded) and responses of different lengths, one of a
    # single token, in groups of 3
    out = TorchSampler(model, tok).sample(
        encode(tok, PROMPTS), SamplingParams(n=3, temperature=0.7, max_new_tokens=12), seed=3
    )
    out[4] = type(out[4])(
        out[4].prompt_ids, out[4].response_ids[:1], out[4].logprobs[:1], "", "stop"
    )
    params = list(model.parameters())
    full, full_mask = sequence_logprobs(model, out, 0.7, tok.pad_token_id)
    shared, mask, entropy = grouped_logprobs_entropy(model, out, 3, 0.7, tok.pad_token_id)
    assert entropy is not None and entropy.shape == shared.shape
    lengths = [len(c.response_ids) for c in out]
    assert mask.sum(dim=1).tolist() == lengths and len(set(lengths)) > 2
    for b, n in enumerate(lengths):
        start = len(out[b].prompt_ids) - 1
        assert torch.allclose(shared[b, :n], full[b, start : start + n], atol=1e-4, rtol=1e-5)
    sampled = response_logprobs(out, shared)  # the sampler's own log-probs, in this layout
    assert torch.allclose(sampled * mask, shared.detach() * mask, atol=1e-4, rtol=1e-5)
    grads_full = torch.autograd.grad((full * full_mask).sum(), params)
    grads_shared = torch.autograd.grad((shared * mask).sum(), params)
    for a, b in zip(grads_full, grads_shared, strict=True):
        assert float((a - b).norm()) <= 1e-4 * float(a.norm()) + 1e-7
    with pytest.raises(ValueError, match="whole groups"):
        grouped_logprobs_entropy(model, out[:4], 3)
