"""How a prompt becomes token ids, one rule for SFT builds, GRPO rollouts and evaluation."""

from __future__ import annotations

from typing import Any


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt: the tokenizer's chat template when it has one (instruct models),
    else beginning-of-sequence + text + ' ' (the micro models' format)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
        )
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return [int(i) for i in ids]
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return [*head, *tokenizer.encode(text + " ", add_special_tokens=False)]
