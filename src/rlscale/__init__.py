"""rlscale: scaling laws for RL post-training of language models."""

__version__ = "0.1.0"
