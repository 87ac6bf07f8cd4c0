"""Samplers by name: `torch` (rlscale's own decoder, any device), `vllm` (the vllm extra)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlscale.rl.rollout import TorchSampler
from rlscale.rl.sampling import Sampler


def _torch_sampler(model: Any, tokenizer: Any, batch_size: int) -> Sampler:
    return TorchSampler(model, tokenizer, batch_size)


def _vllm_sampler(model: Any, tokenizer: Any, batch_size: int) -> Sampler:
    from rlscale.rl.vllm_sampler import VLLMSampler

    return VLLMSampler(model, tokenizer)


SAMPLERS: dict[str, Callable[[Any, Any, int], Sampler]] = {
    "torch": _torch_sampler,
    "vllm": _vllm_sampler,
}


def make_sampler(name: str, model: Any, tokenizer: Any, batch_size: int = 512) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose {', '.join(SAMPLERS)}")
    return SAMPLERS[name](model, tokenizer, batch_size)
