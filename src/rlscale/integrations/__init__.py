"""Where users already work: experiment trackers fed from StepRecords (`trackers`), and TRL's
GRPOTrainer in (`trl`: a callback that writes a run folder; `trl_logs`: finished TRL runs)."""
