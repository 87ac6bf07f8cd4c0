"""Models: the micro ladder (base and instruct families), loading any Hugging Face causal LM,
parameter and FLOPs counts."""

from rlscale.models.ladder import FAMILIES, LADDER, RUNGS, Rung, family_of
from rlscale.models.load import count_params, load_model, model_info

__all__ = [
    "FAMILIES",
    "LADDER",
    "RUNGS",
    "Rung",
    "count_params",
    "family_of",
    "load_model",
    "model_info",
]
