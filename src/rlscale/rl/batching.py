"""Rows of token ids for a causal LM, and the model-side details both sampling and scoring need:
left padding, the model's device, its cache keyword, a temporary attention implementation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, W), attention mask (B, W)) with each row right-aligned."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def cache_kwarg(model: Any) -> str:
    """transformers 5.x renamed `past_key_values` to `cache`."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def model_device(model: Any) -> torch.device:
    device: torch.device = next(model.parameters()).device
    return device


@contextmanager
def attention(model: Any, name: str) -> Iterator[None]:
    """The given attention implementation for the duration; the previous one after."""
    before = model.config._attn_implementation
    model.config._attn_implementation = name
    try:
        yield
    finally:
        model.config._attn_implementation = before
