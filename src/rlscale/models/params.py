"""Counting a model's parameters the way scaling laws do (Kaplan et al.'s non-embedding N)."""

from __future__ import annotations

from typing import Any


def count_params(model: Any) -> tuple[int, int]:
    """(N non-embedding, N_total): tied weights counted once; embeddings and an untied output
    projection are the embedding part (Kaplan et al.'s N excludes them)."""
    unique = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in unique.values())
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    embed = embedding.numel()
    if output is not None and output.weight is not embedding:
        embed += output.weight.numel()
    return total - embed, total


def attention_dims(config: Any) -> tuple[int, int]:
    """(layers, d_attn) of a transformer config: d_attn = query heads × head size, the width of
    the QKᵀ and attention-times-V products (key/value heads do not change it)."""
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return layers, heads * int(head_dim)
