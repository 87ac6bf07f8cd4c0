"""The built-in micro model ladder: tiny Qwen2 configurations as data, and where builds live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_POSITIONS = 192  # longest prompt + worked solution of the synthetic task, with room


@dataclass(frozen=True)
class Rung:
    """One size of the ladder: a Qwen2ForCausalLM shape (no grouped KV at these widths)."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int

    def config(self, vocab_size: int, bos: int, eos: int, pad: int) -> Any:
        from transformers import Qwen2Config

        return Qwen2Config(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            intermediate_size=self.intermediate,
            max_position_embeddings=MAX_POSITIONS,
            tie_word_embeddings=True,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            rope_theta=10_000.0,
            use_sliding_window=False,
        )


# Five sizes over 107× in non-embedding N (33k to 3.5M), each 3–4× the one below; depth and
# width grow together, as in real model families. The smallest is the smallest shape tried that
# GRPO moves on the chains task (smaller ones did not learn: issue 16's closing note).
LADDER: tuple[Rung, ...] = (
    Rung("micro-xs", hidden=32, layers=2, heads=4, intermediate=128),
    Rung("micro-s", hidden=48, layers=3, heads=4, intermediate=192),
    Rung("micro-m", hidden=80, layers=4, heads=8, intermediate=320),
    Rung("micro-l", hidden=112, layers=5, heads=8, intermediate=448),
    Rung("micro-xl", hidden=192, layers=6, heads=12, intermediate=768),
)
RUNGS = {r.name: r for r in LADDER}

# Each rung comes in two families, as the paper's Qwen2.5 Base and Instruct models do: the base
# build, and the base build plus a supervised round in an instruction format (models.instruct).
FAMILIES = ("base", "instruct")
INSTRUCT_SUFFIX = "-instruct"


def ladder_name(rung: str, family: str) -> str:
    """The name of `rung` (a base rung's name) in `family`: micro-xs, micro-xs-instruct."""
    return rung if family == "base" else f"{rung}{INSTRUCT_SUFFIX}"


LADDER_NAMES: tuple[str, ...] = tuple(
    ladder_name(r.name, family) for family in FAMILIES for r in LADDER
)


def family_of(name: str) -> tuple[str, Rung] | None:
    """(family, base rung) of a ladder name; None for anything else (a model directory, …)."""
    if name in RUNGS:
        return "base", RUNGS[name]
    base = name.removesuffix(INSTRUCT_SUFFIX)
    if base != name and base in RUNGS:
        return "instruct", RUNGS[base]
    return None


def cache_root() -> Path:
    """Where built rungs live: $RLSCALE_CACHE, else ~/.cache/rlscale."""
    return Path(os.environ.get("RLSCALE_CACHE", Path.home() / ".cache" / "rlscale"))
