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
