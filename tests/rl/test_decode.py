"""The lean Llama-family decode step against transformers' own forward, and the fallback."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import (
    DynamicCache,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from rlscale.models.tokenizer import char_tokenizer
from rlscale.rl import decode
from rlscale.rl.batching import cache_kwarg, left_pad
from rlscale.rl.decode import LlamaDecoder, lean_supported
from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import SamplingParams
from rlscale.rl.scoring import scatter_logprobs, sequence_logprobs

VOCAB = 50


def qwen2() -> Any:
    """Multi-head attention, biases on q/k/v (Qwen2's layout)."""
    return Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=VOCAB,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            intermediate_size=96,
            max_position_embeddings=128,
            initializer_range=0.3,
        )
    )


def llama_gqa() -> Any:
    """Grouped keys and values (6 query heads on 2), heads wider than hidden / heads, RoPE base
    1e6, biases everywhere, untied head."""
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=48,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            head_dim=16,
            rope_theta=1e6,
            intermediate_size=80,
            max_position_embeddings=128,
            attention_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
            initializer_range=0.3,
        )
    )


PROMPTS = [[1, 5, 9, 3], [1, 7], [1, 2, 2, 8, 4, 6, 11], [1, 30, 31]]


def reference_logits(model: Any, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy continuation by transformers' forward: (tokens (B, steps), logits (B, steps, V))."""
    ids, mask = left_pad(PROMPTS, 0)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache()
    logits = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, **{cache_kwarg(model): cache}
    ).logits[:, -1]
    position, tokens, out = mask.sum(1, keepdim=True) - 1, [], []
    for _ in range(steps):
        token = logits.argmax(-1, keepdim=True)
        mask, position = torch.cat([mask, torch.ones_like(token)], 1), position + 1
        logits = model(
            input_ids=token,
            attention_mask=mask,
            position_ids=position,
            **{cache_kwarg(model): cache},
        ).logits[:, -1]
        tokens.append(token.squeeze(-1))
        out.append(logits)
    return torch.stack(tokens, 1), torch.stack(out, 1)


@pytest.mark.parametrize(
    ("build", "dtype", "atol"),
    [(qwen2, torch.float32, 1e-5), (llama_gqa, torch.float32, 1e-5), (qwen2, torch.bfloat16, 0.1)],
)
@torch.no_grad()
def test_lean_steps_give_transformers_logits(
    build: Any, dtype: torch.dtype, atol: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decode, "RESERVE", 2)  # the key/value buffers grow twice
    torch.manual_seed(0)
    model = build().to(dtype).eval()
    model.config._attn_implementation = "eager"
    assert lean_supported(model)
    steps = 12
    tokens, expected = reference_logits(model, steps)
    ids, mask = left_pad(PROMPTS, 0)
    cache = DynamicCache()
    model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(1) - 1).clamp(min=0),
        **{cache_kwarg(model): cache},
    )
    decoder = LlamaDecoder(model, cache, mask, repeats=2, max_length=ids.shape[1] + steps)
    rows = torch.arange(len(PROMPTS)).repeat_interleave(2)  # each prompt's two rollouts
    position = mask.sum(1)[rows] - 1
    scale = float(expected.abs().max())
    for t in range(steps):
        if t == 5:  # drop rows mid-batch, as the sampler does when rows finish
            keep = torch.tensor([0, 3, 4, 7])
            decoder.select(keep)
            rows, position = rows[keep], position[keep]
        position = position + 1
        logits = decoder.step(tokens[rows, t], position)
        assert logits.dtype == dtype
        diff = float((logits.float() - expected[rows, t].float()).abs().max())
        assert diff <= atol * max(1.0, scale), (t, diff)
    assert decoder.bias.shape[1] == ids.shape[1] + steps  # grown to max_length, not past it


def test_lean_support_is_limited_to_what_it_computes() -> None:
    assert lean_supported(qwen2()) and lean_supported(llama_gqa())
    sliding = qwen2()
    sliding.config.use_sliding_window = True
    scaled = llama_gqa()
    scaled.config.rope_parameters = {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}
    gelu = qwen2()
    gelu.config.hidden_act = "gelu"
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=1, n_head=2))
    assert not any(lean_supported(m) for m in (sliding, scaled, gelu, gpt2))


def test_sampler_lean_and_model_paths_agree(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    prompts = [[tok.bos_token_id, *tok.encode(t)] for t in ("Compute 1+2. ", "Compute 25-3. ")]
    enders = [tok.eos_token_id, *tok.encode("3"), *tok.encode("*")]
    model.generation_config.eos_token_id = enders  # rows end at different steps
    params = SamplingParams(n=4, temperature=0.8, max_new_tokens=20)
    lean = TorchSampler(model, tok).sample(prompts, params, seed=7)
    plain = TorchSampler(model, tok, lean=False).sample(prompts, params, seed=7)
    assert len({len(c.response_ids) for c in lean}) > 2
    assert [c.response_ids for c in lean] == [c.response_ids for c in plain]
    for a, b in zip(lean, plain, strict=True):
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-5


def test_a_model_outside_the_family_samples_through_its_own_forward() -> None:
    torch.manual_seed(0)
    tok = char_tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    assert not lean_supported(model)
    out = TorchSampler(model, tok).sample(PROMPTS, SamplingParams(n=2, max_new_tokens=8), 3)
    assert len(out) == 8 and all(len(c.response_ids) > 0 for c in out)
    with torch.no_grad():
        logp, mask = sequence_logprobs(model, out, 1.0, tok.pad_token_id)
    assert torch.allclose(logp * mask, scatter_logprobs(out, logp), atol=2e-5, rtol=0)
