"""What every sampler takes and returns: `SamplingParams`, `Completion` and the `Sampler`
protocol (the torch sampler: `rlscale.rl.rollout`; samplers by name: `rlscale.rl.samplers`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """`temperature` 0 means greedy (log-probs then at temperature 1)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError("n and max_new_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")


@dataclass(frozen=True)
class Completion:
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]  # up to and including the end token or stop string
    logprobs: tuple[float, ...]  # one per response token
    text: str  # the decoded response, special tokens removed
    finish_reason: FinishReason


class Sampler(Protocol):
    def sample(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, seed: int
    ) -> list[Completion]: ...
