"""Engines that run GRPO elsewhere (verl) and read their logs back as StepRecords."""
