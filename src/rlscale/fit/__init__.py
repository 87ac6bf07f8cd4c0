"""Scaling-law fitting: laws (a registry by name), the deterministic solver, the LawFit
estimator, fit input, bootstrap and out-of-sample checks."""
