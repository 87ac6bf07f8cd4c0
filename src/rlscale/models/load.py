"""Load any causal LM (a local Hugging Face directory or a built ladder rung)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlscale.errors import InputError
from rlscale.models.params import count_params as count_params  # re-exported: load, then count


def resolve(name_or_path: str) -> Path:
    """A ladder name → its built directory; anything else must be a local directory."""
    from rlscale.models.build import built_path
    from rlscale.models.ladder import RUNGS

    if name_or_path in RUNGS:
        path = built_path(RUNGS[name_or_path])
        if path is None:
            raise InputError(
                f"{name_or_path} is not built yet: run `rlscale models build-micro "
                f"--sizes {name_or_path}`"
            )
        return path
    path = Path(name_or_path)
    if not (path / "config.json").exists():
        raise InputError(f"{name_or_path}: not a ladder name or a model directory with config.json")
    return path


def load_model(name_or_path: str, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a ladder name or a local Hugging Face model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    from rlscale.models.tokenizer import is_char_tokenizer_dir

    path = resolve(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto")
    if is_char_tokenizer_dir(path):
        return model, PreTrainedTokenizerFast.from_pretrained(path)
    return model, AutoTokenizer.from_pretrained(path)


def model_info(name_or_path: str) -> dict[str, Any]:
    """Sizes and shape; a directory with only config.json is counted on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve(name_or_path)
    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    n, n_total = count_params(model)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return {
        "path": str(path),
        "model_type": config.model_type,
        "N": n,
        "N_total": n_total,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "kv_heads": getattr(config, "num_key_value_heads", config.num_attention_heads),
        "vocab": config.vocab_size,
        "dtype": str(dtype or "float32").replace("torch.", ""),
        "weights": any(path.glob("*.safetensors")) or any(path.glob("*.bin")),
    }
