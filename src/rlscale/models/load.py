"""Load any causal LM (a local Hugging Face directory or a built ladder rung)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlscale.errors import InputError
from rlscale.models.params import count_params as count_params  # re-exported: load, then count


def resolve(name_or_path: str) -> Path:
    """A ladder name (either family) → its built directory; anything else must be a local
    directory."""
    from rlscale.models.ladder import family_of

    found = family_of(name_or_path)
    if found is not None:
        family, rung = found
        path = ladder_path(rung.name, family)
        if path is None:
            raise InputError(
                f"{name_or_path} is not built yet: run `rlscale models build-micro "
                f"--family {family} --sizes {rung.name}`"
            )
        return path
    path = Path(name_or_path)
    if not (path / "config.json").exists():
        raise InputError(f"{name_or_path}: not a ladder name or a model directory with config.json")
    return path


def ladder_path(rung_name: str, family: str) -> Path | None:
    """The default build of a rung in `family` (cached, else shipped), or None."""
    from rlscale.models.build import built_path
    from rlscale.models.instruct import instruct_built_path
    from rlscale.models.ladder import RUNGS

    rung = RUNGS[rung_name]
    return instruct_built_path(rung) if family == "instruct" else built_path(rung)


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
