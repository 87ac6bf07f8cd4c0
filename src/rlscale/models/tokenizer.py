"""A character-level tokenizer for the micro models, as a standard PreTrainedTokenizerFast.

Every printable ASCII character is one token, plus <pad>, <s>, </s> and <unk>; it round-trips
through save_pretrained/from_pretrained like any Hugging Face tokenizer.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
MARKER = "char-v1"
CHARS = tuple(sorted(set(string.printable) - set("\t\r\x0b\x0c")))


def char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate((*SPECIALS, *CHARS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
        rlscale_tokenizer=MARKER,
    )


def is_char_tokenizer_dir(path: Path) -> bool:
    """A saved char tokenizer. transformers 5's AutoTokenizer would load it as the model type's
    tokenizer (Qwen2Tokenizer, whose byte-level pre-tokenizer drops our spaces): load it as
    PreTrainedTokenizerFast instead."""
    config = path / "tokenizer_config.json"
    return config.exists() and json.loads(config.read_text()).get("rlscale_tokenizer") == MARKER
