"""One-token decoding steps for the sampler: transformers' own forward, or a lean path for
Llama-family models on CPU.

A decode step of a small model on a CPU spends much of its time per tensor operation rather than
on arithmetic, and transformers' modules spend ~55 operations a layer (norms in several steps,
separate q/k/v and gate/up projections, rotary halves concatenated, a key/value cache grown by
concatenation, masks rebuilt). `LlamaDecoder` does the same math in ~15 — fused norms, one
q/k/v and one gate/up projection, the rotary sign folded into the sine table, keys and values
written into buffers reserved for the whole batch, residuals added inside the output
projections — on the model's own weights (concatenated once a batch, so an optimizer step
between batches is seen). Its logits equal transformers' to float rounding (tested). Both
decoders start from the cache of transformers' prefill of the prompts.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F

LLAMA_FAMILY = frozenset({"llama", "qwen2"})
RESERVE = 64  # new tokens the key/value buffers first hold


class Decoding(Protocol):
    def select(self, index: torch.Tensor) -> None:
        """Keep only these batch rows (finished rows dropped)."""

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens (B,), their positions (B,) → next-token logits (B, V)."""


class ModelDecoding:
    """transformers' forward with its cache: works for any causal LM."""

    def __init__(self, model: Any, cache: Any, mask: torch.Tensor, cache_kwarg: str) -> None:
        self.model, self.cache, self.mask, self.cache_kwarg = model, cache, mask, cache_kwarg

    def select(self, index: torch.Tensor) -> None:
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        ids, positions = tokens.unsqueeze(-1), positions.unsqueeze(-1)
        return cached_forward(self.model, ids, self.mask, positions, self.cache, self.cache_kwarg)


def cached_forward(
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache: Any,
    cache_kwarg: str,
) -> torch.Tensor:
    """The model's next-token logits (B, V) after ids (B, T), extending `cache` in place."""
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_kwarg: cache},
    )
    logits: torch.Tensor = out.logits[:, -1, :]
    return logits


def lean_supported(model: Any) -> bool:
    """A Llama-family model on CPU with full attention, plain RoPE and SiLU gating (a GPU run
    keeps transformers' forward: the lean step has not been measured there)."""
    config = model.config
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    return (
        getattr(config, "model_type", None) in LLAMA_FAMILY
        and next(model.parameters()).device.type == "cpu"
        and config.hidden_act == "silu"
        and rope.get("rope_type", "default") == "default"
        and layer_types == {"full_attention"}
        and not getattr(config, "use_sliding_window", False)
    )


class LlamaDecoder:
    """The lean decode step for `lean_supported` models (see the module's docstring)."""

    def __init__(
        self, model: Any, cache: Any, mask: torch.Tensor, repeats: int, max_length: int
    ) -> None:
        """`cache` and `mask` (B, T0) are the prefill's; rows are repeated `repeats` times (a
        prompt's rollouts); positions stay below `max_length` (prompt width + new tokens)."""
        config, inner = model.config, model.model
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        attention = inner.layers[0].self_attn
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        self.embed = inner.embed_tokens.weight
        self.final_norm = _norm_weights(inner.norm)
        self.lm_head = _fused(model.get_output_embeddings())
        self.layers = [_LayerWeights(layer) for layer in inner.layers]
        self.dtype, self.max_length = self.embed.dtype, max_length
        self._rotary_tables(inner.rotary_emb, max_length)
        self._reserve(cache, mask, repeats)

    def _rotary_tables(self, rotary: Any, length: int) -> None:
        """cos and sign-folded sin for every position: q·cos + roll(q)·sin equals transformers'
        q·cos + rotate_half(q)·sin, rotate_half(q) being roll(q) with its first half negated."""
        positions = torch.arange(length, dtype=torch.float32, device=self.embed.device)
        freqs = positions[:, None] * rotary.inv_freq.float()
        angles = torch.cat((freqs, freqs), dim=-1)
        half = self.head_dim // 2
        sign = torch.ones(self.head_dim, device=self.embed.device)
        sign[:half] = -1.0
        scale = rotary.attention_scaling
        self.cos = (angles.cos() * scale).to(self.dtype)
        self.sin = (angles.sin() * scale * sign).to(self.dtype)

    def _reserve(self, cache: Any, mask: torch.Tensor, repeats: int) -> None:
        """Buffers for the prompts and the first `RESERVE` new tokens; `_grow` doubles them (so
        responses that end early never hold memory for `max_length`)."""
        prompts, width = mask.shape
        capacity = min(self.max_length, width + RESERVE)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for layer in cache.layers:
            for store, prefill in ((self.keys, layer.keys), (self.values, layer.values)):
                shape = (prompts * repeats, self.kv_heads, capacity, self.head_dim)
                buffer = prefill.new_empty(shape)
                buffer.unflatten(0, (prompts, repeats))[:, :, :, :width] = prefill.unsqueeze(1)
                store.append(buffer)
        masked = torch.finfo(self.dtype).min
        rows = mask.repeat_interleave(repeats, dim=0).bool()
        self.bias = torch.full((len(rows), capacity), masked, dtype=self.dtype, device=mask.device)
        self.bias[:, :width].masked_fill_(rows, 0.0)
        self.length = width

    def _grow(self) -> None:
        capacity, t = min(self.max_length, 2 * self.bias.shape[1]), self.length

        def grown(old: torch.Tensor, dim: int, fill: float | None = None) -> torch.Tensor:
            shape = [*old.shape[:dim], capacity, *old.shape[dim + 1 :]]
            new = old.new_empty(shape) if fill is None else old.new_full(shape, fill)
            new.narrow(dim, 0, t).copy_(old.narrow(dim, 0, t))
            return new

        self.keys = [grown(k, 2) for k in self.keys]
        self.values = [grown(v, 2) for v in self.values]
        self.bias = grown(self.bias, 1, torch.finfo(self.dtype).min)

    def select(self, index: torch.Tensor) -> None:
        self.keys = [k[index] for k in self.keys]
        self.values = [v[index] for v in self.values]
        self.bias = self.bias[index]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        t = self.length
        if t == self.bias.shape[1]:
            self._grow()
        self.bias[:, t] = 0.0
        bias = self.bias[:, None, None, : t + 1]
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)
        x = F.embedding(tokens, self.embed)
        for i, w in enumerate(self.layers):
            x = self._attention(i, w, self._norm(x, w.attn_norm), cos, sin, bias, x)
            h = self._norm(x, w.mlp_norm)
            gate_up = _linear(h, w.gate_up)
            size = gate_up.shape[-1] // 2
            x = _linear(F.silu(gate_up[:, :size]) * gate_up[:, size:], w.down, residual=x)
        self.length = t + 1
        return _linear(self._norm(x, self.final_norm), self.lm_head)

    def _attention(
        self,
        i: int,
        w: _LayerWeights,
        h: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        bias: torch.Tensor,
        residual: torch.Tensor,
    ) -> torch.Tensor:
        rows, heads, kv_heads, dim = h.shape[0], self.heads, self.kv_heads, self.head_dim
        t = self.length
        qkv = _linear(h, w.qkv).view(rows, heads + 2 * kv_heads, dim)
        qk = qkv[:, : heads + kv_heads]
        qk = qk * cos + qk.roll(dim // 2, dims=-1) * sin
        self.keys[i][:, :, t] = qk[:, heads:]
        self.values[i][:, :, t] = qkv[:, heads + kv_heads :]
        groups, span = rows * kv_heads, t + 1
        q = qk[:, :heads].reshape(groups, heads // kv_heads, dim)
        keys = self.keys[i][:, :, :span].reshape(groups, span, dim)
        scores = torch.bmm(q, keys.transpose(1, 2)).view(rows, kv_heads, -1, span)
        weights = torch.softmax(scores * self.scaling + bias, dim=-1, dtype=torch.float32)
        values = self.values[i][:, :, :span].reshape(groups, span, dim)
        out = torch.bmm(weights.to(self.dtype).view(groups, -1, span), values)
        return _linear(out.view(rows, heads * dim), w.out, residual=residual)

    def _norm(self, x: torch.Tensor, norm: tuple[torch.Tensor, float]) -> torch.Tensor:
        weight, eps = norm
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), weight, eps)
        # transformers normalises in float32 and scales after casting back
        return weight * F.rms_norm(x.float(), (x.shape[-1],), None, eps).to(x.dtype)


class _LayerWeights:
    """One decoder layer's weights, projections fused: (weight, bias or None) pairs."""

    def __init__(self, layer: Any) -> None:
        attention, mlp = layer.self_attn, layer.mlp
        self.attn_norm = _norm_weights(layer.input_layernorm)
        self.mlp_norm = _norm_weights(layer.post_attention_layernorm)
        self.qkv = _fused(attention.q_proj, attention.k_proj, attention.v_proj)
        self.out = _fused(attention.o_proj)
        self.gate_up = _fused(mlp.gate_proj, mlp.up_proj)
        self.down = _fused(mlp.down_proj)


def _norm_weights(norm: Any) -> tuple[torch.Tensor, float]:
    return norm.weight, norm.variance_epsilon


def _fused(*linears: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The linears' weights stacked (one matmul for all), and their biases (zeros where absent)."""
    if len(linears) == 1:
        bias = linears[0].bias
        return linears[0].weight.detach(), None if bias is None else bias.detach()
    weight = torch.cat([m.weight for m in linears]).detach()
    if all(m.bias is None for m in linears):
        return weight, None
    biases = [m.weight.new_zeros(m.weight.shape[0]) if m.bias is None else m.bias for m in linears]
    return weight, torch.cat(biases).detach()


def _linear(
    x: torch.Tensor,
    wb: tuple[torch.Tensor, torch.Tensor | None],
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """x·Wᵀ (+ bias) (+ residual), the residual added inside the matmul when there is no bias."""
    weight, bias = wb
    if residual is None:
        return F.linear(x, weight, bias)
    if bias is None:
        return torch.addmm(residual, x, weight.t())
    return residual + F.linear(x, weight, bias)
