"""GRPO post-training: pure loss math (grpo.py), the settings (config.py), sampling
(rollout.py, decode.py, samplers.py), evaluation, checkpoints and the trainer."""
