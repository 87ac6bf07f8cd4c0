"""Models: the micro ladder, loading any Hugging Face causal LM, parameter and FLOPs counts."""

from rlscale.models.ladder import LADDER, RUNGS, Rung
from rlscale.models.load import count_params, load_model, model_info

__all__ = ["LADDER", "RUNGS", "Rung", "count_params", "load_model", "model_info"]
