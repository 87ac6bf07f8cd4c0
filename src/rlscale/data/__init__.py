"""Problems and their order: loaders, synthetic tasks, curriculum, data reuse. No torch here."""

from rlscale.data.loaders import load_problems, read_problems
from rlscale.data.order import (
    Progress,
    curriculum_order,
    eval_subset,
    find_overlap,
    prompt_sequence,
    reuse_pool,
    reuse_subset,
)
from rlscale.data.problem import DataError, Problem
from rlscale.data.synthetic import TASKS, generate

__all__ = [
    "TASKS",
    "DataError",
    "Problem",
    "Progress",
    "curriculum_order",
    "eval_subset",
    "find_overlap",
    "generate",
    "load_problems",
    "prompt_sequence",
    "read_problems",
    "reuse_pool",
    "reuse_subset",
]
