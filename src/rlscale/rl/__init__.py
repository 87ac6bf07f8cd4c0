"""GRPO: pure loss math (grpo.py); the sampler and the trainer arrive with the GRPO issue."""
